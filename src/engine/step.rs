//! The effects an operation asks for and the replies it is handed.
//!
//! # The contract
//!
//! An operation is driven by alternating two calls:
//!
//! 1. [`Operation::poll`] returns the next effect ([`Step::Store`] or
//!    [`Step::Crypto`]) or the result ([`Step::Done`]).
//! 2. After an effect, the driver carries it out and passes the answer to
//!    [`Operation::handle`], then polls again.
//!
//! After `Done`, the operation is spent; polling it again answers an `internal`
//! error. A store failure (unreachable, timed out) is not handed to the
//! operation: the driver stops and returns `store_unavailable`. A `Conflict`
//! reply is handed over; the operation starts again from its first read, up to
//! the policy's attempt budget, and the driver may wait a jittered moment first.
//!
//! 3. After `Done`, [`Operation::take_audit`] answers the audit events of what the
//!    operation committed; the driver delivers them (effects as data, like the rest).

use bytes::Bytes;

use super::audit::AuditEvent;
use super::error::{Error, ErrorCode};
use super::keys::Alg;

/// What the store must hold for a write to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key holds nothing (or only an expired value).
    Absent,
    /// The key holds exactly this version.
    Version(u64),
    /// Anything or nothing.
    Any,
}

impl Expect {
    /// Whether a key whose live version is `current` (`None`: absent or expired)
    /// meets this expectation. Every store checks commits with this.
    pub fn admits(self, current: Option<u64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Stores `value` under `key` until `expires_at` (unix ms): the store may
    /// reclaim it after that, and must not return it once that time has passed.
    Put {
        key: String,
        value: Bytes,
        expect: Expect,
        expires_at: u64,
    },
    Delete {
        key: String,
        expect: Expect,
    },
    /// Appends `entry` to the counted list under `key` ([`super::list`]), creating
    /// it when the key holds nothing: the list then holds one entry more, its
    /// expiry is the later of its own and `expires_at`, and its version changes
    /// (a writer expecting the old version conflicts). The commit conflicts, and
    /// writes nothing, when the list already holds `max_entries` entries or the
    /// key holds something that is not a counted list. Only stores whose
    /// [`Caps::lists`](crate::store::Caps) is true are sent one.
    Append {
        key: String,
        entry: Bytes,
        max_entries: u32,
        expires_at: u64,
    },
    /// Removes every entry whose sid is `sid` from the counted list under `key`
    /// ([`super::list`]; an entry starts with its sid's length and the sid), without
    /// the writer reading the list (the one-trip revoke). The list's version changes
    /// and its expiry stays; a list left empty is deleted; a key holding nothing is
    /// left alone. The commit conflicts, and writes nothing, when the key holds
    /// something that is not a counted list. Only stores whose
    /// [`Caps::lists`](crate::store::Caps) is true are sent one.
    Remove {
        key: String,
        sid: String,
    },
}

impl WriteOp {
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } | WriteOp::Append { key, .. } | WriteOp::Remove { key, .. } => key,
        }
    }
    /// The expectation checked against the key's version; a list write carries its
    /// own condition (room in the list, or a list at all) and answers `Any` here.
    pub fn expect(&self) -> Expect {
        match self {
            WriteOp::Put { expect, .. } | WriteOp::Delete { expect, .. } => *expect,
            WriteOp::Append { .. } | WriteOp::Remove { .. } => Expect::Any,
        }
    }
    pub fn is_append(&self) -> bool {
        matches!(self, WriteOp::Append { .. })
    }
    /// An append or a removal: only stores whose [`Caps::lists`](crate::store::Caps) is true apply one.
    pub fn is_list_write(&self) -> bool {
        matches!(self, WriteOp::Append { .. } | WriteOp::Remove { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreCmd {
    /// Reads the keys; the reply holds one entry per key, in order.
    Get { keys: Vec<String> },
    /// Reads the keys like `Get`, for an operation that will confirm what it relies on
    /// in its commit: a driver that remembers the first key's value (it committed it)
    /// may answer [`StoreReply::Remembered`] instead of reading, once per operation.
    /// A driver that remembers nothing answers `Values`, as for `Get`.
    Recall { keys: Vec<String> },
    /// Applies every write or none: all expectations are checked first. A commit
    /// names each key once (stores may check every op against the key as it was before
    /// the commit).
    Commit { ops: Vec<WriteOp> },
}

/// A stored value and the version a later write can expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: Bytes,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreReply {
    Values(Vec<Option<Versioned>>),
    /// To a [`StoreCmd::Recall`]: what the driver remembers of the keys, one entry per
    /// key (`None`: nothing remembered, or remembered absent). It may be stale. The
    /// operation acts on it only through a commit that expects every entry it relied
    /// on (a present one's version, a missing one's absence); any other answer it
    /// would give, it first reads again.
    Remembered(Vec<Option<Versioned>>),
    Committed,
    /// An expectation failed; nothing was written.
    Conflict,
}

/// Signing and asymmetric verification, carried out by the driver's crypto
/// (jsonwebtoken natively, WebCrypto in JavaScript). HMAC never leaves the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptoCmd {
    /// Answer with [`Reply::Signature`]: the raw JWS signature (for ES256, the 64-byte r||s).
    Sign { alg: Alg, kid: String, message: Vec<u8> },
    /// Answer with [`Reply::Verified`].
    VerifySignature { alg: Alg, kid: String, message: Vec<u8>, signature: Vec<u8> },
}

#[derive(Debug)]
pub enum Step<T> {
    Store(StoreCmd),
    Crypto(CryptoCmd),
    Done(Result<T, Error>),
}

#[derive(Debug)]
pub enum Reply {
    Store(StoreReply),
    Signature(Vec<u8>),
    Verified(bool),
}

/// A session operation as a state machine; see the module docs for the contract.
pub trait Operation {
    type Output;
    fn poll(&mut self) -> Step<Self::Output>;
    fn handle(&mut self, reply: Reply);
    /// After `Done`: the audit events of what the operation committed (none for
    /// reads, or when it failed before writing). Drained: a second call answers none.
    fn take_audit(&mut self) -> Vec<AuditEvent> {
        Vec::new()
    }
}

/// A driver may step an operation it only borrows, and take its audit events after.
impl<O: Operation + ?Sized> Operation for &mut O {
    type Output = O::Output;
    fn poll(&mut self) -> Step<O::Output> {
        (**self).poll()
    }
    fn handle(&mut self, reply: Reply) {
        (**self).handle(reply)
    }
    fn take_audit(&mut self) -> Vec<AuditEvent> {
        (**self).take_audit()
    }
}

/// The next thing an operation will answer from `poll`.
pub(crate) enum Pending<T> {
    Store(StoreCmd),
    Crypto(CryptoCmd),
    Done(Result<T, Error>),
    /// Polled; waiting for `handle`.
    Waiting,
    /// Done was returned already.
    Spent,
}

impl<T> Pending<T> {
    pub(crate) fn take(&mut self) -> Step<T> {
        match std::mem::replace(self, Pending::Waiting) {
            Pending::Store(c) => Step::Store(c),
            Pending::Crypto(c) => Step::Crypto(c),
            Pending::Done(r) => {
                *self = Pending::Spent;
                Step::Done(r)
            }
            Pending::Waiting => {
                Step::Done(Err(Error::new(ErrorCode::Internal, "operation polled twice without a reply; hand the reply to handle() first")))
            }
            Pending::Spent => {
                *self = Pending::Spent;
                Step::Done(Err(Error::new(ErrorCode::Internal, "operation polled after it finished")))
            }
        }
    }
}

/// A reply of the wrong kind for the step the operation is in: a driver bug, reported, not panicked on.
pub(crate) fn unexpected<T>() -> Pending<T> {
    Pending::Done(Err(Error::new(ErrorCode::Internal, "the driver answered with a reply of the wrong kind")))
}
