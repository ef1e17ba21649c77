//! The rules a manager applies: lifetimes, limits, grace windows.

use super::error::Error;
use super::jwt::ClaimsPolicy;
use super::keys::KeySet;

/// What to do when a user already holds the maximum number of sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Revoke the oldest sessions to make room (N = 1 gives single-session mode).
    EvictOldest,
    /// Refuse the new session with `session_limit`.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub claims: ClaimsPolicy,
    pub access_ttl_ms: u64,
    pub idle_ttl_ms: u64,
    pub absolute_ttl_ms: u64,
    /// A rotated refresh token presented again within this window gets the same successor.
    pub refresh_grace_ms: u64,
    /// Sliding expiry is written at most once per this interval.
    pub touch_interval_ms: u64,
    /// `None`: no limit.
    pub max_sessions_per_user: Option<u32>,
    pub limit_policy: LimitPolicy,
    /// The `<prefix>` of refresh tokens: 1 to 16 of `a-z0-9`.
    pub refresh_prefix: String,
    pub max_metadata_bytes: usize,
    pub max_claims_bytes: usize,
    /// How many retired refresh-token hashes a session remembers for reuse detection.
    pub reuse_memory: usize,
    /// Attempts per operation when commits conflict.
    pub max_attempts: u32,
    pub user_cache_ttl_ms: u64,
}

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            claims: ClaimsPolicy { issuer: None, audience: Vec::new(), leeway_ms: 30_000, max_token_bytes: 8 * 1024 },
            access_ttl_ms: 15 * MINUTE,
            idle_ttl_ms: 14 * DAY,
            absolute_ttl_ms: 30 * DAY,
            refresh_grace_ms: 10_000,
            touch_interval_ms: MINUTE,
            max_sessions_per_user: None,
            limit_policy: LimitPolicy::EvictOldest,
            refresh_prefix: "tgr".into(),
            max_metadata_bytes: 16 * 1024,
            max_claims_bytes: 4 * 1024,
            reuse_memory: 64,
            max_attempts: 16,
            user_cache_ttl_ms: 5 * MINUTE,
        }
    }
}

impl Policy {
    pub fn validate(&self) -> Result<(), Error> {
        let p = &self.refresh_prefix;
        if p.is_empty() || p.len() > 16 || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(Error::config("the refresh token prefix must be 1 to 16 of a-z and 0-9"));
        }
        if self.access_ttl_ms < 1000 || self.idle_ttl_ms < 1000 || self.absolute_ttl_ms < 1000 {
            return Err(Error::config("token and session lifetimes must be at least one second"));
        }
        if self.idle_ttl_ms > self.absolute_ttl_ms {
            return Err(Error::config("the idle lifetime cannot exceed the absolute lifetime"));
        }
        if self.max_sessions_per_user == Some(0) {
            return Err(Error::config("a per-user session limit must be at least 1 (or none)"));
        }
        if self.max_attempts == 0 {
            return Err(Error::config("max_attempts must be at least 1"));
        }
        if self.claims.max_token_bytes < 64 {
            return Err(Error::config("max_token_bytes must be at least 64"));
        }
        Ok(())
    }
}

/// Everything an operation reads but never changes: the keys and the rules.
#[derive(Clone, Debug)]
pub struct Rules {
    pub keys: KeySet,
    pub policy: Policy,
}

impl Rules {
    pub fn new(keys: KeySet, policy: Policy) -> Result<Rules, Error> {
        policy.validate()?;
        Ok(Rules { keys, policy })
    }
}
