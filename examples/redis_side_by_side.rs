//! tollgate's half of `scripts/gosession-bench.sh`: sign-in, strict verify,
//! refresh and revoke on one Redis server, with 1 task and with 64, printed in
//! the same form as the Go driver of that script (benches/go/gosession_driver):
//!
//! `RESULT <op> <tasks> <ops per second> <p50 microseconds> <calls>`
//!
//! The workload is the driver's: sign-in a new user each time, verify over
//! 1,024 sessions signed in beforehand, refresh a chain per task (each answer's
//! token presented next), revoke sessions signed in beforehand, one per call.
//! Revoke runs twice: `revoke` by the manager that signed the sessions in and
//! remembers them all (its `recent_writes` set to their number: one round trip
//! each), `revoke-read` by one that remembers nothing (a read, then the commit);
//! the script compares both with gosession's `DeleteToken`.
//! By hand: `TG_TEST_REDIS_PORT=6379 cargo run --release --features redis --example redis_side_by_side`
//! (`TG_TEST_REDIS_HOST`, `BENCH_SECONDS`, `BENCH_TASKS=1,64` too).
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::{SessionManager, Tokens, VerifyMode};

type Sessions = Arc<SessionManager<RedisStore>>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Runs `op(task, i)` up to `per_task` times in each of `tasks` tasks until `limit`
/// has passed; prints the RESULT line.
async fn measure<F, Fut>(name: &str, tasks: usize, per_task: usize, limit: Duration, op: F)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
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
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("a bench task panicked"));
    }
    let elapsed = started.elapsed();
    lat.sort_unstable();
    let p50 = lat.get(lat.len() / 2).copied().unwrap_or_default();
    println!("RESULT {name} {tasks} {:.0} {:.1} {}", lat.len() as f64 / elapsed.as_secs_f64(), p50.as_secs_f64() * 1e6, lat.len());
}

/// Signs in `count` new users with 64 tasks; answers their tokens.
async fn sign_in(sessions: &Sessions, prefix: &str, count: usize) -> Arc<Vec<Tokens>> {
    let per = count.div_ceil(64);
    let handles: Vec<_> = (0..64)
        .map(|t| {
            let (s, prefix) = (sessions.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let mut v = Vec::with_capacity(per);
                for i in 0..per {
                    v.push(s.issue(&format!("{prefix}{t}-{i}"), Map::new(), json!({})).await.expect("sign-in"));
                }
                v
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for h in handles {
        all.extend(h.await.expect("a sign-in task panicked"));
    }
    all.truncate(count);
    Arc::new(all)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let host = env_or("TG_TEST_REDIS_HOST", "127.0.0.1");
    let port: u16 = env_or("TG_TEST_REDIS_PORT", "16379").parse().expect("TG_TEST_REDIS_PORT is a port number");
    let limit = Duration::from_secs_f64(env_or("BENCH_SECONDS", "2").parse().expect("BENCH_SECONDS is a number"));
    let tasks: Vec<usize> =
        env_or("BENCH_TASKS", "1,64").split(',').map(|t| t.trim().parse().expect("BENCH_TASKS: numbers, comma separated")).collect();

    let store = RedisStore::connect(RedisConfig::server(host, port).key_prefix("tgside:")).await.expect("the Redis server answers");
    let config = |recent_writes: usize| {
        let builder = tollgate::Config::builder().secret(b"a benchmark secret of at least 32 bytes".to_vec()).issuer("bench");
        builder.recent_writes(recent_writes).build().unwrap()
    };
    let sessions: Sessions = Arc::new(SessionManager::new(config(16_384), store.clone()).unwrap());
    // The revokers: one remembering every victim it signs in, one remembering nothing.
    let remembering: Sessions = Arc::new(SessionManager::new(config(130_000), store.clone()).unwrap());
    let reading: Sessions = Arc::new(SessionManager::new(config(0), store).unwrap());
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    sign_in(&sessions, &format!("warm-{run}-"), 256).await; // loads the script, opens the connection

    for n in tasks {
        let per_task = if n == 1 { 200_000 } else { 20_000 };
        let tag = format!("{run}-{n}-");

        let (s, t) = (sessions.clone(), tag.clone());
        measure("sign-in", n, per_task, limit, move |g, i| {
            let (s, user) = (s.clone(), format!("u-{t}g{g}-{i}"));
            async move {
                s.issue(&user, Map::new(), json!({})).await.expect("sign-in");
            }
        })
        .await;

        let pool = sign_in(&sessions, &format!("v-{tag}"), 1024).await;
        let s = sessions.clone();
        measure("verify", n, per_task, limit, move |g, i| {
            let (s, p) = (s.clone(), pool.clone());
            async move {
                s.verify(&p[(g * 7919 + i) % p.len()].access_token, VerifyMode::Strict).await.expect("verify");
            }
        })
        .await;

        let chains = sign_in(&sessions, &format!("r-{tag}"), n).await;
        let current: Arc<Vec<tokio::sync::Mutex<String>>> =
            Arc::new(chains.iter().map(|t| tokio::sync::Mutex::new(t.refresh_token.clone())).collect());
        let s = sessions.clone();
        measure("refresh", n, per_task, limit, move |g, _| {
            let (s, c) = (s.clone(), current.clone());
            async move {
                let mut cur = c[g].lock().await;
                *cur = s.refresh(&cur).await.expect("refresh").refresh_token;
            }
        })
        .await;

        for (name, revoker) in [("revoke", &remembering), ("revoke-read", &reading)] {
            let victims = sign_in(revoker, &format!("{name}-{tag}"), if n == 1 { 30_000 } else { 120_000 }).await;
            let per = victims.len() / n;
            let s = revoker.clone();
            measure(name, n, per, limit, move |g, i| {
                let (s, v) = (s.clone(), victims.clone());
                async move {
                    let t = &v[g * per + i];
                    s.revoke(&t.session.user, &t.session.sid).await.expect("revoke");
                }
            })
            .await;
        }
    }
}
