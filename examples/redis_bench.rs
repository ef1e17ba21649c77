//! tollgate on Redis against `redis-benchmark` on the same server, in one run.
//!
//! `scripts/redis.sh bench` starts a server and runs this. By hand:
//! `TG_TEST_REDIS_PORT=6379 cargo run --release --features redis --example redis_bench`
//! (`TG_TEST_REDIS_HOST`, `TG_TEST_REDIS_PASSWORD`, `BENCH_SECONDS` too).
//!
//! The runtime is tokio's `multi_thread` with 2 workers: what `#[tokio::main]`
//! gives an application on this 2-core machine. `BENCH_RUNTIME=current_thread`
//! runs everything on one thread instead (its rows say so). For profiling one
//! row: `BENCH_TASKS=1` (or 64) and `BENCH_OPS=get,verify` (of `get`, `issue`,
//! `verify`, `refresh`, `revoke`).
//!
//! Each operation runs as one sequential task and as 64 tasks sharing one
//! store (one multiplexed connection), for a bounded count and time. Printed:
//! ops/s, p50, p99, Redis round trips per operation, and the ratio to
//! `redis-benchmark -d 300` (GET for verify, SET for the writes) with one
//! client and with 50.
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use tollgate::engine::record::{index_key, revoked_all_key, revoked_key, session_key};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::{SessionManager, Store, Tokens, VerifyMode};

const TASKS: usize = 64;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Peer {
    get: f64,
    set: f64,
}

/// Runs redis-benchmark and reads its CSV: requests per second of GET and SET.
fn redis_benchmark(host: &str, port: &str, password: Option<&str>, clients: u32, requests: u32) -> Peer {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", host, "-p", port, "-d", "300", "-t", "get,set", "-c", &clients.to_string(), "-n", &requests.to_string(), "--csv"]);
    if let Some(pw) = password {
        // redis-benchmark reads no password from the environment; a server for
        // benchmarks is best run without one (scripts/redis.sh bench does).
        cmd.args(["-a", pw, "--no-auth-warning"]);
    }
    let out = cmd.output().expect("redis-benchmark runs (apt-get install redis-tools)");
    assert!(out.status.success(), "redis-benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = |test: &str| -> f64 {
        text.lines()
            .map(|l| l.split(',').map(|f| f.trim_matches('"')).collect::<Vec<_>>())
            .find(|f| f.first() == Some(&test))
            .and_then(|f| f.get(1).and_then(|v| v.parse().ok()))
            .unwrap_or_else(|| panic!("no {test} row in redis-benchmark's output:\n{text}"))
    };
    Peer { get: rps("GET"), set: rps("SET") }
}

struct Run {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    round_trips: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

type Sessions = Arc<SessionManager<RedisStore>>;

/// Runs `op(task, i)` `per_task` times in each of `tasks` tasks, stopping early at `limit`.
async fn measure<F, Fut>(store: &RedisStore, tasks: usize, per_task: usize, limit: Duration, op: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let trips = store.stats().round_trips;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    if started.elapsed() > limit {
                        break;
                    }
                    let s = Instant::now();
                    op(t, i).await;
                    lat.push(s.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap());
    }
    let elapsed = started.elapsed();
    Run { ops: latencies.len(), elapsed, latencies, round_trips: store.stats().round_trips - trips }
}

/// Issues `n` sessions (with 64 tasks), one user each, for later operations.
async fn prepare(sessions: &Sessions, n: usize) -> Arc<Vec<Tokens>> {
    let per = n.div_ceil(TASKS);
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let s = sessions.clone();
            tokio::spawn(async move {
                let mut v = Vec::with_capacity(per);
                for i in 0..per {
                    v.push(s.issue(&format!("bench-prep-{t}-{i}-{}", rand_tag()), Map::new(), json!({})).await.unwrap());
                }
                v
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await.unwrap());
    }
    Arc::new(all)
}

fn rand_tag() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn main() {
    let runtime = env_or("BENCH_RUNTIME", "multi_thread");
    let mut builder = match runtime.as_str() {
        "multi_thread" => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
        "current_thread" => tokio::runtime::Builder::new_current_thread(),
        other => panic!("BENCH_RUNTIME is multi_thread or current_thread, not {other}"),
    };
    builder.enable_all().build().unwrap().block_on(run(runtime));
}

/// Whether `BENCH_OPS` (all when unset) names `op`.
fn wanted(op: &str) -> bool {
    std::env::var("BENCH_OPS").map_or(true, |ops| ops.split(',').any(|o| o.trim() == op))
}

async fn run(runtime: String) {
    let host = env_or("TG_TEST_REDIS_HOST", "127.0.0.1");
    let port = env_or("TG_TEST_REDIS_PORT", "16379");
    let password = std::env::var("TG_TEST_REDIS_PASSWORD").ok();
    let seconds: f64 = env_or("BENCH_SECONDS", "2").parse().unwrap();
    let limit = Duration::from_secs_f64(seconds);

    let label_runtime = if runtime == "multi_thread" { String::new() } else { format!(" ({runtime})") };
    println!("tokio runtime: {runtime}{}", if runtime == "multi_thread" { ", 2 workers" } else { "" });
    println!("redis-benchmark -d 300 -t get,set --csv on {host}:{port}");
    let one = redis_benchmark(&host, &port, password.as_deref(), 1, (14_000.0 * seconds) as u32);
    let fifty = redis_benchmark(&host, &port, password.as_deref(), 50, (140_000.0 * seconds) as u32);
    println!("  1 client:   GET {:>9.0}/s  SET {:>9.0}/s", one.get, one.set);
    println!("  50 clients: GET {:>9.0}/s  SET {:>9.0}/s", fifty.get, fifty.set);

    let mut config = RedisConfig::server(host.clone(), port.parse().unwrap()).key_prefix("tgbench:");
    if let Some(pw) = &password {
        config = config.password(pw.clone());
    }
    let store = RedisStore::connect(config).await.expect("the Redis server answers");
    let keys = tollgate::Config::builder().secret(b"a benchmark secret of at least 32 bytes".to_vec()).issuer("bench").build().unwrap();
    let sessions: Sessions = Arc::new(SessionManager::new(keys.clone(), store.clone()).unwrap());
    // Warm up: load the script, open the connection.
    prepare(&sessions, 256).await;

    println!();
    println!("{:<34} {:>10} {:>9} {:>9} {:>7} {:>8}  vs redis-benchmark", "operation", "ops/s", "p50 us", "p99 us", "trips", "ratio");
    let mut rows: Vec<(String, f64)> = Vec::new();
    let only_tasks: Option<usize> = std::env::var("BENCH_TASKS").ok().map(|t| t.parse().expect("BENCH_TASKS is 1 or 64"));
    for (tasks, label, peer) in [(1usize, "1 task", &one), (TASKS, "64 tasks", &fifty)] {
        if only_tasks.is_some_and(|t| t != tasks) {
            continue;
        }
        let label = format!("{label}{label_runtime}");
        let per_task_cap = if tasks == 1 { 200_000 } else { 20_000 };
        let clients = if tasks == 1 { "1 client" } else { "50 clients" };
        let budget = (peer.get * seconds * 1.2) as usize + 1000;

        if wanted("client") {
            // The client library alone: redis-rs's `ConnectionManager` sending `GET` of one key,
            // on the same runtime. What the store adds on top is ours.
            let auth = password.as_ref().map(|pw| format!(":{pw}@")).unwrap_or_default();
            let client = redis::Client::open(format!("redis://{auth}{host}:{port}/0")).unwrap();
            let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
            let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                let mut c = conn.clone();
                async move {
                    let _: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(format!("tgbench:{}", index_key(&format!("bench-{t}-{}", i % 1000))))
                        .query_async(&mut c)
                        .await
                        .unwrap();
                }
            })
            .await;
            print_row(&format!("redis-rs GET, {label}"), &mut r, peer.get, &format!("GET, {clients}"));
        }

        if wanted("get") {
            // store get: one MGET, the floor under every strict verify.
            let s = store.clone();
            let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                let s = s.clone();
                async move {
                    s.get(vec![index_key(&format!("bench-{t}-{}", i % 1000))]).await.unwrap();
                }
            })
            .await;
            print_row(&format!("store get, {label}"), &mut r, peer.get, &format!("GET, {clients}"));

            // The same with the three keys of a strict verify (record and two revocation markers).
            let s = store.clone();
            let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                let s = s.clone();
                async move {
                    let (user, sid) = (format!("bench-{t}-{}", i % 1000), "AAAAAAAAAAAAAAAAAAAAAA");
                    s.get(vec![session_key(&user, sid), revoked_key(&user, sid), revoked_all_key(&user)]).await.unwrap();
                }
            })
            .await;
            print_row(&format!("store get 3 keys, {label}"), &mut r, peer.get, &format!("GET, {clients}"));
        }

        if wanted("issue") {
            // issue: a new user each time (no contention on one index).
            let s = sessions.clone();
            let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                let s = s.clone();
                async move {
                    s.issue(&format!("bench-{t}-{i}-{}", rand_tag()), Map::new(), json!({})).await.unwrap();
                }
            })
            .await;
            print_row(&format!("issue, {label}"), &mut r, peer.set, &format!("SET, {clients}"));
            rows.push((format!("issue, {label}"), r.rate()));
        }

        if wanted("verify") {
            // strict verify: one read of the session.
            let pool = prepare(&sessions, 1024).await;
            let s = sessions.clone();
            let p = pool.clone();
            let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                let (s, p) = (s.clone(), p.clone());
                async move {
                    let tok = &p[(t * 7919 + i) % p.len()];
                    s.verify(&tok.access_token, VerifyMode::Strict).await.unwrap();
                }
            })
            .await;
            print_row(&format!("strict verify, {label}"), &mut r, peer.get, &format!("GET, {clients}"));
            rows.push((format!("strict verify, {label}"), r.rate()));
        }

        if wanted("refresh") {
            // refresh: each task rotates its own chain, each call through one of a pair of
            // managers: the same one twice (its memory of what it wrote answers: one round
            // trip); one told to remember nothing (a read, then the commit); and two taking
            // turns (two services behind a round-robin balancer, one connection and a memory
            // each): each one's memory is then a rotation behind, so each refresh reads.
            let other: Sessions = Arc::new(SessionManager::new(keys.clone(), store.clone()).unwrap());
            let mut cold_keys = keys.clone();
            cold_keys.policy.recent_writes = 0;
            let cold: Sessions = Arc::new(SessionManager::new(cold_keys, store.clone()).unwrap());
            let pairs = [
                ("refresh", [sessions.clone(), sessions.clone()]),
                ("refresh, no memory", [cold.clone(), cold]),
                ("refresh, two managers in turn", [sessions.clone(), other]),
            ];
            for (name, pair) in pairs {
                let chains = prepare(&pair[0], tasks).await;
                let current: Arc<Vec<tokio::sync::Mutex<String>>> =
                    Arc::new(chains.iter().map(|t| tokio::sync::Mutex::new(t.refresh_token.clone())).collect());
                let pair = Arc::new(pair);
                let mut r = measure(&store, tasks, per_task_cap, limit, move |t, i| {
                    let (p, c) = (pair.clone(), current.clone());
                    async move {
                        let mut cur = c[t].lock().await;
                        *cur = p[i % 2].refresh(&cur).await.unwrap().refresh_token;
                    }
                })
                .await;
                print_row(&format!("{name}, {label}"), &mut r, peer.set, &format!("SET, {clients}"));
                rows.push((format!("{name}, {label}"), r.rate()));
            }
        }

        if wanted("revoke") {
            // revoke: sessions issued beforehand, one per call, by the manager that revokes
            // them (its memory holds every one: `recent_writes` is set to the pool's size, so
            // each revoke is its commit alone), and by one told to remember nothing (a read
            // of the record, then the commit).
            let n = budget.min(if tasks == 1 { 30_000 } else { 120_000 });
            let mut remembering_keys = keys.clone();
            remembering_keys.policy.recent_writes = n + 1024;
            let remembering: Sessions = Arc::new(SessionManager::new(remembering_keys, store.clone()).unwrap());
            let mut cold_keys = keys.clone();
            cold_keys.policy.recent_writes = 0;
            let cold: Sessions = Arc::new(SessionManager::new(cold_keys, store.clone()).unwrap());
            for (name, s) in [("revoke", remembering), ("revoke, no memory", cold)] {
                let pool = prepare(&s, n).await;
                let per = pool.len() / tasks;
                let mut r = measure(&store, tasks, per, limit, move |t, i| {
                    let (s, p) = (s.clone(), pool.clone());
                    async move {
                        let tok = &p[t * per + i];
                        s.revoke(&tok.session.user, &tok.session.sid).await.unwrap();
                    }
                })
                .await;
                print_row(&format!("{name}, {label}"), &mut r, peer.set, &format!("SET, {clients}"));
                rows.push((format!("{name}, {label}"), r.rate()));
            }
        }
    }
    println!();
    if let Some((_, verify64)) = rows.iter().find(|r| r.0.starts_with("strict verify, 64 tasks")) {
        println!(
            "strict verify with 64 tasks: {verify64:.0}/s = {:.2}x redis-benchmark GET with 50 clients ({:.0}/s)",
            verify64 / fifty.get,
            fifty.get
        );
    }
    println!("published seeds (their machines): Go token store SET 26k/s, GET 32k/s; Go session store create 40.8 us, get 28.3 us, delete 32.4 us");
}

fn print_row(name: &str, r: &mut Run, peer: f64, peer_name: &str) {
    let (p50, p99) = (r.pct(0.50), r.pct(0.99));
    println!(
        "{:<34} {:>10.0} {:>9.1} {:>9.1} {:>7.2} {:>7.2}x  ({peer_name} {peer:.0}/s)",
        name,
        r.rate(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        r.round_trips as f64 / r.ops.max(1) as f64,
        r.rate() / peer,
    );
}
