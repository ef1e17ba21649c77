//! A commit the Cluster client sent again is answered committed, once
//! (issue 11, finding 2): redis-rs sends a request again on a new connection
//! when its connection dropped before the reply came, so a commit that ran
//! runs twice; the second run finds the first's version in place. Run by
//! `scripts/redis.sh faults` (the nodes allow `DEBUG` from loopback).
#![cfg(feature = "redis")]
#![allow(clippy::disallowed_methods)] // a test reads real time

mod conformance;
#[path = "support/redis_env.rs"]
mod redis_env;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use tollgate::engine::record::index_key;
use tollgate::engine::step::{Versioned, WriteOp};
use tollgate::store::redis::RedisStore;
use tollgate::store::{Caps, CommitResult, StoreError};
use tollgate::{SessionManager, Store, VerifyMode};

/// The master serving `key`'s slot, as `host:port`.
async fn master_of(key: &str) -> String {
    let mut c = redis_env::raw(&redis_env::list("TG_TEST_REDIS_CLUSTER")[0]).await;
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut c).await.unwrap();
    // [[start, end, [host, port, id], replicas..], ..]
    let ranges: Vec<(i64, i64, (String, i64))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Vec<redis::Value>>(&mut c)
        .await
        .unwrap()
        .into_iter()
        .map(|range| {
            let redis::Value::Array(parts) = range else { panic!("CLUSTER SLOTS: a range is not an array") };
            let number = |v: &redis::Value| match v {
                redis::Value::Int(n) => *n,
                other => panic!("CLUSTER SLOTS: {other:?} is not a number"),
            };
            let redis::Value::Array(master) = &parts[2] else { panic!("CLUSTER SLOTS: no master") };
            let host = match &master[0] {
                redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                redis::Value::SimpleString(s) => s.clone(),
                other => panic!("CLUSTER SLOTS: host {other:?}"),
            };
            (number(&parts[0]), number(&parts[1]), (host, number(&master[1])))
        })
        .collect();
    let (_, _, (host, port)) =
        ranges.into_iter().find(|(start, end, _)| (*start..=*end).contains(&slot)).expect("a master serves every slot");
    format!("{host}:{port}")
}

/// Loses the reply of the next commit after it ran: the commit's node is held
/// in `DEBUG SLEEP` while the commit and then a `CLIENT KILL` of every other
/// connection reach it; when it wakes it runs the commit, then the kill, before
/// it writes any reply.
struct LoseTheCommitReply {
    store: RedisStore,
    node: String,
    armed: AtomicBool,
}

#[async_trait::async_trait]
impl Store for LoseTheCommitReply {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        self.store.get(keys).await
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            // Both connections open before the node sleeps (a new one could not say hello meanwhile).
            let (mut sleeper, mut killer) = (redis_env::raw(&self.node).await, redis_env::raw(&self.node).await);
            tokio::spawn(async move {
                let _: Result<(), _> = redis::cmd("DEBUG").arg("SLEEP").arg("1.5").query_async(&mut sleeper).await;
            });
            tokio::time::sleep(Duration::from_millis(150)).await;
            tokio::spawn(async move {
                // After the commit is written; its answer (the kill count) comes after the sleep.
                tokio::time::sleep(Duration::from_millis(400)).await;
                let _: Result<i64, _> =
                    redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").arg("SKIPME").arg("yes").query_async(&mut killer).await;
            });
        }
        self.store.commit(ops).await
    }

    fn caps(&self) -> Caps {
        self.store.caps()
    }
}

async fn evalsha_calls(node: &str) -> u64 {
    let mut c = redis_env::raw(node).await;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    info.lines().find(|l| l.starts_with("cmdstat_evalsha:")).and_then(|l| l.split(['=', ',']).nth(1)).map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn cluster_commit_sent_again_after_a_lost_reply_is_committed_once() {
    let store = redis_env::connect(redis_env::patient(redis_env::cluster_config())).await;
    let user = conformance::unique_user("resend");
    let node = master_of(&format!("{}{}", store.key_prefix(), index_key(&user))).await;
    let wrapped = Arc::new(LoseTheCommitReply { store: store.clone(), node: node.clone(), armed: AtomicBool::new(false) });
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("resend").build().unwrap();
    let sessions = SessionManager::new(config, wrapped.clone()).unwrap();

    let before = evalsha_calls(&node).await;
    wrapped.armed.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let issued = sessions.issue(&user, Map::new(), json!({ "device": "laptop" })).await;
    let ran = evalsha_calls(&node).await - before;
    println!("issue with its commit's reply lost on {node}: the commit script ran {ran} times, answered in {:?}", started.elapsed());
    let tokens = issued.expect("the issue is committed");
    assert!(ran >= 2, "the client did not send the commit again (it ran {ran} times): this run proves nothing");

    let listed = sessions.list(&user).await.unwrap();
    assert_eq!(listed.len(), 1, "one issue, one session: no orphan left by a commit answered as a conflict");
    assert_eq!(listed[0].sid, tokens.session.sid);
    sessions.verify(&tokens.access_token, VerifyMode::Strict).await.unwrap();
    let next = sessions.refresh(&tokens.refresh_token).await.unwrap();
    assert_eq!(next.session.sid, tokens.session.sid);
}
