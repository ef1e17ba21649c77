//! `tollgate serve` on Redis, started as a real process: a session created
//! over HTTP lands in Redis under the configured prefix and verifies strictly,
//! and every user route works for user ids with reserved characters (braces
//! included: on a Cluster, all of a user's keys must share one slot).
//! Run by `scripts/redis.sh` (it needs the servers it starts).
#![cfg(all(feature = "redis", feature = "server"))]

#[path = "support/redis_env.rs"]
mod redis_env;

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use serde_json::{json, Value};
use serve_process::{call, API_KEY, JSON};

fn post(s: &impl serve_process::HasAddr, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut headers = headers.to_vec();
    headers.push(JSON);
    call(s, "POST", path, &headers, body.to_string().as_bytes())
}

async fn sessions_work_through_http(store: String, raw_node: Option<String>) {
    let mut server = serve_process::start(&[("TOLLGATE_STORE", store), ("TOLLGATE_REDIS_PREFIX", "tgserve:".into())]);
    let run = format!("-{}-{}", std::process::id(), unique_suffix());
    user_routes::every_user_route_with_hostile_ids(&mut server, API_KEY, &run).await;
    let user = format!("serve{run}");
    let (status, tokens) = post(&server, "/v1/sessions", &[("X-Api-Key", API_KEY)], json!({ "user": user }));
    assert_eq!(status, 201, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, v) = post(&server, "/v1/verify", &[], json!({ "token": access, "mode": "strict" }));
    assert_eq!(status, 200, "{v}");
    if let Some(node) = raw_node {
        let mut c = redis_env::raw(&node).await;
        let exists: i64 = redis::cmd("EXISTS").arg(format!("tgserve:i:{{u:{user}}}")).query_async(&mut c).await.unwrap();
        assert_eq!(exists, 1, "the session index is in Redis under the prefix");
    }
}

/// Distinct per call, so the walk's user ids start empty on a Redis shared by runs.
#[allow(clippy::disallowed_methods)] // real time, only to tell runs apart
fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test]
#[ignore]
async fn serve_on_a_single_redis() {
    let url = redis_env::var("TG_TEST_REDIS_URL");
    sessions_work_through_http(url.clone(), Some(url)).await;
}

#[tokio::test]
#[ignore]
async fn serve_on_sentinel_and_cluster() {
    let sentinels = redis_env::var("TG_TEST_REDIS_SENTINELS");
    let master = redis_env::var("TG_TEST_REDIS_SENTINEL_MASTER");
    sessions_work_through_http(format!("redis-sentinel://{sentinels}/{master}"), None).await;
    sessions_work_through_http(format!("redis-cluster://{}", redis_env::var("TG_TEST_REDIS_CLUSTER")), None).await;
}

/// Key rotation by rolling restart, as an operator does it: a second serve starts
/// with a new signing key and the old one verify-only, traffic moves to it, the
/// first one gets SIGTERM and drains. Clients verify and refresh throughout; none fails.
///
/// The recipe: the refresh secret (which authenticates the stored sessions) stays the
/// same across the rotation. Here both keys are asymmetric, so it is set on both; when
/// an HMAC `secret` is rotated, set `TOLLGATE_REFRESH_SECRET` to the old secret on the
/// new service (unset, it derives from the signing secret, and every stored session
/// would read as `store_corrupt`).
#[test]
#[ignore]
fn rotating_the_signing_key_signs_no_one_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, RwLock};
    let base = |extra: Vec<(&'static str, String)>| {
        let mut vars = vec![
            ("TOLLGATE_STORE", redis_env::var("TG_TEST_REDIS_URL")),
            ("TOLLGATE_REDIS_PREFIX", format!("tgrotate{}:", unique_suffix())),
            ("TOLLGATE_SECRET", String::new()),
            ("TOLLGATE_REFRESH_SECRET", "the-refresh-secret-both-services-share-32+".into()),
        ];
        vars.extend(extra);
        vars
    };
    let old_vars = base(vec![
        ("TOLLGATE_SIGNING_KEY", include_str!("keys/es256.pem").into()),
        ("TOLLGATE_ALG", "ES256".into()),
        ("TOLLGATE_KID", "k-old".into()),
    ]);
    let prefix = old_vars[1].1.clone();
    let mut old = serve_process::start(&old_vars);
    let current = Arc::new(RwLock::new(old.addr.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|n| {
            let (current, stop, ok, failed) = (current.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let at = || serve_process::Server::at(current.read().unwrap().clone());
                let (st, t) = post(&at(), "/v1/sessions", &[("X-Api-Key", API_KEY)], json!({ "user": format!("rot{n}") }));
                assert_eq!(st, 201, "{t}");
                let (mut access, mut refresh) = (t["access_token"].clone(), t["refresh_token"].clone());
                let mut kids = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (st, v) = post(&at(), "/v1/verify", &[], json!({ "token": access, "mode": "strict" }));
                    let (st2, t) = post(&at(), "/v1/refresh", &[], json!({ "refresh_token": refresh }));
                    for (status, body) in [(st, &v), (st2, &t)] {
                        if status == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("client {n}: {status} {body}");
                        }
                    }
                    if st2 == 200 {
                        (access, refresh) = (t["access_token"].clone(), t["refresh_token"].clone());
                        let header = tollgate::engine::b64::decode(access.as_str().unwrap().split('.').next().unwrap()).unwrap();
                        let kid = serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned();
                        if kids.last() != Some(&kid) {
                            kids.push(kid);
                        }
                    }
                }
                kids
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let verify_keys = json!([{ "kid": "k-old", "alg": "ES256", "pem": include_str!("keys/es256.pem") }]).to_string();
    let new = serve_process::start(&base(vec![
        ("TOLLGATE_REDIS_PREFIX", prefix),
        ("TOLLGATE_SIGNING_KEY", include_str!("keys/ed25519.pem").into()),
        ("TOLLGATE_ALG", "EdDSA".into()),
        ("TOLLGATE_KID", "k-new".into()),
        ("TOLLGATE_VERIFY_KEYS", verify_keys),
    ]));
    let before = ok.load(Ordering::Relaxed);
    *current.write().unwrap() = new.addr.clone();
    // Requests that picked the old address before the switch connect before it stops listening.
    std::thread::sleep(std::time::Duration::from_millis(200));
    serve_process::signal(&old, "TERM");
    let exited = old.child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let kids: Vec<Vec<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "key rotation: {ok} verifies and refreshes answered 200 ({before} before the switch), {failed} failed; kids per client {kids:?}"
    );
    assert!(exited.success(), "the old serve drained and exited 0: {exited}");
    assert_eq!(failed, 0, "no session failed");
    assert!(before > 20 && ok > before + 20, "traffic on both sides of the switch: {before}, {ok}");
    for k in &kids {
        assert_eq!(k.first().map(String::as_str), Some("k-old"));
        assert_eq!(k.last().map(String::as_str), Some("k-new"), "every client moved to the new key: {k:?}");
    }
    let (_, jwks) = call(&new, "GET", "/.well-known/jwks.json", &[], b"");
    let mut listed: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    listed.sort();
    assert_eq!(listed, ["k-new", "k-old"], "JWKS lists the signing key and the verify-only one: {jwks}");
}

/// `/readyz` follows the store: 503 `store_unavailable` while Redis is down, 200
/// again once it is back; `/healthz` answers throughout.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // waits on a real server
fn readyz_follows_the_store() {
    use std::process::{Command, Stdio};
    let port = redis_env::var("TG_TEST_REDIS_FAULT_PORT");
    let start_redis = || {
        let child = Command::new(redis_env::var("TG_TEST_REDIS_SERVER_BIN"))
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
            assert!(std::time::Instant::now() < until, "redis on {port} did not come up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    };
    let mut redis = start_redis();
    let server = serve_process::start(&[("TOLLGATE_STORE", format!("redis://127.0.0.1:{port}/0"))]);
    assert_eq!(call(&server, "GET", "/readyz", &[], b""), (200, json!({ "status": "ready" })));
    redis.kill().unwrap();
    redis.wait().unwrap();
    let (status, v) = call(&server, "GET", "/readyz", &[], b"");
    assert_eq!((status, v["error"]["code"].as_str()), (503, Some("store_unavailable")), "{v}");
    assert_eq!(call(&server, "GET", "/healthz", &[], b"").0, 200, "alive while not ready");
    let mut redis = start_redis();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while call(&server, "GET", "/readyz", &[], b"").0 != 200 {
        assert!(std::time::Instant::now() < until, "/readyz did not recover with the store");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    redis.kill().unwrap();
    let _ = redis.wait();
}
