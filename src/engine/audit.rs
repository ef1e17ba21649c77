//! Audit events: what an operation did to a session, as data.
//!
//! An operation that issues, rotates or revokes sessions keeps the events of its
//! last, committed attempt; the driver takes them with [`Operation::take_audit`]
//! once the operation is done and delivers them (the manager's audit hook, the
//! npm package's `onAudit`, `tollgate serve`'s webhook). One source for every
//! surface. An event never carries a token, a hash or a secret.
//!
//! [`Operation::take_audit`]: super::step::Operation::take_audit

use std::net::IpAddr;

use serde::Serialize;

use super::client::ClientInfo;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A session was issued.
    Issued,
    /// A refresh token was rotated (a repeat within the grace window, which writes nothing, is not an event).
    Refreshed,
    /// One session was revoked.
    Revoked,
    /// A user's sessions were revoked at once (`count` says how many, `sid` is the one kept, if any).
    RevokedAll,
    /// A rotated refresh token came back after the grace window: the session was revoked.
    ReuseDetected,
    /// The per-user limit revoked the oldest session (`sid`) to make room for a new one.
    LimitEvicted,
}

impl AuditKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::Issued => "issued",
            AuditKind::Refreshed => "refreshed",
            AuditKind::Revoked => "revoked",
            AuditKind::RevokedAll => "revoked_all",
            AuditKind::ReuseDetected => "reuse_detected",
            AuditKind::LimitEvicted => "limit_evicted",
        }
    }
}

/// One audit event. Its JSON is what the npm package's `onAudit` and `tollgate
/// serve`'s webhook receive: `{"kind", "user", "sid", "at", "ip", "user_agent", "count"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub user: String,
    /// The session concerned; for `revoked_all`, the session kept (or `None`).
    pub sid: Option<String>,
    /// Unix milliseconds: the operation's `now`.
    pub at: u64,
    /// The client of the request that caused it, where the caller said (issue, refresh, reuse, eviction).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// `revoked_all` only: how many sessions were revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl AuditEvent {
    pub(crate) fn new(kind: AuditKind, user: &str, sid: Option<&str>, at: u64, client: Option<&ClientInfo>) -> Self {
        AuditEvent {
            kind,
            user: user.to_owned(),
            sid: sid.map(str::to_owned),
            at,
            ip: client.and_then(|c| c.ip),
            user_agent: client.and_then(|c| c.user_agent.clone()),
            count: None,
        }
    }
}
