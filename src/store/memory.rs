//! The embedded in-memory store: atomic, consistent, safe under many threads.
//!
//! Keys are spread over shards by their hash tag (`{...}`), so every key of one
//! user lands in one shard and a commit locks exactly one mutex. Expired entries
//! are invisible at once (each read compares with the clock) and reclaimed by an
//! amortized sweep of the shard being written, and natively, when asked, by a
//! background task.
//!
//! Where a get's and a put's time went (callgrind, instructions per call, on
//! the bench's workload: 10,000 session keys, 300-byte values): get 623, put
//! 2,010 with std's SipHash-1-3, a `Vec` per commit and a new key per put;
//! get 420, put 553 now. What changed:
//! - Each shard's map hashes with foldhash under a key of 128 random bits drawn
//!   from the OS for each store ([`KeyedFoldHash`]), not std's SipHash-1-3.
//! - A commit whose keys share one shard (every commit the engine makes: one
//!   user's keys carry one hash tag) locks it and allocates nothing; a put over
//!   a live key updates the entry in place instead of allocating a new key.
//! - `Expect::Any` skips the read before the write; versions come from a counter
//!   inside each shard, under its lock, instead of one atomic shared by all.
//!
//! What is left of a get is mostly memory: its first load of the map's entry
//! misses the cache on a store larger than the cache (most of the samples under
//! `perf`), then the clock read (a `clock_gettime` per call, so expired entries
//! are invisible at once) and the value's reference count.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{Caps, CommitResult, Store, StoreError};
use crate::engine::list;
use crate::engine::record::hash_tag;
use crate::engine::step::{Expect, Versioned, WriteOp};
use crate::platform::{Clock, SystemClock};

const SHARDS: usize = 64;

struct Entry {
    value: Bytes,
    version: u64,
    expires_at: u64,
}

struct Shard {
    map: HashMap<Box<str>, Entry, KeyedFoldHash>,
    writes_since_sweep: usize,
    /// The last version this shard handed out. A key always lands in the same
    /// shard, so its versions only grow, even across a delete and a new put.
    last_version: u64,
}

impl Shard {
    fn new(hasher: KeyedFoldHash) -> Self {
        Shard { map: HashMap::with_hasher(hasher), writes_since_sweep: 0, last_version: 0 }
    }

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
        let seeds = KeyedFoldHash::seeds();
        let shards = (0..SHARDS).map(|i| Mutex::new(Shard::new(KeyedFoldHash::new(&seeds, i)))).collect();
        MemoryStore { inner: Arc::new(Inner { shards, clock }) }
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
        self.get_at(key, self.inner.clock.now_ms())
    }

    /// Reads keys now, one entry per key: all of them at one reading of the clock.
    pub fn get_many(&self, keys: &[String]) -> Vec<Option<Versioned>> {
        let now = self.inner.clock.now_ms();
        keys.iter().map(|k| self.get_at(k, now)).collect()
    }

    fn get_at(&self, key: &str, now: u64) -> Option<Versioned> {
        let shard = self.lock(Self::shard_of(key));
        shard.map.get(key).filter(|e| e.expires_at > now).map(|e| Versioned { value: e.value.clone(), version: e.version })
    }

    /// Applies a commit now: the synchronous path under [`Store::commit`].
    pub fn commit_now(&self, ops: &[WriteOp]) -> CommitResult {
        let now = self.inner.clock.now_ms();
        let Some(first) = ops.first() else { return CommitResult::Committed };
        let first_shard = Self::shard_of(first.key());
        if ops[1..].iter().all(|op| Self::shard_of(op.key()) == first_shard) {
            // One user's keys share a hash tag, hence a shard: one lock, no allocation.
            return Self::apply(ops, now, &mut [self.lock(first_shard)], |_| 0);
        }
        let op_shards: Vec<usize> = ops.iter().map(|op| Self::shard_of(op.key())).collect();
        let mut shard_ids = op_shards.clone();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        // Lock in index order: two commits over the same shards cannot deadlock.
        let mut guards: Vec<MutexGuard<'_, Shard>> = shard_ids.iter().map(|&i| self.lock(i)).collect();
        Self::apply(ops, now, &mut guards, |k| shard_ids.binary_search(&op_shards[k]).unwrap_or(0))
    }

    /// Checks every expectation, then writes every op; `slot(k)` is the index in
    /// `guards` of the shard holding `ops[k]`.
    fn apply(ops: &[WriteOp], now: u64, guards: &mut [MutexGuard<'_, Shard>], slot: impl Fn(usize) -> usize) -> CommitResult {
        for (k, op) in ops.iter().enumerate() {
            if let WriteOp::Append { key, max_entries, .. } = op {
                // Room for one more entry in a counted list (or no value at all).
                let live = guards[slot(k)].map.get(key.as_str()).filter(|e| e.expires_at > now);
                let room = match live {
                    None => *max_entries >= 1,
                    Some(e) => list::header(&e.value).is_some_and(|(count, _)| count < *max_entries),
                };
                if !room {
                    return CommitResult::Conflict;
                }
                continue;
            }
            if let WriteOp::Remove { key, .. } = op {
                // A counted list, or nothing at all.
                let live = guards[slot(k)].map.get(key.as_str()).filter(|e| e.expires_at > now);
                if live.is_some_and(|e| list::header(&e.value).is_none()) {
                    return CommitResult::Conflict;
                }
                continue;
            }
            let expect = op.expect();
            if expect == Expect::Any {
                continue;
            }
            let current = guards[slot(k)].map.get(op.key()).filter(|e| e.expires_at > now).map(|e| e.version);
            if !expect.admits(current) {
                return CommitResult::Conflict;
            }
        }
        for (k, op) in ops.iter().enumerate() {
            let shard = &mut *guards[slot(k)];
            match op {
                WriteOp::Put { key, value, expires_at, .. } if *expires_at > now => {
                    shard.last_version += 1;
                    let entry = Entry { value: value.clone(), version: shard.last_version, expires_at: *expires_at };
                    match shard.map.get_mut(key.as_str()) {
                        Some(live) => *live = entry,
                        None => {
                            shard.map.insert(key.as_str().into(), entry);
                        }
                    }
                }
                // A put that is already expired is a delete.
                WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => {
                    shard.map.remove(key.as_str());
                }
                WriteOp::Append { key, entry, max_entries, expires_at } => {
                    let live = shard.map.get(key.as_str()).filter(|e| e.expires_at > now);
                    // Checked above under the same lock; an earlier op of this commit may have changed the key.
                    let Some((value, expiry)) = list::append(live.map(|e| &e.value[..]), entry, *max_entries, *expires_at) else {
                        continue;
                    };
                    shard.last_version += 1;
                    let entry = Entry { value: Bytes::from(value), version: shard.last_version, expires_at: expiry };
                    if expiry <= now {
                        shard.map.remove(key.as_str());
                    } else {
                        shard.map.insert(key.as_str().into(), entry);
                    }
                }
                WriteOp::Remove { key, sid } => {
                    let Some(live) = shard.map.get_mut(key.as_str()).filter(|e| e.expires_at > now) else { continue };
                    // Checked above under the same lock; an earlier op of this commit may have changed the key.
                    match list::remove(&live.value, sid.as_bytes()) {
                        Some(Some(rest)) => {
                            shard.last_version += 1;
                            live.value = Bytes::from(rest);
                            live.version = shard.last_version;
                        }
                        Some(None) => {
                            shard.map.remove(key.as_str());
                        }
                        None => {}
                    }
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
        Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: true }
    }
}

/// The hasher of each shard's map: foldhash (its fast variant) under a secret key.
///
/// Keys carry user ids, which come from users, so a map must resist collision
/// floods. SipHash-1-3 (std's default) does by design; foldhash resists them
/// while its key stays secret: every step folds secret words into the input, so
/// no set of keys collides under every key (foldhash's "HashDoS resistance").
/// Its own seeding is too weak to rely on (address layout and the time), so the
/// store draws the key itself: 128 bits from the OS random generator per store
/// (64 for the seed shared by its maps, 64 spread over the 64 maps), the same
/// source as the engine's entropy. Nothing the store answers depends on the
/// hash (no iteration order leaves it: `snapshot` sorts), so a client cannot
/// learn the key from replies; it could only guess blindly.
#[derive(Clone)]
struct KeyedFoldHash {
    per_map: u64,
    shared: foldhash::SharedSeed,
}

impl KeyedFoldHash {
    /// 128 random bits: the shared seed and the base of the per-map seeds.
    fn seeds() -> [u64; 2] {
        let bytes = match crate::platform::entropy() {
            Ok(e) => e.0,
            // No random source (natively it does not fail; a Worker refuses it in
            // global scope): std's keyed hasher gives what std's maps would have used.
            Err(_) => {
                let words = [1u64, 2].map(|w| std::collections::hash_map::RandomState::new().hash_one(w));
                let mut b = [0u8; 64];
                b[..8].copy_from_slice(&words[0].to_le_bytes());
                b[8..16].copy_from_slice(&words[1].to_le_bytes());
                b
            }
        };
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        [word(0), word(1)]
    }

    fn new(seeds: &[u64; 2], shard: usize) -> Self {
        KeyedFoldHash {
            per_map: seeds[1] ^ (shard as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            shared: foldhash::SharedSeed::from_u64(seeds[0]),
        }
    }
}

impl BuildHasher for KeyedFoldHash {
    type Hasher = foldhash::fast::FoldHasher;
    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FoldHasher::with_seed(self.per_map, &self.shared)
    }
}

/// A multiply-rotate hash, only for picking a shard: crafted user ids could at
/// worst crowd one shard's lock, while each shard's map keeps its secret key
/// so they cannot force collisions inside it.
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
