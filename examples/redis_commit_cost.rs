//! Server time of the commit script per call, read from Redis's own
//! accounting (`INFO commandstats`, `usec_per_call` of `EVALSHA`), for each
//! kind of commit real sessions make, with the values they really write.
//!
//! `scripts/redis.sh cost` starts a server and runs this. By hand:
//! `TG_TEST_REDIS_PORT=6379 cargo run --release --features redis --example redis_commit_cost`
//! (`TG_TEST_REDIS_HOST`, `TG_TEST_REDIS_PASSWORD`, `COST_SESSIONS` too).
//!
//! One task, so nothing else runs on the server between the counters' reset
//! and their reading; the figures are server time only (no round trip).
#![allow(clippy::disallowed_methods)] // an example reads real time and randomness

use serde_json::{json, Map};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::{SessionManager, Tokens};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `calls` and `usec_per_call` of one command in `INFO commandstats`.
async fn command_stats(raw: &mut redis::aio::MultiplexedConnection, command: &str) -> (u64, f64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.unwrap();
    let prefix = format!("cmdstat_{command}:");
    let Some(line) = info.lines().find(|l| l.starts_with(&prefix)) else { return (0, 0.0) };
    let field = |name: &str| line.split(',').find_map(|f| f.split_once('=').filter(|(k, _)| k.ends_with(name)).map(|(_, v)| v.to_owned()));
    (field("calls").and_then(|v| v.parse().ok()).unwrap_or(0), field("usec_per_call").and_then(|v| v.parse().ok()).unwrap_or(0.0))
}

async fn reset(raw: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(raw).await.unwrap();
}

async fn report(raw: &mut redis::aio::MultiplexedConnection, what: &str) {
    let (calls, usec) = command_stats(raw, "evalsha").await;
    let (eval_calls, _) = command_stats(raw, "eval").await;
    println!("{what:<52} {calls:>7} {usec:>10.2}{}", if eval_calls > 0 { format!("  (+{eval_calls} EVAL)") } else { String::new() });
}

/// Bytes of the stored value of `key` (prefix included).
async fn strlen(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("STRLEN").arg(key).query_async(raw).await.unwrap()
}

/// What Redis says the key costs it (`MEMORY USAGE`: key, value and overhead).
async fn memory_usage(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("MEMORY").arg("USAGE").arg(key).query_async(raw).await.unwrap()
}

/// The floor under a commit on this server, in the same window: an `EVALSHA` of
/// `return 1`, a plain `SET .. PXAT` of a record's size, an `EVALSHA` of one `GETRANGE` and
/// one `SET`; and the one-trip sign-in's commit itself by `EVALSHA` and by `FCALL` of
/// the same code loaded as a Redis Function (the script as the function's body).
async fn floor(raw: &mut redis::aio::MultiplexedConnection, n: usize, metadata: &serde_json::Value) {
    use tollgate::engine::step::{Expect, WriteOp};
    use tollgate::store::redis::codec;
    let value = vec![b'x'; 329];
    let later = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 3_600_000;
    let run = tag();
    println!();
    println!("the floor, same server, same window ({n} calls each; usec per call)");
    let load = |body: &str| redis::cmd("SCRIPT").arg("LOAD").arg(body).clone();
    let ret1: String = load("return 1").query_async(raw).await.unwrap();
    let getset: String = load("redis.call('GETRANGE', KEYS[1], 0, 8) redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2]) return 1")
        .query_async(raw)
        .await
        .unwrap();
    let commit: String = load(codec::COMMIT_SCRIPT).query_async(raw).await.unwrap();
    let library = format!(
        "#!lua name=tgcost\nredis.register_function('tgcost_return1', function() return 1 end)\n\
         redis.register_function('tgcost_commit', function(KEYS, ARGV)\n{}\nend)",
        codec::COMMIT_SCRIPT
    );
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(&library).query_async(raw).await.unwrap();
    let stat = |raw: &mut redis::aio::MultiplexedConnection, cmd: &'static str| {
        let mut raw = raw.clone();
        async move { command_stats(&mut raw, cmd).await.1 }
    };
    reset(raw).await;
    for i in 0..n {
        let _: i64 = redis::cmd("EVALSHA").arg(&ret1).arg(1).arg(format!("tgfloor:{run}:{i}")).query_async(raw).await.unwrap();
    }
    println!("{:<52} {:>10.2}", "EVALSHA of `return 1`", stat(raw, "evalsha").await);
    reset(raw).await;
    for i in 0..n {
        let _: i64 = redis::cmd("FCALL").arg("tgcost_return1").arg(1).arg(format!("tgfloor:{run}:{i}")).query_async(raw).await.unwrap();
    }
    println!("{:<52} {:>10.2}", "FCALL of `return 1`", stat(raw, "fcall").await);
    reset(raw).await;
    for i in 0..n {
        let _: () =
            redis::cmd("SET").arg(format!("tgfloor:{run}:{i}")).arg(&value[..]).arg("PXAT").arg(later).query_async(raw).await.unwrap();
    }
    println!("{:<52} {:>10.2}", "SET .. PXAT, 329 bytes", stat(raw, "set").await);
    reset(raw).await;
    for i in 0..n {
        let _: i64 = redis::cmd("EVALSHA")
            .arg(&getset)
            .arg(1)
            .arg(format!("tgfloor:{run}:{i}"))
            .arg(&value[..])
            .arg(later)
            .query_async(raw)
            .await
            .unwrap();
    }
    println!("{:<52} {:>10.2}", "EVALSHA of one GETRANGE + one SET .. PXAT", stat(raw, "evalsha").await);
    // The one-trip sign-in's commit, with a record of the real size, for new users.
    let record = serde_json::to_vec(&json!({ "pad": "x".repeat(250), "m": metadata })).unwrap();
    let sign_in = |user: &str| {
        let entry = tollgate::engine::list::entry("AAAAAAAAAAAAAAAAAAAAAA", 1, later, later).unwrap();
        vec![
            WriteOp::Put {
                key: tollgate::engine::record::session_key(user, "AAAAAAAAAAAAAAAAAAAAAA"),
                value: record[..320.min(record.len())].to_vec().into(),
                expect: Expect::Absent,
                expires_at: later,
            },
            WriteOp::Append { key: tollgate::engine::record::index_key(user), entry: entry.into(), max_entries: 100, expires_at: later },
        ]
    };
    let prefix = codec::KeyPrefix::new("tgfloor:").unwrap();
    for (label, cmd, name) in
        [("one-trip sign-in commit by EVALSHA", "EVALSHA", commit.as_str()), ("the same by FCALL", "FCALL", "tgcost_commit")]
    {
        reset(raw).await;
        for i in 0..n {
            let call = codec::encode_commit(&prefix, &sign_in(&format!("{cmd}-{run}-{i}")), tag().max(1));
            let mut c = redis::cmd(cmd);
            c.arg(name).arg(call.keys.len()).arg(&call.keys);
            for a in &call.args {
                c.arg(&a[..]);
            }
            let done: i64 = c.query_async(raw).await.unwrap();
            assert_eq!(done, 1);
        }
        println!("{label:<52} {:>10.2}", stat(raw, if cmd == "FCALL" { "fcall" } else { "evalsha" }).await);
    }
    let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("tgcost").query_async(raw).await.unwrap();
}

fn tag() -> u64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    u64::from_le_bytes(b)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let host = env_or("TG_TEST_REDIS_HOST", "127.0.0.1");
    let port: u16 = env_or("TG_TEST_REDIS_PORT", "16379").parse().unwrap();
    let password = std::env::var("TG_TEST_REDIS_PASSWORD").ok();
    let n: usize = env_or("COST_SESSIONS", "2000").parse().unwrap();
    let prefix = "tgcost:";

    let mut config = RedisConfig::server(host.clone(), port).key_prefix(prefix);
    let mut url = format!("redis://{host}:{port}/0");
    if let Some(pw) = &password {
        config = config.password(pw.clone());
        url = format!("redis://:{pw}@{host}:{port}/0");
    }
    let store = RedisStore::connect(config).await.expect("the Redis server answers");
    let mut raw = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let config = tollgate::Config::builder()
        .secret(b"a benchmark secret of at least 32 bytes".to_vec())
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .unwrap();
    let sessions = SessionManager::new(config.clone(), store.clone()).unwrap();
    // What a web sign-in typically keeps with a session.
    let metadata =
        json!({ "device": "laptop", "ip": "203.0.113.7", "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" });
    let mut claims = Map::new();
    claims.insert("role".into(), json!("member"));
    sessions.issue(&format!("warm-{}", tag()), claims.clone(), metadata.clone()).await.unwrap();

    println!("INFO commandstats on {host}:{port}: EVALSHA server time per call");
    println!("{:<52} {:>7} {:>10}", "commit", "calls", "usec/call");

    reset(&mut raw).await;
    let mut live: Vec<Tokens> = Vec::with_capacity(n);
    for i in 0..n {
        live.push(sessions.issue(&format!("cost-{i}-{}", tag()), claims.clone(), metadata.clone()).await.unwrap());
    }
    report(&mut raw, "issue (new session + index)").await;

    reset(&mut raw).await;
    for t in live.iter_mut() {
        *t = sessions.refresh(&t.refresh_token).await.unwrap();
    }
    report(&mut raw, "refresh (session record, 1st rotation)").await;

    // One user with a second session: issue updates an index that already exists.
    reset(&mut raw).await;
    for t in live.iter() {
        sessions.issue(&t.session.user, claims.clone(), metadata.clone()).await.unwrap();
    }
    report(&mut raw, "issue, second session of the user (index grows)").await;

    // A long chain rotated in a burst (every link inside the grace window): the record keeps
    // the newest 8 links (earlier releases: also up to 64 retired hashes).
    let mut long = sessions.issue(&format!("cost-long-{}", tag()), claims.clone(), metadata.clone()).await.unwrap();
    for _ in 0..69 {
        long = sessions.refresh(&long.refresh_token).await.unwrap();
    }
    reset(&mut raw).await;
    for _ in 0..(n / 4).max(100) {
        long = sessions.refresh(&long.refresh_token).await.unwrap();
    }
    report(&mut raw, "refresh, session past 70 rotations").await;

    reset(&mut raw).await;
    for t in live.iter() {
        sessions.revoke(&t.session.user, &t.session.sid).await.unwrap();
    }
    report(&mut raw, "revoke (tombstone + index)").await;

    // At the limit (single-session mode, a user with a session): the append is refused
    // (one EVALSHA), the index and the evicted record are read, then the read path commits.
    let single = tollgate::Config::builder()
        .secret(b"a benchmark secret of at least 32 bytes".to_vec())
        .issuer("https://auth.example")
        .audience("api")
        .max_sessions_per_user(1)
        .build()
        .unwrap();
    let single = SessionManager::new(single, store.clone()).unwrap();
    let users: Vec<String> = (0..n / 2).map(|i| format!("cost-full-{i}-{}", tag())).collect();
    for u in &users {
        single.issue(u, claims.clone(), metadata.clone()).await.unwrap();
    }
    reset(&mut raw).await;
    for u in &users {
        single.issue(u, claims.clone(), metadata.clone()).await.unwrap();
    }
    report(&mut raw, "issue at the limit (refused append, then evicting)").await;
    println!("  ({} sign-ins: {:.2} EVALSHA each)", users.len(), command_stats(&mut raw, "evalsha").await.0 as f64 / users.len() as f64);

    floor(&mut raw, n, &metadata).await;

    // The issue's measure: one session after 70 rotations, each a minute after the last
    // (past the grace window, as a real client refreshes), on a clock this example moves.
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let clock = std::sync::Arc::new(tollgate::ManualClock::new(start));
    let paced = SessionManager::new(config.clone(), store.clone()).unwrap().with_clock(clock.clone());
    let mut seventy = paced.issue(&format!("cost-70-{}", tag()), claims.clone(), metadata.clone()).await.unwrap();
    for _ in 0..70 {
        clock.advance(60_000);
        seventy = paced.refresh(&seventy.refresh_token).await.unwrap();
    }
    let key70 = format!("{prefix}{}", tollgate::engine::record::session_key(&seventy.session.user, &seventy.session.sid));
    println!(
        "a session record after {} rotations: value {} B, MEMORY USAGE {} B (key {} B)",
        seventy.session.generation,
        strlen(&mut raw, &key70).await,
        memory_usage(&mut raw, &key70).await,
        key70.len()
    );

    let first = &live[0].session;
    let record = strlen(&mut raw, &format!("{prefix}{}", tollgate::engine::record::session_key(&first.user, &first.sid))).await;
    let index = strlen(&mut raw, &format!("{prefix}{}", tollgate::engine::record::index_key(&first.user))).await;
    let long_record =
        strlen(&mut raw, &format!("{prefix}{}", tollgate::engine::record::session_key(&long.session.user, &long.session.sid))).await;
    println!();
    println!("stored value sizes (header included): a revoked record {record} B, an index of 1 live session {index} B, a record after {} rotations {long_record} B", long.session.generation);
}
