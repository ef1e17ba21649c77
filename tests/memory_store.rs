#![cfg(not(target_arch = "wasm32"))] // tokio runtime tests; the wasm32 tests are tests/wasm.rs
//! The conformance suite and the memory store's own checks.

mod conformance;

use std::sync::Arc;

use bytes::Bytes;
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::{ManualClock, MemoryStore, Store};

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
