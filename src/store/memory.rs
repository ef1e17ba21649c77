//! The embedded in-memory store: atomic, consistent, safe under many threads.
//!
//! Keys are spread over shards by their hash tag (`{...}`), so every key of one
//! user lands in one shard and a commit locks exactly one mutex. Expired entries
//! are invisible at once (each read compares with the clock) and reclaimed by an
//! amortized sweep of the shard being written, and natively, when asked, by a
//! background task.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{Caps, CommitResult, Store, StoreError};
use crate::engine::record::hash_tag;
use crate::engine::step::{Versioned, WriteOp};
use crate::platform::{Clock, SystemClock};

const SHARDS: usize = 64;

struct Entry {
    value: Bytes,
    version: u64,
    expires_at: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    writes_since_sweep: usize,
}

impl Shard {
    /// Drops expired entries once the writes since the last sweep reach half the
    /// shard's size: each write pays O(1) amortized.
    fn maybe_sweep(&mut self, now: u64) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= (self.map.len() / 2).max(64) {
            self.sweep(now);
        }
    }
    fn sweep(&mut self, now: u64) -> usize {
        self.writes_since_sweep = 0;
        let before = self.map.len();
        self.map.retain(|_, e| e.expires_at > now);
        before - self.map.len()
    }
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    next_version: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// The in-memory store. Cloning shares the same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("entries", &self.len()).finish()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A store that reads time from `clock` (share it with the manager in tests).
    // In wasm32 nothing is Send or Sync (one thread); natively `Clock` requires both.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        MemoryStore { inner: Arc::new(Inner { shards, next_version: AtomicU64::new(1), clock }) }
    }

    fn shard_of(key: &str) -> usize {
        let mut h = FxHasher::default();
        h.write(hash_tag(key).as_bytes());
        (h.finish() as usize) % SHARDS
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave an entry half-written (each
        // write is one map operation), so a poisoned lock is still consistent.
        self.inner.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads one key now: the synchronous path under [`Store::get`].
    pub fn get_one(&self, key: &str) -> Option<Versioned> {
        let now = self.inner.clock.now_ms();
        let shard = self.lock(Self::shard_of(key));
        shard.map.get(key).filter(|e| e.expires_at > now).map(|e| Versioned { value: e.value.clone(), version: e.version })
    }

    /// Reads keys now, one entry per key.
    pub fn get_many(&self, keys: &[String]) -> Vec<Option<Versioned>> {
        keys.iter().map(|k| self.get_one(k)).collect()
    }

    /// Applies a commit now: the synchronous path under [`Store::commit`].
    pub fn commit_now(&self, ops: &[WriteOp]) -> CommitResult {
        let now = self.inner.clock.now_ms();
        let mut shard_ids: Vec<usize> = ops.iter().map(|op| Self::shard_of(op.key())).collect();
        let op_shards = shard_ids.clone();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        // Lock in index order: two commits over the same shards cannot deadlock.
        let mut guards: Vec<(usize, MutexGuard<'_, Shard>)> = shard_ids.iter().map(|&i| (i, self.lock(i))).collect();
        let slot = |i: usize| shard_ids.binary_search(&i).unwrap_or(0);

        for (op, &s) in ops.iter().zip(&op_shards) {
            let current = guards[slot(s)].1.map.get(op.key()).filter(|e| e.expires_at > now).map(|e| e.version);
            if !op.expect().admits(current) {
                return CommitResult::Conflict;
            }
        }
        for (op, &s) in ops.iter().zip(&op_shards) {
            let shard = &mut guards[slot(s)].1;
            match op {
                WriteOp::Put { key, value, expires_at, .. } if *expires_at > now => {
                    let version = self.inner.next_version.fetch_add(1, Ordering::Relaxed);
                    shard.map.insert(key.as_str().into(), Entry { value: value.clone(), version, expires_at: *expires_at });
                }
                // A put that is already expired is a delete.
                WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => {
                    shard.map.remove(key.as_str());
                }
            }
            shard.maybe_sweep(now);
        }
        CommitResult::Committed
    }

    /// Removes every expired entry now; answers how many were removed.
    pub fn sweep(&self) -> usize {
        let now = self.inner.clock.now_ms();
        (0..SHARDS).map(|i| self.lock(i).sweep(now)).sum()
    }

    /// Entries held, expired or not (expired ones wait for a sweep).
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key and value, for tests that check nothing changed.
    pub fn snapshot(&self) -> Vec<(String, Bytes)> {
        let now = self.inner.clock.now_ms();
        let mut all: Vec<(String, Bytes)> = (0..SHARDS)
            .flat_map(|i| {
                self.lock(i)
                    .map
                    .iter()
                    .filter(|(_, e)| e.expires_at > now)
                    .map(|(k, e)| (k.to_string(), e.value.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all
    }

    /// Starts a background task that sweeps every `interval_ms`; zero or negative
    /// starts none. The task ends by itself when the last clone of the store is dropped.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn spawn_sweeper(&self, interval_ms: i64) -> Option<tokio::task::JoinHandle<()>> {
        if interval_ms <= 0 {
            return None;
        }
        let weak = Arc::downgrade(&self.inner);
        let period = std::time::Duration::from_millis(interval_ms as u64);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let removed = MemoryStore { inner }.sweep();
                tracing::trace!(removed, "memory store swept");
            }
        }))
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl Store for MemoryStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        Ok(self.get_many(&keys))
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        Ok(self.commit_now(&ops))
    }
    fn caps(&self) -> Caps {
        Caps { atomic: true, consistent: true, min_ttl_ms: 0 }
    }
}

/// A multiply-rotate hash, only for picking a shard: crafted user ids could at
/// worst crowd one shard's lock, while each shard's map keeps std's randomly
/// keyed SipHash so they cannot force collisions inside it.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
