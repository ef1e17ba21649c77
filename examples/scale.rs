//! tollgate with many live sessions: bytes per session and operations per second as the
//! count grows (10k, 100k, 1M), on the memory store and on Redis, then the cost of `list`
//! and `revoke_all` for one user holding 1, 100 and 1,000 sessions.
//!
//! Bytes per session: on the memory store, the growth of this process's resident memory
//! (Linux `VmRSS`: the sessions and the allocator's overhead, as a deployment pays them);
//! on Redis, the server's `used_memory` growth per session and `MEMORY USAGE` of one record
//! and one user index. Operations per second are measured with 64 tasks over a sample of
//! sessions issued first, so each checkpoint compares with the first one in the same run:
//! the ratio column is the figure at this size over the figure at the first size.
//!
//! `bash scripts/scale.sh` starts a Redis server and runs this in release (outside CI: 1M
//! sessions take minutes). By hand: `cargo run --release --features redis --example scale`
//! with `SCALE_SIZES=10000,100000,1000000` (default), `SCALE_OPS` (operations per measure,
//! default 20000), and `TG_TEST_REDIS_PORT` (and `TG_TEST_REDIS_HOST`) for the Redis part;
//! without a port the Redis part is left out, and the output says so.
#![allow(clippy::disallowed_methods)] // an example reads real time and the environment

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map};
use tokio::sync::Mutex;
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::{Config, MemoryStore, SessionManager, Store, Tokens, VerifyMode};

const TASKS: usize = 64;
const SAMPLE: usize = 4096;
const SECRET: &[u8] = b"a scale benchmark secret of at least 32 bytes";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn config(limit: u32) -> Config {
    Config::builder().secret(SECRET.to_vec()).issuer("scale").max_sessions_per_user(limit).build().unwrap()
}

/// Runs `op(i)` for i in 0..n over `TASKS` tasks; answers operations per second.
async fn rate<F, Fut>(n: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut i = t;
                while i < n {
                    op(i).await;
                    i += TASKS;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Issues sessions `from..to`, one user each, dropping their tokens.
async fn grow<S: Store + 'static>(sessions: &Arc<SessionManager<S>>, run: &str, from: usize, to: usize) {
    let s = sessions.clone();
    let run = run.to_owned();
    rate(to - from, move |i| {
        let (s, run) = (s.clone(), run.clone());
        async move {
            s.issue(&format!("{run}-user-{}", from + i), Map::new(), json!({ "device": "scale" })).await.unwrap();
        }
    })
    .await;
}

/// What a store tells about its memory.
trait Footprint {
    /// Bytes the store holds now (process heap, or the server's `used_memory`).
    async fn bytes(&self) -> usize;
    /// `MEMORY USAGE` of one session record and of its user's index, where the store has it.
    async fn record_and_index(&self, _user: &str, _sid: &str) -> Option<(u64, u64)> {
        None
    }
}

impl Footprint for MemoryStore {
    /// The process's resident memory: the sessions with the allocator's own overhead, which is
    /// what a deployment pays.
    async fn bytes(&self) -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("Linux: /proc/self/status");
        let kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }
}

struct OnRedis {
    raw: Mutex<redis::aio::MultiplexedConnection>,
    prefix: String,
}

impl Footprint for OnRedis {
    async fn bytes(&self) -> usize {
        let mut raw = self.raw.lock().await;
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut *raw).await.unwrap();
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap()
    }
    async fn record_and_index(&self, user: &str, sid: &str) -> Option<(u64, u64)> {
        let mut raw = self.raw.lock().await;
        let record_key = format!("{}{}", self.prefix, tollgate::engine::record::session_key(user, sid));
        let index_key = format!("{}{}", self.prefix, tollgate::engine::record::index_key(user));
        let record: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(&record_key).query_async(&mut *raw).await.unwrap();
        let index: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(&index_key).query_async(&mut *raw).await.unwrap();
        Some((record.expect("the record is in Redis"), index.expect("the index is in Redis")))
    }
}

/// One row per size: bytes per session and the rate of strict verify, issue and refresh.
async fn growth<S: Store + 'static>(name: &str, store: S, footprint: &impl Footprint, sizes: &[usize], ops: usize) {
    let sessions = Arc::new(SessionManager::new(config(100), store).unwrap());
    let run = format!("scale{}", std::process::id());
    // The sample the operations use, issued before the baseline so their tokens are not counted.
    let mut sample = Vec::with_capacity(SAMPLE);
    for i in 0..SAMPLE {
        sample.push(sessions.issue(&format!("{run}-sample-{i}"), Map::new(), json!({ "device": "scale" })).await.unwrap());
    }
    let sample: Arc<Vec<Mutex<Tokens>>> = Arc::new(sample.into_iter().map(Mutex::new).collect());
    let baseline = footprint.bytes().await;
    println!("\n{name}: {SAMPLE} sample sessions, then grown to each size; ratio = rate here / rate at the first size");
    println!("{:>10} {:>12} {:>16} {:>16} {:>16}", "sessions", "bytes/sess", "strict verify/s", "issue/s", "refresh/s");
    let mut have = SAMPLE;
    let mut first: Option<[f64; 3]> = None;
    for &size in sizes {
        if size > have {
            grow(&sessions, &run, have, size).await;
            have = size;
        }
        let per_session = footprint.bytes().await.saturating_sub(baseline) as f64 / (have - SAMPLE).max(1) as f64;
        let (s, p) = (sessions.clone(), sample.clone());
        let verify = rate(ops, move |i| {
            let (s, p) = (s.clone(), p.clone());
            async move {
                let token = p[(i * 7919) % SAMPLE].lock().await.access_token.clone();
                s.verify(&token, VerifyMode::Strict).await.unwrap();
            }
        })
        .await;
        let (s, r) = (sessions.clone(), run.clone());
        let issue = rate(ops / 4, move |i| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                s.issue(&format!("{r}-extra-{size}-{i}"), Map::new(), json!({})).await.unwrap();
            }
        })
        .await;
        let (s, p) = (sessions.clone(), sample.clone());
        let refresh = rate(ops / 4, move |i| {
            let (s, p) = (s.clone(), p.clone());
            async move {
                let mut slot = p[i % SAMPLE].lock().await;
                *slot = s.refresh(&slot.refresh_token).await.unwrap();
            }
        })
        .await;
        let now = [verify, issue, refresh];
        let base = *first.get_or_insert(now);
        let cell = |k: usize| format!("{:.0} ({:.2}x)", now[k], now[k] / base[k]);
        println!("{:>10} {:>12.0} {:>16} {:>16} {:>16}", have, per_session, cell(0), cell(1), cell(2));
    }
    let probe = sample[0].lock().await.session.clone();
    if let Some((record, index)) = footprint.record_and_index(&probe.user, &probe.sid).await {
        println!("MEMORY USAGE of one record: {record} B; of its user's index (one session): {index} B");
    }
}

/// `list` and `revoke_all` for one user holding 1, 100 and 1,000 sessions.
async fn wide_users<S: Store + Clone + 'static>(name: &str, store: S, ops: usize) {
    let sessions = Arc::new(SessionManager::new(config(1000), store).unwrap());
    println!("\n{name}: one user's sessions, {} list calls each (64 tasks), revoke_all timed 3 times (median)", ops / 10);
    println!("{:>10} {:>14} {:>22} {:>18}", "sessions", "list/s", "us per list (1/rate)", "us per revoke_all");
    for n in [1usize, 100, 1000] {
        let user = format!("wide{}-{n}", std::process::id());
        let mut revoke_us = Vec::new();
        let mut listed = 0.0;
        for round in 0..3 {
            for _ in 0..n {
                sessions.issue(&user, Map::new(), json!({ "device": "scale" })).await.unwrap();
            }
            if round == 0 {
                let (s, u) = (sessions.clone(), user.clone());
                listed = rate(ops / 10, move |_| {
                    let (s, u) = (s.clone(), u.clone());
                    async move {
                        assert_eq!(s.list(&u).await.unwrap().len(), n);
                    }
                })
                .await;
            }
            let started = Instant::now();
            let revoked = sessions.revoke_all(&user, None).await.unwrap();
            revoke_us.push(started.elapsed().as_secs_f64() * 1e6);
            assert_eq!(revoked, n);
        }
        revoke_us.sort_by(f64::total_cmp);
        println!("{:>10} {:>14.0} {:>22.1} {:>18.0}", n, listed, 1e6 / listed, revoke_us[1]);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = env_or("SCALE_SIZES", "10000,100000,1000000").split(',').map(|s| s.trim().parse().unwrap()).collect();
    let ops: usize = env_or("SCALE_OPS", "20000").parse().unwrap();
    println!("sizes {sizes:?}, {ops} strict verifies and {} issues and refreshes per size, {TASKS} tasks", ops / 4);

    let memory = MemoryStore::new();
    growth("memory store", memory.clone(), &memory, &sizes, ops).await;
    wide_users("memory store", MemoryStore::new(), ops).await;

    let Ok(port) = std::env::var("TG_TEST_REDIS_PORT") else {
        println!("\nRedis: not measured (TG_TEST_REDIS_PORT is not set; scripts/scale.sh starts a server and sets it)");
        return;
    };
    let host = env_or("TG_TEST_REDIS_HOST", "127.0.0.1");
    let prefix = format!("tgscale{}:", std::process::id());
    let config = RedisConfig::server(host.clone(), port.parse().unwrap()).key_prefix(prefix.clone());
    let store = RedisStore::connect(config).await.expect("the Redis server answers");
    let client = redis::Client::open(format!("redis://{host}:{port}/")).unwrap();
    let raw = client.get_multiplexed_async_connection().await.unwrap();
    let footprint = OnRedis { raw: Mutex::new(raw), prefix };
    growth("Redis (one server)", store.clone(), &footprint, &sizes, ops).await;
    wide_users("Redis (one server)", store, ops).await;
}
