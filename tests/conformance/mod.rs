//! The conformance suite: every store runs all of it.
//!
//! A store's test file implements [`Factory`] and invokes
//! `conformance_suite!(FactoryType, attributes..)`, which writes one test per
//! case. Cases use fresh random user ids, so stores shared between tests (a
//! Redis server) need no flushing. Time is a [`ManualClock`] the cases move;
//! stores that read time (memory) share it, stores that keep real time (Redis)
//! ignore it, and the core decides validity from each record's own expiry.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tollgate::engine::record::{hash_tag, index_key, session_key, user_cache_key, user_tag};
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::store::CommitResult;
use tollgate::{ConfigBuilder, ErrorCode, LimitPolicy, ManualClock, SessionManager, Store, VerifyMode};

pub trait Factory {
    type S: Store + 'static;
    fn make(&self, clock: Arc<ManualClock>) -> impl Future<Output = Self::S>;
}

pub const SECRET: &[u8] = b"conformance-secret-of-at-least-32-bytes!";
const MIN: u64 = 60_000;
const DAY: u64 = 24 * 60 * MIN;

pub fn real_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

pub fn unique_user(tag: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).unwrap();
    format!("{tag}-{:016x}", u64::from_le_bytes(b))
}

pub struct Env<S: Store + 'static> {
    pub clock: Arc<ManualClock>,
    pub sessions: Arc<SessionManager<S>>,
}

pub async fn env<F: Factory>(f: &F, tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Env<F::S> {
    let clock = Arc::new(ManualClock::new(real_now()));
    let store = f.make(clock.clone()).await;
    let config = tweak(tollgate::Config::builder().secret(SECRET.to_vec()).issuer("tollgate-tests")).build().unwrap();
    let sessions = SessionManager::new(config, store).unwrap().with_clock(clock.clone());
    Env { clock, sessions: Arc::new(sessions) }
}

fn meta() -> Value {
    json!({ "device": "test" })
}

async fn raw_get<S: Store>(s: &S, key: &str) -> Option<(Bytes, u64)> {
    s.get(vec![key.to_owned()]).await.unwrap().pop().unwrap().map(|v| (v.value, v.version))
}

/// Everything stored for a user: index and the given sessions, for "nothing changed" checks.
async fn user_state<S: Store>(s: &S, user: &str, sids: &[&str]) -> Vec<Option<Bytes>> {
    let mut keys = vec![index_key(user)];
    keys.extend(sids.iter().map(|sid| session_key(user, sid)));
    s.get(keys).await.unwrap().into_iter().map(|v| v.map(|v| v.value)).collect()
}

// ---- The store contract itself -------------------------------------------

pub async fn store_get_missing_is_none<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let s = e.sessions.store();
    let got = s.get(vec![index_key(&unique_user("u")), session_key(&unique_user("u"), "x")]).await.unwrap();
    assert_eq!(got, vec![None, None]);
}

fn put(key: &str, value: &str, expect: Expect, expires_at: u64) -> WriteOp {
    WriteOp::Put { key: key.to_owned(), value: Bytes::from(value.to_owned()), expect, expires_at }
}

pub async fn store_expectations<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let s = e.sessions.store();
    let user = unique_user("exp");
    let (a, b) = (index_key(&user), session_key(&user, "AAAAAAAAAAAAAAAAAAAAAA"));
    let later = real_now() + DAY;
    assert_eq!(s.commit(vec![put(&a, "one", Expect::Absent, later)]).await.unwrap(), CommitResult::Committed);
    let (v1, ver1) = raw_get(s, &a).await.unwrap();
    assert_eq!(&v1[..], b"one");
    // Absent fails on a present key and changes nothing.
    assert_eq!(s.commit(vec![put(&a, "two", Expect::Absent, later)]).await.unwrap(), CommitResult::Conflict);
    assert_eq!(raw_get(s, &a).await.unwrap(), (v1.clone(), ver1));
    // The right version applies and moves the version on.
    assert_eq!(s.commit(vec![put(&a, "two", Expect::Version(ver1), later)]).await.unwrap(), CommitResult::Committed);
    let (v2, ver2) = raw_get(s, &a).await.unwrap();
    assert_eq!(&v2[..], b"two");
    assert_ne!(ver1, ver2);
    // A stale version fails.
    assert_eq!(s.commit(vec![put(&a, "three", Expect::Version(ver1), later)]).await.unwrap(), CommitResult::Conflict);
    // Version on a missing key fails.
    assert_eq!(s.commit(vec![put(&b, "x", Expect::Version(ver2), later)]).await.unwrap(), CommitResult::Conflict);
    assert_eq!(raw_get(s, &b).await, None);
    // Any always applies.
    assert_eq!(s.commit(vec![put(&b, "any", Expect::Any, later)]).await.unwrap(), CommitResult::Committed);
    // Delete with a stale version fails, with the right one applies.
    let (_, verb) = raw_get(s, &b).await.unwrap();
    let del = |expect| WriteOp::Delete { key: b.clone(), expect };
    assert_eq!(s.commit(vec![del(Expect::Version(verb + 1000))]).await.unwrap(), CommitResult::Conflict);
    assert_eq!(s.commit(vec![del(Expect::Version(verb))]).await.unwrap(), CommitResult::Committed);
    assert_eq!(raw_get(s, &b).await, None);
    // Recreated keys get a version never seen before (no ABA).
    assert_eq!(s.commit(vec![put(&b, "again", Expect::Absent, later)]).await.unwrap(), CommitResult::Committed);
    let (_, verb2) = raw_get(s, &b).await.unwrap();
    assert_ne!(verb, verb2);
}

pub async fn store_commit_is_all_or_nothing<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let s = e.sessions.store();
    let user = unique_user("atomic");
    let (a, b, c) = (index_key(&user), session_key(&user, "AAAAAAAAAAAAAAAAAAAAAA"), session_key(&user, "BBBBBBBBBBBBBBBBBBBBBB"));
    let later = real_now() + DAY;
    s.commit(vec![put(&a, "a0", Expect::Absent, later)]).await.unwrap();
    let (_, va) = raw_get(s, &a).await.unwrap();
    // The last expectation fails: neither earlier write may land.
    let r = s
        .commit(vec![
            put(&b, "b1", Expect::Absent, later),
            put(&a, "a1", Expect::Version(va), later),
            put(&c, "c1", Expect::Version(va + 999), later),
        ])
        .await
        .unwrap();
    assert_eq!(r, CommitResult::Conflict);
    assert_eq!(raw_get(s, &b).await, None);
    assert_eq!(&raw_get(s, &a).await.unwrap().0[..], b"a0");
    assert_eq!(raw_get(s, &c).await, None);
    // All succeed together.
    let r = s
        .commit(vec![
            put(&b, "b1", Expect::Absent, later),
            put(&a, "a1", Expect::Version(va), later),
            WriteOp::Delete { key: c.clone(), expect: Expect::Any },
        ])
        .await
        .unwrap();
    assert_eq!(r, CommitResult::Committed);
    assert_eq!(&raw_get(s, &b).await.unwrap().0[..], b"b1");
    assert_eq!(&raw_get(s, &a).await.unwrap().0[..], b"a1");
}

pub async fn store_past_expiry_is_invisible<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let s = e.sessions.store();
    let user = unique_user("ttl");
    let a = index_key(&user);
    s.commit(vec![put(&a, "live", Expect::Absent, real_now() + DAY)]).await.unwrap();
    let (_, v) = raw_get(s, &a).await.unwrap();
    // Writing an expiry already past removes the value at once.
    s.commit(vec![put(&a, "dead", Expect::Version(v), real_now().saturating_sub(1000))]).await.unwrap();
    assert_eq!(raw_get(s, &a).await, None);
    // And an absent expectation now holds.
    assert_eq!(s.commit(vec![put(&a, "new", Expect::Absent, real_now() + DAY)]).await.unwrap(), CommitResult::Committed);
}

// ---- Sessions --------------------------------------------------------------

pub async fn full_flow<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let user = unique_user("flow");
    let mut claims = Map::new();
    claims.insert("role".into(), json!("admin"));
    let t = e.sessions.issue(&user, claims, meta()).await.unwrap();
    assert!(t.refresh_token.starts_with("tgr_"));
    let v = e.sessions.verify(&t.access_token, VerifyMode::Stateless).await.unwrap();
    assert_eq!(v.claims.sub, user);
    assert_eq!(v.claims.sid.as_deref(), Some(t.session.sid.as_str()));
    assert_eq!(v.claims.iss.as_deref(), Some("tollgate-tests"));
    assert_eq!(v.claims.to_json()["role"], json!("admin"));
    assert!(v.session.is_none());
    let v = e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    assert_eq!(v.session.as_ref().unwrap().metadata, meta());

    e.clock.advance(1000);
    let t2 = e.sessions.refresh(&t.refresh_token).await.unwrap();
    assert_ne!(t2.refresh_token, t.refresh_token);
    assert_eq!(t2.session.sid, t.session.sid);
    assert_eq!(t2.session.generation, 1);
    let v2 = e.sessions.verify(&t2.access_token, VerifyMode::Strict).await.unwrap();
    assert_eq!(v2.claims.to_json()["role"], json!("admin"), "custom claims survive rotation");

    let listed = e.sessions.list(&user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sid, t.session.sid);

    e.sessions.revoke(&user, &t.session.sid).await.unwrap();
    let err = e.sessions.verify(&t2.access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    let err = e.sessions.refresh(&t2.refresh_token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    // Stateless verification cannot see revocation: the token stays valid until it expires.
    assert!(e.sessions.verify(&t2.access_token, VerifyMode::Stateless).await.is_ok());
    assert!(e.sessions.list(&user).await.unwrap().is_empty());
    // Revocation is idempotent.
    e.sessions.revoke(&user, &t.session.sid).await.unwrap();
}

pub async fn rotation_grace_and_reuse<F: Factory>(f: &F) {
    let e = env(f, |b| b.refresh_grace(Duration::from_secs(10))).await;
    let user = unique_user("reuse");
    let t0 = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let t1 = e.sessions.refresh(&t0.refresh_token).await.unwrap();
    // Within the grace window the old token yields the same successor.
    e.clock.advance(5_000);
    let again = e.sessions.refresh(&t0.refresh_token).await.unwrap();
    assert_eq!(again.refresh_token, t1.refresh_token);
    // The chain moves on; a token two links back, still in its window, answers the head.
    let t2 = e.sessions.refresh(&t1.refresh_token).await.unwrap();
    let head = e.sessions.refresh(&t0.refresh_token).await.unwrap();
    assert_eq!(head.refresh_token, t2.refresh_token);
    // Past the window, presenting t0 is reuse: the whole session goes.
    e.clock.advance(10_001);
    let err = e.sessions.refresh(&t0.refresh_token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
    let err = e.sessions.refresh(&t2.refresh_token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    let err = e.sessions.verify(&t2.access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    assert!(e.sessions.list(&user).await.unwrap().is_empty());
}

pub async fn reuse_detected_long_after_rotation<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let user = unique_user("oldreuse");
    let t0 = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let mut cur = t0.refresh_token.clone();
    let mut stolen = String::new();
    for i in 0..20 {
        e.clock.advance(11 * 60_000);
        if i == 2 {
            stolen = cur.clone();
        }
        cur = e.sessions.refresh(&cur).await.unwrap().refresh_token;
    }
    let err = e.sessions.refresh(&stolen).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
}

pub async fn forged_refresh_secret_changes_nothing<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let user = unique_user("forge");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let before = user_state(e.sessions.store(), &user, &[&t.session.sid]).await;
    // Same locator, a different (valid-looking) secret: invalid, but it must not revoke.
    let (locator, _) = t.refresh_token.rsplit_once('.').unwrap();
    let forged = format!("{locator}.{}", "A".repeat(43));
    let err = e.sessions.refresh(&forged).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenInvalid);
    assert_eq!(user_state(e.sessions.store(), &user, &[&t.session.sid]).await, before);
    assert!(e.sessions.refresh(&t.refresh_token).await.is_ok());
}

pub async fn idle_and_absolute_expiry<F: Factory>(f: &F) {
    let e = env(f, |b| {
        b.idle_ttl(Duration::from_secs(3600))
            .absolute_ttl(Duration::from_secs(3 * 3600))
            .access_ttl(Duration::from_secs(600))
            .touch_interval(Duration::from_secs(60))
    })
    .await;
    let user = unique_user("idle");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    // Verifying slides the idle expiry (touch), refreshing too.
    e.clock.advance(50 * MIN);
    let mut cur = e.sessions.refresh(&t.refresh_token).await.unwrap();
    e.clock.advance(50 * MIN);
    cur = e.sessions.refresh(&cur.refresh_token).await.unwrap();
    e.clock.advance(50 * MIN);
    cur = e.sessions.refresh(&cur.refresh_token).await.unwrap();
    // 150 minutes in: alive thanks to sliding, but the absolute cap (180 min) holds.
    assert_eq!(cur.session.idle_expires_at, cur.session.absolute_expires_at.min(e.clock_now() + 60 * MIN));
    e.clock.advance(31 * MIN);
    let err = e.sessions.refresh(&cur.refresh_token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionExpired);

    // Idle expiry: an untouched session dies after its idle lifetime.
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.clock.advance(61 * MIN);
    let err = e.sessions.refresh(&t.refresh_token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    assert!(e.sessions.list(&user).await.unwrap().is_empty());
}

impl<S: Store + 'static> Env<S> {
    pub fn clock_now(&self) -> u64 {
        use tollgate::Clock;
        self.clock.now_ms()
    }
}

pub async fn access_token_expiry<F: Factory>(f: &F) {
    let e = env(f, |b| b.access_ttl(Duration::from_secs(60)).leeway(Duration::from_secs(5))).await;
    let user = unique_user("exp");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.clock.advance(64_000);
    assert!(e.sessions.verify(&t.access_token, VerifyMode::Stateless).await.is_ok(), "inside the leeway");
    e.clock.advance(2_000);
    let err = e.sessions.verify(&t.access_token, VerifyMode::Stateless).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
    let err = e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenExpired);
}

pub async fn touch_writes_at_most_once_per_interval<F: Factory>(f: &F) {
    let e = env(f, |b| b.touch_interval(Duration::from_secs(60))).await;
    let user = unique_user("touch");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let key = session_key(&user, &t.session.sid);
    let (_, v0) = raw_get(e.sessions.store(), &key).await.unwrap();
    for _ in 0..5 {
        e.clock.advance(10_000);
        e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    }
    assert_eq!(raw_get(e.sessions.store(), &key).await.unwrap().1, v0, "no write within the interval");
    e.clock.advance(10_000);
    let v = e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    let (_, v1) = raw_get(e.sessions.store(), &key).await.unwrap();
    assert_ne!(v1, v0, "one write once the interval has passed");
    assert_eq!(v.session.unwrap().last_seen, e.clock_now());
    e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    assert_eq!(raw_get(e.sessions.store(), &key).await.unwrap().1, v1);
}

pub async fn limit_evicts_oldest<F: Factory>(f: &F) {
    let e = env(f, |b| b.max_sessions_per_user(2).on_limit(LimitPolicy::EvictOldest)).await;
    let user = unique_user("evict");
    let a = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.clock.advance(1);
    let b = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.clock.advance(1);
    let c = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let sids: Vec<String> = e.sessions.list(&user).await.unwrap().into_iter().map(|s| s.sid).collect();
    assert_eq!(sids, vec![b.session.sid.clone(), c.session.sid.clone()]);
    let err = e.sessions.verify(&a.access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
}

pub async fn single_session_mode<F: Factory>(f: &F) {
    let e = env(f, |b| b.max_sessions_per_user(1).on_limit(LimitPolicy::EvictOldest)).await;
    let user = unique_user("single");
    let a = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let b = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    assert_eq!(e.sessions.refresh(&a.refresh_token).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    assert!(e.sessions.refresh(&b.refresh_token).await.is_ok());
    assert_eq!(e.sessions.list(&user).await.unwrap().len(), 1);
}

pub async fn limit_refuses<F: Factory>(f: &F) {
    let e = env(f, |b| b.max_sessions_per_user(2).on_limit(LimitPolicy::Refuse).idle_ttl(Duration::from_secs(3600))).await;
    let user = unique_user("refuse");
    let a = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let before = user_state(e.sessions.store(), &user, &[]).await;
    let err = e.sessions.issue(&user, Map::new(), meta()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionLimit);
    assert_eq!(user_state(e.sessions.store(), &user, &[]).await, before);
    // Revoking one makes room.
    e.sessions.revoke(&user, &a.session.sid).await.unwrap();
    e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    // Idled-out sessions do not count, even though the index still names them.
    e.clock.advance(3601 * 1000);
    e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    assert_eq!(e.sessions.list(&user).await.unwrap().len(), 2);
}

pub async fn limit_counts_touched_sessions_alive<F: Factory>(f: &F) {
    let e = env(f, |b| {
        b.max_sessions_per_user(1).on_limit(LimitPolicy::Refuse).idle_ttl(Duration::from_secs(3600)).access_ttl(Duration::from_secs(3000))
    })
    .await;
    let user = unique_user("hint");
    let a = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    // Kept alive by a touch past its original idle expiry (the index hint is stale).
    e.clock.advance(50 * MIN);
    e.sessions.verify(&a.access_token, VerifyMode::Strict).await.unwrap();
    e.clock.advance(20 * MIN);
    let err = e.sessions.issue(&user, Map::new(), meta()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionLimit);
}

pub async fn revoke_all_keeps_current<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let user = unique_user("all");
    let a = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let b = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let c = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    assert_eq!(e.sessions.revoke_all(&user, Some(&b.session.sid)).await.unwrap(), 2);
    for t in [&a, &c] {
        assert_eq!(e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    }
    assert!(e.sessions.verify(&b.access_token, VerifyMode::Strict).await.is_ok());
    assert_eq!(e.sessions.revoke_all(&user, None).await.unwrap(), 1);
    assert!(e.sessions.list(&user).await.unwrap().is_empty());
    assert_eq!(e.sessions.revoke_all(&user, None).await.unwrap(), 0);
}

pub async fn metadata_update<F: Factory>(f: &F) {
    let e = env(f, |b| b.max_metadata_bytes(1024)).await;
    let user = unique_user("meta");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let info = e.sessions.update_metadata(&user, &t.session.sid, json!({ "device": "phone" })).await.unwrap();
    assert_eq!(info.metadata, json!({ "device": "phone" }));
    assert_eq!(e.sessions.list(&user).await.unwrap()[0].metadata, json!({ "device": "phone" }));
    let before = user_state(e.sessions.store(), &user, &[&t.session.sid]).await;
    let err = e.sessions.update_metadata(&user, &t.session.sid, json!({ "x": "y".repeat(2000) })).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadRequest);
    assert_eq!(user_state(e.sessions.store(), &user, &[&t.session.sid]).await, before);
    let err = e.sessions.update_metadata(&user, "AAAAAAAAAAAAAAAAAAAAAA", json!({})).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionNotFound);
}

pub async fn user_cache<F: Factory>(f: &F) {
    let e = env(f, |b| b.user_cache_ttl(Duration::from_secs(60))).await;
    let user = unique_user("cache");
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = |c: Arc<std::sync::atomic::AtomicUsize>| {
        move |u: String| {
            let c = c.clone();
            async move {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json!({ "name": u }))
            }
        }
    };
    let v = e.sessions.user_info(&user, load(calls.clone())).await.unwrap();
    assert_eq!(v, json!({ "name": user }));
    e.sessions.user_info(&user, load(calls.clone())).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "the second read is a hit");
    e.clock.advance(61_000);
    e.sessions.user_info(&user, load(calls.clone())).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "expired entries are loaded again");
    e.sessions.put_user_info(&user, json!({ "name": "put" })).await.unwrap();
    assert_eq!(e.sessions.cached_user_info(&user).await.unwrap(), Some(json!({ "name": "put" })));
    let n = e.sessions.refresh_user_info(&[user.as_str()], load(calls.clone())).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(e.sessions.cached_user_info(&user).await.unwrap(), Some(json!({ "name": user })));
    e.sessions.delete_user_info(&user).await.unwrap();
    assert_eq!(e.sessions.cached_user_info(&user).await.unwrap(), None);
    // A failing loader surfaces its error and caches nothing.
    let err = e
        .sessions
        .user_info(&user, |_| async { Err(tollgate::Error::new(ErrorCode::StoreUnavailable, "directory down")) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreUnavailable);
    assert_eq!(e.sessions.cached_user_info(&user).await.unwrap(), None);
}

pub async fn bad_input_changes_nothing<F: Factory>(f: &F) {
    let e = env(f, |b| b.max_metadata_bytes(4096)).await;
    let user = unique_user("bad");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let before = user_state(e.sessions.store(), &user, &[&t.session.sid]).await;
    let s = &e.sessions;
    let mut reserved = Map::new();
    reserved.insert("sub".into(), json!("someone-else"));
    let codes = vec![
        s.issue("", Map::new(), meta()).await.unwrap_err().code(),
        s.issue(&"x".repeat(300), Map::new(), meta()).await.unwrap_err().code(),
        s.issue("a\nb", Map::new(), meta()).await.unwrap_err().code(),
        s.issue(&user, reserved, meta()).await.unwrap_err().code(),
        s.issue(&user, Map::new(), json!({ "huge": "x".repeat(1 << 20) })).await.unwrap_err().code(),
        s.refresh("").await.unwrap_err().code(),
        s.refresh("tgr_").await.unwrap_err().code(),
        s.refresh("tgr_abc.def").await.unwrap_err().code(),
        s.refresh(&"tgr_".repeat(2000)).await.unwrap_err().code(),
        s.refresh(&t.refresh_token.replace("tgr_", "xyz_")).await.unwrap_err().code(),
        s.refresh(&t.refresh_token[..t.refresh_token.len() - 2]).await.unwrap_err().code(),
        s.refresh(&format!("{}!", t.refresh_token)).await.unwrap_err().code(),
        s.revoke(&user, "not-a-session").await.unwrap_err().code(),
        s.revoke(&unique_user("nobody"), "AAAAAAAAAAAAAAAAAAAAAA").await.unwrap_err().code(),
        s.revoke("", "AAAAAAAAAAAAAAAAAAAAAA").await.unwrap_err().code(),
        s.update_metadata(&user, &t.session.sid, json!({ "huge": "x".repeat(5000) })).await.unwrap_err().code(),
    ];
    use ErrorCode::*;
    assert_eq!(
        codes,
        vec![
            BadRequest,
            BadRequest,
            BadRequest,
            BadRequest,
            BadRequest,
            TokenInvalid,
            TokenInvalid,
            TokenInvalid,
            TokenInvalid,
            TokenInvalid,
            TokenInvalid,
            TokenInvalid,
            SessionNotFound,
            SessionNotFound,
            BadRequest,
            BadRequest
        ]
    );
    assert!(s.list(&unique_user("nobody")).await.unwrap().is_empty());
    assert_eq!(user_state(e.sessions.store(), &user, &[&t.session.sid]).await, before);
    assert!(s.refresh(&t.refresh_token).await.is_ok(), "the session still works");
}

/// User ids with braces, `%` and `:` (which storage keys escape inside their hash
/// tag) work end to end, and ids that differ only by an escape never share data.
pub async fn user_ids_with_reserved_characters<F: Factory>(f: &F) {
    let e = env(f, |b| b.user_cache_ttl(Duration::from_secs(60))).await;
    let s = &e.sessions;
    let base = unique_user("");
    // Pairs that would collide if only braces were escaped, or if escaping were skipped.
    let ids: Vec<String> = ["{u:x}", "a}b", "}{", "a{b", "a%7Bb", "a%257Bb", "100%", "x:y:z", "s:{u:eve}:AAAAAAAAAAAAAAAAAAAAAA"]
        .iter()
        .map(|id| format!("{id}{base}"))
        .collect();
    let mut tokens = Vec::new();
    for user in &ids {
        let t = s.issue(user, Map::new(), meta()).await.unwrap_or_else(|err| panic!("issue for {user:?}: {err}"));
        assert_eq!(hash_tag(&session_key(user, &t.session.sid)), user_tag(user));
        assert!(raw_get(s.store(), &index_key(user)).await.is_some(), "{user:?}'s index is under its escaped key");
        let v = s.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
        assert_eq!(v.claims.sub, *user);
        let t2 = s.refresh(&t.refresh_token).await.unwrap();
        assert_eq!(t2.session.user, *user);
        s.put_user_info(user, json!({ "name": user })).await.unwrap();
        assert!(raw_get(s.store(), &user_cache_key(user)).await.is_some());
        tokens.push(t2);
    }
    // Each user sees exactly their own session and cache entry.
    for (user, t) in ids.iter().zip(&tokens) {
        let listed: Vec<String> = s.list(user).await.unwrap().into_iter().map(|i| i.sid).collect();
        assert_eq!(listed, vec![t.session.sid.clone()], "{user:?}");
        assert_eq!(s.cached_user_info(user).await.unwrap(), Some(json!({ "name": user })));
    }
    // Revoking one touches no other.
    s.revoke(&ids[3], &tokens[3].session.sid).await.unwrap();
    assert_eq!(s.revoke_all(&ids[0], None).await.unwrap(), 1);
    for (i, (user, t)) in ids.iter().zip(&tokens).enumerate() {
        let live = s.verify(&t.access_token, VerifyMode::Strict).await;
        match i {
            0 | 3 => assert_eq!(live.unwrap_err().code(), ErrorCode::SessionRevoked, "{user:?}"),
            _ => assert!(live.is_ok(), "{user:?} keeps their session"),
        }
    }
}

// ---- Concurrency -----------------------------------------------------------

pub async fn racing_refreshes<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    let user = unique_user("race");
    let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = e.sessions.clone();
            let rt = t.refresh_token.clone();
            tokio::spawn(async move { s.refresh(&rt).await })
        })
        .collect();
    let mut successors = std::collections::HashSet::new();
    for task in tasks {
        let r = task.await.unwrap().expect("every refresh within the grace window succeeds");
        successors.insert(r.refresh_token);
    }
    assert_eq!(successors.len(), 1, "one chain, never a fork");
    let head = successors.into_iter().next().unwrap();
    let sessions = e.sessions.list(&user).await.unwrap();
    assert_eq!(sessions.len(), 1, "no orphan sessions");
    assert_eq!(sessions[0].generation, 1);
    let next = e.sessions.refresh(&head).await.unwrap();
    assert_eq!(next.session.generation, 2, "the session stays usable");
}

pub async fn racing_issues_respect_limit<F: Factory>(f: &F, tasks: usize) {
    let e = env(f, |b| b.max_sessions_per_user(5).on_limit(LimitPolicy::EvictOldest).max_attempts(64)).await;
    let user = unique_user("limit");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A watcher checks the limit holds at every moment, not only at the end.
    let watcher = {
        let (s, user, stop) = (e.sessions.clone(), user.clone(), stop.clone());
        tokio::spawn(async move {
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                max = max.max(s.list(&user).await.unwrap().len());
                tokio::task::yield_now().await;
            }
            max
        })
    };
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (s, user) = (e.sessions.clone(), user.clone());
            tokio::spawn(async move { s.issue(&user, Map::new(), json!({})).await })
        })
        .collect();
    let mut ok = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(t) => ok.push(t),
            Err(err) => assert_eq!(err.code(), ErrorCode::Conflict, "only contention may fail an issue: {err}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let max_seen = watcher.await.unwrap();
    assert!(max_seen <= 5, "saw {max_seen} live sessions");
    let live = e.sessions.list(&user).await.unwrap();
    assert_eq!(live.len(), 5);
    assert!(ok.len() >= tasks * 9 / 10, "only {} of {tasks} issues succeeded", ok.len());
    // Exactly the listed sessions pass strict verification.
    let mut alive = 0;
    for t in &ok {
        if e.sessions.verify(&t.access_token, VerifyMode::Strict).await.is_ok() {
            alive += 1;
            assert!(live.iter().any(|s| s.sid == t.session.sid));
        }
    }
    assert_eq!(alive, 5);
}

pub async fn revoke_racing_refresh<F: Factory>(f: &F) {
    let e = env(f, |b| b).await;
    for round in 0..20 {
        let user = unique_user(&format!("rr{round}"));
        let t = e.sessions.issue(&user, Map::new(), meta()).await.unwrap();
        let refresher = {
            let (s, rt) = (e.sessions.clone(), t.refresh_token.clone());
            tokio::spawn(async move { s.refresh(&rt).await })
        };
        let revoker = {
            let (s, user, sid) = (e.sessions.clone(), user.clone(), t.session.sid.clone());
            tokio::spawn(async move { s.revoke(&user, &sid).await })
        };
        let refreshed = refresher.await.unwrap();
        revoker.await.unwrap().unwrap();
        // Whatever the order, the session ends revoked and its tokens are dead.
        assert_eq!(e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::SessionRevoked);
        if let Ok(r) = refreshed {
            assert_eq!(e.sessions.refresh(&r.refresh_token).await.unwrap_err().code(), ErrorCode::SessionRevoked);
            assert_eq!(e.sessions.verify(&r.access_token, VerifyMode::Strict).await.unwrap_err().code(), ErrorCode::SessionRevoked);
        }
        assert!(e.sessions.list(&user).await.unwrap().is_empty());
    }
}

/// Writes one `#[tokio::test]` per case for the factory type `$factory`
/// (which must implement `Default`); extra attributes (like `#[ignore]`) apply to each.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:ty $(, #[$attr:meta])*) => {
        $crate::conformance_suite!(@cases $factory, [$(#[$attr])*],
            store_get_missing_is_none, store_expectations, store_commit_is_all_or_nothing,
            store_past_expiry_is_invisible, full_flow, rotation_grace_and_reuse,
            reuse_detected_long_after_rotation, forged_refresh_secret_changes_nothing,
            idle_and_absolute_expiry, access_token_expiry, touch_writes_at_most_once_per_interval,
            limit_evicts_oldest, single_session_mode, limit_refuses, limit_counts_touched_sessions_alive,
            revoke_all_keeps_current, metadata_update, user_cache, bad_input_changes_nothing,
            user_ids_with_reserved_characters, racing_refreshes, revoke_racing_refresh);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn racing_issues_respect_limit() {
            conformance::racing_issues_respect_limit(&<$factory>::default(), 1000).await
        }
    };
    (@cases $factory:ty, [$($attrs:tt)*], $case:ident $(, $rest:ident)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $($attrs)*
        async fn $case() {
            conformance::$case(&<$factory>::default()).await
        }
        $crate::conformance_suite!(@cases $factory, [$($attrs)*] $(, $rest)*);
    };
    (@cases $factory:ty, [$($attrs:tt)*]) => {};
}
