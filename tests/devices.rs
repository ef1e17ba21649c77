#![cfg(not(target_arch = "wasm32"))] // tokio runtime tests
//! Devices and audit (issue 13, item 4) through the Rust manager: the client IP and
//! user agent a session keeps, `list_marking`, and the audit hook seeing each kind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map};
use tollgate::{AuditEvent, AuditKind, ClientInfo, Config, ManualClock, MemoryStore, SessionManager, TrustedProxy};

const T0: u64 = 1_800_000_000_000;

fn manager(clock: &Arc<ManualClock>, max_sessions: u32) -> (SessionManager<MemoryStore>, Arc<Mutex<Vec<AuditEvent>>>) {
    let config = Config::builder()
        .secret("a secret of at least thirty-two bytes!")
        .issuer("https://auth.example")
        .refresh_grace(Duration::from_secs(10))
        .max_sessions_per_user(max_sessions)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let m = SessionManager::new(config, MemoryStore::with_clock(clock.clone()))
        .unwrap()
        .with_clock(clock.clone())
        .with_audit(Arc::new(move |e: &AuditEvent| sink.lock().unwrap().push(e.clone())));
    (m, seen)
}

fn laptop() -> ClientInfo {
    ClientInfo::new(Some("2001:db8::7".parse().unwrap()), Some("Mozilla/5.0 (X11; Linux) Firefox/140"))
}
fn phone() -> ClientInfo {
    ClientInfo::new(Some("198.51.100.4".parse().unwrap()), Some("Safari/17 iPhone"))
}

#[tokio::test]
async fn issue_and_refresh_keep_the_client_and_list_marks_the_current_session() {
    let clock = Arc::new(ManualClock::new(T0));
    let (m, _) = manager(&clock, 10);
    let a = m.issue_from("alice", Map::new(), json!(null), &laptop()).await.unwrap();
    assert_eq!(a.session.ip, laptop().ip);
    assert_eq!(a.session.user_agent.as_deref(), Some("Mozilla/5.0 (X11; Linux) Firefox/140"));
    let b = m.issue("alice", Map::new(), json!(null)).await.unwrap();
    assert_eq!((b.session.ip, b.session.user_agent.clone()), (None, None), "the old issue records no client");

    clock.advance(1_000);
    let a2 = m.refresh_from(&a.refresh_token, &phone()).await.unwrap();
    assert_eq!(a2.session.ip, phone().ip, "a refresh from another client moves the session's device");
    assert_eq!(a2.session.last_seen, T0 + 1_000);
    clock.advance(1_000);
    let a3 = m.refresh(&a2.refresh_token).await.unwrap();
    assert_eq!(a3.session.user_agent.as_deref(), Some("Safari/17 iPhone"), "the old refresh keeps the client");
    clock.advance(1_000);
    let a4 = m.refresh_from(&a3.refresh_token, &ClientInfo::default()).await.unwrap();
    assert_eq!((a4.session.ip, a4.session.user_agent.clone()), (None, None), "an unknown client clears the old one");

    let listed = m.list_marking("alice", Some(&b.session.sid)).await.unwrap();
    let marks: Vec<(String, bool)> = listed.iter().map(|l| (l.session.sid.clone(), l.current)).collect();
    assert_eq!(marks, vec![(a.session.sid.clone(), false), (b.session.sid.clone(), true)]);
    assert!(m.list_marking("alice", None).await.unwrap().iter().all(|l| !l.current));
    // The JSON of a listed session: the session's fields and `current`, ip/user_agent null when unknown.
    let v = serde_json::to_value(&listed[1]).unwrap();
    assert_eq!((v["current"].clone(), v["ip"].clone(), v["user_agent"].clone()), (json!(true), json!(null), json!(null)));
    let v = serde_json::to_value(&m.list_marking("alice", None).await.unwrap()[0]).unwrap();
    assert_eq!(v["ip"], json!(null));
    let c = m.issue_from("alice", Map::new(), json!(null), &laptop()).await.unwrap();
    let v = serde_json::to_value(&c.session).unwrap();
    assert_eq!((v["ip"].clone(), v["user_agent"].clone()), (json!("2001:db8::7"), json!("Mozilla/5.0 (X11; Linux) Firefox/140")));
}

#[tokio::test]
async fn a_long_user_agent_is_cut_to_256_bytes() {
    let clock = Arc::new(ManualClock::new(T0));
    let (m, _) = manager(&clock, 10);
    let ua = format!("Agent/{}", "ü".repeat(300));
    let t = m.issue_from("bob", Map::new(), json!(null), &ClientInfo { ip: None, user_agent: Some(ua.clone()) }).await.unwrap();
    let kept = t.session.user_agent.unwrap();
    assert!(kept.len() <= 256 && kept.len() >= 254 && ua.starts_with(&kept), "{}", kept.len());
}

#[tokio::test]
async fn the_audit_hook_sees_each_kind_with_its_client_and_no_secret() {
    let clock = Arc::new(ManualClock::new(T0));
    let (m, seen) = manager(&clock, 2);
    let a = m.issue_from("carol", Map::new(), json!(null), &laptop()).await.unwrap();
    let b = m.issue_from("carol", Map::new(), json!(null), &phone()).await.unwrap();
    clock.advance(1_000);
    // The limit (2): the third sign-in evicts the oldest.
    let c = m.issue_from("carol", Map::new(), json!(null), &phone()).await.unwrap();
    assert_eq!(c.evicted, vec![a.session.sid.clone()]);
    clock.advance(1_000);
    let b2 = m.refresh_from(&b.refresh_token, &laptop()).await.unwrap();
    // A repeat within the grace window writes nothing: no event.
    m.refresh_from(&b.refresh_token, &laptop()).await.unwrap();
    clock.advance(60_000);
    // Past the grace window: reuse, and the session is revoked.
    let reused = m.refresh_from(&b.refresh_token, &phone()).await.unwrap_err();
    assert_eq!(reused.code().as_str(), "refresh_token_reused");
    m.revoke("carol", &c.session.sid).await.unwrap();
    m.revoke("carol", &c.session.sid).await.unwrap(); // already revoked: no second event
    let d = m.issue("carol", Map::new(), json!(null)).await.unwrap();
    m.issue("carol", Map::new(), json!(null)).await.unwrap();
    assert_eq!(m.revoke_all("carol", Some(&d.session.sid)).await.unwrap(), 1);

    let events = seen.lock().unwrap().clone();
    let kinds: Vec<(AuditKind, Option<&str>)> = events.iter().map(|e| (e.kind, e.sid.as_deref())).collect();
    let (sa, sb, sc, sd) = (&*a.session.sid, &*b.session.sid, &*c.session.sid, &*d.session.sid);
    assert_eq!(
        kinds[..7],
        [
            (AuditKind::Issued, Some(sa)),
            (AuditKind::Issued, Some(sb)),
            (AuditKind::LimitEvicted, Some(sa)),
            (AuditKind::Issued, Some(sc)),
            (AuditKind::Refreshed, Some(sb)),
            (AuditKind::ReuseDetected, Some(sb)),
            (AuditKind::Revoked, Some(sc)),
        ]
    );
    assert_eq!(kinds[7], (AuditKind::Issued, Some(sd)));
    assert_eq!(kinds[8].0, AuditKind::Issued);
    assert_eq!(kinds[9], (AuditKind::RevokedAll, Some(sd)), "revoked_all names the session it kept");
    assert_eq!(events.len(), 10);
    assert_eq!(events[9].count, Some(1));
    assert!(events.iter().all(|e| e.user == "carol"));
    // Times and clients: the eviction carries the client of the sign-in that caused it.
    assert_eq!((events[2].at, events[2].ip, events[2].user_agent.as_deref()), (T0 + 1_000, phone().ip, Some("Safari/17 iPhone")));
    assert_eq!((events[4].at, events[4].ip), (T0 + 2_000, laptop().ip));
    assert_eq!((events[5].at, events[5].ip), (T0 + 62_000, phone().ip));
    assert_eq!((events[6].ip, events[6].user_agent.clone()), (None, None), "revoke has no client");
    // Never a token, a secret or a hash.
    let text = serde_json::to_string(&events).unwrap() + &format!("{events:?}");
    for t in [&a, &b, &c, &b2, &d] {
        let secret = t.refresh_token.rsplit('.').next().unwrap();
        assert!(!text.contains(&t.access_token) && !text.contains(&t.refresh_token) && !text.contains(secret));
    }
    assert!(!text.contains("hash") && !text.contains("eyJ"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&events[9]).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["at", "count", "ip", "kind", "sid", "user", "user_agent"]);
    assert_eq!(json["kind"], "revoked_all");
}

#[tokio::test]
async fn failed_operations_and_reads_send_no_event() {
    let clock = Arc::new(ManualClock::new(T0));
    let (m, seen) = manager(&clock, 10);
    let t = m.issue("dave", Map::new(), json!(null)).await.unwrap();
    seen.lock().unwrap().clear();
    assert!(m.refresh("tgr_garbage.x").await.is_err());
    assert!(m.issue("", Map::new(), json!(null)).await.is_err());
    m.list("dave").await.unwrap();
    m.verify(&t.access_token, tollgate::VerifyMode::Strict).await.unwrap();
    assert!(m.revoke("dave", "AAAAAAAAAAAAAAAAAAAAAA").await.is_err());
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn client_from_request_headers_by_the_proxy_rule() {
    // The API a framework layer calls: peer address and header pairs in, no framework types.
    let headers = [("user-agent", "curl/8.5"), ("x-forwarded-for", "192.0.2.1, 10.0.0.5")];
    let c = ClientInfo::from_request("x-forwarded-for:2".parse::<TrustedProxy>().unwrap(), "10.0.0.9".parse().ok(), headers);
    assert_eq!(c.ip, "192.0.2.1".parse().ok());
    assert_eq!(c.user_agent.as_deref(), Some("curl/8.5"));
    let c = ClientInfo::from_request(TrustedProxy::None, "10.0.0.9".parse().ok(), headers);
    assert_eq!(c.ip, "10.0.0.9".parse().ok());
}
