//! Metrics count operations, outcomes and security events, with no user data in labels.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use tollgate::metrics::SecurityEvent;
use tollgate::{Config, LimitPolicy, ManualClock, MemoryStore, SessionManager, VerifyMode};

#[tokio::test]
async fn operations_and_security_events_are_counted() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let config = Config::builder()
        .secret(b"metrics-secret-of-at-least-32-bytes!!".to_vec())
        .max_sessions_per_user(1)
        .on_limit(LimitPolicy::EvictOldest)
        .refresh_grace(Duration::from_secs(1))
        .build()
        .unwrap();
    let s = SessionManager::new(config, MemoryStore::with_clock(clock.clone())).unwrap().with_clock(clock.clone());
    let a = s.issue("vera", Map::new(), json!({})).await.unwrap();
    let b = s.issue("vera", Map::new(), json!({})).await.unwrap();
    assert_eq!(b.evicted, vec![a.session.sid.clone()], "the caller learns which session made room");
    s.verify(&b.access_token, VerifyMode::Stateless).await.unwrap();
    s.verify(&b.access_token, VerifyMode::Strict).await.unwrap();
    let _ = s.verify("garbage", VerifyMode::Stateless).await;
    s.refresh(&b.refresh_token).await.unwrap();
    clock.advance(2_000);
    let _ = s.refresh(&b.refresh_token).await;

    let m = s.metrics();
    assert_eq!(m.event_count(SecurityEvent::ReuseDetected), 1);
    assert_eq!(m.event_count(SecurityEvent::LimitEvicted), 1);
    let text = m.render();
    for line in [
        "tollgate_operations_total{op=\"issue\",outcome=\"ok\"} 2",
        "tollgate_operations_total{op=\"verify_stateless\",outcome=\"ok\"} 1",
        "tollgate_operations_total{op=\"verify_stateless\",outcome=\"token_invalid\"} 1",
        "tollgate_operations_total{op=\"verify_strict\",outcome=\"ok\"} 1",
        "tollgate_operations_total{op=\"refresh\",outcome=\"refresh_token_reused\"} 1",
        "tollgate_operation_duration_seconds_count{op=\"refresh\"} 2",
        "tollgate_security_events_total{event=\"reuse_detected\"} 1",
        "tollgate_security_events_total{event=\"limit_evicted\"} 1",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(!text.contains("vera") && !text.contains(&b.session.sid), "labels carry no user data");
}
