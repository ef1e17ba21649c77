//! Faults on real Redis servers: a single server killed and restarted, a
//! Sentinel failover and a Cluster failover, each during a bounded write loop
//! on loopback. Run them one at a time, after the conformance suite (they move
//! masters around): `scripts/redis.sh faults`.
#![cfg(feature = "redis")]
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

mod conformance;
#[path = "support/redis_env.rs"]
mod redis_env;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map};
use tollgate::engine::record::index_key;
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::store::CommitResult;
use tollgate::{ErrorCode, SessionManager, Store, VerifyMode};

fn manager(store: RedisStore) -> SessionManager<RedisStore> {
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("faults").build().unwrap();
    SessionManager::new(config, store).unwrap()
}

/// A redis-server this test started; killed (by its pid) when dropped.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        let bin = redis_env::var("TG_TEST_REDIS_SERVER_BIN");
        let dir = std::env::temp_dir();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        Server(child)
    }
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "redis on {port} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn single_server_killed_and_restarted() {
    let port: u16 = redis_env::var("TG_TEST_REDIS_FAULT_PORT").parse().unwrap();
    let mut server = Server::start(port);
    wait_until_up(port).await;
    let store = redis_env::connect(RedisConfig::server("127.0.0.1", port)).await;
    let sessions = manager(store.clone());
    let user = conformance::unique_user("down");
    let t = sessions.issue(&user, Map::new(), json!({})).await.unwrap();
    sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();

    server.kill();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let issue = sessions.issue(&user, Map::new(), json!({})).await.unwrap_err();
        let verify = sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err();
        let refresh = sessions.refresh(&t.refresh_token).await.unwrap_err();
        slowest = slowest.max(started.elapsed() / 3);
        for e in [issue, verify, refresh] {
            assert_eq!(e.code(), ErrorCode::StoreUnavailable, "{e}");
        }
        // A stateless verify needs no store and keeps working.
        sessions.verify(&t.access_token, VerifyMode::Stateless).await.unwrap();
    }
    println!("while down: every call answered store_unavailable, the slowest in {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "failing took {slowest:?}");

    let _server = Server::start(port);
    wait_until_up(port).await;
    let back = Instant::now();
    let mut failed_after_restart = 0;
    loop {
        match sessions.issue(&user, Map::new(), json!({})).await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::StoreUnavailable);
                failed_after_restart += 1;
                assert!(back.elapsed() < Duration::from_secs(5), "no recovery 5 s after the restart");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    println!("after the restart: recovered in {:?}, {failed_after_restart} calls failed first", back.elapsed());
    // Fully working again (the restarted server lost its data: it had no persistence).
    for _ in 0..20 {
        let t = sessions.issue(&user, Map::new(), json!({})).await.unwrap();
        sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
        sessions.refresh(&t.refresh_token).await.unwrap();
    }
}

/// The outcome of one store's write loop.
#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<String>>,
    failed: AtomicU64,
    conflicts: AtomicU64,
}

/// Writes fresh keys (one new user each) until `stop`, recording which were acknowledged.
async fn write_loop(store: RedisStore, tally: Arc<Tally>, stop: Arc<AtomicBool>, tag: &'static str) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < 200_000 {
        n += 1;
        let key = index_key(&conformance::unique_user(tag));
        let op = WriteOp::Put {
            key: key.clone(),
            value: Bytes::from_static(b"w"),
            expect: Expect::Absent,
            expires_at: conformance::real_now() + 600_000,
        };
        match store.commit(vec![op]).await {
            Ok(CommitResult::Committed) => tally.acked.lock().unwrap().push(key),
            Ok(CommitResult::Conflict) => {
                tally.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if tally.failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    println!("  a {tag} commit failed: {e}");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// How many of `keys` `store` cannot find.
async fn count_missing(store: &RedisStore, keys: &[String]) -> usize {
    let mut missing = 0;
    for chunk in keys.chunks(200) {
        let got = store.get(chunk.to_vec()).await.unwrap();
        missing += got.iter().filter(|v| v.is_none()).count();
    }
    missing
}

async fn sentinel_master(sentinels: &[String]) -> String {
    for s in sentinels {
        let Ok(client) = redis::Client::open(format!("redis://{s}")) else { continue };
        let Ok(mut c) = client.get_multiplexed_async_connection().await else { continue };
        if let Ok(Some((host, port))) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(redis_env::var("TG_TEST_REDIS_SENTINEL_MASTER"))
            .query_async::<Option<(String, u16)>>(&mut c)
            .await
        {
            return format!("{host}:{port}");
        }
    }
    panic!("no sentinel answered");
}

/// Waits until the sentinels see a healthy group: a master with a replica in sync.
async fn sentinel_settled(sentinels: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let master = sentinel_master(sentinels).await;
        let mut c = redis_env::raw(&master).await;
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap_or_default();
        let synced = info.contains("role:master") && info.contains("state=online");
        if synced {
            return master;
        }
        assert!(Instant::now() < deadline, "the sentinel group did not settle: {info}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How a failover is brought about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// `SENTINEL FAILOVER`: the master stays up and is demoted.
    Forced,
    /// The master is killed (SIGKILL, by the pid its pidfile holds) and the
    /// sentinels replace it once it is down for 2 s; it comes back as a replica.
    Crash,
}

/// Kills the redis-server on `port` that scripts/redis.sh started, by its pidfile.
fn kill_node(port: &str) {
    let pidfile = format!("{}/redis-{port}.pid", redis_env::var("TG_TEST_REDIS_WORKDIR"));
    let pid = std::fs::read_to_string(&pidfile).unwrap_or_else(|_| panic!("no pidfile {pidfile}"));
    let status = Command::new("kill").arg("-9").arg(pid.trim()).status().unwrap();
    assert!(status.success(), "could not kill the master (pid {pid})");
}

/// Starts the node on `port` again as a replica of `master`, as scripts/redis.sh would.
fn restart_node_as_replica(port: &str, master: &str) {
    let work = redis_env::var("TG_TEST_REDIS_WORKDIR");
    let (mhost, mport) = master.rsplit_once(':').unwrap();
    let status = Command::new(redis_env::var("TG_TEST_REDIS_SERVER_BIN"))
        .args(["--port", port, "--bind", "127.0.0.1", "--daemonize", "yes"])
        .args(["--pidfile", &format!("{work}/redis-{port}.pid"), "--logfile", &format!("{work}/redis-{port}.log")])
        .args(["--dir", &work, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--protected-mode", "no"])
        .args(["--replicaof", mhost, mport])
        .status()
        .unwrap();
    assert!(status.success(), "could not restart the old master");
}

async fn sentinel_failover_round(min_replicas_to_write: bool, trigger: Trigger) -> (usize, usize) {
    let sentinels = redis_env::list("TG_TEST_REDIS_SENTINELS");
    let old_master = sentinel_settled(&sentinels).await;
    // The replica: whoever replicates from the master.
    let data_nodes: Vec<String> = {
        let mut c = redis_env::raw(&old_master).await;
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap();
        let mut nodes = vec![old_master.clone()];
        for line in info.lines().filter(|l| l.starts_with("slave")) {
            let ip = line.split("ip=").nth(1).and_then(|r| r.split(',').next()).unwrap();
            let port = line.split("port=").nth(1).and_then(|r| r.split(',').next()).unwrap();
            nodes.push(format!("{ip}:{port}"));
        }
        nodes
    };
    let (to_write, lag) = if min_replicas_to_write { ("1", "1") } else { ("0", "10") };
    for node in &data_nodes {
        let mut c = redis_env::raw(node).await;
        let _: () = redis::cmd("CONFIG").arg("SET").arg("min-replicas-to-write").arg(to_write).query_async(&mut c).await.unwrap();
        let _: () = redis::cmd("CONFIG").arg("SET").arg("min-replicas-max-lag").arg(lag).query_async(&mut c).await.unwrap();
    }

    let acked_store = redis_env::connect(redis_env::sentinel_config()).await;
    let plain_store = redis_env::connect(redis_env::sentinel_config().replica_acks(None)).await;
    assert_eq!(acked_store.current_master().unwrap(), old_master);
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, plain) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let mut loops = Vec::new();
    for _ in 0..4 {
        loops.push(tokio::spawn(write_loop(acked_store.clone(), acked.clone(), stop.clone(), "acked")));
        loops.push(tokio::spawn(write_loop(plain_store.clone(), plain.clone(), stop.clone(), "plain")));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = (acked.acked.lock().unwrap().len(), plain.acked.lock().unwrap().len());

    let started = Instant::now();
    let old_port = old_master.rsplit_once(':').unwrap().1.to_owned();
    match trigger {
        Trigger::Forced => {
            let mut c = redis_env::raw(&sentinels[0]).await;
            let _: () = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(redis_env::var("TG_TEST_REDIS_SENTINEL_MASTER"))
                .query_async(&mut c)
                .await
                .unwrap();
        }
        Trigger::Crash => kill_node(&old_port),
    }
    // Until both stores follow the new master and the acked one has written there for a while.
    let deadline = started + Duration::from_secs(25);
    let mut switched_at = None;
    loop {
        let moved = acked_store.current_master().unwrap() != old_master && plain_store.current_master().unwrap() != old_master;
        if moved && switched_at.is_none() {
            switched_at = Some(started.elapsed());
            if trigger == Trigger::Crash {
                restart_node_as_replica(&old_port, &acked_store.current_master().unwrap());
            }
        }
        if let Some(at) = switched_at {
            if started.elapsed() > at + Duration::from_secs(3) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the stores did not follow the failover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = (acked.acked.lock().unwrap().len() - before.0, plain.acked.lock().unwrap().len() - before.1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let new_master = sentinel_settled(&sentinels).await;
    assert_ne!(new_master, old_master);

    let reader = redis_env::connect(redis_env::sentinel_config()).await;
    let acked_keys = acked.acked.lock().unwrap().clone();
    let plain_keys = plain.acked.lock().unwrap().clone();
    let lost_acked = count_missing(&reader, &acked_keys).await;
    let lost_plain = count_missing(&reader, &plain_keys).await;
    println!(
        "sentinel {} {old_master} -> {new_master} (min-replicas-to-write {to_write}): stores followed in {:?}",
        if trigger == Trigger::Crash { "master killed" } else { "forced failover" },
        switched_at.unwrap()
    );
    for (name, tally, lost, after) in
        [("replica_acks on ", &acked, lost_acked, during.0), ("replica_acks off", &plain, lost_plain, during.1)]
    {
        println!(
            "  {name}: {} acknowledged ({after} from the failover on), {} failed with store_unavailable, {} conflicts, {lost} acknowledged writes LOST",
            tally.acked.lock().unwrap().len(),
            tally.failed.load(Ordering::Relaxed),
            tally.conflicts.load(Ordering::Relaxed),
        );
    }
    assert!(acked_store.stats().master_switches >= 1);
    // The restarted node has the defaults already; the other keeps this round's.
    for node in &data_nodes {
        let mut c = redis_env::raw(node).await;
        let _: () = redis::cmd("CONFIG").arg("SET").arg("min-replicas-to-write").arg("0").query_async(&mut c).await.unwrap();
    }
    (lost_acked, lost_plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sentinel_failover_loses_no_acknowledged_write() {
    let (lost_acked, _lost_plain) = sentinel_failover_round(false, Trigger::Forced).await;
    assert_eq!(lost_acked, 0, "a commit confirmed by a replica was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sentinel_failover_with_min_replicas_to_write() {
    let (lost_acked, _lost_plain) = sentinel_failover_round(true, Trigger::Forced).await;
    assert_eq!(lost_acked, 0, "a commit confirmed by a replica was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sentinel_master_killed_loses_no_acknowledged_write() {
    let (lost_acked, _lost_plain) = sentinel_failover_round(false, Trigger::Crash).await;
    assert_eq!(lost_acked, 0, "a commit confirmed by a replica was lost");
}

/// A replica in sync and its master, from the shard whose master changed
/// longest ago (lowest config epoch): Redis refuses a replica a new election
/// for a while after one, and a manual failover asked too soon stalls, with
/// its master's writes paused for up to 5 s.
async fn cluster_replica(nodes: &[String]) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = redis_env::raw(&nodes[0]).await;
        let table: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await.unwrap();
        // <id> <ip:port@cport> <flags> <master-id> <ping> <pong> <epoch> <link> <slots...>
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        let addr = |row: &Vec<&str>| row[1].split('@').next().unwrap().to_owned();
        let mut masters: Vec<&Vec<&str>> = rows.iter().filter(|r| r[2].contains("master") && r.len() > 8).collect();
        masters.sort_by_key(|r| r[6].parse::<u64>().unwrap_or(u64::MAX));
        for m in masters {
            for r in rows.iter().filter(|r| r[3] == m[0] && r[2].contains("slave") && r[7] == "connected") {
                let mut rc = redis_env::raw(&addr(r)).await;
                let info: String = redis::cmd("INFO").arg("replication").query_async(&mut rc).await.unwrap();
                if info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0") {
                    return (addr(r), addr(m));
                }
            }
        }
        assert!(Instant::now() < deadline, "no replica in sync in the cluster");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn cluster_failover_is_invisible_to_callers() {
    let nodes = redis_env::list("TG_TEST_REDIS_CLUSTER");
    let (replica, master) = cluster_replica(&nodes).await;
    let store = redis_env::connect(redis_env::cluster_config()).await;
    let sessions = Arc::new(manager(store.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let session_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let session_ops = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for _ in 0..3 {
        loops.push(tokio::spawn(write_loop(store.clone(), tally.clone(), stop.clone(), "cl")));
        let (sessions, stop, errors, ops) = (sessions.clone(), stop.clone(), session_errors.clone(), session_ops.clone());
        loops.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                let user = conformance::unique_user("clsess");
                let r = async {
                    let t = sessions.issue(&user, Map::new(), json!({})).await?;
                    sessions.verify(&t.access_token, VerifyMode::Strict).await?;
                    let t = sessions.refresh(&t.refresh_token).await?;
                    sessions.revoke(&user, &t.session.sid).await
                }
                .await;
                ops.fetch_add(4, Ordering::Relaxed);
                if let Err(e) = r {
                    errors.lock().unwrap().push(e.to_string());
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut c = redis_env::raw(&replica).await;
    // A manual failover gives up silently after 5 s when the master does not
    // cooperate (e.g. right after an earlier failover); ask again, at most 3 times.
    let mut asked = 0;
    'promote: loop {
        asked += 1;
        assert!(asked <= 3, "the replica {replica} was not promoted after 3 requests");
        let _: () = redis::cmd("CLUSTER").arg("FAILOVER").query_async(&mut c).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(7);
        while Instant::now() < deadline {
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut c).await.unwrap();
            if matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
                break 'promote;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let promoted_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let acked = tally.acked.lock().unwrap().clone();
    let mut missing = 0;
    for key in &acked {
        if store.get(vec![key.clone()]).await.unwrap()[0].is_none() {
            missing += 1;
        }
    }
    let errors = session_errors.lock().unwrap().clone();
    println!(
        "cluster failover {master} -> {replica}: promoted in {promoted_in:?} ({asked} request(s)); {} raw commits ({} failed, {missing} acknowledged lost), {} session calls ({} failed)",
        acked.len(),
        tally.failed.load(Ordering::Relaxed),
        session_ops.load(Ordering::Relaxed),
        errors.len()
    );
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "a commit failed during the failover");
    assert!(errors.is_empty(), "session calls failed: {:?}", &errors[..errors.len().min(5)]);
    assert_eq!(missing, 0);
    assert!(!acked.is_empty());
}
