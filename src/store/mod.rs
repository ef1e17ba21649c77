//! The Store contract, its adapters, and the one loop that drives every operation.
//!
//! A store holds opaque values under string keys, each with a version and an
//! expiry, and answers two commands: `get` (values and versions) and an
//! all-or-nothing `commit` of puts and deletes with expectations. That is all
//! the core needs; each store says what it guarantees in [`Caps`].
#![allow(clippy::disallowed_methods)] // store adapters keep deadlines and pick versions: outside the engine

#[cfg(feature = "worker")]
pub mod d1;
#[cfg(feature = "worker")]
pub mod durable;
#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod js;
#[cfg(feature = "worker")]
pub mod kv;
pub mod memory;
pub mod recent;
// Natively the Redis store; in wasm32 its codec, under the npm package's Redis store.
#[cfg(any(all(feature = "redis", not(target_arch = "wasm32")), all(feature = "wasm", target_arch = "wasm32")))]
pub mod redis;
#[cfg(any(all(any(feature = "sqlite", feature = "postgres", feature = "mysql"), not(target_arch = "wasm32")), feature = "worker"))]
pub mod sql;

use crate::crypto::CryptoDriver;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::step::{CryptoCmd, Operation, Reply, Step, StoreCmd, StoreReply, Versioned, WriteOp};
use crate::platform::{self, MaybeSendSync};

pub use memory::MemoryStore;

/// What a store guarantees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// A commit applies all its writes or none, and checks every expectation.
    pub atomic: bool,
    /// A read sees every write acknowledged before it, from anywhere.
    pub consistent: bool,
    /// The shortest expiry the store honours, in ms; shorter ones are rounded up
    /// (the core never relies on the store to expire anything on time).
    pub min_ttl_ms: u64,
    /// Applies the counted-list writes in a commit: [`WriteOp::Append`] (the
    /// one-trip sign-in) and [`WriteOp::Remove`] (the one-trip revoke). Stores
    /// without them are never sent one: sign-ins and revokes read the index first.
    pub lists: bool,
}

/// The outcome of a commit that reached the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitResult {
    Committed,
    /// An expectation failed; nothing was written.
    Conflict,
}

/// Why a store call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store could not be reached, timed out or refused: `store_unavailable`.
    Unavailable,
    /// The store answered with something that is not a valid reply: `store_corrupt`.
    Corrupt,
}

/// A store's failure to answer at all. Adapters map their own errors into it;
/// it reaches callers as `store_unavailable` or `store_corrupt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Unavailable, message: message.into() }
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Corrupt, message: message.into() }
    }
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e.kind {
            StoreErrorKind::Corrupt => {
                Error::new(ErrorCode::StoreCorrupt, format!("the store answered with an invalid reply: {}", e.message))
            }
            StoreErrorKind::Unavailable => {
                Error::new(ErrorCode::StoreUnavailable, format!("the session store is unavailable ({}); retry shortly", e.message))
            }
        }
    }
}

/// For the commits of stores whose [`Caps::lists`] is false: the engine never sends
/// them an append or a removal, so one is a caller's mistake, refused before anything is written.
pub fn refuse_list_writes(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.iter().any(WriteOp::is_list_write) {
        return Err(StoreError::corrupt("this store does not apply list appends or removals (its caps say so); nothing was written"));
    }
    Ok(())
}

/// The contract every store implements. Futures are `Send` natively and not in
/// WebAssembly, where stores hold JavaScript values.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Store: MaybeSendSync {
    /// One entry per key, in order; expired values read as `None`.
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError>;
    /// Checks every expectation, then applies every write, or none.
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError>;
    /// [`commit`](Store::commit), also answering the version every put of the commit
    /// now holds, for a store that writes one version per commit (`None`: it does not
    /// say). A manager remembers such puts, so a refresh of a session it wrote can
    /// skip its read ([`recent`]). A store answers a version for every commit or for none.
    /// It borrows the operations: the manager keeps them to remember the puts.
    async fn commit_versioned(&self, ops: &[WriteOp]) -> Result<(CommitResult, Option<u64>), StoreError> {
        Ok((self.commit(ops.to_vec()).await?, None))
    }
    fn caps(&self) -> Caps;
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<T: Store + ?Sized> Store for std::sync::Arc<T> {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        (**self).get(keys).await
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        (**self).commit(ops).await
    }
    async fn commit_versioned(&self, ops: &[WriteOp]) -> Result<(CommitResult, Option<u64>), StoreError> {
        (**self).commit_versioned(ops).await
    }
    fn caps(&self) -> Caps {
        (**self).caps()
    }
}

/// Runs an operation to its end against a store and a crypto driver.
///
/// Conflicts go back to the operation, which starts again within its attempt
/// budget. After its first conflict an operation waits for its user's retry
/// gate ([`platform::retry_gate`]), so this process's colliding writers retry
/// one at a time; further conflicts (writers in other processes) add a short
/// jittered pause.
pub async fn drive<O, S, C>(op: O, store: &S, crypto: &C) -> Result<O::Output, Error>
where
    O: Operation,
    S: Store + ?Sized,
    C: CryptoDriver + ?Sized,
{
    let mut conflicts = 0;
    drive_counting(op, store, crypto, &mut conflicts).await
}

/// [`drive`], also counting the conflicts that were retried (for metrics).
pub async fn drive_counting<O, S, C>(op: O, store: &S, crypto: &C, conflicts: &mut u32) -> Result<O::Output, Error>
where
    O: Operation,
    S: Store + ?Sized,
    C: CryptoDriver + ?Sized,
{
    let mut counts = DriveCounts::default();
    let result = drive_recalling(op, store, crypto, &mut counts, None).await;
    *conflicts += counts.conflicts;
    result
}

/// What driving one operation met, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriveCounts {
    /// Conflicts retried (lost races; a stale memory is not one).
    pub conflicts: u32,
    /// Commits made on a remembered view that went through.
    pub from_memory: u32,
    /// Commits made on a remembered view that conflicted: the memory was stale.
    pub memory_stale: u32,
}

/// [`drive_counting`] with the manager's memory of its recent commits: a
/// [`StoreCmd::Recall`] is answered from it once per operation when it holds the
/// first key; commits and recall reads keep it current.
pub async fn drive_recalling<O, S, C>(
    mut op: O,
    store: &S,
    crypto: &C,
    counts: &mut DriveCounts,
    recent: Option<&recent::RecentValues>,
) -> Result<O::Output, Error>
where
    O: Operation,
    S: Store + ?Sized,
    C: CryptoDriver + ?Sized,
{
    let recent = recent.filter(|r| r.in_use());
    let mut gate: Option<platform::RetryGate> = None;
    // Answered from memory already (once per operation), and whether the operation's
    // view still rests on that answer: its conflict is then a stale memory, not a race.
    let (mut recalled, mut on_memory) = (false, false);
    loop {
        let reply = match op.poll() {
            Step::Done(result) => return result,
            Step::Store(StoreCmd::Get { keys }) => {
                on_memory = false;
                Reply::Store(StoreReply::Values(store.get(keys).await?))
            }
            Step::Store(StoreCmd::Recall { keys }) => {
                let memory = recent.filter(|r| !recalled && r.answers()).and_then(|r| r.recall(&keys));
                on_memory = memory.is_some();
                recalled |= on_memory;
                match memory {
                    Some(values) => Reply::Store(StoreReply::Remembered(values)),
                    None => {
                        let values = store.get(keys.clone()).await?;
                        if let Some(recent) = recent {
                            recent.remember_read(&keys, &values);
                        }
                        Reply::Store(StoreReply::Values(values))
                    }
                }
            }
            Step::Store(StoreCmd::Commit { ops }) => {
                let tag = ops.first().map(|op| crate::engine::record::hash_tag(op.key()).to_owned()).unwrap_or_default();
                let appends = ops.iter().any(WriteOp::is_append);
                // Whether this commit rests on a remembered view.
                let remembered_view = std::mem::take(&mut on_memory);
                let result = match recent {
                    Some(recent) => {
                        let (result, version) = store.commit_versioned(&ops).await?;
                        match result {
                            CommitResult::Committed => recent.remember_commit(&ops, version),
                            CommitResult::Conflict => recent.forget(&ops),
                        }
                        result
                    }
                    None => store.commit(ops).await?,
                };
                match result {
                    CommitResult::Committed => {
                        counts.from_memory += u32::from(remembered_view);
                        Reply::Store(StoreReply::Committed)
                    }
                    // A refused append is the store saying "read first" (the index is full), not a lost race.
                    CommitResult::Conflict if appends => Reply::Store(StoreReply::Conflict),
                    // A conflict on a remembered view is that memory gone stale: read, without waiting.
                    CommitResult::Conflict if remembered_view => {
                        counts.memory_stale += 1;
                        Reply::Store(StoreReply::Conflict)
                    }
                    CommitResult::Conflict => {
                        counts.conflicts += 1;
                        let attempt = counts.conflicts;
                        tracing::debug!(target: "tollgate::security", event = "conflict_retried", attempt, "commit conflicted; retrying");
                        if gate.is_none() {
                            // Queue behind this process's other retries on the same user.
                            gate = Some(platform::retry_gate(&tag).await);
                        } else {
                            // Still conflicting while holding the gate: another process writes too.
                            platform::backoff(attempt).await;
                        }
                        Reply::Store(StoreReply::Conflict)
                    }
                }
            }
            Step::Crypto(CryptoCmd::Sign { alg, kid, message }) => Reply::Signature(crypto.sign(alg, &kid, &message).await?),
            Step::Crypto(CryptoCmd::VerifySignature { alg, kid, message, signature }) => {
                Reply::Verified(crypto.verify(alg, &kid, &message, &signature).await?)
            }
        };
        op.handle(reply);
    }
}
