//! The axum layer over real sockets: axum serves on 127.0.0.1, a hyper HTTP/1.1
//! client sends each request on its own connection. Each case is a row or rule of
//! docs/cookies.md; the last test runs the JavaScript adapters' own scenario
//! (js/test/adapters/scenario.mjs) against the same routes in axum.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tollgate::axum::{Session, SessionLayer, Sessions, StatelessClaims};
use tollgate::cookies::AdapterOptions;
use tollgate::engine::step::{Versioned, WriteOp};
use tollgate::store::{CommitResult, StoreError};
use tollgate::{Caps, Config, LimitPolicy, ManualClock, MemoryStore, SessionManager, Store};

const SECRET: &str = "axum-layer-test-secret-of-32-bytes!!";
const HOST: &str = "app.example";
const T0: u64 = 1_764_000_000_000;
const CLEAR: &str = "__Host-tg_refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict";
const SAME: (&str, &str) = ("sec-fetch-site", "same-origin");

/// The memory store, answering `store_unavailable` (1) or a conflict on every commit (2) while `mode` says so.
#[derive(Clone, Default)]
struct Faulty {
    inner: MemoryStore,
    mode: Arc<AtomicU8>,
}

#[async_trait::async_trait]
impl Store for Faulty {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        match self.mode.load(SeqCst) {
            1 => Err(StoreError::unavailable("test: the store is down")),
            _ => self.inner.get(keys).await,
        }
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        match self.mode.load(SeqCst) {
            1 => Err(StoreError::unavailable("test: the store is down")),
            2 => Ok(CommitResult::Conflict),
            _ => self.inner.commit(ops).await,
        }
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
}

struct Env {
    addr: SocketAddr,
    clock: Arc<ManualClock>,
    store: Faulty,
}

fn manager(store: Faulty, clock: Arc<ManualClock>, limit: Option<u32>) -> SessionManager<Faulty> {
    let mut config = Config::builder().secret(SECRET).kid("a1").issuer("https://app.example").max_attempts(3);
    if let Some(n) = limit {
        config = config.max_sessions_per_user(n).on_limit(LimitPolicy::Refuse);
    }
    SessionManager::new(config.build().unwrap(), store).unwrap().with_clock(clock)
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The routes of js/test/adapters/hono-app.mjs: the "authenticated" user comes from `x-user`.
fn app<S: Store + 'static>(manager: Arc<SessionManager<S>>, options: AdapterOptions) -> Router {
    Router::new()
        .route(
            "/login",
            post(|s: Sessions, h: HeaderMap| async move {
                let metadata = json!({ "device": match header(&h, "x-device") { "" => "web", d => d } });
                s.sign_in(header(&h, "x-user"), Map::from_iter([("role".into(), json!("reader"))]), metadata).await
            }),
        )
        .route(
            "/me",
            get(|s: Session| async move {
                Json(json!({ "sub": s.claims.sub(), "role": s.claims.to_json()["role"], "device": s.session.metadata["device"] }))
            })
            .post(|s: Session| async move { Json(json!({ "sub": s.claims.sub(), "changed": true })) }),
        )
        .route(
            "/sessions",
            get(|s: Session, sessions: Sessions| async move { Json(json!(sessions.list(s.claims.sub(), s.claims.sid()).await.unwrap())) }),
        )
        .route("/fast", get(|StatelessClaims(c): StatelessClaims| async move { Json(json!({ "sub": c.sub(), "session": null })) }))
        .route("/auth/refresh", post(tollgate::axum::refresh))
        .route("/auth/any-refresh", any(tollgate::axum::refresh))
        .route("/auth/sign-out", post(tollgate::axum::sign_out))
        .route("/auth/sign-out-everywhere", post(tollgate::axum::sign_out_everywhere))
        .layer(SessionLayer::new(manager, options))
        // Outside the layer: an app bug the extractor answers as `internal`.
        .route("/unguarded", get(|s: Session| async move { Json(json!({ "sub": s.claims.sub() })).into_response() }))
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await });
    addr
}

async fn start(options: AdapterOptions, limit: Option<u32>) -> Env {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Faulty { inner: MemoryStore::with_clock(clock.clone()), mode: Arc::default() };
    let addr = serve(app(Arc::new(manager(store.clone(), clock.clone(), limit)), options)).await;
    Env { addr, clock, store }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    set_cookie: Vec<String>,
    cache_control: String,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// The value of the refresh cookie this reply sets.
    fn refresh(&self) -> String {
        let c = self.set_cookie.iter().find(|c| c.starts_with("__Host-tg_refresh=")).expect("a refresh cookie");
        c["__Host-tg_refresh=".len()..c.find(';').unwrap()].to_owned()
    }
    fn refused(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{self:?}");
        let message = self.body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("eyJ") && !message.contains("tgr_"), "no token in the message: {message}");
    }
}

/// One request on a new connection.
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", HOST);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let set_cookie = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let cache_control = header(res.headers(), "cache-control").to_owned();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, set_cookie, cache_control, body }
}

async fn login(addr: SocketAddr, user: &str) -> Reply {
    let r = send(addr, "POST", "/login", &[SAME, ("x-user", user)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    r
}

fn cookie(value: &str) -> String {
    format!("other=1; __Host-tg_refresh={value}")
}

#[tokio::test]
async fn cookies_are_written_byte_for_byte() {
    let env = start(AdapterOptions::default(), None).await;
    let r = login(env.addr, "alice").await;
    let token = r.refresh();
    assert!(token.starts_with("tgr_"));
    // The manager's clock: 14 days to the idle expiry, in whole seconds.
    assert_eq!(r.set_cookie, [format!("__Host-tg_refresh={token}; Path=/; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict")]);
    assert_eq!((r.cache_control.as_str(), r.body["session"]["generation"].as_u64()), ("no-store", Some(0)));
    assert!(r.body["access_token"].as_str().unwrap().starts_with("eyJ") && !r.body.to_string().contains("tgr_"));
    assert_eq!(r.body["access_expires_at"], T0 + 900_000);

    let options = AdapterOptions::builder()
        .refresh_cookie("__Secure-tg_refresh")
        .refresh_cookie_path("/auth")
        .access_cookie("__Host-tg_access")
        .same_site("lax")
        .build()
        .unwrap();
    let env = start(options, None).await;
    let r = login(env.addr, "erin").await;
    assert!(r.body.get("access_token").is_none(), "{}", r.body);
    let value = |c: &str| c[c.find('=').unwrap() + 1..c.find(';').unwrap()].to_owned();
    let (refresh, access) = (value(&r.set_cookie[0]), value(&r.set_cookie[1]));
    assert_eq!(
        r.set_cookie,
        [
            format!("__Secure-tg_refresh={refresh}; Path=/auth; Max-Age=1209600; HttpOnly; Secure; SameSite=Lax"),
            format!("__Host-tg_access={access}; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax"),
        ]
    );
    env.clock.advance(1_500);
    let r = send(env.addr, "POST", "/auth/sign-out", &[SAME, ("cookie", &format!("__Host-tg_access={access}"))]).await;
    assert_eq!((r.status, &r.body), (200, &json!({ "signed_out": true })));
    assert_eq!(
        r.set_cookie,
        [
            "__Secure-tg_refresh=; Path=/auth; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
            "__Host-tg_access=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        ]
    );
}

#[tokio::test]
async fn every_row_of_the_errors_table() {
    let env = start(AdapterOptions::default(), None).await;
    let a = env.addr;
    let r = login(a, "alice").await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let refresh = r.refresh();

    let forbidden = send(a, "POST", "/auth/refresh", &[("sec-fetch-site", "cross-site"), ("cookie", &cookie(&refresh))]).await;
    forbidden.refused(403, "forbidden");
    assert!(forbidden.set_cookie.is_empty());
    let none = send(a, "GET", "/me", &[]).await;
    none.refused(401, "unauthorized");
    let no_cookie = send(a, "POST", "/auth/refresh", &[SAME]).await;
    no_cookie.refused(401, "unauthorized");
    assert!(no_cookie.set_cookie.is_empty());
    send(a, "GET", "/me", &[("authorization", &format!("Basic {access}"))]).await.refused(401, "unauthorized");
    send(a, "GET", "/me", &[("authorization", "Bearer not.a.token")]).await.refused(401, "token_invalid");
    send(a, "GET", "/me", &[("cookie", &cookie(&refresh))]).await.refused(401, "unauthorized");
    assert_eq!(send(a, "GET", "/me", &[("authorization", &bearer)]).await.status, 200);
    let other_issuer = SessionManager::new(
        Config::builder().secret(SECRET).kid("a1").issuer("https://other.example").build().unwrap(),
        MemoryStore::new(),
    )
    .unwrap();
    let foreign = other_issuer.issue("alice", Map::new(), json!({})).await.unwrap();
    send(a, "GET", "/me", &[("authorization", &format!("Bearer {}", foreign.access_token))]).await.refused(401, "token_invalid");
    // A refresh token of a session this store never held.
    let stranger = manager(Faulty::default(), env.clock.clone(), None).issue("alice", Map::new(), json!({})).await.unwrap();
    let unknown = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&stranger.refresh_token))]).await;
    unknown.refused(404, "session_not_found");
    assert_eq!(unknown.set_cookie, [CLEAR]);
    send(a, "GET", "/unguarded", &[("authorization", &bearer)]).await.refused(500, "internal");
    let get_refresh = send(a, "GET", "/auth/any-refresh", &[SAME, ("cookie", &cookie(&refresh))]).await;
    get_refresh.refused(405, "method_not_allowed");

    // Transient errors answer and leave the cookies.
    env.store.mode.store(1, SeqCst);
    let down = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&refresh))]).await;
    down.refused(503, "store_unavailable");
    assert!(down.set_cookie.is_empty() && !down.body.to_string().contains("test: the store"), "{down:?}");
    send(a, "POST", "/login", &[SAME, ("x-user", "bob")]).await.refused(503, "store_unavailable");
    send(a, "GET", "/me", &[("authorization", &bearer)]).await.refused(503, "store_unavailable");
    env.store.mode.store(2, SeqCst);
    let colliding = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&refresh))]).await;
    colliding.refused(409, "conflict");
    assert!(colliding.set_cookie.is_empty());
    let out = send(a, "POST", "/auth/sign-out", &[SAME, ("authorization", &bearer)]).await;
    out.refused(409, "conflict");
    assert!(out.set_cookie.is_empty(), "a failed sign-out leaves the cookies");
    env.store.mode.store(0, SeqCst);

    // Time: the access token expires; later the session's idle expiry passes.
    env.clock.advance(900_000 + 60_000);
    send(a, "GET", "/me", &[("authorization", &bearer)]).await.refused(401, "token_expired");
    assert_eq!(send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&refresh))]).await.status, 200);
    let r = login(a, "carol").await;
    let carol = format!("Bearer {}", r.body["access_token"].as_str().unwrap());
    send(a, "POST", "/auth/sign-out", &[SAME, ("authorization", &carol)]).await;
    send(a, "GET", "/me", &[("authorization", &carol)]).await.refused(401, "session_revoked");
    let revoked = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&r.refresh()))]).await;
    revoked.refused(401, "session_revoked");
    assert_eq!(revoked.set_cookie, [CLEAR]);
    let garbage = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie("tgr_garbage"))]).await;
    garbage.refused(401, "token_invalid");
    assert_eq!(garbage.set_cookie, [CLEAR]);

    let dave = login(a, "dave").await;
    let dave_bearer = format!("Bearer {}", dave.body["access_token"].as_str().unwrap());
    env.clock.advance(Duration::from_secs(14 * 86_400 + 1).as_millis() as u64);
    let expired = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&dave.refresh()))]).await;
    assert!(["session_expired", "session_not_found"].contains(&expired.code()), "{expired:?}");
    assert_eq!(expired.set_cookie, [CLEAR]);
    let strict = send(a, "GET", "/me", &[("authorization", &dave_bearer)]).await;
    assert_eq!((strict.status, strict.code()), (401, "token_expired"), "the access token expired first");

    // The per-user limit, policy refuse.
    let env = start(AdapterOptions::default(), Some(1)).await;
    login(env.addr, "erin").await;
    let limited = send(env.addr, "POST", "/login", &[SAME, ("x-user", "erin")]).await;
    limited.refused(409, "session_limit");
    assert!(limited.set_cookie.is_empty());
    send(env.addr, "POST", "/login", &[SAME, ("x-user", "")]).await.refused(400, "bad_request");
}

#[tokio::test]
async fn a_strict_route_fails_at_once_when_the_session_expires() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Faulty { inner: MemoryStore::with_clock(clock.clone()), mode: Arc::default() };
    let config = Config::builder().secret(SECRET).idle_ttl(Duration::from_secs(60)).access_ttl(Duration::from_secs(600)).build().unwrap();
    let m = SessionManager::new(config, store).unwrap().with_clock(clock.clone());
    let addr = serve(app(Arc::new(m), AdapterOptions::default())).await;
    let r = login(addr, "frank").await;
    let bearer = format!("Bearer {}", r.body["access_token"].as_str().unwrap());
    clock.advance(61_000);
    let strict = send(addr, "GET", "/me", &[("authorization", &bearer)]).await;
    assert!(["session_expired", "session_not_found"].contains(&strict.code()) && strict.status >= 401, "{strict:?}");
    assert_eq!(send(addr, "GET", "/fast", &[("authorization", &bearer)]).await.status, 200, "stateless: claims only");
}

#[tokio::test]
async fn the_csrf_check_on_sign_in_and_refresh() {
    let options = AdapterOptions::builder().allowed_origins(["https://partner.example"]).build().unwrap();
    let env = start(options, None).await;
    let a = env.addr;
    let mut refresh = login(a, "gina").await.refresh();
    for (headers, allowed, why) in [
        (vec![("origin", "https://partner.example"), ("sec-fetch-site", "cross-site")], true, "an allowed origin"),
        (vec![SAME], true, "same-origin"),
        (vec![("origin", "https://app.example")], true, "its own origin, no Sec-Fetch-Site"),
        (vec![], true, "neither header"),
        (vec![("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")], false, "cross-site"),
        (vec![("sec-fetch-site", "same-site"), ("origin", "https://blog.app.example")], false, "same site, other origin"),
        (vec![("origin", "null")], false, "Origin null"),
        (vec![("origin", "https://evil.example")], false, "a foreign Origin, no Sec-Fetch-Site"),
    ] {
        let jar = cookie(&refresh);
        let mut with_cookie = headers.clone();
        with_cookie.push(("cookie", &jar));
        let r = send(a, "POST", "/auth/refresh", &with_cookie).await;
        let mut login_headers = headers.clone();
        login_headers.push(("x-user", "gina"));
        let l = send(a, "POST", "/login", &login_headers).await;
        if allowed {
            assert_eq!((r.status, l.status), (200, 200), "{why}: {r:?} {l:?}");
            refresh = r.refresh();
        } else {
            r.refused(403, "forbidden");
            l.refused(403, "forbidden");
            assert!(r.set_cookie.is_empty() && l.set_cookie.is_empty(), "{why}: a refusal changes nothing");
        }
    }
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_get_the_same_successor_and_reuse_later_clears_the_cookie() {
    let env = start(AdapterOptions::default(), None).await;
    let a = env.addr;
    let first = login(a, "hana").await.refresh();
    let jar = cookie(&first);
    let headers = [SAME, ("cookie", jar.as_str())];
    let (x, y) = tokio::join!(send(a, "POST", "/auth/refresh", &headers), send(a, "POST", "/auth/refresh", &headers));
    assert_eq!((x.status, y.status), (200, 200), "{x:?} {y:?}");
    assert_eq!(x.set_cookie, y.set_cookie, "the same Set-Cookie, never a clearing one");
    assert_ne!(x.refresh(), first);
    let second = x.refresh();
    // Past the grace window (30 s) the first token is reuse: the session is revoked, the cookies cleared.
    env.clock.advance(31_000);
    let reuse = send(a, "POST", "/auth/refresh", &headers).await;
    reuse.refused(401, "refresh_token_reused");
    assert_eq!(reuse.set_cookie, [CLEAR]);
    let after = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&second))]).await;
    assert_eq!((after.status, after.set_cookie == [CLEAR]), (401, true), "{after:?}");
}

#[tokio::test]
async fn sign_out_and_sign_out_everywhere() {
    let env = start(AdapterOptions::default(), None).await;
    let a = env.addr;
    let laptop = login(a, "ivan").await;
    let phone = login(a, "ivan").await;
    let bearer = |r: &Reply| format!("Bearer {}", r.body["access_token"].as_str().unwrap());
    // Sign-out by the refresh cookie alone names and revokes that session.
    let out = send(a, "POST", "/auth/sign-out", &[SAME, ("cookie", &cookie(&laptop.refresh()))]).await;
    assert_eq!((out.status, &out.body, out.set_cookie == [CLEAR]), (200, &json!({ "signed_out": true }), true));
    send(a, "GET", "/me", &[("authorization", &bearer(&laptop))]).await.refused(401, "session_revoked");
    assert_eq!(send(a, "GET", "/me", &[("authorization", &bearer(&phone))]).await.status, 200, "the other session lives");
    let again = send(a, "POST", "/auth/sign-out", &[SAME]).await;
    assert_eq!((again.status, again.set_cookie == [CLEAR]), (200, true), "signed out already: the same answer");

    let tablet = login(a, "ivan").await;
    send(a, "POST", "/auth/sign-out-everywhere", &[SAME]).await.refused(401, "unauthorized");
    let all = send(a, "POST", "/auth/sign-out-everywhere", &[SAME, ("authorization", &bearer(&tablet))]).await;
    assert_eq!((all.status, &all.body, all.set_cookie == [CLEAR]), (200, &json!({ "revoked": 2 }), true));
    assert_eq!(all.cache_control, "no-store");
    send(a, "GET", "/me", &[("authorization", &bearer(&phone))]).await.refused(401, "session_revoked");
    let phone_refresh = send(a, "POST", "/auth/refresh", &[SAME, ("cookie", &cookie(&phone.refresh()))]).await;
    phone_refresh.refused(401, "session_revoked");
    assert_eq!(phone_refresh.set_cookie, [CLEAR]);
}

#[tokio::test]
async fn sign_in_and_refresh_record_the_client_and_the_list_marks_the_callers_session() {
    // Behind one proxy: the client is the last X-Forwarded-For entry, and no header means no IP.
    let env = start(AdapterOptions::builder().trusted_proxy("x-forwarded-for:1").build().unwrap(), None).await;
    let a = env.addr;
    let laptop = [SAME, ("x-user", "judy"), ("user-agent", "Laptop/1"), ("x-forwarded-for", "198.51.100.7, 203.0.113.9")];
    let laptop = send(a, "POST", "/login", &laptop).await;
    let phone = send(a, "POST", "/login", &[SAME, ("x-user", "judy"), ("user-agent", "Phone/2")]).await;
    assert_eq!((laptop.status, phone.status), (200, 200));
    let bearer = |r: &Reply| format!("Bearer {}", r.body["access_token"].as_str().unwrap());
    let listed = |list: &Reply, of: &Reply| {
        let sid = &of.body["session"]["sid"];
        let entry = list.body.as_array().unwrap().iter().find(|s| &s["sid"] == sid).unwrap().clone();
        (entry["ip"].clone(), entry["user_agent"].clone(), entry["current"].clone())
    };
    let list = send(a, "GET", "/sessions", &[("authorization", &bearer(&phone))]).await;
    assert_eq!(listed(&list, &laptop), (json!("203.0.113.9"), json!("Laptop/1"), json!(false)));
    assert_eq!(listed(&list, &phone), (Value::Null, json!("Phone/2"), json!(true)));
    // A refresh records the refreshing client.
    let moved = [SAME, ("cookie", &cookie(&laptop.refresh())), ("user-agent", "Laptop/2"), ("x-forwarded-for", "192.0.2.44")];
    let moved = send(a, "POST", "/auth/refresh", &moved).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let list = send(a, "GET", "/sessions", &[("authorization", &bearer(&moved))]).await;
    assert_eq!(listed(&list, &laptop), (json!("192.0.2.44"), json!("Laptop/2"), json!(true)));
    assert_eq!(listed(&list, &phone).2, json!(false));
    // Without a proxy setting the peer address is the client, whatever the headers say.
    let direct = start(AdapterOptions::default(), None).await;
    let me = send(direct.addr, "POST", "/login", &[SAME, ("x-user", "judy"), ("x-forwarded-for", "203.0.113.9")]).await;
    let list = send(direct.addr, "GET", "/sessions", &[("authorization", &bearer(&me))]).await;
    assert_eq!(listed(&list, &me), (json!("127.0.0.1"), Value::Null, json!(true)));
}

/// js/test/adapters/scenario.mjs, the scenario every JavaScript adapter passes in every
/// runtime, sent by Node over sockets to the same routes served by axum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_adapters_scenario_passes_against_axum() {
    let m = Arc::new(
        SessionManager::new(Config::builder().secret(SECRET).kid("a1").issuer("https://app.example").build().unwrap(), MemoryStore::new())
            .unwrap(),
    );
    let cookie_options = AdapterOptions::builder()
        .access_cookie("__Host-tg_access")
        .same_site("lax")
        .allowed_origins(["https://partner.example"])
        .build()
        .unwrap();
    let bearer = serve(app(m.clone(), AdapterOptions::default())).await;
    let cookie = serve(app(m, cookie_options)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/js/test/adapters/axum-scenario.mjs");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").arg(script).arg(format!("http://{bearer}")).arg(format!("http://{cookie}")).output()
    })
    .await
    .unwrap()
    .expect("node (20 or later) runs the scenario; scripts/test.sh expects it on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert_eq!(result["failures"], json!([]), "{result}");
    let checks = result["checks"].as_u64().unwrap();
    assert!(checks >= 80, "{checks} checks ran");
    println!("axum: {checks} checks of the adapters' scenario passed");
}
