//! Faults on real database servers: PostgreSQL crashed (immediate shutdown:
//! no checkpoint, recovery on start) and MariaDB killed (SIGKILL), each in the
//! middle of a write loop, then started again. Calls answer `store_unavailable`
//! within their deadline, the store recovers by itself, and no acknowledged
//! write is lost. Run by `scripts/sql.sh faults`, one test at a time (each
//! restarts a server the script started, through the script).
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#![allow(clippy::disallowed_methods)] // a test reads real time

mod conformance;
#[path = "support/sql_env.rs"]
mod sql_env;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map};
use sql_env::Db;
use tollgate::engine::record::index_key;
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::store::sql::{Dialect, SqlOptions, SqlStore};
use tollgate::store::CommitResult;
use tollgate::{ErrorCode, SessionManager, Store, StoreErrorKind, VerifyMode};

const DEADLINE: Duration = Duration::from_secs(2);
/// A call may overrun its deadline by the scheduler's slack on a loaded machine, no more.
const SLACK: Duration = Duration::from_millis(500);

/// `scripts/sql.sh kill|start <server>` on the set the script started.
fn script(action: &str, server: &str) {
    let status = Command::new("bash").arg(sql_env::var("TG_TEST_SQL_SCRIPT")).args([action, server]).status().unwrap();
    assert!(status.success(), "scripts/sql.sh {action} {server} failed");
}

#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<String>>,
    failures: Mutex<Vec<String>>,
    /// The slowest single commit, and the slowest session call (a read and a commit at most).
    slowest_commit: Mutex<Duration>,
    slowest_session_call: Mutex<Duration>,
}

fn longest(slot: &Mutex<Duration>, took: Duration) {
    let mut s = slot.lock().unwrap();
    *s = (*s).max(took);
}

async fn timed<T>(slot: &Mutex<Duration>, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    longest(slot, started.elapsed());
    out
}

async fn write_loop(store: SqlStore, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let key = index_key(&conformance::unique_user("fault"));
        let op = WriteOp::Put {
            key: key.clone(),
            value: Bytes::from_static(b"w"),
            expect: Expect::Absent,
            expires_at: conformance::real_now() + 3_600_000,
        };
        match timed(&tally.slowest_commit, store.commit(vec![op])).await {
            Ok(CommitResult::Committed) => tally.acked.lock().unwrap().push(key),
            Ok(CommitResult::Conflict) => panic!("a fresh key conflicted"),
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
                tally.failures.lock().unwrap().push(e.to_string());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Issue, strict verify and refresh in a loop; every failure must be `store_unavailable`.
async fn session_loop(sessions: Arc<SessionManager<SqlStore>>, tally: Arc<Tally>, stop: Arc<AtomicBool>) -> usize {
    let user = conformance::unique_user("fault-sessions");
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let slot = &tally.slowest_session_call;
        let step = async {
            let t = timed(slot, sessions.issue(&user, Map::new(), json!({}))).await?;
            timed(slot, sessions.verify(&t.access_token, VerifyMode::Strict)).await?;
            timed(slot, sessions.refresh(&t.refresh_token)).await
        };
        match step.await {
            Ok(_) => done += 1,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::StoreUnavailable, "{e}");
                tally.failures.lock().unwrap().push(e.to_string());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    done
}

async fn restarted_under_writes(dialect: Dialect, server: &str) {
    let db = Db::shared(dialect);
    let options = SqlOptions::default().operation_timeout(DEADLINE).sweep_interval(None);
    let store = db.store_with(options).await;
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("faults").build().unwrap();
    let sessions = Arc::new(SessionManager::new(config, store.clone()).unwrap());
    let before = sessions.issue(&conformance::unique_user("fault-before"), Map::new(), json!({})).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let writers: Vec<_> = (0..4).map(|_| tokio::spawn(write_loop(store.clone(), tally.clone(), stop.clone()))).collect();
    let session_task = tokio::spawn(session_loop(sessions.clone(), tally.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked_before = tally.acked.lock().unwrap().len();

    script("kill", server);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed_while_down = tally.failures.lock().unwrap().len();
    let restarting = Instant::now();
    script("start", server);
    let started_in = restarting.elapsed();
    // Recovered: a write acknowledged after the server is back.
    let back = Instant::now();
    let acked_at_start = tally.acked.lock().unwrap().len();
    while tally.acked.lock().unwrap().len() == acked_at_start {
        assert!(back.elapsed() < Duration::from_secs(15), "no write succeeded 15 s after {server} came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered_in = back.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let session_rounds = session_task.await.unwrap();

    let acked = tally.acked.lock().unwrap().clone();
    let mut lost = 0;
    for chunk in acked.chunks(100) {
        lost += store.get(chunk.to_vec()).await.unwrap().iter().filter(|v| v.is_none()).count();
    }
    let failures = tally.failures.lock().unwrap().clone();
    let (slowest_commit, slowest_call) = (*tally.slowest_commit.lock().unwrap(), *tally.slowest_session_call.lock().unwrap());
    println!(
        "{server}: {} writes acknowledged ({acked_before} before the crash), {lost} LOST; {} calls answered store_unavailable \
         ({failed_while_down} by the time it restarted); slowest commit {slowest_commit:?}, slowest session call {slowest_call:?} \
         (deadline {DEADLINE:?} per store call); restart took {started_in:?}, first acknowledged write {recovered_in:?} after it; \
         {session_rounds} issue/verify/refresh rounds",
        acked.len(),
        failures.len(),
    );
    if let Some(first) = failures.first() {
        println!("  first failure: {first}");
    }
    assert_eq!(lost, 0, "acknowledged writes were lost");
    assert!(failed_while_down > 0, "nothing failed while {server} was down: was it?");
    assert!(slowest_commit <= DEADLINE + SLACK, "a commit took {slowest_commit:?}, past its deadline");
    assert!(slowest_call <= 2 * DEADLINE + SLACK, "a session call took {slowest_call:?}, past its two store calls' deadlines");
    assert!(acked.len() > acked_at_start, "writes resumed");
    // The session written before the crash still verifies and refreshes.
    sessions.verify(&before.access_token, VerifyMode::Strict).await.unwrap();
    sessions.refresh(&before.refresh_token).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn postgres_crashed_and_restarted_under_writes() {
    restarted_under_writes(Dialect::Postgres, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn mariadb_killed_and_restarted_under_writes() {
    restarted_under_writes(Dialect::MySql, "mariadb").await;
}
