#![cfg(not(target_arch = "wasm32"))] // tokio runtime tests; the wasm32 tests are tests/wasm.rs
//! The conformance suite and the memory store's own checks.

mod conformance;

use std::sync::Arc;

use bytes::Bytes;
use tollgate::conformance::{Outcome, NEEDS_ATOMIC};
use tollgate::engine::step::{Expect, Versioned, WriteOp};
use tollgate::store::CommitResult;
use tollgate::{Caps, ManualClock, MemoryStore, Store, StoreError};

#[derive(Default)]
struct Memory;

impl conformance::Factory for Memory {
    const LABEL: &'static str = "memory";
    async fn make(&self, clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
        // A clone shares the data: the second client of an embedded store.
        let store = MemoryStore::with_clock(clock);
        (Arc::new(store.clone()), Arc::new(store))
    }
}

conformance_suite!(Memory);

fn put(key: &str, expires_at: u64) -> WriteOp {
    WriteOp::Put { key: key.into(), value: Bytes::from_static(b"v"), expect: Expect::Any, expires_at }
}

#[test]
fn expired_entries_vanish_at_once_and_are_swept() {
    let clock = Arc::new(ManualClock::new(1_000));
    let store = MemoryStore::with_clock(clock.clone());
    store.commit_now(&[put("i:{u:a}", 2_000), put("i:{u:b}", 5_000)]);
    assert!(store.get_one("i:{u:a}").is_some());
    clock.set(2_000);
    assert!(store.get_one("i:{u:a}").is_none(), "invisible the moment it expires");
    assert!(store.get_one("i:{u:b}").is_some());
    assert_eq!(store.len(), 2, "still held until a sweep");
    assert_eq!(store.sweep(), 1);
    assert_eq!(store.len(), 1);
}

#[test]
fn writes_sweep_their_shard_amortized() {
    let clock = Arc::new(ManualClock::new(1_000));
    let store = MemoryStore::with_clock(clock.clone());
    // One user's keys share a shard; write many short-lived ones, then keep writing.
    for i in 0..1000 {
        store.commit_now(&[put(&format!("s:{{u:same}}:{i}"), 1_500)]);
    }
    clock.set(2_000);
    for i in 0..200 {
        store.commit_now(&[put(&format!("s:{{u:same}}:new{i}"), 10_000)]);
    }
    assert!(store.len() < 400, "expired entries were reclaimed by writes: {} left", store.len());
}

#[test]
fn a_commit_across_users_is_all_or_nothing() {
    // Keys of 16 users spread over several shards: the commit takes the locking path
    // for many shards (one user's keys take the one-shard path).
    let store = MemoryStore::with_clock(Arc::new(ManualClock::new(1_000)));
    let keys: Vec<String> = (0..16).map(|u| format!("s:{{u:user{u}}}:sid")).collect();
    let put_all = |expect: Expect| -> Vec<WriteOp> {
        keys.iter().map(|k| WriteOp::Put { key: k.clone(), value: Bytes::from_static(b"v"), expect, expires_at: 9_000 }).collect()
    };
    assert_eq!(store.commit_now(&put_all(Expect::Absent)), CommitResult::Committed);
    let first: Vec<u64> = keys.iter().map(|k| store.get_one(k).expect("written").version).collect();
    // One stale expectation at the end refuses the whole commit, whatever shard it is in.
    let mut ops = put_all(Expect::Any);
    ops[15] =
        WriteOp::Put { key: keys[15].clone(), value: Bytes::from_static(b"w"), expect: Expect::Version(first[15] + 99), expires_at: 9_000 };
    assert_eq!(store.commit_now(&ops), CommitResult::Conflict);
    let after: Vec<u64> = keys.iter().map(|k| store.get_one(k).expect("still there").version).collect();
    assert_eq!(after, first, "a refused commit changed nothing");
    // Expecting each current version, every key moves on.
    let ops: Vec<WriteOp> = keys
        .iter()
        .zip(&first)
        .map(|(k, v)| WriteOp::Put { key: k.clone(), value: Bytes::from_static(b"w"), expect: Expect::Version(*v), expires_at: 9_000 })
        .collect();
    assert_eq!(store.commit_now(&ops), CommitResult::Committed);
    for (k, v) in keys.iter().zip(&first) {
        let now = store.get_one(k).expect("rewritten");
        assert_eq!((&now.value[..], now.version > *v), (&b"w"[..], true), "{k}");
    }
    assert_eq!(store.len(), 16, "a rewrite in place adds no entry");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn background_sweeper_runs_and_stops() {
    let clock = Arc::new(ManualClock::new(1_000));
    let store = MemoryStore::with_clock(clock.clone());
    assert!(store.spawn_sweeper(0).is_none(), "zero disables it");
    assert!(store.spawn_sweeper(-5).is_none(), "negative disables it");
    let handle = store.spawn_sweeper(1_000).expect("a positive interval starts it");
    store.commit_now(&[put("i:{u:a}", 1_500)]);
    clock.set(2_000);
    // Paused tokio time: advancing is instant, no real sleeping.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(store.len(), 0);
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert!(handle.is_finished(), "the sweeper ends when the store is dropped");
}

#[test]
fn hash_tags_pick_the_cluster_slot_part() {
    use tollgate::engine::record::hash_tag;
    assert_eq!(hash_tag("s:{u:alice}:sid"), "u:alice");
    assert_eq!(hash_tag("i:{u:alice}"), "u:alice");
    assert_eq!(hash_tag("plain"), "plain");
    assert_eq!(hash_tag("a{}b"), "a{}b");
}

/// A memory store with one flaw, to show that the suite notices it.
struct Flawed {
    inner: MemoryStore,
    flaw: Flaw,
    /// A read that has its values and waits for a partner (`IgnoresExpectations`).
    waiting: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// How long a read of `IgnoresExpectations` waits for a partner: long enough that
/// racing operations on a loaded machine always pair up, short for a read alone.
const PARTNER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    /// Commits every write, whatever it expected. Each read, once it has its values,
    /// waits for another read to arrive (or for [`PARTNER_WAIT`]), so two racing
    /// operations always read the same state before either writes: overlap by
    /// construction, not by the scheduler's luck.
    IgnoresExpectations,
    /// Keeps a value written with an expiry already past, for a day.
    KeepsExpired,
    /// Works, but says it cannot commit atomically.
    ClaimsNotAtomic,
    /// Appends to a list whatever it holds: the bound of `WriteOp::Append` ignored.
    AppendsPastTheBound,
    /// Takes a `WriteOp::Remove` and removes nothing.
    RemovesNothing,
}

#[async_trait::async_trait]
impl Store for Flawed {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        let values = self.inner.get(keys).await;
        if self.flaw == Flaw::IgnoresExpectations {
            let partner = {
                let mut waiting = self.waiting.lock().unwrap();
                match waiting.take() {
                    // Both reads hold their values: release the partner and go on.
                    Some(partner) => {
                        let _ = partner.send(());
                        None
                    }
                    None => {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        *waiting = Some(tx);
                        Some(rx)
                    }
                }
            };
            if let Some(rx) = partner {
                if tokio::time::timeout(PARTNER_WAIT, rx).await.is_err() {
                    // Alone: stop waiting, and let the next read wait in its turn.
                    self.waiting.lock().unwrap().take();
                }
            }
        }
        values
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        let ops = ops.into_iter().map(|op| match (self.flaw, op) {
            (Flaw::IgnoresExpectations, WriteOp::Put { key, value, expires_at, .. }) => {
                WriteOp::Put { key, value, expect: Expect::Any, expires_at }
            }
            (Flaw::IgnoresExpectations, WriteOp::Delete { key, .. }) => WriteOp::Delete { key, expect: Expect::Any },
            (Flaw::KeepsExpired, WriteOp::Put { key, value, expect, expires_at }) if expires_at <= conformance::real_now() => {
                WriteOp::Put { key, value, expect, expires_at: conformance::real_now() + 86_400_000 }
            }
            (Flaw::AppendsPastTheBound, WriteOp::Append { key, entry, expires_at, .. }) => {
                WriteOp::Append { key, entry, max_entries: u32::MAX, expires_at }
            }
            (Flaw::RemovesNothing, WriteOp::Remove { key, .. }) => WriteOp::Remove { key, sid: "not-a-listed-sid".into() },
            (_, op) => op,
        });
        self.inner.commit(ops.collect()).await
    }
    fn caps(&self) -> Caps {
        Caps { atomic: self.flaw != Flaw::ClaimsNotAtomic, ..self.inner.caps() }
    }
}

async fn outcomes_with(flaw: Flaw) -> Vec<(&'static str, Outcome)> {
    conformance::outcomes(|clock| Arc::new(Flawed { inner: MemoryStore::with_clock(clock), flaw, waiting: Default::default() })).await
}

fn failed(outcomes: &[(&'static str, Outcome)]) -> Vec<&'static str> {
    outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).map(|(name, _)| *name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_store_that_ignores_expectations() {
    let outcomes = outcomes_with(Flaw::IgnoresExpectations).await;
    let failed = failed(&outcomes);
    for name in ["store_expectations", "store_commit_is_all_or_nothing", "racing_refreshes", "racing_issues_respect_limit"] {
        assert!(failed.contains(&name), "{name} passed on a store that ignores expectations; failed: {failed:?}");
    }
    let Some((_, Outcome::Failed(f))) = outcomes.iter().find(|(n, _)| *n == "store_expectations") else { unreachable!() };
    assert_eq!(f.check(), "put expecting absent on a present key: Committed, expected Conflict", "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_store_that_keeps_expired_values() {
    let failed = failed(&outcomes_with(Flaw::KeepsExpired).await);
    assert_eq!(failed, ["store_past_expiry_is_invisible"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_store_that_appends_past_the_bound() {
    let failed = failed(&outcomes_with(Flaw::AppendsPastTheBound).await);
    // The one-trip sign-in trusts the store's refusal: the limits fail with it.
    for name in ["store_appends", "limit_evicts_oldest", "single_session_mode", "limit_refuses"] {
        assert!(failed.contains(&name), "{name} passed on a store that appends past the bound; failed: {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_fails_a_store_that_removes_nothing() {
    let failed = failed(&outcomes_with(Flaw::RemovesNothing).await);
    // The one-trip revoke trusts the store's removal: a revoked session stays listed, and
    // counts against the limit.
    for name in ["store_removes", "limit_refuses"] {
        assert!(failed.contains(&name), "{name} passed on a store that removes nothing; failed: {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_skips_what_caps_rule_out_and_says_why() {
    let outcomes = outcomes_with(Flaw::ClaimsNotAtomic).await;
    let skipped: Vec<&str> = outcomes.iter().filter(|(_, o)| *o == Outcome::Skipped(NEEDS_ATOMIC)).map(|(n, _)| *n).collect();
    assert_eq!(skipped, ["racing_refreshes", "racing_issues_respect_limit", "revoke_racing_refresh"]);
    assert!(outcomes.iter().all(|(_, o)| matches!(o, Outcome::Passed | Outcome::Skipped(_))), "{outcomes:?}");
}
