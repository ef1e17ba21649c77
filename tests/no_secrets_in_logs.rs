//! Every log line tollgate writes, at TRACE, over a flow with errors and a detected
//! reuse, contains no token, secret or key.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map};
use tollgate::{Config, ManualClock, MemoryStore, SessionManager, VerifyMode};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET: &str = "log-test-secret-of-at-least-32-bytes!!";

#[tokio::test]
async fn logs_hold_no_secrets() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let config = Config::builder().secret(SECRET.as_bytes().to_vec()).build().unwrap();
    let s = SessionManager::new(config, MemoryStore::with_clock(clock.clone())).unwrap().with_clock(clock.clone());
    let t = s.issue("uma", Map::new(), json!({})).await.unwrap();
    s.verify(&t.access_token, VerifyMode::Strict).await.unwrap();
    let t2 = s.refresh(&t.refresh_token).await.unwrap();
    let _ = s.verify(&format!("{}x", t2.access_token), VerifyMode::Strict).await;
    let _ = s.refresh(&format!("{}x", t2.refresh_token)).await;
    clock.advance(60_000);
    assert!(s.refresh(&t.refresh_token).await.is_err(), "reuse detected");
    let _ = s.verify(&t2.access_token, VerifyMode::Strict).await;
    let debug = format!("{s:?}");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("reuse_detected"), "the security event is logged:\n{logs}");
    for (name, secret) in [
        ("access token", t.access_token.as_str()),
        ("access token 2", t2.access_token.as_str()),
        ("refresh secret", t.refresh_token.rsplit_once('.').unwrap().1),
        ("refresh secret 2", t2.refresh_token.rsplit_once('.').unwrap().1),
        ("signature", t.access_token.rsplit_once('.').unwrap().1),
        ("signing key", SECRET),
    ] {
        assert!(!logs.contains(secret), "the logs contain the {name}");
        assert!(!debug.contains(secret), "Debug output contains the {name}");
    }
}
