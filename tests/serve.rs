//! `tollgate serve`, started as a real process on a free loopback port and spoken to over TCP.

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::process::Command;

use serde_json::json;
use serve_process::{call, raw, start, API_KEY, JSON, REDIS_VARS};

#[test]
fn serve_speaks_the_http_api() {
    // The memory store: whatever Redis the environment names is not for this test.
    let s = start(&[("TOLLGATE_ISSUER", "tollgate-serve-test".into())], REDIS_VARS);
    assert_eq!(call(&s, "GET", "/healthz", &[], b"").0, 200);
    let body = json!({ "user": "zoe", "metadata": { "ua": "curl" } }).to_string();
    let (st, t) = call(&s, "POST", "/v1/sessions", &[JSON, ("X-Api-Key", API_KEY)], body.as_bytes());
    assert_eq!(st, 201, "{t}");
    let verify = json!({ "token": t["access_token"], "mode": "strict" }).to_string();
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], verify.as_bytes());
    assert_eq!((st, v["claims"]["iss"].as_str()), (200, Some("tollgate-serve-test")));
    let refresh = json!({ "refresh_token": t["refresh_token"] }).to_string();
    assert_eq!(call(&s, "POST", "/v1/refresh", &[JSON], refresh.as_bytes()).0, 200);
    // Over-limit bodies are cut off while reading.
    let huge = vec![b'x'; 200 * 1024];
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], &huge);
    assert_eq!((st, v["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (st, v) = call(&s, "POST", "/v1/sessions", &[JSON], body.as_bytes());
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    // Prometheus metrics, natively.
    let (_, metrics) = raw(&s, "GET", "/metrics", &[], b"");
    assert!(metrics.contains("tollgate_operations_total{op=\"issue\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("tollgate_operation_duration_seconds_count{op=\"refresh\"} 1"), "{metrics}");
    assert!(!metrics.contains("zoe"), "no user ids in metrics labels");
}

#[tokio::test]
async fn user_ids_with_reserved_characters_over_real_sockets() {
    let mut s = start(&[], REDIS_VARS);
    user_routes::every_user_route_with_hostile_ids(&mut s, API_KEY, "").await;
}

#[test]
fn keygen_prints_a_usable_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate")).arg("keygen").output().unwrap();
    let secret = String::from_utf8(out.stdout).unwrap();
    assert_eq!(tollgate::engine::b64::decode(secret.trim()).unwrap().len(), 32);
}
