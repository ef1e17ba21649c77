//! tollgate on every SQL store, side by side with Redis, against `pgbench` on
//! the same PostgreSQL, in one run: `scripts/sql.sh bench` starts the servers
//! (PostgreSQL, MariaDB, a Redis) and runs this.
//!
//! Each operation runs as one task and as 64 tasks sharing one store (one
//! pool), for a bounded count and time. Printed: ops/s, p50 and p99 per
//! operation, then ratios: to pgbench on the same PostgreSQL with as many
//! clients (`-S` select-only for strict verify, the built-in simple-update for
//! the writes; run right before and right after the stores, the mean of the
//! two, since the machine may be shared), and to the same operation on Redis
//! and on SQLite. Issue signs in a new user each time (its counter row is new).
//!
//! Variables: `TG_TEST_PG_URL`, `TG_TEST_MYSQL_URL`, `TG_TEST_BENCH_REDIS_URL`,
//! `TG_TEST_PGBENCH_URL` (a database pgbench may fill), `TG_TEST_PG_BIN`
//! (where `pgbench` is), `BENCH_SECONDS` (per measurement, default 2).
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::store::sql::SqlStore;
use tollgate::{SessionManager, Store, Tokens, VerifyMode};

const MANY: usize = 64;
const OPS: [&str; 4] = ["issue", "strict verify", "refresh", "revoke"];

type Sessions = Arc<SessionManager<Arc<dyn Store>>>;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run this through `scripts/sql.sh bench`"))
}

fn rand_tag() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// pgbench's transactions per second and mean latency for one built-in script.
struct Pgbench {
    tps: f64,
    latency_ms: f64,
}

fn pgbench(args: &[&str]) -> String {
    let bin = format!("{}/pgbench", var("TG_TEST_PG_BIN"));
    let out = Command::new(&bin).args(args).arg(var("TG_TEST_PGBENCH_URL")).output().expect("pgbench runs");
    assert!(out.status.success(), "pgbench {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pgbench_run(script: &str, clients: usize, seconds: u64) -> Pgbench {
    let (c, t) = (clients.to_string(), seconds.to_string());
    let text = pgbench(&["-b", script, "-c", &c, "-j", "2", "-T", &t, "-n"]);
    let number = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{prefix}` in pgbench's output:\n{text}"))
    };
    Pgbench { tps: number("tps = "), latency_ms: number("latency average = ") }
}

struct Run {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
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

/// Runs `op(slot)` in `tasks` tasks, slots `t * per_task ..` for task `t`, until `per_task` each or `limit`.
async fn measure<F, Fut>(tasks: usize, per_task: usize, limit: Duration, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
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
                    op(t * per_task + i).await;
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
    Run { ops: latencies.len(), elapsed: started.elapsed(), latencies }
}

/// Issues `n` sessions (64 tasks), one user each, untimed: the pool verify, refresh and revoke use.
async fn prepare(sessions: &Sessions, n: usize) -> Arc<Vec<Mutex<Tokens>>> {
    let per = n.div_ceil(MANY);
    let handles: Vec<_> = (0..MANY)
        .map(|t| {
            let s = sessions.clone();
            tokio::spawn(async move {
                let mut v = Vec::with_capacity(per);
                for i in 0..per {
                    v.push(s.issue(&format!("bench-prep-{t}-{i}-{:x}", rand_tag()), Map::new(), json!({})).await.unwrap());
                }
                v
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.await.unwrap().into_iter().map(Mutex::new));
    }
    all.truncate(n);
    Arc::new(all)
}

fn manager(store: Arc<dyn Store>) -> Sessions {
    let config = tollgate::Config::builder().secret(b"a benchmark secret of at least 32 bytes".to_vec()).issuer("bench").build().unwrap();
    Arc::new(SessionManager::new(config, store).unwrap())
}

/// The four operations with `tasks` tasks: (operation, ops/s, p50, p99).
async fn run_store(name: &str, sessions: &Sessions, tasks: usize, limit: Duration) -> Vec<(&'static str, f64, Duration, Duration)> {
    let per_task = if tasks == 1 { 4000 } else { 150 };
    let pool = prepare(sessions, tasks * per_task).await;
    let mut out = Vec::new();
    for op in OPS {
        let (s, p) = (sessions.clone(), pool.clone());
        let mut run = measure(tasks, per_task, limit, move |slot| {
            let (s, p) = (s.clone(), p.clone());
            async move {
                match op {
                    "issue" => drop(s.issue(&format!("bench-{slot}-{:x}", rand_tag()), Map::new(), json!({})).await.unwrap()),
                    "strict verify" => {
                        let token = p[slot % p.len()].lock().unwrap().access_token.clone();
                        s.verify(&token, VerifyMode::Strict).await.unwrap();
                    }
                    "refresh" => {
                        let token = p[slot].lock().unwrap().refresh_token.clone();
                        let next = s.refresh(&token).await.unwrap();
                        *p[slot].lock().unwrap() = next;
                    }
                    _ => {
                        let (user, sid) = {
                            let t = p[slot].lock().unwrap();
                            (t.session.user.clone(), t.session.sid.clone())
                        };
                        s.revoke(&user, &sid).await.unwrap();
                    }
                }
            }
        })
        .await;
        let (p50, p99) = (run.pct(0.50), run.pct(0.99));
        println!("{name:<10} {op:<14} {tasks:>5} {:>10.0} {:>9} {:>9}", run.rate(), p50.as_micros(), p99.as_micros());
        out.push((op, run.rate(), p50, p99));
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let limit = Duration::from_secs_f64(seconds);

    pgbench(&["-i", "-s", "4", "-q"]);
    let dir = std::env::temp_dir().join(format!("tollgate-bench-{:x}", rand_tag()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite_url = format!("sqlite:{}", dir.join("sessions.db").display());
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("sqlite", Arc::new(SqlStore::connect(&sqlite_url).await.unwrap())),
        ("postgres", Arc::new(SqlStore::connect(&var("TG_TEST_PG_URL")).await.unwrap())),
        ("mariadb", Arc::new(SqlStore::connect(&var("TG_TEST_MYSQL_URL")).await.unwrap())),
        (
            "redis",
            Arc::new(
                RedisStore::connect(RedisConfig::from_url(&var("TG_TEST_BENCH_REDIS_URL")).unwrap().key_prefix("tgbench:")).await.unwrap(),
            ),
        ),
    ];

    // The machine is shared: pgbench runs right before and right after the stores, for each
    // task count, and the ratios use the mean of the two.
    let secs = seconds.ceil() as u64;
    let mut peers: HashMap<(&str, usize), f64> = HashMap::new();
    let mut rates: HashMap<(&str, &str, usize), f64> = HashMap::new();
    let managers: Vec<(&str, Sessions)> = stores.iter().map(|(name, store)| (*name, manager(store.clone()))).collect();
    for (_, sessions) in &managers {
        prepare(sessions, 256).await; // warm up: connections, statements, the Redis script
    }
    for tasks in [1, MANY] {
        let before: Vec<Pgbench> = ["select-only", "simple-update"].iter().map(|s| pgbench_run(s, tasks, secs)).collect();
        println!();
        println!("{:<10} {:<14} {:>5} {:>10} {:>9} {:>9}", "store", "operation", "tasks", "ops/s", "p50 us", "p99 us");
        for (name, sessions) in &managers {
            for (op, rate, _, _) in run_store(name, sessions, tasks, limit).await {
                rates.insert((name, op, tasks), rate);
            }
        }
        let after: Vec<Pgbench> = ["select-only", "simple-update"].iter().map(|s| pgbench_run(s, tasks, secs)).collect();
        for (i, script) in ["select-only", "simple-update"].into_iter().enumerate() {
            println!(
                "pgbench {script:<14} {tasks:>2} clients: {:>7.0} tps before the stores, {:>7.0} after (mean latency {:.3} / {:.3} ms)",
                before[i].tps, after[i].tps, before[i].latency_ms, after[i].latency_ms
            );
            peers.insert((script, tasks), (before[i].tps + after[i].tps) / 2.0);
        }
    }

    println!();
    println!("ratios, each measured in this run (pgbench with as many clients as tasks, the mean of its two runs: -S for verify, simple-update for writes)");
    println!("{:<10} {:<14} {:>5} {:>11} {:>9} {:>9}", "store", "operation", "tasks", "vs pgbench", "vs redis", "vs sqlite");
    for (name, _) in &stores {
        for tasks in [1, MANY] {
            for op in OPS {
                let rate = rates[&(*name, op, tasks)];
                let script = if op == "strict verify" { "select-only" } else { "simple-update" };
                println!(
                    "{name:<10} {op:<14} {tasks:>5} {:>10.2}x {:>8.2}x {:>8.2}x",
                    rate / peers[&(script, tasks)],
                    rate / rates[&("redis", op, tasks)],
                    rate / rates[&("sqlite", op, tasks)],
                );
            }
        }
    }
    drop(stores);
    let _ = std::fs::remove_dir_all(&dir);
}
