//! The Workers KV store: fit for stateless verification and low-contention use.
//!
//! What holds, and what does not:
//!
//! - **Not atomic.** KV has no compare-and-swap and no multi-key write. A commit
//!   reads every key it has an expectation on, compares, then writes each key.
//!   Two writers racing between the read and the write can both succeed (the last
//!   write wins), and a failure midway can leave some of a commit's writes
//!   applied. So under concurrency a refresh token may fork into two chains, the
//!   per-user limit may be overshot, and reuse detection can miss a race.
//! - **Not consistent.** A write is usually visible at once in the location that
//!   made it, but other locations may read the old value for up to about 60 s
//!   (KV caches reads at the edge). A revoked session can pass strict
//!   verification elsewhere for that long; a rotated refresh token may be
//!   accepted elsewhere within it. A commit checks its expectations against
//!   those same cached reads, so a refresh or touch made from a stale view
//!   writes the live record over a tombstone; the engine keeps revocations in
//!   markers no such write touches ([`crate::engine::record::revoked_key`],
//!   [`crate::engine::record::revoked_all_key`]) and checks them on refresh and
//!   strict verify, so revocation holds once the markers reach every location.
//! - **One write per second per key.** The user index is written on every create
//!   and revoke; bursts for one user may be rate-limited by KV (answered as
//!   `store_unavailable`).
//! - **TTL at least 60 s.** KV refuses expirations closer than 60 s; they are
//!   rounded up. Nothing depends on it: each value's own expiry is kept in its
//!   metadata and a value read after it reads as absent, and the core decides
//!   validity from the times written in each record anyway.
//!
//! Choose the Durable Object store for strict rotation, reuse detection,
//! immediate revocation and exact per-user limits.
//!
//! Each entry is the value's bytes under `tollgate/<key>`, with metadata
//! `{"v": version, "e": expires_at_ms}`. Versions are random 53-bit numbers
//! (JavaScript-safe), so a rewrite of the same bytes still changes the version.

use serde::{Deserialize, Serialize};

/// Workers KV refuses expirations less than 60 s away.
pub const MIN_TTL_MS: u64 = 60_000;

/// Prefix of every key tollgate writes, so the namespace may hold other data.
pub const KEY_PREFIX: &str = "tollgate/";

/// Kept in each entry's KV metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Version, for expectations.
    pub v: u64,
    /// Expiry in unix ms; the entry reads as absent from then on, whatever KV does.
    pub e: u64,
}

/// The `expirationTtl` (whole seconds, at least 60) for a value that expires at `expires_at`.
pub fn expiration_ttl_secs(expires_at: u64, now: u64) -> u64 {
    expires_at.saturating_sub(now).div_ceil(1000).max(MIN_TTL_MS / 1000)
}

/// A random version in 1 ..= 2^53 - 1, from 8 random bytes.
pub fn version_from(random: [u8; 8]) -> u64 {
    (u64::from_le_bytes(random) & ((1 << 53) - 1)).max(1)
}

#[cfg(target_arch = "wasm32")]
pub use imp::KvStore;

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::sync::Arc;

    use bytes::Bytes;
    use futures_util::future::join_all;

    use super::{expiration_ttl_secs, version_from, EntryMeta, KEY_PREFIX, MIN_TTL_MS};
    use crate::engine::step::{Expect, Versioned, WriteOp};
    use crate::platform::Clock;
    use crate::store::{Caps, CommitResult, Store, StoreError};

    /// A [`Store`] over a Workers KV namespace. See the module docs for what it guarantees.
    pub struct KvStore {
        kv: worker::kv::KvStore,
        clock: Arc<dyn Clock>,
    }

    fn unavailable(e: worker::kv::KvError) -> StoreError {
        // KV's own message names the failure (rate limit, size); never a value.
        let text: String = e.to_string().chars().take(200).collect();
        StoreError::unavailable(format!("Workers KV: {text}"))
    }

    impl KvStore {
        pub fn new(kv: worker::kv::KvStore, clock: Arc<dyn Clock>) -> Self {
            KvStore { kv, clock }
        }

        async fn read(&self, key: &str) -> Result<Option<(Versioned, u64)>, StoreError> {
            let (value, meta) = self.kv.get(&format!("{KEY_PREFIX}{key}")).bytes_with_metadata::<EntryMeta>().await.map_err(unavailable)?;
            match (value, meta) {
                (None, _) => Ok(None),
                (Some(v), Some(m)) => Ok(Some((Versioned { value: Bytes::from(v), version: m.v }, m.e))),
                (Some(_), None) => Err(StoreError::corrupt("a KV entry under tollgate's prefix has no tollgate metadata")),
            }
        }

        async fn write(&self, op: &WriteOp, now: u64) -> Result<(), StoreError> {
            match op {
                WriteOp::Put { key, value, expires_at, .. } if *expires_at > now => {
                    let mut random = [0u8; 8];
                    getrandom::getrandom(&mut random).map_err(|_| StoreError::unavailable("no randomness for a version"))?;
                    let meta = EntryMeta { v: version_from(random), e: *expires_at };
                    self.kv
                        .put_bytes(&format!("{KEY_PREFIX}{key}"), value)
                        .map_err(unavailable)?
                        .expiration_ttl(expiration_ttl_secs(*expires_at, now))
                        .metadata(meta)
                        .map_err(unavailable)?
                        .execute()
                        .await
                        .map_err(unavailable)
                }
                // A put that is already expired is a delete.
                WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => {
                    self.kv.delete(&format!("{KEY_PREFIX}{key}")).await.map_err(unavailable)
                }
                WriteOp::Append { .. } | WriteOp::Remove { .. } => crate::store::refuse_list_writes(std::slice::from_ref(op)),
            }
        }
    }

    #[async_trait::async_trait(?Send)]
    impl Store for KvStore {
        async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
            let now = self.clock.now_ms();
            join_all(keys.iter().map(|k| self.read(k)))
                .await
                .into_iter()
                .map(|r| r.map(|entry| entry.filter(|(_, e)| *e > now).map(|(v, _)| v)))
                .collect()
        }

        /// Best effort, racy: expectations are checked by reading first (KV has no
        /// compare-and-swap), then every write is issued. See the module docs.
        async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
            crate::store::refuse_list_writes(&ops)?;
            let now = self.clock.now_ms();
            let checked: Vec<&WriteOp> = ops.iter().filter(|op| op.expect() != Expect::Any).collect();
            let current = join_all(checked.iter().map(|op| self.read(op.key()))).await;
            for (op, cur) in checked.iter().zip(current) {
                let version = cur?.filter(|(_, e)| *e > now).map(|(v, _)| v.version);
                if !op.expect().admits(version) {
                    return Ok(CommitResult::Conflict);
                }
            }
            for result in join_all(ops.iter().map(|op| self.write(op, now))).await {
                result?;
            }
            Ok(CommitResult::Committed)
        }

        fn caps(&self) -> Caps {
            Caps { atomic: false, consistent: false, min_ttl_ms: MIN_TTL_MS, lists: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_to_whole_seconds_and_at_least_60() {
        let now = 1_800_000_000_000;
        assert_eq!(expiration_ttl_secs(now + 1, now), 60);
        assert_eq!(expiration_ttl_secs(now + 59_999, now), 60);
        assert_eq!(expiration_ttl_secs(now + 60_001, now), 61);
        assert_eq!(expiration_ttl_secs(now + 30 * 86_400_000, now), 30 * 86_400);
        assert_eq!(expiration_ttl_secs(now - 5, now), 60, "already expired: the caller deletes instead");
    }

    #[test]
    fn versions_are_javascript_safe_and_never_zero() {
        assert_eq!(version_from([0; 8]), 1);
        assert!(version_from([0xff; 8]) < (1 << 53));
    }
}
