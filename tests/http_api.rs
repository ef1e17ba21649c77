//! The HTTP API, called as the Worker and `tollgate serve` call it, on the memory store.

#[path = "support/user_routes.rs"]
mod user_routes;

use std::sync::Arc;

use serde_json::{json, Value};
use tollgate::http::{HttpApi, HttpRequest, HttpResponse};
use tollgate::{Config, ManualClock, MemoryStore, SessionManager};

const API_KEY: &str = "test-api-key-0123456789";

fn service() -> (HttpApi<MemoryStore>, MemoryStore) {
    let (s, store, _) = service_with_clock();
    (s, store)
}

fn service_with_clock() -> (HttpApi<MemoryStore>, MemoryStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let store = MemoryStore::with_clock(clock.clone());
    let config = Config::builder().secret(b"http-test-secret-of-at-least-32-bytes!".to_vec()).build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap().with_clock(clock.clone());
    (HttpApi::new(sessions, &[API_KEY, "previous-api-key-abcdef"]).unwrap(), store, clock)
}

fn req(method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> HttpRequest {
    let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if body.is_some() {
        h.push(("Content-Type".into(), "application/json".into()));
    }
    HttpRequest::new(method, path, h, body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default())
}

async fn call(s: &HttpApi<MemoryStore>, r: HttpRequest) -> (u16, Value) {
    let HttpResponse { status, body, .. } = s.handle(r).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

async fn create(s: &HttpApi<MemoryStore>, user: &str) -> Value {
    let (st, v) =
        call(s, req("POST", "/v1/sessions", &[("X-Api-Key", API_KEY)], Some(json!({ "user": user, "metadata": { "ua": "test" } })))).await;
    assert_eq!(st, 201, "{v}");
    v
}

#[tokio::test]
async fn whole_flow_over_http() {
    let (s, _) = service();
    assert_eq!(call(&s, req("GET", "/healthz", &[], None)).await, (200, json!({ "status": "ok" })));
    let (st, jwks) = call(&s, req("GET", "/.well-known/jwks.json", &[], None)).await;
    assert_eq!((st, jwks), (200, json!({ "keys": [] })), "HMAC keys are never published");

    let t = create(&s, "alice").await;
    let access = t["access_token"].as_str().unwrap();
    let (st, v) = call(&s, req("POST", "/v1/verify", &[], Some(json!({ "token": access, "mode": "strict" })))).await;
    assert_eq!(st, 200);
    assert_eq!(v["claims"]["sub"], "alice");
    assert_eq!(v["session"]["metadata"]["ua"], "test");

    let (st, t2) = call(&s, req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": t["refresh_token"] })))).await;
    assert_eq!(st, 200);
    let access2 = t2["access_token"].as_str().unwrap().to_owned();

    // The user lists their own sessions with their access token.
    let bearer = format!("Bearer {access2}");
    let (st, v) = call(&s, req("GET", "/v1/users/alice/sessions", &[("Authorization", &bearer)], None)).await;
    assert_eq!(st, 200);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    // ... but not someone else's.
    let (st, v) = call(&s, req("GET", "/v1/users/bob/sessions", &[("Authorization", &bearer)], None)).await;
    assert_eq!((st, code(&v)), (403, "forbidden"));

    // A second session; the user revokes all but the current one.
    let other = create(&s, "alice").await;
    let (st, v) = call(&s, req("DELETE", "/v1/users/alice/sessions?keep=current", &[("Authorization", &bearer)], None)).await;
    assert_eq!((st, v["revoked"].clone()), (200, json!(1)));
    let (st, v) = call(&s, req("POST", "/v1/verify", &[], Some(json!({ "token": other["access_token"], "mode": "strict" })))).await;
    assert_eq!((st, code(&v)), (401, "session_revoked"));

    // The user revokes their own session by id; the next strict verify fails at once.
    let sid = t2["session"]["sid"].as_str().unwrap();
    let (st, _) = call(&s, req("DELETE", &format!("/v1/sessions/{sid}"), &[("Authorization", &bearer)], None)).await;
    assert_eq!(st, 200);
    let (st, v) = call(&s, req("POST", "/v1/verify", &[], Some(json!({ "token": access2, "mode": "strict" })))).await;
    assert_eq!((st, code(&v)), (401, "session_revoked"));

    // The service revokes by id with ?user=, and lists any user.
    let b = create(&s, "bob@example.com").await;
    let sid = b["session"]["sid"].as_str().unwrap();
    let (st, _) =
        call(&s, req("DELETE", &format!("/v1/sessions/{sid}?user=bob%40example.com"), &[("X-Api-Key", "previous-api-key-abcdef")], None))
            .await;
    assert_eq!(st, 200);
    let (st, v) = call(&s, req("GET", "/v1/users/bob%40example.com/sessions", &[("X-Api-Key", API_KEY)], None)).await;
    assert_eq!((st, v["sessions"].as_array().unwrap().len()), (200, 0));
}

impl user_routes::Client for HttpApi<MemoryStore> {
    async fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        call(self, req(method, path, headers, body)).await
    }
}

#[tokio::test]
async fn user_ids_with_reserved_characters_work_on_every_user_route() {
    let (mut s, _) = service();
    user_routes::every_user_route_with_hostile_ids(&mut s, API_KEY, "").await;
}

#[tokio::test]
async fn reuse_is_reported_over_http() {
    let (s, _, clock) = service_with_clock();
    let t = create(&s, "carol").await;
    let rt = t["refresh_token"].clone();
    let (st, first) = call(&s, req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": rt })))).await;
    assert_eq!(st, 200);
    let (st, again) = call(&s, req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": rt })))).await;
    assert_eq!((st, &again["refresh_token"]), (200, &first["refresh_token"]), "same successor within the grace window");
    clock.advance(11_000);
    let (st, v) = call(&s, req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": rt })))).await;
    assert_eq!((st, code(&v)), (401, "refresh_token_reused"));
    let (st, v) = call(&s, req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": first["refresh_token"] })))).await;
    assert_eq!((st, code(&v)), (401, "session_revoked"));
}

#[tokio::test]
async fn bad_requests_get_coded_4xx_and_change_nothing() {
    let (s, store) = service();
    let t = create(&s, "dave").await;
    let before = store.snapshot();
    let key = [("X-Api-Key", API_KEY)];
    let big = json!({ "user": "dave", "metadata": "x".repeat(70 * 1024) });
    let cases: Vec<(HttpRequest, u16, &str)> = vec![
        (req("GET", "/nope", &[], None), 404, "not_found"),
        (req("GET", "/v1/sessions/x/y/z", &[], None), 404, "not_found"),
        (req("GET", "/v1/sessions", &key, None), 405, "method_not_allowed"),
        (req("PUT", "/v1/users/dave/sessions", &key, None), 405, "method_not_allowed"),
        (req("POST", "/healthz", &[], None), 405, "method_not_allowed"),
        (req("POST", "/v1/sessions", &[], Some(json!({ "user": "dave" }))), 401, "unauthorized"),
        (req("POST", "/v1/sessions", &[("X-Api-Key", "wrong-key-wrong-key")], Some(json!({ "user": "dave" }))), 401, "unauthorized"),
        (req("POST", "/v1/sessions", &[("X-Api-Key", "")], Some(json!({ "user": "dave" }))), 401, "unauthorized"),
        (req("POST", "/v1/sessions", &key, Some(json!({}))), 400, "bad_request"),
        (req("POST", "/v1/sessions", &key, Some(json!({ "user": 42 }))), 400, "bad_request"),
        (req("POST", "/v1/sessions", &key, Some(json!({ "user": "dave", "extra": 1 }))), 400, "bad_request"),
        (req("POST", "/v1/sessions", &key, Some(json!({ "user": "" }))), 400, "bad_request"),
        (req("POST", "/v1/sessions", &key, Some(json!({ "user": "dave", "claims": { "sub": "root" } }))), 400, "bad_request"),
        (req("POST", "/v1/sessions", &key, Some(big)), 413, "payload_too_large"),
        (
            HttpRequest::new(
                "POST",
                "/v1/sessions",
                vec![("X-Api-Key".into(), API_KEY.into()), ("Content-Type".into(), "application/json".into())],
                b"{not json".to_vec(),
            ),
            400,
            "bad_request",
        ),
        (
            HttpRequest::new(
                "POST",
                "/v1/sessions",
                vec![("X-Api-Key".into(), API_KEY.into()), ("Content-Type".into(), "text/plain".into())],
                b"{\"user\":\"dave\"}".to_vec(),
            ),
            415,
            "unsupported_media_type",
        ),
        (HttpRequest::new("POST", "/v1/verify", vec![], b"{\"token\":\"x\"}".to_vec()), 415, "unsupported_media_type"),
        (req("POST", "/v1/verify", &[], Some(json!({ "token": "garbage" }))), 401, "token_invalid"),
        (req("POST", "/v1/verify", &[], Some(json!({ "token": t["access_token"], "mode": "paranoid" }))), 400, "bad_request"),
        (req("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": "tgr_garbage.x" }))), 401, "token_invalid"),
        (req("POST", "/v1/refresh", &[], Some(json!({ "token": "x" }))), 400, "bad_request"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA?user=dave", &key, None), 404, "session_not_found"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", &[], None), 401, "unauthorized"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", &[("Authorization", "Basic abc")], None), 401, "unauthorized"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", &[("Authorization", "Bearer not.a.token")], None), 401, "token_invalid"),
        (req("GET", "/v1/users/dave/sessions", &[], None), 401, "unauthorized"),
        (req("GET", "/v1/users/%zz/sessions", &key, None), 400, "bad_request"),
        (req("GET", "/v1/users/%+1/sessions", &key, None), 400, "bad_request"),
        (req("GET", "/v1/users/%4/sessions", &key, None), 400, "bad_request"),
        (req("GET", "/v1/users/%ff/sessions", &key, None), 400, "bad_request"),
        (req("GET", "/v1/users/%C3/sessions", &key, None), 400, "bad_request"),
        (req("GET", "/v1/users//sessions", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/users/dave/sessions?keep=current", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/users/dave/sessions?keep=", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/users/dave/sessions?keep=not-a-session", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/users/dave/sessions?kep=current", &key, None), 400, "bad_request"),
        (req("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA?user=dave&user=erin", &key, None), 400, "bad_request"),
    ];
    for (r, status, want) in cases {
        let what = format!("{} {}?{}", r.method, r.path, r.query);
        let (st, v) = call(&s, r).await;
        assert_eq!((st, code(&v)), (status, want), "{what}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message that says what to do");
    }
    assert_eq!(store.snapshot(), before, "no bad request changed anything stored");
}

#[tokio::test]
async fn error_messages_never_echo_tokens() {
    let (s, _) = service();
    let t = create(&s, "erin").await;
    let access = t["access_token"].as_str().unwrap();
    let tampered = format!("{}x", access);
    let (_, v) = call(&s, req("POST", "/v1/verify", &[], Some(json!({ "token": tampered })))).await;
    assert!(!v.to_string().contains(access));
    let bad_json = format!("{{\"refresh_token\": \"{}\" oops", t["refresh_token"].as_str().unwrap());
    let r = HttpRequest::new(
        "POST",
        "/v1/refresh",
        vec![("content-type".into(), "application/json; charset=utf-8".into())],
        bad_json.into_bytes(),
    );
    let (st, v) = call(&s, r).await;
    assert_eq!(st, 400);
    assert!(!v.to_string().contains(t["refresh_token"].as_str().unwrap()));
}

#[test]
fn short_or_missing_api_keys_are_refused() {
    let config = Config::builder().secret(b"http-test-secret-of-at-least-32-bytes!".to_vec()).build().unwrap();
    let m = || SessionManager::new(config.clone(), MemoryStore::new()).unwrap();
    assert!(HttpApi::new(m(), &[]).is_err());
    assert!(HttpApi::new(m(), &["short"]).is_err());
}
