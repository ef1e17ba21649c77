#![cfg(not(target_arch = "wasm32"))] // tokio runtime tests; the wasm32 tests are tests/wasm.rs
//! Review findings of issue 11, through the `SessionManager` on the memory store
//! with a clock the test moves. The engine-level twins are in `tests/engine_steps/`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tollgate::engine::record::{index_key, session_key, SessionRecord, UserIndex};
use tollgate::engine::refresh_key::RefreshKey;
use tollgate::engine::step::{Versioned, WriteOp};
use tollgate::http::{HttpApi, HttpRequest};
use tollgate::store::CommitResult;
use tollgate::{
    Caps, Config, ConfigBuilder, Error, ErrorCode, ManualClock, MemoryStore, SessionManager, Store, StoreError, StoreErrorKind, VerifyMode,
};

const SECRET: &[u8] = b"security-findings-secret-of-32-bytes-or-more";
const T0: u64 = 1_800_000_000_000;

struct Env {
    clock: Arc<ManualClock>,
    store: MemoryStore,
    sessions: SessionManager<MemoryStore>,
}

fn env(tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Env {
    let clock = Arc::new(ManualClock::new(T0));
    let store = MemoryStore::with_clock(clock.clone());
    let config = tweak(Config::builder().secret(SECRET.to_vec())).build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap().with_clock(clock.clone());
    Env { clock, store, sessions }
}

/// The same refresh token with another well-formed secret.
fn with_wrong_secret(refresh_token: &str) -> String {
    let (locator, _) = refresh_token.rsplit_once('.').unwrap();
    format!("{locator}.{}", tollgate::engine::b64::encode(&[0x5a; 32]))
}

/// (code, status, message): everything a client sees of an error.
fn seen(e: &Error) -> (ErrorCode, u16, String) {
    (e.code(), e.http_status(), e.message().to_owned())
}

#[tokio::test]
async fn finding_9_a_wrong_secret_gets_one_answer_for_live_revoked_and_expired() {
    let e = env(|b| b.idle_ttl(Duration::from_secs(600)));
    let expired = e.sessions.issue("sam", Map::new(), json!(null)).await.unwrap();
    e.clock.advance(599_000);
    let live = e.sessions.issue("sam", Map::new(), json!(null)).await.unwrap();
    let revoked = e.sessions.issue("sam", Map::new(), json!(null)).await.unwrap();
    e.sessions.revoke("sam", &revoked.session.sid).await.unwrap();
    e.clock.advance(2_000); // `expired` idled out, the others live (or are revoked)
    let before = e.store.snapshot();

    let mut answers = Vec::new();
    for t in [&live, &revoked, &expired] {
        answers.push(seen(&e.sessions.refresh(&with_wrong_secret(&t.refresh_token)).await.unwrap_err()));
    }
    assert_eq!(answers[0].0, ErrorCode::TokenInvalid, "{answers:?}");
    assert_eq!(answers[1], answers[0], "revoked and live look the same without the secret");
    assert_eq!(answers[2], answers[0], "expired and live look the same without the secret");
    assert_eq!(e.store.snapshot(), before, "a wrong secret changes nothing");

    assert_eq!(e.sessions.refresh(&revoked.refresh_token).await.unwrap_err().code(), ErrorCode::SessionRevoked);
    assert_eq!(e.sessions.refresh(&expired.refresh_token).await.unwrap_err().code(), ErrorCode::SessionExpired);
    assert!(e.sessions.refresh(&live.refresh_token).await.is_ok());
}

/// The session's record as the store holds it (sealed under the key `SECRET` implies).
fn stored_record(store: &MemoryStore, user: &str, sid: &str) -> SessionRecord {
    SessionRecord::open(&store.get_one(&session_key(user, sid)).unwrap().value, &RefreshKey::derive(SECRET), user, sid).unwrap()
}

#[tokio::test]
async fn finding_8_no_sealed_successor_is_stored_after_the_grace_window() {
    let e = env(|b| b.refresh_grace(Duration::from_secs(10)));
    let t0 = e.sessions.issue("tess", Map::new(), json!(null)).await.unwrap();
    e.clock.advance(1_000);
    let t1 = e.sessions.refresh(&t0.refresh_token).await.unwrap();
    assert_eq!(stored_record(&e.store, "tess", &t1.session.sid).recent.len(), 1);
    e.clock.advance(10_001);
    e.sessions.verify(&t1.access_token, VerifyMode::Strict).await.unwrap();
    let record = stored_record(&e.store, "tess", &t1.session.sid);
    assert!(record.recent.is_empty(), "after the window the store holds no sealed successor");
    assert_eq!(e.sessions.refresh(&t0.refresh_token).await.unwrap_err().code(), ErrorCode::RefreshTokenReused);
}

// ---- Finding 13 (part): store error text and the bearer scheme over HTTP ----------

const API_KEY: &str = "security-findings-api-key";
/// What a failing store says: text a client must never see.
const STORE_TEXT: &str = "redis GET: connection to 10.9.8.7:6380 refused (node db-internal-3)";

/// The memory store, failing every call with `kind` while `failing` is set, and
/// losing the reply of the next `lost_replies` commits (applied, then reported
/// unavailable, as a timeout after the server ran the commit is).
#[derive(Clone)]
struct Failing {
    inner: MemoryStore,
    failing: Arc<std::sync::Mutex<Option<StoreErrorKind>>>,
    lost_replies: Arc<std::sync::atomic::AtomicUsize>,
}

impl Failing {
    fn check(&self) -> Result<(), StoreError> {
        match *self.failing.lock().unwrap() {
            Some(StoreErrorKind::Unavailable) => Err(StoreError::unavailable(STORE_TEXT)),
            Some(StoreErrorKind::Corrupt) => Err(StoreError::corrupt(STORE_TEXT)),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Store for Failing {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        self.check()?;
        self.inner.get(keys).await
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.check()?;
        let result = self.inner.commit(ops).await?;
        if self.lost_replies.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::unavailable("the reply was lost"));
        }
        Ok(result)
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A manager with the default settings over a [`Failing`] memory store.
fn failing_env() -> (SessionManager<Failing>, Failing, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Failing { inner: MemoryStore::with_clock(clock.clone()), failing: Default::default(), lost_replies: Default::default() };
    let config = Config::builder().secret(SECRET.to_vec()).build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap().with_clock(clock.clone());
    (sessions, store, clock)
}

fn http_service() -> (HttpApi<Failing>, Failing) {
    let (sessions, store, _) = failing_env();
    (HttpApi::new(sessions, &[API_KEY]).unwrap(), store)
}

async fn call(s: &HttpApi<Failing>, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if body.is_some() {
        h.push(("content-type".into(), "application/json".into()));
    }
    let req = HttpRequest::new(method, path, h, body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default());
    let r = s.handle(req).await;
    (r.status, r.json_body())
}

#[tokio::test]
async fn finding_13_store_error_text_never_reaches_an_http_client() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (s, store) = http_service();
    let (st, t) = call(&s, "POST", "/v1/sessions", &[("x-api-key", API_KEY)], Some(json!({ "user": "uma" }))).await;
    assert_eq!(st, 201, "{t}");
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    for (kind, status, code) in [(StoreErrorKind::Unavailable, 503, "store_unavailable"), (StoreErrorKind::Corrupt, 500, "store_corrupt")] {
        *store.failing.lock().unwrap() = Some(kind);
        let mut messages = Vec::new();
        for (method, path, headers, body) in [
            ("POST", "/v1/sessions", vec![("x-api-key", API_KEY)], Some(json!({ "user": "uma" }))),
            ("POST", "/v1/verify", vec![], Some(json!({ "token": t["access_token"], "mode": "strict" }))),
            ("POST", "/v1/refresh", vec![], Some(json!({ "refresh_token": t["refresh_token"] }))),
            ("GET", "/v1/users/uma/sessions", vec![("authorization", bearer.as_str())], None),
        ] {
            let (st, v) = call(&s, method, path, &headers, body).await;
            assert_eq!((st, v["error"]["code"].as_str()), (status, Some(code)), "{method} {path}: {v}");
            let message = v["error"]["message"].as_str().unwrap().to_owned();
            assert!(!message.contains("10.9.8.7") && !message.contains("db-internal"), "{method} {path}: {message}");
            messages.push(message);
        }
        messages.dedup();
        assert_eq!(messages.len(), 1, "one fixed message per code: {messages:?}");
    }
    // The operator finds the detail in the log, and the Rust caller, who owns the store, in the error.
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("store_unavailable") && logs.contains("db-internal-3"), "{logs}");
    assert!(!logs.contains(t["access_token"].as_str().unwrap()), "no token in the log");
    let err = s.sessions().list("uma").await.unwrap_err();
    assert!(err.message().contains("db-internal-3"), "{err}");
}

#[tokio::test]
async fn finding_13_the_bearer_scheme_is_matched_case_insensitively() {
    let (s, _) = http_service();
    let (_, t) = call(&s, "POST", "/v1/sessions", &[("x-api-key", API_KEY)], Some(json!({ "user": "vic" }))).await;
    let token = t["access_token"].as_str().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        for sep in [" ", "  ", "\t"] {
            let auth = format!("{scheme}{sep}{token}{sep}");
            let (st, v) = call(&s, "GET", "/v1/users/vic/sessions", &[("authorization", &auth)], None).await;
            assert_eq!(st, 200, "{auth:.10}..: {v}");
        }
    }
    for auth in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer".to_owned(),
        "Bearer   ".to_owned(),
        format!("Bearers {token}"),
        format!("Bearer {token} {token}"),
        format!("Bearer {token}\tx"),
    ] {
        let (st, v) = call(&s, "GET", "/v1/users/vic/sessions", &[("authorization", &auth)], None).await;
        assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")), "{auth:.12}..: {v}");
    }
}

// ---- Finding 4: the per-user index is bounded by default ----------------------------

fn stored_index(store: &MemoryStore, user: &str) -> UserIndex {
    UserIndex::decode(store.get_one(&index_key(user)).as_ref().map(|v| &v.value[..])).unwrap()
}

#[tokio::test]
async fn finding_4_by_default_a_user_holds_at_most_100_sessions_oldest_evicted() {
    let e = env(|b| b);
    assert_eq!(e.sessions.rules().policy.max_sessions_per_user, 100);
    let mut issued = Vec::new();
    for _ in 0..101 {
        issued.push(e.sessions.issue("wes", Map::new(), json!(null)).await.unwrap());
        e.clock.advance(1);
    }
    assert_eq!(issued[100].evicted, vec![issued[0].session.sid.clone()], "the 101st evicts the oldest");
    assert_eq!(stored_index(&e.store, "wes").sessions.len(), 100);
    let listed = e.sessions.list("wes").await.unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[0].sid, issued[1].session.sid);
    let err = e.sessions.verify(&issued[0].access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
}

#[tokio::test]
async fn finding_4_each_index_write_prunes_expired_entries() {
    let e = env(|b| b.idle_ttl(Duration::from_secs(60)).absolute_ttl(Duration::from_secs(120)));
    for _ in 0..5 {
        e.sessions.issue("xan", Map::new(), json!(null)).await.unwrap();
    }
    assert_eq!(stored_index(&e.store, "xan").sessions.len(), 5);
    e.clock.advance(120_000);
    let t = e.sessions.issue("xan", Map::new(), json!(null)).await.unwrap();
    let index = stored_index(&e.store, "xan");
    assert_eq!(index.sessions.iter().map(|s| s.sid.as_str()).collect::<Vec<_>>(), vec![t.session.sid.as_str()]);
}

// ---- Finding 10: a lost reply, and the client's retry budget -----------------------

/// The retry rule the README gives clients for a refresh: at most 3 attempts with
/// the same token, each given 5 s, pausing 1 s and then 2 s; the last attempt
/// starts 13 s after the first.
const CLIENT_ATTEMPT_TIMEOUT_MS: u64 = 5_000;
const CLIENT_PAUSES_MS: [u64; 2] = [1_000, 2_000];

#[tokio::test]
async fn finding_10_a_retry_after_a_lost_reply_gets_the_same_successor_within_the_window() {
    use std::sync::atomic::Ordering::SeqCst;
    let (s, store, clock) = failing_env();
    let t0 = s.issue("yara", Map::new(), json!(null)).await.unwrap();
    // The rotation commits, but its reply is lost; the client's attempt times out.
    store.lost_replies.store(1, SeqCst);
    assert_eq!(s.refresh(&t0.refresh_token).await.unwrap_err().code(), ErrorCode::StoreUnavailable);
    let record = stored_record(&store.inner, "yara", &t0.session.sid);
    assert_eq!(record.generation, 1, "the commit applied");
    clock.advance(CLIENT_ATTEMPT_TIMEOUT_MS + CLIENT_PAUSES_MS[0]);
    let t1 = s.refresh(&t0.refresh_token).await.unwrap();
    assert_eq!(stored_record(&store.inner, "yara", &t0.session.sid), record, "the retry wrote nothing");
    assert_eq!(s.refresh(&t0.refresh_token).await.unwrap().refresh_token, t1.refresh_token, "the same successor again");
    s.verify(&t1.access_token, VerifyMode::Strict).await.unwrap();
    assert_eq!(s.list("yara").await.unwrap().len(), 1, "one chain, no fork");

    // A client that keeps to the budget: its third attempt, 13 s after the first, still
    // gets the successor the lost first attempt made, under the default grace window.
    let t0 = s.issue("yara", Map::new(), json!(null)).await.unwrap();
    store.lost_replies.store(1, SeqCst);
    assert_eq!(s.refresh(&t0.refresh_token).await.unwrap_err().code(), ErrorCode::StoreUnavailable);
    clock.advance(CLIENT_ATTEMPT_TIMEOUT_MS + CLIENT_PAUSES_MS[0]);
    // The second attempt is answered (it writes nothing: the chain moved), but the answer
    // never reaches the client, whose attempt times out.
    s.refresh(&t0.refresh_token).await.unwrap();
    clock.advance(CLIENT_ATTEMPT_TIMEOUT_MS + CLIENT_PAUSES_MS[1]);
    let third = s.refresh(&t0.refresh_token).await.unwrap();
    assert_eq!(third.session.generation, 1);
    s.verify(&third.access_token, VerifyMode::Strict).await.unwrap();

    // Past the window the same retry is reuse: the session is revoked.
    let t0 = s.issue("zed", Map::new(), json!(null)).await.unwrap();
    store.lost_replies.store(1, SeqCst);
    assert_eq!(s.refresh(&t0.refresh_token).await.unwrap_err().code(), ErrorCode::StoreUnavailable);
    clock.advance(s.rules().policy.refresh_grace_ms + 1);
    assert_eq!(s.refresh(&t0.refresh_token).await.unwrap_err().code(), ErrorCode::RefreshTokenReused);
    assert!(s.list("zed").await.unwrap().is_empty());
}

// ---- Finding 7: write access to the store does not mint tokens ----------------------

/// Writes `value` under `key` as a store writer would (no expectation).
fn write_raw(store: &MemoryStore, key: &str, value: Vec<u8>) {
    let put = WriteOp::Put { key: key.to_owned(), value: value.into(), expect: tollgate::engine::step::Expect::Any, expires_at: u64::MAX };
    assert_eq!(store.commit_now(&[put]), CommitResult::Committed);
}

/// Every operation that reads the record, each answering `store_corrupt` and writing nothing.
async fn every_reader_refuses(e: &Env, user: &str, t: &tollgate::Tokens) {
    let before = e.store.snapshot();
    let codes = vec![
        e.sessions.refresh(&t.refresh_token).await.map(drop).map_err(|e| e.code()),
        e.sessions.verify(&t.access_token, VerifyMode::Strict).await.map(drop).map_err(|e| e.code()),
        e.sessions.revoke(user, &t.session.sid).await.map(drop).map_err(|e| e.code()),
        e.sessions.list(user).await.map(drop).map_err(|e| e.code()),
        e.sessions.update_metadata(user, &t.session.sid, json!({"x": 1})).await.map(drop).map_err(|e| e.code()),
    ];
    assert_eq!(codes, vec![Err(ErrorCode::StoreCorrupt); 5], "refresh, strict verify, revoke, list, metadata update");
    assert_eq!(e.store.snapshot(), before, "nothing was written");
    // Stateless verification reads no record: the token itself is still good.
    e.sessions.verify(&t.access_token, VerifyMode::Stateless).await.unwrap();
}

#[tokio::test]
async fn finding_7_a_record_forged_by_a_store_writer_is_store_corrupt_and_never_signed() {
    let e = env(|b| b);
    let t = e.sessions.issue("mal", Map::new(), json!(null)).await.unwrap();
    let key = session_key("mal", &t.session.sid);
    // The writer knows everything in the record but the refresh key: it writes the
    // claims it wants and the hash of a refresh secret it chose.
    let mut forged = stored_record(&e.store, "mal", &t.session.sid);
    forged.claims.insert("role".into(), json!("admin"));
    let chosen = [9u8; 32];
    forged.refresh_hash = tollgate::engine::token::hash_secret(&chosen);
    let forged_token = tollgate::engine::token::RefreshToken::format("tgr", "mal", &t.session.sid, &chosen);

    // Sealed under a key of the writer's own, or with no MAC at all (the format before MACs).
    let mut unsealed = serde_json::to_vec(&forged).unwrap();
    for bytes in
        [forged.seal(&RefreshKey::derive(b"a-key-the-store-writer-made-up-itself"), Default::default()), std::mem::take(&mut unsealed)]
    {
        write_raw(&e.store, &key, bytes);
        let err = e.sessions.refresh(&forged_token).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreCorrupt, "{err}");
        every_reader_refuses(&e, "mal", &t).await;
    }
}

#[tokio::test]
async fn finding_7_an_altered_or_moved_record_is_store_corrupt() {
    let e = env(|b| b);
    let t = e.sessions.issue("amy", Map::new(), json!({"device": "phone"})).await.unwrap();
    let other = e.sessions.issue("amy", Map::new(), json!(null)).await.unwrap();
    let bob = e.sessions.issue("bob", Map::new(), json!(null)).await.unwrap();
    let key = session_key("amy", &t.session.sid);
    let good = e.store.get_one(&key).unwrap().value.to_vec();

    // One changed byte of the JSON (the metadata), the MAC kept.
    let mut altered = good.clone();
    let at = altered.windows(5).position(|w| w == b"phone").unwrap();
    altered[at] = b'P';
    write_raw(&e.store, &key, altered);
    every_reader_refuses(&e, "amy", &t).await;

    // A valid record of another session of the same user, or of another user, copied here.
    for source in [session_key("amy", &other.session.sid), session_key("bob", &bob.session.sid)] {
        write_raw(&e.store, &key, e.store.get_one(&source).unwrap().value.to_vec());
        every_reader_refuses(&e, "amy", &t).await;
    }

    // Truncated and mangled forms never panic.
    let mut shapes: Vec<Vec<u8>> = (0..good.len().min(40)).map(|n| good[..n].to_vec()).collect();
    shapes.extend([vec![2], vec![2; 33], vec![2; 34], vec![0xff; 80], b"{}".to_vec(), b"null".to_vec(), good[..good.len() - 1].to_vec()]);
    for bytes in shapes {
        write_raw(&e.store, &key, bytes.clone());
        let err = e.sessions.refresh(&t.refresh_token).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreCorrupt, "{bytes:?}");
    }

    // The genuine bytes put back: everything works again.
    write_raw(&e.store, &key, good);
    e.sessions.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    e.sessions.refresh(&t.refresh_token).await.unwrap();
}

#[tokio::test]
async fn finding_7_the_refresh_key_comes_from_refresh_secret_and_survives_a_signing_key_rotation() {
    const NEW_SECRET: &[u8] = b"the-next-signing-secret-of-32-bytes-or-more";
    let clock = Arc::new(ManualClock::new(T0));
    let store = MemoryStore::with_clock(clock.clone());
    let manager = |b: ConfigBuilder| SessionManager::new(b.build().unwrap(), store.clone()).unwrap().with_clock(clock.clone());

    // The rotation recipe: the new signing secret signs, the old one verifies, and
    // refresh_secret is the old secret, so the records it sealed stay readable.
    let old = manager(Config::builder().secret(SECRET.to_vec()));
    let t = old.issue("rio", Map::new(), json!(null)).await.unwrap();
    let old_key = tollgate::KeySpec::secret("k1", tollgate::Alg::HS256, SECRET.to_vec());
    let rotated =
        manager(Config::builder().secret(NEW_SECRET.to_vec()).kid("k2").verify_key(old_key.clone()).refresh_secret(SECRET.to_vec()));
    rotated.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    let t2 = rotated.refresh(&t.refresh_token).await.unwrap();
    old.verify(&t2.access_token, VerifyMode::Stateless).await.unwrap_err();
    old.refresh(&t2.refresh_token).await.unwrap();

    // Without it, the stored sessions read as store_corrupt: nothing under the old key is trusted.
    let forgot = manager(Config::builder().secret(NEW_SECRET.to_vec()).kid("k2").verify_key(old_key));
    let err = forgot.verify(&t.access_token, VerifyMode::Strict).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreCorrupt);

    // A refresh_secret too short is refused by name.
    let err = Config::builder().secret(SECRET.to_vec()).refresh_secret(b"short".to_vec()).build().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.message().starts_with("refresh_secret must be at least 32 bytes"), "{err}");
    assert!(!format!("{:?}", Config::builder().refresh_secret(b"a-refresh-secret-nobody-may-see!!".to_vec())).contains("nobody"));

    // An asymmetric signing key has no secret to derive from: refresh_secret is required.
    let pem = tollgate::crypto::KeyMaterial::Pem(include_str!("keys/es256.pem").to_owned());
    let err = Config::builder().signing_key(pem.clone()).build().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.message().starts_with("refresh_secret is required when signing_key is asymmetric"), "{err}");
    let es = manager(Config::builder().signing_key(pem).refresh_secret(b"a-refresh-secret-for-es256-keys-32+".to_vec()));
    let t = es.issue("rio", Map::new(), json!(null)).await.unwrap();
    es.refresh(&t.refresh_token).await.unwrap();
}
