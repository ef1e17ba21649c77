//! The rules a manager applies: lifetimes, limits, grace windows.

use std::borrow::Cow;

use super::error::Error;
use super::jwt::ClaimsPolicy;
use super::keys::KeySet;
use super::ops::VerifyMode;
use super::record::RecordFormat;
use super::refresh_key::{RefreshKey, RefreshSecret, MIN_REFRESH_SECRET_LEN};

/// What to do when a user already holds the maximum number of sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Revoke the oldest sessions to make room (N = 1 gives single-session mode).
    EvictOldest,
    /// Refuse the new session with `session_limit`.
    Refuse,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub claims: ClaimsPolicy,
    pub access_ttl_ms: u64,
    pub idle_ttl_ms: u64,
    pub absolute_ttl_ms: u64,
    /// A rotated refresh token presented again within this window gets the same successor.
    pub refresh_grace_ms: u64,
    /// Sliding expiry is written at most once per this interval.
    pub touch_interval_ms: u64,
    /// Live sessions per user (100 by default). Every sign-in rewrites the user's
    /// index, so its cost grows with this bound; there is no unbounded setting.
    pub max_sessions_per_user: u32,
    pub limit_policy: LimitPolicy,
    /// The `<prefix>` of refresh tokens: 1 to 16 of `a-z0-9`.
    pub refresh_prefix: String,
    pub max_metadata_bytes: usize,
    pub max_claims_bytes: usize,
    /// How many retired hashes of untagged refresh secrets (minted before chain
    /// tags) a session remembers for reuse detection; tagged ones need none.
    pub reuse_memory: usize,
    /// How session records are written (both formats are always read).
    pub record_format: RecordFormat,
    /// Attempts per operation when commits conflict.
    pub max_attempts: u32,
    /// How many keys a manager remembers of its own commits (0: none), so a refresh
    /// of a session it wrote last skips its read; read by the manager's driver, not
    /// by the operations ([`crate::store::recent`]).
    pub recent_writes: usize,
    pub user_cache_ttl_ms: u64,
    /// The mode of a verify whose caller names none (HTTP `POST /v1/verify`
    /// without `mode`, JS `verify(token)`); Rust callers always name one.
    pub verify_mode: VerifyMode,
    /// What the refresh key (the MAC key of stored records) derives from; `None`:
    /// the HMAC signing secret. Required with an asymmetric signing key.
    pub refresh_secret: Option<RefreshSecret>,
}

const MINUTE: u64 = 60_000;
/// The default per-user session limit: bounds the index every sign-in rewrites.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 100;
const DAY: u64 = 24 * 60 * MINUTE;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            claims: ClaimsPolicy { issuer: None, audience: Vec::new(), leeway_ms: 30_000, max_token_bytes: 8 * 1024 },
            access_ttl_ms: 15 * MINUTE,
            idle_ttl_ms: 14 * DAY,
            absolute_ttl_ms: 30 * DAY,
            // Fits the client retry rule in the README (3 attempts, the last 13 s after
            // the first) with room for clock skew between servers.
            refresh_grace_ms: 30_000,
            touch_interval_ms: MINUTE,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            limit_policy: LimitPolicy::EvictOldest,
            refresh_prefix: "tgr".into(),
            max_metadata_bytes: 16 * 1024,
            max_claims_bytes: 4 * 1024,
            reuse_memory: 64,
            record_format: RecordFormat::Compact,
            max_attempts: 16,
            recent_writes: 16_384,
            user_cache_ttl_ms: 5 * MINUTE,
            verify_mode: VerifyMode::Strict,
            refresh_secret: None,
        }
    }
}

/// A setting the rules cannot work with: which one (its snake_case name in the
/// settings table) and what is wrong. Each surface writes the names its own way
/// (`TOLLGATE_IDLE_TTL`, `idleTtl`), so the problem never spells one out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    pub setting: &'static str,
    /// Reads after the setting's name ("must be at least one second"); `{}`
    /// stands for the name of `other`.
    pub problem: Cow<'static, str>,
    pub other: Option<&'static str>,
}

impl InvalidSetting {
    pub fn new(setting: &'static str, problem: impl Into<Cow<'static, str>>) -> Self {
        InvalidSetting { setting, problem: problem.into(), other: None }
    }
    /// A problem that names a second setting where the problem says `{}`.
    pub fn with_other(setting: &'static str, problem: &'static str, other: &'static str) -> Self {
        InvalidSetting { setting, problem: problem.into(), other: Some(other) }
    }
    /// The message, each setting written by `name` (the setting's snake_case name in, its surface's name out).
    pub fn message(&self, name: impl Fn(&'static str) -> &'static str) -> String {
        let problem = match self.other {
            Some(other) => self.problem.replace("{}", name(other)),
            None => self.problem.clone().into_owned(),
        };
        format!("{} {problem}", name(self.setting))
    }
}

impl Policy {
    /// The first setting the rules cannot work with.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        let p = &self.refresh_prefix;
        if p.is_empty() || p.len() > 16 || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(InvalidSetting::new("refresh_prefix", "must be 1 to 16 of a-z and 0-9"));
        }
        for (setting, ms) in [("access_ttl", self.access_ttl_ms), ("idle_ttl", self.idle_ttl_ms), ("absolute_ttl", self.absolute_ttl_ms)] {
            if ms < 1000 {
                return Err(InvalidSetting::new(setting, "must be at least one second"));
            }
        }
        if self.idle_ttl_ms > self.absolute_ttl_ms {
            return Err(InvalidSetting::with_other("idle_ttl", "cannot exceed {}", "absolute_ttl"));
        }
        if self.max_sessions_per_user == 0 {
            return Err(InvalidSetting::new("max_sessions_per_user", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(InvalidSetting::new("max_attempts", "must be at least 1"));
        }
        if self.refresh_secret.as_ref().is_some_and(|s| s.0.len() < MIN_REFRESH_SECRET_LEN) {
            return Err(InvalidSetting::new("refresh_secret", "must be at least 32 bytes; `tollgate keygen` makes one"));
        }
        if self.claims.max_token_bytes < 64 {
            return Err(InvalidSetting::new("max_token_bytes", "must be at least 64"));
        }
        Ok(())
    }

    /// [`Policy::check`] as an [`Error`] (`config_invalid`), settings named as in Rust.
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map_err(|e| Error::config(e.message(|name| name)))
    }
}

/// Everything an operation reads but never changes: the keys and the rules.
#[derive(Clone, Debug)]
pub struct Rules {
    pub keys: KeySet,
    pub policy: Policy,
    /// Authenticates stored records; derived from `policy.refresh_secret`, else the signing secret.
    pub refresh_key: RefreshKey,
    /// The store applies each commit whole and checks its expectations ([`Caps::atomic`]).
    /// A revoked session's tombstone then cannot be overwritten by a write made from an
    /// older view of its record, so the tombstone alone revokes it: the per-session
    /// revocation marker is neither written nor read. False (markers kept) until
    /// [`SessionManager::from_parts`] reads the store's caps.
    ///
    /// [`Caps::atomic`]: crate::store::Caps::atomic
    /// [`SessionManager::from_parts`]: crate::SessionManager::from_parts
    pub atomic_store: bool,
}

impl Rules {
    pub fn new(keys: KeySet, policy: Policy) -> Result<Rules, Error> {
        policy.validate()?;
        let refresh_key = match (&policy.refresh_secret, keys.signing_key().refresh_key()) {
            (Some(secret), _) => RefreshKey::derive(&secret.0),
            (None, Some(derived)) => derived.clone(),
            (None, None) => return Err(Error::config(refresh_secret_required().message(|name| name))),
        };
        Ok(Rules { keys, policy, refresh_key, atomic_store: false })
    }
}

/// An asymmetric signing key has no secret to derive the refresh key from.
pub fn refresh_secret_required() -> InvalidSetting {
    InvalidSetting::with_other(
        "refresh_secret",
        "is required when {} is asymmetric: set it to 32 random bytes or more (`tollgate keygen` makes them) \
         and keep it when the signing key changes; it authenticates stored sessions",
        "signing_key",
    )
}
