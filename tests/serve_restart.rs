//! `tollgate serve` on its default store (SQLite in its data directory) killed
//! with SIGKILL and started again on the same directory: every session it
//! acknowledged is still there, verifies strictly and refreshes; what was
//! rotated or revoked before the kill stays so.
#![allow(clippy::disallowed_methods)] // a test waits on real time for the writers

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serve_process::{start_in, try_post, DataDir, Server, API_KEY};

const WRITERS: usize = 4;
/// The kill comes once this many sign-ins were acknowledged (writers keep going until it).
const KILL_AFTER: usize = 300;
/// No grace for a rotated refresh token: presenting one again is reuse at once.
const SETTINGS: &[(&str, &str)] = &[("TOLLGATE_REFRESH_GRACE", "0")];

fn settings() -> Vec<(&'static str, String)> {
    SETTINGS.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    try_post(&s.addr, path, &[("X-Api-Key", API_KEY)], &body).expect("the server answers")
}

fn verify_strict(s: &Server, access: &Value) -> (u16, Value) {
    post(s, "/v1/verify", json!({ "token": access, "mode": "strict" }))
}

#[test]
fn every_acknowledged_session_survives_kill_9() {
    let dir = DataDir::new();
    let mut server = start_in(&dir, &settings());

    // Before the loop: one session rotated (its old refresh token is then reuse), one revoked.
    let (st, rotated) = post(&server, "/v1/sessions", json!({ "user": "rita" }));
    assert_eq!(st, 201, "{rotated}");
    let (st, rotated_next) = post(&server, "/v1/refresh", json!({ "refresh_token": rotated["refresh_token"] }));
    assert_eq!(st, 200, "{rotated_next}");
    let (st, revoked) = post(&server, "/v1/sessions", json!({ "user": "rob" }));
    assert_eq!(st, 201, "{revoked}");
    let sid = revoked["session"]["sid"].as_str().unwrap().to_owned();
    let (st, _) = serve_process::call(&server, "DELETE", &format!("/v1/sessions/{sid}?user=rob"), &[("X-Api-Key", API_KEY)], b"");
    assert_eq!(st, 200);

    // Writers sign users in until the server is gone; each keeps what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::<Value>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, acknowledged, count) = (server.addr.clone(), acknowledged.clone(), count.clone());
            thread::spawn(move || {
                for i in 0.. {
                    let body = json!({ "user": format!("user-{w}-{}", i % 7), "metadata": { "i": i } });
                    match try_post(&addr, "/v1/sessions", &[("X-Api-Key", API_KEY)], &body) {
                        Ok((201, t)) => {
                            acknowledged.lock().unwrap().push(t);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, t)) => panic!("a sign-in failed while the server ran: {status} {t}"),
                        // The server is gone: this sign-in was not acknowledged.
                        Err(_) => return i,
                    }
                }
                unreachable!()
            })
        })
        .collect();
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(started.elapsed() < Duration::from_secs(120), "the writers stalled");
        thread::sleep(Duration::from_millis(5));
    }
    server.kill_hard();
    let ended: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert_eq!(ended, acknowledged.len(), "each writer stopped at the kill");
    eprintln!("SIGKILL after {} acknowledged sign-ins ({WRITERS} writers)", acknowledged.len());

    // Started again on the same directory: nothing acknowledged is lost.
    let server = start_in(&dir, &settings());
    for t in &acknowledged {
        let (st, v) = verify_strict(&server, &t["access_token"]);
        assert_eq!((st, &v["session"]["sid"]), (200, &t["session"]["sid"]), "an acknowledged session was lost: {v}");
    }
    // Every one also refreshes, and its new access token verifies strictly.
    for t in &acknowledged {
        let (st, next) = post(&server, "/v1/refresh", json!({ "refresh_token": t["refresh_token"] }));
        assert_eq!(st, 200, "{next}");
        assert_eq!(verify_strict(&server, &next["access_token"]).0, 200);
    }
    // What happened before the loop still holds.
    let (st, v) = post(&server, "/v1/refresh", json!({ "refresh_token": rotated_next["refresh_token"] }));
    assert_eq!(st, 200, "the rotated session refreshes with its newest token: {v}");
    let (st, v) = post(&server, "/v1/refresh", json!({ "refresh_token": rotated["refresh_token"] }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("refresh_token_reused")), "{v}");
    let (st, v) = verify_strict(&server, &revoked["access_token"]);
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("session_revoked")), "{v}");
    assert!(dir.path().join("sessions.db").is_file(), "the sessions live in the data directory");
}

#[test]
fn the_memory_store_is_asked_for_by_name_and_keeps_nothing() {
    let dir = DataDir::new();
    let mut server = start_in(&dir, &[("TOLLGATE_STORE", "memory".into())]);
    let (st, t) = post(&server, "/v1/sessions", json!({ "user": "mo" }));
    assert_eq!(st, 201, "{t}");
    server.kill_hard();
    let server = start_in(&dir, &[("TOLLGATE_STORE", "memory".into())]);
    let (st, v) = verify_strict(&server, &t["access_token"]);
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("session_not_found")), "{v}");
    assert!(!dir.path().join("sessions.db").exists());
}
