//! The conformance suite on a real Redis: one server, a Sentinel group and a
//! Cluster, plus the Redis store's own checks. Every test is `#[ignore]`: run
//! them with `scripts/redis.sh`, which starts the servers and sets the
//! variables (a test whose server is missing fails, it never skips).
#![cfg(feature = "redis")]

mod conformance;
#[path = "support/redis_env.rs"]
mod redis_env;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map};
use tollgate::engine::record::{index_key, session_key};
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::metrics::SecurityEvent::{ConflictRetried, MemoryStale, RefreshFromMemory, RevokeFromMemory};
use tollgate::store::redis::{codec, RedisStore};
use tollgate::store::CommitResult;
use tollgate::{ErrorCode, ManualClock, SessionManager, Store, VerifyMode};

/// The store under test and a second client (its own connection) for one configuration.
async fn pair(config: tollgate::store::redis::RedisConfig) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let config = redis_env::patient(config);
    (Arc::new(redis_env::connect(config.clone()).await), Arc::new(redis_env::connect(config).await))
}

#[derive(Default)]
struct RedisSingle;
impl conformance::Factory for RedisSingle {
    const LABEL: &'static str = "redis-single";
    async fn make(&self, _clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
        pair(redis_env::single_config()).await
    }
}

#[derive(Default)]
struct RedisSentinel;
impl conformance::Factory for RedisSentinel {
    const LABEL: &'static str = "redis-sentinel";
    async fn make(&self, _clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
        pair(redis_env::sentinel_config()).await
    }
}

#[derive(Default)]
struct RedisCluster;
impl conformance::Factory for RedisCluster {
    const LABEL: &'static str = "redis-cluster";
    async fn make(&self, _clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
        pair(redis_env::cluster_config()).await
    }
}

mod single {
    use super::*;
    conformance_suite!(RedisSingle, #[ignore]);
}
mod sentinel {
    use super::*;
    conformance_suite!(RedisSentinel, #[ignore]);
}
mod cluster {
    use super::*;
    conformance_suite!(RedisCluster, #[ignore]);
}

fn now_ms() -> u64 {
    conformance::real_now()
}

/// The commit script run by `EVAL` with `call`'s keys and arguments, as a client library would send it.
fn eval(call: &codec::CommitCall) -> redis::Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(codec::COMMIT_SCRIPT).arg(call.keys.len()).arg(&call.keys);
    for arg in &call.args {
        c.arg(&arg[..]);
    }
    c
}

fn put(key: &str, value: &'static [u8], expect: Expect, expires_at: u64) -> WriteOp {
    WriteOp::Put { key: key.to_owned(), value: Bytes::from_static(value), expect, expires_at }
}

#[tokio::test]
#[ignore]
async fn keys_carry_the_prefix_values_the_header_and_expire_with_pxat() {
    let store = redis_env::connect(redis_env::single_config().key_prefix("tgtest:")).await;
    let user = conformance::unique_user("prefix");
    let key = index_key(&user);
    let expires_at = now_ms() + 60_000;
    assert_eq!(store.commit(vec![put(&key, b"v", Expect::Absent, expires_at)]).await.unwrap(), CommitResult::Committed);
    let version = store.get(vec![key.clone()]).await.unwrap()[0].as_ref().unwrap().version;
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let full = format!("tgtest:{key}");
    let stored: Vec<u8> = redis::cmd("GET").arg(&full).query_async(&mut raw).await.unwrap();
    assert_eq!(stored, codec::encode_value(version, b"v"), "0xF1, the version big-endian, the value");
    assert_eq!(stored[0], 0xF1);
    assert_ne!(version, 0);
    let at: i64 = redis::cmd("PEXPIRETIME").arg(&full).query_async(&mut raw).await.unwrap();
    assert_eq!(at as u64, expires_at, "the key expires when the record does");
    // No version counter: versions come with each commit.
    let counters: i64 = redis::cmd("EXISTS").arg(format!("tgtest:ver:{{u:{user}}}")).query_async(&mut raw).await.unwrap();
    assert_eq!(counters, 0);
    // Nothing is written without the prefix.
    let bare: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut raw).await.unwrap();
    assert!(bare.is_none());
}

#[tokio::test]
#[ignore]
async fn every_put_of_a_commit_carries_its_version() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let user = conformance::unique_user("onever");
    let (a, b) = (index_key(&user), session_key(&user, "AAAAAAAAAAAAAAAAAAAAAA"));
    let later = now_ms() + 60_000;
    store.commit(vec![put(&a, b"a", Expect::Absent, later), put(&b, b"b", Expect::Absent, later)]).await.unwrap();
    let got = store.get(vec![a.clone(), b.clone()]).await.unwrap();
    let (va, vb) = (got[0].as_ref().unwrap().version, got[1].as_ref().unwrap().version);
    assert_eq!(va, vb);
    store.commit(vec![put(&a, b"a2", Expect::Version(va), later)]).await.unwrap();
    assert_ne!(store.get(vec![a]).await.unwrap()[0].as_ref().unwrap().version, va, "a new commit, a new version");
}

/// A put whose expiry has passed (by the server's clock) leaves no key, whatever it expected.
#[tokio::test]
#[ignore]
async fn a_put_already_expired_leaves_no_key() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let user = conformance::unique_user("past");
    let (a, b) = (index_key(&user), session_key(&user, "AAAAAAAAAAAAAAAAAAAAAA"));
    let past = now_ms() - 1_000;
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let exists = |k: &str| redis::cmd("EXISTS").arg(format!("tg:{k}")).to_owned();
    // Expecting absence (the script's SET NX path) and expecting anything.
    assert_eq!(
        store.commit(vec![put(&a, b"x", Expect::Absent, past), put(&b, b"y", Expect::Any, 0)]).await.unwrap(),
        CommitResult::Committed
    );
    assert_eq!(exists(&a).query_async::<i64>(&mut raw).await.unwrap(), 0);
    assert_eq!(exists(&b).query_async::<i64>(&mut raw).await.unwrap(), 0);
    // Over a live value expected by version: the value is gone.
    store.commit(vec![put(&a, b"live", Expect::Absent, now_ms() + 60_000)]).await.unwrap();
    let v = store.get(vec![a.clone()]).await.unwrap()[0].as_ref().unwrap().version;
    assert_eq!(store.commit(vec![put(&a, b"dead", Expect::Version(v), past)]).await.unwrap(), CommitResult::Committed);
    assert_eq!(store.get(vec![a.clone()]).await.unwrap()[0], None);
}

/// What the client library does after a lost reply: the same commit sent again.
#[tokio::test]
#[ignore]
async fn a_commit_sent_twice_answers_committed_twice() {
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let user = conformance::unique_user("twice");
    let (a, b) = (index_key(&user), session_key(&user, "AAAAAAAAAAAAAAAAAAAAAA"));
    let later = now_ms() + 60_000;
    let prefix = codec::KeyPrefix::default();
    let ops = vec![put(&a, b"index", Expect::Absent, later), put(&b, b"record", Expect::Absent, later)];
    let first = codec::encode_commit(&prefix, &ops, 0x1234_5678_9abc_def0);
    assert_eq!(eval(&first).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(eval(&first).query_async::<i64>(&mut raw).await.unwrap(), 1, "the resend finds its own version: committed");
    // The same writes in another commit conflict: its expectations fail and its version is not there.
    let other = codec::encode_commit(&prefix, &ops, 0x0fed_cba9_8765_4321);
    assert_eq!(eval(&other).query_async::<i64>(&mut raw).await.unwrap(), 0);
    let store = redis_env::connect(redis_env::single_config()).await;
    let got = store.get(vec![a.clone(), b.clone()]).await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().version, 0x1234_5678_9abc_def0);
    assert_eq!(&got[1].as_ref().unwrap().value[..], b"record");
    // Overwritten by a later commit on one key, recognised on the other.
    let v = got[0].as_ref().unwrap().version;
    assert_eq!(store.commit(vec![put(&a, b"index2", Expect::Version(v), later)]).await.unwrap(), CommitResult::Committed);
    assert_eq!(eval(&first).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(&store.get(vec![a]).await.unwrap()[0].as_ref().unwrap().value[..], b"index2", "a resend writes nothing");
}

/// The one-trip sign-in's commit (a record created, an entry appended) sent twice:
/// committed twice, the entry appended once, also when the resend finds the list full.
#[tokio::test]
#[ignore]
async fn an_append_sent_twice_appends_once() {
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let user = conformance::unique_user("append-twice");
    let later = now_ms() + 60_000;
    let prefix = codec::KeyPrefix::default();
    let sign_in = |sid: &str, max_entries: u32| {
        vec![
            put(&session_key(&user, sid), b"record", Expect::Absent, later),
            WriteOp::Append { key: index_key(&user), entry: Bytes::from(sid.as_bytes().to_vec()), max_entries, expires_at: later },
        ]
    };
    let first = codec::encode_commit(&prefix, &sign_in("AAAAAAAAAAAAAAAAAAAAAA", 2), 11);
    assert_eq!(eval(&first).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(eval(&first).query_async::<i64>(&mut raw).await.unwrap(), 1, "the resend: committed");
    let second = codec::encode_commit(&prefix, &sign_in("BBBBBBBBBBBBBBBBBBBBBB", 2), 22);
    assert_eq!(eval(&second).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(eval(&second).query_async::<i64>(&mut raw).await.unwrap(), 1, "the resend on a full list: committed");
    let store = redis_env::connect(redis_env::single_config()).await;
    let index = store.get(vec![index_key(&user)]).await.unwrap().pop().flatten().unwrap();
    assert_eq!(index.version, 22);
    assert_eq!(tollgate::engine::list::header(&index.value).map(|h| h.0), Some(2), "each entry once");
    assert_eq!(&index.value[tollgate::engine::list::LIST_HEADER_LEN..], b"AAAAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBB");
    let third = codec::encode_commit(&prefix, &sign_in("CCCCCCCCCCCCCCCCCCCCCC", 2), 33);
    assert_eq!(eval(&third).query_async::<i64>(&mut raw).await.unwrap(), 0, "full: refused");
    let pttl: i64 = redis::cmd("PTTL").arg(prefix.key(&index_key(&user))).query_async(&mut raw).await.unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000, "the list expires with its entries ({pttl} ms)");
}

/// The one-trip revoke's commit (a tombstone expecting the record's version, the index
/// entry removed) sent twice, as the client library may after a lost reply: committed
/// twice, the other entries and the list's expiry untouched.
#[tokio::test]
#[ignore]
async fn a_removal_sent_twice_is_committed_twice_and_removes_once() {
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let store = redis_env::connect(redis_env::single_config()).await;
    let user = conformance::unique_user("remove-twice");
    let later = now_ms() + 60_000;
    let prefix = codec::KeyPrefix::default();
    let (a, b) = ("AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB");
    let entry = |sid: &str| tollgate::engine::list::entry(sid, 1, 2, 3).unwrap();
    let list = tollgate::engine::list::encode(&[entry(a), entry(b)], later);
    store.commit(vec![put(&session_key(&user, a), b"record", Expect::Absent, later)]).await.unwrap();
    store
        .commit(vec![WriteOp::Put { key: index_key(&user), value: Bytes::from(list), expect: Expect::Absent, expires_at: later }])
        .await
        .unwrap();
    let record = store.get(vec![session_key(&user, a)]).await.unwrap().pop().flatten().unwrap();
    let revoke = vec![
        put(&session_key(&user, a), b"tombstone", Expect::Version(record.version), later),
        WriteOp::Remove { key: index_key(&user), sid: a.to_owned() },
    ];
    let call = codec::encode_commit(&prefix, &revoke, 44);
    assert_eq!(eval(&call).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(eval(&call).query_async::<i64>(&mut raw).await.unwrap(), 1, "the resend: committed");
    let index = store.get(vec![index_key(&user)]).await.unwrap().pop().flatten().unwrap();
    assert_eq!(index.version, 44);
    assert_eq!(tollgate::engine::list::entries(&index.value).unwrap().len(), 1, "B stays");
    let pttl: i64 = redis::cmd("PTTL").arg(prefix.key(&index_key(&user))).query_async(&mut raw).await.unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000, "the list keeps its expiry ({pttl} ms)");
    // A removal of B, sent twice: the emptied list is deleted, and the resend still answers 1.
    let tomb = store.get(vec![session_key(&user, a)]).await.unwrap().pop().flatten().unwrap();
    let last = vec![
        put(&session_key(&user, a), b"tombstone2", Expect::Version(tomb.version), later),
        WriteOp::Remove { key: index_key(&user), sid: b.to_owned() },
    ];
    let call = codec::encode_commit(&prefix, &last, 55);
    assert_eq!(eval(&call).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert_eq!(eval(&call).query_async::<i64>(&mut raw).await.unwrap(), 1);
    assert!(store.get(vec![index_key(&user)]).await.unwrap()[0].is_none());
}

#[tokio::test]
#[ignore]
async fn short_expiry_is_honoured_by_redis() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let key = index_key(&conformance::unique_user("short"));
    store.commit(vec![put(&key, b"v", Expect::Absent, now_ms() + 150)]).await.unwrap();
    assert!(store.get(vec![key.clone()]).await.unwrap()[0].is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.get(vec![key.clone()]).await.unwrap()[0].is_none(), "expired values read as nothing");
    assert_eq!(store.commit(vec![put(&key, b"w", Expect::Absent, now_ms() + 60_000)]).await.unwrap(), CommitResult::Committed);
}

#[tokio::test]
#[ignore]
async fn versions_never_repeat_across_delete_and_recreate() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let key = session_key(&conformance::unique_user("aba"), "AAAAAAAAAAAAAAAAAAAAAA");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        store.commit(vec![put(&key, b"v", Expect::Absent, now_ms() + 60_000)]).await.unwrap();
        let v = store.get(vec![key.clone()]).await.unwrap().pop().unwrap().unwrap().version;
        assert!(seen.insert(v), "version {v} came back");
        store.commit(vec![WriteOp::Delete { key: key.clone(), expect: Expect::Version(v) }]).await.unwrap();
    }
}

#[tokio::test]
#[ignore]
async fn commits_survive_script_flush() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let key = index_key(&conformance::unique_user("flush"));
    store.commit(vec![put(&key, b"a", Expect::Absent, now_ms() + 60_000)]).await.unwrap();
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    let before = store.stats();
    assert_eq!(store.commit(vec![put(&key, b"b", Expect::Any, now_ms() + 60_000)]).await.unwrap(), CommitResult::Committed);
    let after = store.stats();
    assert_eq!(after.script_loads, before.script_loads + 1);
    assert_eq!(after.round_trips, before.round_trips + 2, "EVALSHA, then EVAL once");
    store.commit(vec![put(&key, b"c", Expect::Any, now_ms() + 60_000)]).await.unwrap();
    assert_eq!(store.stats().round_trips, after.round_trips + 1, "cached again");
}

#[tokio::test]
#[ignore]
async fn foreign_values_read_as_corrupt_not_panic() {
    let store = redis_env::connect(redis_env::single_config()).await;
    let mut raw = redis_env::raw(&redis_env::var("TG_TEST_REDIS_URL")).await;
    // Garbage, a header cut short, and the Rust store's old format (16 hex digits of version).
    for garbage in [&b"short"[..], &[0xF1, 0, 0, 0][..], &b"00000000000000ff{\"v\":1}"[..]] {
        let key = index_key(&conformance::unique_user("foreign"));
        let _: () = redis::cmd("SET").arg(format!("tg:{key}")).arg(garbage).arg("PX").arg(60_000).query_async(&mut raw).await.unwrap();
        let err = store.get(vec![key.clone()]).await.unwrap_err();
        assert_eq!(tollgate::Error::from(err).code(), ErrorCode::StoreCorrupt);
        // A version expectation cannot match it; an `Any` write replaces it.
        assert_eq!(store.commit(vec![put(&key, b"x", Expect::Version(0), now_ms() + 60_000)]).await.unwrap(), CommitResult::Conflict);
        assert_eq!(store.commit(vec![put(&key, b"x", Expect::Any, now_ms() + 60_000)]).await.unwrap(), CommitResult::Committed);
    }
    // A session whose record is in the old format: strict verify and refresh answer store_corrupt.
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("old").build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap();
    let user = conformance::unique_user("oldfmt");
    let t = sessions.issue(&user, Map::new(), json!({})).await.unwrap();
    let record_key = format!("tg:{}", session_key(&user, &t.session.sid));
    let stored: Vec<u8> = redis::cmd("GET").arg(&record_key).query_async(&mut raw).await.unwrap();
    let old_format = [format!("{:016x}", 7).into_bytes(), stored[codec::HEADER_LEN..].to_vec()].concat();
    let _: () = redis::cmd("SET").arg(&record_key).arg(old_format).arg("PX").arg(60_000).query_async(&mut raw).await.unwrap();
    assert_eq!(sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::StoreCorrupt);
    assert_eq!(sessions.refresh(&t.refresh_token).await.unwrap_err().code(), ErrorCode::StoreCorrupt);
    // A key of another Redis type (the npm package's old hashes): a commit touching it is store_corrupt.
    let user = conformance::unique_user("hash");
    let _: () = redis::cmd("HSET")
        .arg(format!("tg:{}", index_key(&user)))
        .arg("v")
        .arg("[]")
        .arg("ver")
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(sessions.issue(&user, Map::new(), json!({})).await.unwrap_err().code(), ErrorCode::StoreCorrupt);
}

async fn count_round_trips(store: RedisStore) {
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("rt").build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap();
    let user = conformance::unique_user("rt");
    // Warm up: the first commit on a server may load the script (one more round trip).
    sessions.issue(&conformance::unique_user("warm"), Map::new(), json!({})).await.unwrap();
    let n = || store.stats().round_trips;
    let a = n();
    let t = sessions.issue(&user, Map::new(), json!({})).await.unwrap();
    let issue = n() - a;
    let a = n();
    sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    let verify = n() - a;
    let a = n();
    let t = sessions.refresh(&t.refresh_token).await.unwrap();
    let refresh = n() - a;
    let a = n();
    sessions.revoke(&user, &t.session.sid).await.unwrap();
    let revoke = n() - a;
    println!("{}: issue {issue}, strict verify {verify}, refresh {refresh}, revoke {revoke}", store.topology());
    assert_eq!(verify, 1, "strict verify is one round trip");
    assert_eq!(issue, 1, "a sign-in under the limit is one round trip (the append)");
    assert_eq!(refresh, 1, "a refresh of a session this manager wrote is one round trip (the commit)");
    assert_eq!(revoke, 1, "a revoke of a session this manager wrote is one round trip (the commit removes the index entry)");
    assert!(sessions.list(&user).await.unwrap().is_empty(), "the revoked session left the index");
    assert_eq!(sessions.metrics().event_count(RevokeFromMemory), 1);
}

/// Two managers (two services) on one Redis, each with its memory of what it wrote:
/// every answer is the one a read gives, and the memory only saves round trips.
#[tokio::test]
#[ignore]
async fn remembered_records_never_outlive_what_another_manager_wrote() {
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("mem").build().unwrap();
    let (store_a, store_b) = (redis_env::connect(redis_env::single_config()).await, redis_env::connect(redis_env::single_config()).await);
    // One clock the test moves: a revoke-all covers sessions created before its millisecond.
    let clock = Arc::new(ManualClock::new(now_ms()));
    let a = SessionManager::new(config.clone(), store_a.clone()).unwrap().with_clock(clock.clone());
    let b = SessionManager::new(config, store_b.clone()).unwrap().with_clock(clock.clone());
    a.issue(&conformance::unique_user("warm"), Map::new(), json!({})).await.unwrap();
    let ra = || store_a.stats().round_trips;

    // A rotates what it wrote in one trip; B, which has no memory of it, in two.
    let user = conformance::unique_user("mem");
    let t = a.issue(&user, Map::new(), json!({})).await.unwrap();
    let n = ra();
    let t = a.refresh(&t.refresh_token).await.unwrap();
    assert_eq!(ra() - n, 1);
    let events = |m: &SessionManager<RedisStore>| (m.metrics().event_count(RefreshFromMemory), m.metrics().event_count(MemoryStale));
    assert_eq!(events(&a), (1, 0), "counted as a refresh from memory");
    let t = b.refresh(&t.refresh_token).await.unwrap();
    // A's memory is a generation behind the presented token: A reads, and tries no commit on memory.
    let n = ra();
    let t = a.refresh(&t.refresh_token).await.unwrap();
    assert_eq!(ra() - n, 2, "a read and a commit");
    assert_eq!(events(&a), (1, 0), "no commit was made on the memory, so none conflicted");
    a.verify(&t.access_token, VerifyMode::Strict).await.unwrap();

    // Revoked through B: A's memory still holds the live record; its commit conflicts, and the read answers.
    b.revoke(&user, &t.session.sid).await.unwrap();
    assert_eq!(a.refresh(&t.refresh_token).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    assert_eq!(events(&a), (1, 1), "the stale memory is counted");
    assert_eq!(a.metrics().event_count(ConflictRetried), 0, "and is not a lost race");

    // A revoke-all through B that cannot reach the record (the user's index was lost, as after
    // an eviction): only the marker tells, and A's commit expects it absent.
    let user = conformance::unique_user("memall");
    let t = a.issue(&user, Map::new(), json!({})).await.unwrap();
    let t = a.refresh(&t.refresh_token).await.unwrap();
    store_b.commit(vec![WriteOp::Delete { key: index_key(&user), expect: Expect::Any }]).await.unwrap();
    clock.advance(10);
    assert_eq!(b.revoke_all(&user, None).await.unwrap(), 0, "B knows no session of the user");
    let n = ra();
    assert_eq!(a.refresh(&t.refresh_token).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    assert_eq!(ra() - n, 2, "the commit on memory conflicted, then the read answered");
    assert_eq!(b.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::SessionRevoked);

    // Revokes: from A's memory one commit; through B (no memory of the record) a read of
    // the record and a commit; on A's stale memory (B rotated) the conflict, then a read.
    let user = conformance::unique_user("memrev");
    let (t1, t2, t3) = (
        a.issue(&user, Map::new(), json!({})).await.unwrap(),
        a.issue(&user, Map::new(), json!({})).await.unwrap(),
        a.issue(&user, Map::new(), json!({})).await.unwrap(),
    );
    let n = ra();
    a.revoke(&user, &t1.session.sid).await.unwrap();
    assert_eq!(ra() - n, 1, "one commit");
    assert_eq!(a.metrics().event_count(RevokeFromMemory), 1);
    let rb = || store_b.stats().round_trips;
    let n = rb();
    b.revoke(&user, &t2.session.sid).await.unwrap();
    assert_eq!(rb() - n, 2, "B reads the record, then commits");
    b.refresh(&t3.refresh_token).await.unwrap();
    let (stale, n) = (a.metrics().event_count(MemoryStale), ra());
    a.revoke(&user, &t3.session.sid).await.unwrap();
    assert_eq!(ra() - n, 3, "the commit on memory conflicted, then a read and a commit");
    assert_eq!(a.metrics().event_count(MemoryStale), stale + 1);
    assert_eq!(a.metrics().event_count(ConflictRetried), 0, "a stale memory is not a lost race");
    assert!(b.list(&user).await.unwrap().is_empty(), "every entry left the index");
    assert!(store_b.get(vec![index_key(&user)]).await.unwrap()[0].is_none(), "the emptied index is deleted");
    for t in [&t1, &t2, &t3] {
        assert_eq!(b.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    }

    // A manager told to remember nothing reads every time.
    let config = tollgate::Config::builder().secret(conformance::SECRET.to_vec()).issuer("mem").recent_writes(0).build().unwrap();
    let c = SessionManager::new(config, store_a.clone()).unwrap();
    let t = c.issue(&conformance::unique_user("nomem"), Map::new(), json!({})).await.unwrap();
    let n = ra();
    c.refresh(&t.refresh_token).await.unwrap();
    assert_eq!(ra() - n, 2);
}

#[tokio::test]
#[ignore]
async fn round_trips_per_operation_single() {
    count_round_trips(redis_env::connect(redis_env::single_config()).await).await;
}

#[tokio::test]
#[ignore]
async fn round_trips_per_operation_cluster() {
    count_round_trips(redis_env::connect(redis_env::cluster_config()).await).await;
}

#[tokio::test]
#[ignore]
async fn round_trips_per_operation_sentinel() {
    count_round_trips(redis_env::connect(redis_env::sentinel_config()).await).await;
}

#[tokio::test]
#[ignore]
async fn caps_state_what_holds() {
    let single = redis_env::connect(redis_env::single_config()).await;
    assert!(single.caps().atomic && single.caps().consistent);
    assert_eq!(single.caps().min_ttl_ms, 1);
    let cluster = redis_env::connect(redis_env::cluster_config()).await;
    assert!(cluster.caps().atomic && cluster.caps().consistent);
    let sentinel = redis_env::connect(redis_env::sentinel_config()).await;
    assert!(sentinel.caps().atomic && !sentinel.caps().consistent);
    assert!(sentinel.current_master().is_some());
}

#[tokio::test]
#[ignore]
async fn debug_never_shows_the_password() {
    let config = redis_env::single_config();
    let store = redis_env::connect(config.clone()).await;
    let url = redis_env::var("TG_TEST_REDIS_URL");
    let password = url.split('@').next().unwrap().rsplit(':').next().unwrap().to_owned();
    assert!(!password.is_empty());
    assert!(!format!("{config:?}").contains(&password));
    assert!(!format!("{store:?}").contains(&password));
    // A wrong password is refused with a message that does not echo it.
    let wrong = redis_env::single_config().password("not-the-password-xyz");
    let err = RedisStore::connect(wrong).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreUnavailable);
    assert!(!err.to_string().contains("not-the-password-xyz"), "{err}");
}

/// The conformance suite again, over TLS (`rediss://`, a CA of the test's own).
#[cfg(feature = "redis-tls")]
mod tls {
    use super::*;

    fn config() -> tollgate::store::redis::RedisConfig {
        let ca = std::fs::read(redis_env::var("TG_TEST_REDIS_TLS_CA")).expect("the test CA exists");
        tollgate::store::redis::RedisConfig::from_url(&redis_env::var("TG_TEST_REDIS_TLS_URL")).unwrap().tls_root_ca(ca)
    }

    #[derive(Default)]
    struct RedisTls;
    impl conformance::Factory for RedisTls {
        const LABEL: &'static str = "redis-tls";
        async fn make(&self, _clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
            pair(config()).await
        }
    }

    conformance_suite!(RedisTls, #[ignore]);

    #[tokio::test]
    #[ignore]
    async fn an_untrusted_certificate_is_refused() {
        // The system's roots do not know the test CA.
        let untrusted = tollgate::store::redis::RedisConfig::from_url(&redis_env::var("TG_TEST_REDIS_TLS_URL")).unwrap();
        let err = RedisStore::connect(untrusted).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreUnavailable, "{err}");
        // And a plain connection to the TLS port gets nowhere either.
        let plain = redis_env::var("TG_TEST_REDIS_TLS_URL").replace("rediss://", "redis://");
        let plain = tollgate::store::redis::RedisConfig::from_url(&plain).unwrap().operation_timeout(Duration::from_secs(2));
        assert!(RedisStore::connect(plain).await.is_err());
    }
}
