#![cfg(not(target_arch = "wasm32"))] // tokio runtime tests; the wasm32 tests are tests/wasm.rs
//! Review findings of issue 11, through the `SessionManager` on the memory store
//! with a clock the test moves. The engine-level twins are in `tests/engine_steps/`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use tollgate::engine::record::{session_key, SessionRecord};
use tollgate::{Config, ConfigBuilder, Error, ErrorCode, ManualClock, MemoryStore, SessionManager, VerifyMode};

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

/// The session's record as the store holds it.
fn stored_record(store: &MemoryStore, user: &str, sid: &str) -> SessionRecord {
    SessionRecord::decode(&store.get_one(&session_key(user, sid)).unwrap().value).unwrap()
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
