//! The session operations, each a state machine over [`super::step`].
//!
//! Each constructor takes `now` (unix milliseconds) and, where it needs them,
//! random bytes; nothing here reads a clock or an RNG.

mod issue;
mod list;
mod metadata;
mod refresh;
mod revoke;
mod user_cache;
mod verify;

pub use issue::Issue;
pub use list::ListSessions;
pub use metadata::UpdateMetadata;
pub use refresh::Refresh;
pub use revoke::{Revoke, RevokeAll};
pub use user_cache::{CacheDelete, CacheGet, CachePut};
pub use verify::{Verified, Verify, VerifyMode};

use std::net::IpAddr;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::audit::{AuditEvent, AuditKind};
use super::client::ClientInfo;
use super::error::Error;
use super::jwt::{self, Mint};
use super::policy::Rules;
use super::record::{self, IndexEntry, RevokedAll, RevokedSession, SessionRecord, UserIndex};
pub(crate) use super::step::unexpected;
use super::step::{CryptoCmd, Expect, Pending, Reply, StoreReply, Versioned, WriteOp};
use super::token::{Secret, SECRET_RANDOM_LEN, SID_LEN};

/// Random bytes for one operation: enough for a session id, a token id and a secret.
#[derive(Clone)]
pub struct Entropy(pub [u8; 64]);

impl Entropy {
    fn sid(&self) -> String {
        super::b64::encode(&self.0[..SID_LEN])
    }
    fn jti(&self) -> String {
        super::b64::encode(&self.0[16..32])
    }
    /// The refresh secret for link `generation` of session `sid`: random bytes and a chain tag.
    fn secret(&self, rules: &Rules, user: &str, sid: &str, generation: u64) -> Secret {
        let mut random = [0u8; SECRET_RANDOM_LEN];
        random.copy_from_slice(&self.0[32..32 + SECRET_RANDOM_LEN]);
        super::token::chain_secret(&rules.refresh_key, user, sid, generation, &random)
    }
}

/// A session as callers see it (no secrets).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionInfo {
    pub sid: String,
    pub user: String,
    pub created_at: u64,
    pub last_seen: u64,
    pub idle_expires_at: u64,
    pub absolute_expires_at: u64,
    pub generation: u64,
    pub metadata: Value,
    /// The client IP of the sign-in or last refresh; `null` when not known.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` of the sign-in or last refresh; `null` when not known.
    pub user_agent: Option<String>,
}

/// A session in a listing: the session, and whether it is the caller's own
/// (the session of the access token that asked; always `false` when no session asked).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListedSession {
    #[serde(flatten)]
    pub session: SessionInfo,
    pub current: bool,
}

impl From<&SessionRecord> for SessionInfo {
    fn from(r: &SessionRecord) -> Self {
        SessionInfo {
            sid: r.sid.clone(),
            user: r.user.clone(),
            created_at: r.created_at,
            last_seen: r.last_seen,
            idle_expires_at: r.idle_expires_at,
            absolute_expires_at: r.absolute_expires_at,
            generation: r.generation,
            metadata: r.metadata.clone(),
            ip: r.ip,
            user_agent: r.user_agent.clone(),
        }
    }
}

/// A new access token and refresh token. `Debug` shows neither.
#[derive(Clone, PartialEq, Serialize)]
pub struct Tokens {
    pub access_token: String,
    /// Unix milliseconds.
    pub access_expires_at: u64,
    pub refresh_token: String,
    pub session: SessionInfo,
    /// Sessions revoked to make room under the per-user limit (issue only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evicted: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"<redacted>")
            .field("session", &self.session)
            .field("evicted", &self.evicted)
            .finish()
    }
}

/// An access token being minted: signed inline for HMAC keys, by the driver otherwise.
pub(crate) enum AccessToken {
    None,
    AwaitingSignature { signing_input: String },
    Signed(String),
}

impl AccessToken {
    /// Starts minting. Answers the crypto effect to emit, if the driver must sign.
    pub(crate) fn begin(&mut self, rules: &Rules, mint: &Mint<'_>) -> Option<CryptoCmd> {
        if matches!(self, AccessToken::Signed(_)) {
            // Retries after a conflict keep the same `now` and randomness, so the same token.
            return None;
        }
        let key = rules.keys.signing_key();
        let input = jwt::signing_input(key, &rules.policy.claims, mint);
        match jwt::sign_hmac(key, &input) {
            Some(sig) => {
                *self = AccessToken::Signed(jwt::finish(input, &sig));
                None
            }
            None => {
                let cmd = CryptoCmd::Sign { alg: key.alg(), kid: key.kid().to_owned(), message: input.as_bytes().to_vec() };
                *self = AccessToken::AwaitingSignature { signing_input: input };
                Some(cmd)
            }
        }
    }

    /// Takes the driver's signature. Returns false on a reply of the wrong kind.
    pub(crate) fn accept(&mut self, reply: Reply) -> bool {
        match (std::mem::replace(self, AccessToken::None), reply) {
            (AccessToken::AwaitingSignature { signing_input }, Reply::Signature(sig)) => {
                *self = AccessToken::Signed(jwt::finish(signing_input, &sig));
                true
            }
            _ => false,
        }
    }

    pub(crate) fn token(&self) -> Option<&str> {
        match self {
            AccessToken::Signed(t) => Some(t),
            _ => None,
        }
    }
}

/// Counts attempts and decides whether a conflict may be retried.
pub(crate) struct Attempts {
    used: u32,
    max: u32,
}

impl Attempts {
    pub(crate) fn new(rules: &Rules) -> Self {
        Attempts { used: 1, max: rules.policy.max_attempts }
    }
    /// Records a conflict; false when the budget is spent.
    pub(crate) fn retry(&mut self) -> bool {
        self.used += 1;
        self.used <= self.max
    }
}

/// Unpacks a `Values` reply of exactly `n` entries.
pub(crate) fn values(reply: Reply, n: usize) -> Option<Vec<Option<Versioned>>> {
    match reply {
        Reply::Store(StoreReply::Values(v)) if v.len() == n => Some(v),
        _ => None,
    }
}

pub(crate) enum CommitOutcome {
    Committed,
    Conflict,
    Unexpected,
}

pub(crate) fn commit_outcome(reply: &Reply) -> CommitOutcome {
    match reply {
        Reply::Store(StoreReply::Committed) => CommitOutcome::Committed,
        Reply::Store(StoreReply::Conflict) => CommitOutcome::Conflict,
        _ => CommitOutcome::Unexpected,
    }
}

pub(crate) fn expect_of(v: &Option<Versioned>) -> Expect {
    match v {
        Some(v) => Expect::Version(v.version),
        None => Expect::Absent,
    }
}

/// The record write. The store keeps a record until its access tokens are dead
/// (access lifetime plus leeway past the session's end), so within that time the
/// answer is `session_expired` or `session_revoked` on every store, not `session_not_found`.
pub(crate) fn put_record(rules: &Rules, record: &SessionRecord, expect: Expect) -> WriteOp {
    WriteOp::Put {
        key: record::session_key(&record.user, &record.sid),
        value: Bytes::from(record.seal(&rules.refresh_key, rules.policy.record_format)),
        expect,
        expires_at: record.expires_at().saturating_add(retention(rules)),
    }
}

/// How long past a session's end its record and markers are kept: while access tokens minted for it live.
fn retention(rules: &Rules) -> u64 {
    rules.policy.access_ttl_ms + rules.policy.claims.leeway_ms
}

/// The keys a refresh or a strict verify reads, in one round trip: the record and its
/// revocation markers (the revoke-all marker only, on an atomic store: [`Rules::atomic_store`]).
pub(crate) fn session_and_markers(rules: &Rules, user: &str, sid: &str) -> Vec<String> {
    let mut keys = vec![record::session_key(user, sid)];
    keys.extend(marker_keys(rules, user, sid));
    keys
}

/// The revocation markers of [`session_and_markers`], without the record's key.
pub(crate) fn marker_keys(rules: &Rules, user: &str, sid: &str) -> impl Iterator<Item = String> {
    let session = (!rules.atomic_store).then(|| record::revoked_key(user, sid));
    session.into_iter().chain([record::revoked_all_key(user)])
}

/// A reply to [`session_and_markers`]: the record's slot, the session's marker and the
/// revoke-all marker; `None` when the reply does not answer those keys.
pub(crate) fn session_and_markers_reply(rules: &Rules, reply: Reply) -> Option<SessionSlots> {
    let mut v = values(reply, if rules.atomic_store { 2 } else { 3 })?;
    let all = v.pop().flatten();
    let marker = if rules.atomic_store { None } else { v.pop().flatten() };
    Some(SessionSlots { record: v.pop().flatten(), marker, all })
}

pub(crate) struct SessionSlots {
    pub record: Option<Versioned>,
    pub marker: Option<Versioned>,
    pub all: Option<Versioned>,
}

/// `session_revoked` when a marker read beside the record revokes it. A write made
/// from a stale view of the record (Workers KV) may bring a tombstone back to life;
/// the markers, which no such write touches, still revoke it.
pub(crate) fn check_markers(record: &SessionRecord, session: Option<&Versioned>, all: Option<&Versioned>) -> Result<(), Error> {
    if let Some(v) = session {
        RevokedSession::decode(&v.value)?;
        return Err(Error::session_revoked());
    }
    if let Some(v) = all {
        if RevokedAll::decode(&v.value)?.revokes(&record.sid, record.created_at) {
            return Err(Error::session_revoked());
        }
    }
    Ok(())
}

/// The marker of one revoked session, kept while the session could have lived
/// (`absolute_expires_at` as it was before the tombstone); none on an atomic store,
/// where the tombstone written in the same commit suffices ([`Rules::atomic_store`]).
pub(crate) fn put_revoked(rules: &Rules, user: &str, sid: &str, absolute_expires_at: u64, now: u64) -> Option<WriteOp> {
    (!rules.atomic_store).then(|| WriteOp::Put {
        key: record::revoked_key(user, sid),
        value: Bytes::from(RevokedSession::new(now).encode()),
        expect: Expect::Any,
        expires_at: absolute_expires_at.max(now).saturating_add(retention(rules)),
    })
}

/// The revoke-all marker, kept until every session it covers has ended.
pub(crate) fn put_revoked_all(rules: &Rules, user: &str, marker: &RevokedAll) -> WriteOp {
    WriteOp::Put {
        key: record::revoked_all_key(user),
        value: Bytes::from(marker.encode()),
        expect: Expect::Any,
        expires_at: marker.before.saturating_add(rules.policy.absolute_ttl_ms).saturating_add(retention(rules)),
    }
}

/// The index write: a put, or a delete once it is empty.
pub(crate) fn put_index(rules: &Rules, user: &str, index: &UserIndex, expect: Expect) -> WriteOp {
    let key = record::index_key(user);
    if index.sessions.is_empty() {
        WriteOp::Delete { key, expect }
    } else {
        WriteOp::Put { key, value: Bytes::from(index.encode(rules.policy.record_format)), expect, expires_at: index.expires_at() }
    }
}

/// Turns a record into a revoked tombstone, kept until any access token minted
/// for it has expired, so strict verification answers `session_revoked`.
pub(crate) fn tombstone(mut record: SessionRecord, now: u64) -> SessionRecord {
    record.revoked_at = Some(now);
    record.recent.clear();
    record.retired.clear();
    record.claims = Map::new();
    record.metadata = Value::Null;
    record.ip = None;
    record.user_agent = None;
    // The session ends now; `put_record` keeps the tombstone while its access tokens live.
    record.idle_expires_at = now;
    record.absolute_expires_at = now;
    record
}

/// A tombstone for a session known only from the index (no read of its record).
pub(crate) fn tombstone_for(user: &str, entry: &IndexEntry, now: u64) -> SessionRecord {
    let record = SessionRecord {
        v: SessionRecord::new_format(),
        sid: entry.sid.clone(),
        user: user.to_owned(),
        created_at: entry.created_at,
        last_seen: now,
        idle_expires_at: 0,
        absolute_expires_at: 0,
        generation: 0,
        refresh_hash: [0; 32],
        recent: Vec::new(),
        retired: Vec::new(),
        revoked_at: None,
        claims: Map::new(),
        metadata: Value::Null,
        ip: None,
        user_agent: None,
    };
    tombstone(record, now)
}

/// Decodes a record read from the store: its MAC must vouch for it under the key it is stored under.
pub(crate) fn decode_record(rules: &Rules, v: &Versioned, user: &str, sid: &str) -> Result<SessionRecord, Error> {
    SessionRecord::open(&v.value, &rules.refresh_key, user, sid)
}

pub(crate) fn done<T>(r: Result<T, Error>) -> Pending<T> {
    Pending::Done(r)
}

pub(crate) fn check_metadata(rules: &Rules, metadata: &Value) -> Result<(), Error> {
    let len = serde_json::to_vec(metadata).map(|v| v.len()).unwrap_or(usize::MAX);
    if len > rules.policy.max_metadata_bytes {
        return Err(Error::bad_request(format!(
            "session metadata is {len} bytes as JSON; the limit is {} bytes",
            rules.policy.max_metadata_bytes
        )));
    }
    Ok(())
}
