//! The Redis store: one server, a Sentinel group, or a Cluster (feature `redis`).
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::Error> {
//! use tollgate::store::redis::{RedisConfig, RedisStore};
//! let store = RedisStore::connect(RedisConfig::from_url("redis://:secret@127.0.0.1:6379/0")?.key_prefix("tg:")).await?;
//! let sentinel = RedisStore::connect(RedisConfig::sentinel(["10.0.0.1:26379", "10.0.0.2:26379"], "mymaster")?).await?;
//! let cluster = RedisStore::connect(RedisConfig::cluster(["10.0.0.1:7000", "10.0.0.2:7000"])?).await?;
//! # Ok(()) }
//! ```
//!
//! Needs Redis 6.2 or later (`SET .. PXAT`, RESP3).
//!
//! # Eviction: run Redis with `maxmemory-policy noeviction`
//!
//! Under any other policy (`volatile-*`, `allkeys-*`) Redis may drop keys when memory runs
//! short, a user's session index among them: revoke-all then misses that user's sessions and
//! the per-user limit undercounts. With `noeviction` a full Redis refuses writes instead
//! (`store_unavailable`), and nothing stored is lost. [`RedisStore::connect`] reads
//! `maxmemory-policy` (on every master of a Cluster) and refuses any other policy with
//! `config_invalid` naming it, unless the configuration says
//! [`EvictionPolicyCheck::Warn`]; a server that forbids `CONFIG GET` (some managed services)
//! is warned about, not refused. A loss is detectable: [`RedisStore::evicted_keys`] reads
//! Redis's `evicted_keys` count for monitoring, and connect logs a warning when it is above 0.
//!
//! # Cost (issue 12)
//!
//! Measured with `scripts/redis.sh cost` (Redis's own `INFO commandstats`, one task;
//! figures and method in `docs/store-format.md`): a commit costs the server 22 to 45 µs
//! per `EVALSHA` on the shared 2-core machine, before and after the compact records
//! alike (within the machine's noise), except a refresh of a long-lived session,
//! whose record is now 308 B instead of 2,227 B (about 29 → 23 µs). The goal of 10 µs
//! is not met: the script makes one `redis.call` per key it writes plus one per
//! version it checks and nothing else, and each costs about as much as the command
//! sent alone, on top of an `EVALSHA` that costs about a `SET`. A session after 70
//! rotations takes 440 B of Redis memory (`MEMORY USAGE`; 2,680 B before; goal 600 B: met).
//!
//! # Client cost per round trip (issue 12)
//!
//! Profiled with one task (`BENCH_TASKS=1 BENCH_OPS=verify` of the `redis_bench` example,
//! `perf record -e cpu-clock -g`, `strace -c -f`; 2026-12-02, shared 2-core machine):
//!
//! - Every sample fell on one tokio worker thread, and each strict verify made exactly one
//!   `writev`, one `recvfrom` and one `epoll_wait`, no `futex`: the multiplexed
//!   connection's driver task and the caller's task take turns on one thread, with no
//!   cross-thread wake-up per request. `current_thread` and `multi_thread` (what
//!   `#[tokio::main]` gives an application) measured alike within the machine's noise.
//! - Of the process's CPU: kernel 55% (`writev` 32%, which on loopback includes
//!   delivering to the server; `epoll_wait` 21%; `recvfrom` 4%), the allocator 9%, the
//!   JWT and record checks (HMAC-SHA256, base64, claims, record MAC) 7%, tokio's
//!   scheduler, IO driver, channels and timers 10%, redis-rs's encoding and reply parsing
//!   6%, clock reads 2%, key formatting 1%, this store and the manager 2%.
//! - In µs, p50 of one task, medians of three runs of the layered rows the bench prints
//!   (each row adds one part): redis-rs alone (`GET` through a `ConnectionManager`) 43.6,
//!   at 0.95x-1.04x of `redis-benchmark -c 1` in the same runs; this store's `MGET` of
//!   one key 46.0 (+2.4: the deadline, the call's classification, the codec); of the
//!   three keys a strict verify reads 51.7 (+5.7: the record and two revocation markers);
//!   the strict verify 59.7 (+8: the token check, the record's MAC and decoding, the
//!   manager's span and metrics). So the client library is not where a verify loses to
//!   `GET`: the two marker keys and the verify's own work are.
//! - Half of that cut is made (`Rules::atomic_store`): on an atomic store (Redis, memory,
//!   SQL, Durable Objects) a revocation writes the tombstone in the same commit that
//!   would have written the session's marker, and no write brings a record back without a
//!   version check, so the per-session marker is no longer written or read there: a
//!   strict verify reads two keys, a revoke writes two (`tests/engine_steps/atomic_store.rs`
//!   runs one scenario under both paths and compares every answer). The revoke-all
//!   marker is still read: skipping it would answer `session_expired` instead of
//!   `session_revoked` for a session that expired before a revoke-all, a rule change.
//!
//! # Format
//!
//! Keys, values, versions and the commit script are described once, for
//! every client, in `docs/store-format.md`, and implemented once in
//! [`codec`], which the npm package's `tollgate/redis-store` runs too: a
//! session written by a Rust service is read, refreshed and revoked by a Node
//! service on the same Redis, and back. In short: keys are
//! `<prefix>s:{u:<user>}:<sid>`, `<prefix>i:{u:<user>}` and
//! `<prefix>c:{u:<user>}` (prefix `tg:` by default), so all keys of one user
//! share a Cluster slot and every read is one `MGET` and every commit one
//! script, on one node, in one round trip; a value is `0xF1`, its version (8
//! bytes, big-endian), then the payload; a value of any other form answers
//! `store_corrupt`. Each commit's version is 64 random bits chosen by the
//! client, so a commit sent again after a lost reply recognises itself and
//! answers committed. Expiry is Redis's own (`SET .. PXAT`).
//!
//! One Lua script (`commit.lua`, run by `EVALSHA`) checks every expectation,
//! then applies every write: all or nothing, and atomic because Redis runs a
//! script alone. When a server does not know the script (`NOSCRIPT`: after a
//! restart, a failover or `SCRIPT FLUSH`) the store sends it whole with `EVAL`,
//! which also caches it again: one more round trip, once per server.
//!
//! # Round trips per operation
//!
//! | operation     | round trips                                                    |
//! |---------------|----------------------------------------------------------------|
//! | strict verify | 1 (`MGET`); plus 1 at most once per touch interval             |
//! | issue         | 1 under the per-user limit (the append); at it, 3 (the refused |
//! |               | append, `MGET` of the index and of the records it may evict,   |
//! |               | one commit)                                                    |
//! | refresh       | 1 when this manager wrote the session last (the commit, on its |
//! |               | memory: [`crate::store::recent`]); else 2 (`MGET` of record    |
//! |               | and revoke-all marker, one commit)                             |
//! | revoke        | 1 when this manager wrote the session last (the commit, which  |
//! |               | removes the index entry in the script: [`WriteOp::Remove`]);   |
//! |               | else 2 (`MGET` of the record, one commit)                      |
//!
//! A conflict (another writer got there first) costs the operation's round
//! trips again. [`RedisStore::stats`] counts what was sent; the `redis_bench`
//! example prints it per operation.
//!
//! # Failures
//!
//! Every call has a deadline ([`RedisConfig::operation_timeout`], 3 s by
//! default; connecting is bounded by `connect_timeout` (500 ms), each reply by
//! `response_timeout` (2 s)). When Redis is down, calls answer `store_unavailable`
//! (connection refused answers at once) and nothing panics; connections come
//! back by themselves when the server does. A call is retried inside its
//! deadline only when it certainly did not run (connection refused, `MOVED`,
//! `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`, `LOADING`, `NOREPLICAS`, ...) or
//! when it only reads. The store does not send a commit whose reply was lost
//! again (it answers `store_unavailable`: the commit may or may not have
//! applied); the Cluster client does, after a dropped connection, and the
//! script answers that second run committed.
//!
//! # Sentinel
//!
//! The store asks the sentinels for the master (`SENTINEL
//! get-master-addr-by-name`), subscribes on every sentinel to the failover's
//! announcements and moves at the first of them:
//! `+failover-state-send-slaveof-noone` (the replica is being promoted),
//! `+promoted-slave` (about a second later) or `+switch-master` (at the end).
//! Waiting for `+switch-master` alone left writes going to the old master for
//! about 1.2 s here. For 3 s after such an event, errors do not send the store
//! back to the master the sentinels still name until the failover ends;
//! otherwise it asks the sentinels again whenever the master errs (connection
//! lost, `READONLY` from a demoted master).
//!
//! A failover can still lose writes the old master acknowledged but had not
//! passed to the replica that was promoted, or took after the promotion. Two
//! settings close that window:
//!
//! - [`RedisConfig::replica_acks`] (on by default for Sentinel: one replica,
//!   500 ms): each commit is followed, in the same round trip, by `WAIT 1 500`,
//!   and is reported committed only once a replica holds it. A commit the
//!   replicas did not confirm answers `store_unavailable` (it may or may not
//!   survive). The cost: a commit waits for the replica, and `WAIT` holds its
//!   connection meanwhile, so commits use four connections in turn and reads
//!   one of their own; while the master has no replica in sync, each commit
//!   fails after the 500 ms.
//! - `min-replicas-to-write 1` and `min-replicas-max-lag 1` on the servers: a
//!   master cut off from its replicas refuses writes (`NOREPLICAS`) after about
//!   a second. It narrows the window on the server side for every client, but
//!   alone leaves that second open; `replica_acks` closes it.
//!
//! Measured on loopback (`tests/redis_faults.rs`, a forced `SENTINEL FAILOVER`
//! under four writer tasks per store): with `replica_acks`, 0 acknowledged
//! writes lost in every run, about 17 commits answered `store_unavailable`
//! during the failover. Without it, 4,526 of 21,729 acknowledged writes were
//! lost when following `+switch-master` only, 2,227 of 14,526 when moving at the first
//! event but letting errors send the store back, and 0 once the hold above was
//! added (a race the client wins on loopback, not a guarantee). With the
//! master killed instead, the sentinels replaced it after about 2.3 s, about
//! 150 calls per store answered `store_unavailable` meanwhile, and no
//! acknowledged write was lost with or without `replica_acks`.
//!
//! `caps().consistent` is false for Sentinel: between a promotion and the
//! moment a client hears of it, that client may still read the old master.
//!
//! # Cluster
//!
//! The cluster client follows `MOVED`/`ASK`, retries `TRYAGAIN`/`CLUSTERDOWN`
//! and refreshes its slot map on its own; the store retries, inside the call's
//! deadline, what reaches it anyway and certainly did not run. A manual
//! `CLUSTER FAILOVER` loses nothing (the replica catches up first) and no call
//! fails (measured: thousands of commits and session calls across it, none
//! failed); an automatic failover after a crash can lose the last writes, as in
//! Redis. One caveat from Redis itself: a manual failover asked of a replica
//! too soon after an earlier one stalls, and its master pauses writes for up
//! to 5 s, longer than the default 3 s deadline. `replica_acks` is not used on
//! a Cluster.
//!
//! # TLS
//!
//! With the `redis-tls` feature (rustls with ring), `rediss://` URLs and
//! `RedisConfig::tls(true)` connect over TLS to every node and sentinel,
//! checking certificates against the system's roots or a CA given with
//! `RedisConfig::tls_root_ca`. Without the feature, `rediss://` is refused
//! with a clear error. Tested here on one server (the conformance suite over
//! TLS, and an untrusted certificate refused); Sentinel and Cluster over TLS
//! use the same settings but were not run against TLS servers.

pub mod codec;

#[cfg(not(target_arch = "wasm32"))]
mod calls;
#[cfg(not(target_arch = "wasm32"))]
mod config;
#[cfg(not(target_arch = "wasm32"))]
mod eviction;
#[cfg(not(target_arch = "wasm32"))]
mod sentinel;
#[cfg(not(target_arch = "wasm32"))]
mod store;

#[cfg(not(target_arch = "wasm32"))]
pub use config::{RedisConfig, RedisServerConfig, ReplicaAcks};
#[cfg(not(target_arch = "wasm32"))]
pub use eviction::EvictionPolicyCheck;
#[cfg(not(target_arch = "wasm32"))]
pub use store::{RedisStats, RedisStore};

#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod js;
