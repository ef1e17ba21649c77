//! What a manager committed lately, so a refresh can start from the record it
//! wrote instead of reading it back ([`StoreCmd::Recall`](crate::engine::step::StoreCmd::Recall)).
//!
//! A refresh on a networked store (Redis) is a read and a commit: two round trips.
//! When this manager wrote the record itself (it issued the session or rotated it
//! last), it knows the value and, for a store that answers each commit's version
//! ([`Store::commit_versioned`](super::Store::commit_versioned)), the version too:
//! the refresh then rotates from memory in one commit that expects that version and
//! the revocation markers' absence. A memory gone stale (another process wrote
//! since) fails that commit, and the refresh reads as usual; a client that rotated
//! through another process presents a newer secret than the remembered record's,
//! and the refresh reads without trying the commit at all. Correctness rests on the
//! store's expectations, never on this memory being current.
//!
//! Bounded: at most `recent_writes` keys (16,384 by default: a few megabytes of
//! records), the oldest remembered first out. It holds
//! records as stored (hashes of secrets, never a secret), and `Debug` shows only counts.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::engine::record::hash_tag;
use crate::engine::step::{Versioned, WriteOp};

const SHARDS: usize = 16;

/// Whether the store answers commit versions: learned from its first commit.
const UNKNOWN: u8 = 0;
const VERSIONED: u8 = 1;
const UNVERSIONED: u8 = 2;

#[derive(Default)]
struct Shard {
    values: HashMap<String, Versioned>,
    /// Keys in the order they were first remembered; may hold keys forgotten since.
    order: VecDeque<String>,
}

/// The values and versions of the keys a manager committed lately (see the module docs).
pub struct RecentValues {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    store_versions: AtomicU8,
}

impl std::fmt::Debug for RecentValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentValues").field("capacity", &(self.per_shard * SHARDS)).field("keys", &self.len()).finish()
    }
}

impl RecentValues {
    /// Remembers at most about `capacity` keys (rounded up to a multiple of 16).
    pub fn new(capacity: usize) -> Self {
        RecentValues {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: std::collections::hash_map::RandomState::new(),
            store_versions: AtomicU8::new(UNKNOWN),
        }
    }

    /// Whether it is worth asking: false once the store showed it answers no versions
    /// (then nothing is remembered and commits are not copied).
    pub fn in_use(&self) -> bool {
        self.store_versions.load(Ordering::Relaxed) != UNVERSIONED
    }

    /// Whether a recalling operation may be answered from memory (the store answered a version).
    pub fn answers(&self) -> bool {
        self.store_versions.load(Ordering::Relaxed) == VERSIONED
    }

    /// How many keys are remembered now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).values.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let mut h = self.hasher.build_hasher();
        h.write(hash_tag(key).as_bytes());
        lock(&self.shards[(h.finish() % SHARDS as u64) as usize])
    }

    /// The remembered entries of `keys` (`None` where nothing is), when the first
    /// key's value is remembered; otherwise nothing (the caller reads the store).
    /// One operation's keys share a hash tag, so one lock answers them all.
    pub fn recall(&self, keys: &[String]) -> Option<Vec<Option<Versioned>>> {
        let shard = self.shard(keys.first()?);
        let values: Vec<_> = keys.iter().map(|k| shard.values.get(k.as_str()).cloned()).collect();
        values[0].is_some().then_some(values)
    }

    /// What a read answered for `keys`: present values are remembered, absent ones forgotten.
    pub fn remember_read(&self, keys: &[String], values: &[Option<Versioned>]) {
        for (key, value) in keys.iter().zip(values) {
            match value {
                Some(v) => self.put(key, v.clone()),
                None => self.forget_key(key),
            }
        }
    }

    /// A commit went through: with the store's `version`, its puts are remembered at
    /// that version; without one (or for deletes and appends, whose result is not
    /// known here) the keys are forgotten.
    pub fn remember_commit(&self, ops: &[WriteOp], version: Option<u64>) {
        self.learn(version.is_some());
        for op in ops {
            match (op, version) {
                (WriteOp::Put { key, value, .. }, Some(version)) => self.put(key, Versioned { value: value.clone(), version }),
                _ => self.forget_key(op.key()),
            }
        }
    }

    /// A commit conflicted: what it expected is not what the store holds.
    pub fn forget(&self, ops: &[WriteOp]) {
        for op in ops {
            self.forget_key(op.key());
        }
    }

    /// A store answers versions for every commit or for none: its first commit settles it.
    fn learn(&self, versioned: bool) {
        if self.store_versions.load(Ordering::Relaxed) == UNKNOWN {
            self.store_versions.store(if versioned { VERSIONED } else { UNVERSIONED }, Ordering::Relaxed);
        }
    }

    fn put(&self, key: &str, value: Versioned) {
        let mut shard = self.shard(key);
        if let Some(slot) = shard.values.get_mut(key) {
            *slot = value;
            return;
        }
        if shard.order.len() >= self.per_shard {
            if let Some(oldest) = shard.order.pop_front() {
                shard.values.remove(&oldest);
            }
        }
        shard.order.push_back(key.to_owned());
        shard.values.insert(key.to_owned(), value);
    }

    fn forget_key(&self, key: &str) {
        self.shard(key).values.remove(key);
    }
}

/// A panic elsewhere while holding a shard leaves at worst a missing entry: still consistent.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::Expect;
    use bytes::Bytes;

    fn put(key: &str, value: &'static [u8]) -> WriteOp {
        WriteOp::Put { key: key.to_owned(), value: Bytes::from_static(value), expect: Expect::Any, expires_at: u64::MAX }
    }

    #[test]
    fn remembers_versioned_puts_and_forgets_what_it_cannot_know() {
        let recent = RecentValues::new(64);
        assert!(recent.in_use() && !recent.answers(), "nothing learned yet");
        let keys = vec!["s:{u:a}:1".to_owned(), "r:{u:a}:all".to_owned()];
        assert_eq!(recent.recall(&keys), None);
        recent.remember_commit(&[put(&keys[0], b"rec"), WriteOp::Delete { key: keys[1].clone(), expect: Expect::Absent }], Some(7));
        assert!(recent.answers());
        assert_eq!(recent.recall(&keys), Some(vec![Some(Versioned { value: Bytes::from_static(b"rec"), version: 7 }), None]));
        // A read is remembered too; only the first key decides whether memory answers.
        recent.remember_read(&keys[1..], &[Some(Versioned { value: Bytes::from_static(b"m"), version: 3 })]);
        assert_eq!(recent.recall(&keys).unwrap()[1].as_ref().map(|v| v.version), Some(3));
        assert_eq!(recent.recall(&["s:{u:a}:2".to_owned(), keys[1].clone()]), None);
        recent.forget(&[put(&keys[0], b"x")]);
        assert_eq!(recent.recall(&keys), None, "a conflicted commit's keys are forgotten");
        // A store whose first commit answers no version: nothing is remembered, nor asked again.
        let unversioned = RecentValues::new(64);
        unversioned.remember_commit(&[put(&keys[0], b"rec")], None);
        assert_eq!(unversioned.recall(&keys), None);
        assert!(!unversioned.in_use() && !unversioned.answers());
    }

    #[test]
    fn holds_at_most_its_capacity_oldest_out_first() {
        let recent = RecentValues::new(SHARDS * 2);
        for i in 0..1000 {
            recent.remember_commit(&[put(&format!("s:{{u:{i}}}:x"), b"v")], Some(1));
        }
        assert!(recent.len() <= SHARDS * 2, "{} keys", recent.len());
        assert!(recent.recall(&["s:{u:999}:x".to_owned()]).is_some(), "the newest is kept");
        // Rewriting a key keeps its place and does not grow the memory.
        for _ in 0..100 {
            recent.remember_commit(&[put("s:{u:999}:x", b"w")], Some(2));
        }
        assert!(recent.len() <= SHARDS * 2);
        assert_eq!(recent.recall(&["s:{u:999}:x".to_owned()]).unwrap()[0].as_ref().unwrap().version, 2);
    }

    #[test]
    fn debug_shows_counts_only() {
        let recent = RecentValues::new(16);
        recent.remember_commit(&[put("s:{u:a}:1", b"secret-looking")], Some(1));
        let shown = format!("{recent:?}");
        assert!(!shown.contains("secret") && shown.contains("keys: 1"), "{shown}");
    }
}
