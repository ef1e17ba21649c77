//! `tollgate serve`, started as a real process on a free loopback port and spoken to over TCP.

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use serve_process::{call, raw, refused, start, Server, API_KEY, JSON, SECRET};

fn post(s: &Server, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut headers = headers.to_vec();
    headers.push(JSON);
    call(s, "POST", path, &headers, body.to_string().as_bytes())
}

fn create(s: &Server, user: &str) -> Value {
    let (status, t) = post(s, "/v1/sessions", &[("X-Api-Key", API_KEY)], json!({ "user": user }));
    assert_eq!(status, 201, "{t}");
    t
}

#[test]
fn serve_speaks_the_http_api() {
    let s = start(&[("TOLLGATE_ISSUER", "tollgate-serve-test".into())]);
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
    let mut s = start(&[]);
    user_routes::every_user_route_with_hostile_ids(&mut s, API_KEY, "").await;
}

#[test]
fn a_verify_without_a_mode_is_strict_unless_the_settings_say_stateless() {
    let strict = start(&[]);
    let t = create(&strict, "uma");
    let (st, v) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, v["session"]["user"].as_str()), (200, Some("uma")), "strict reads the session: {v}");
    let sid = t["session"]["sid"].as_str().unwrap();
    let (st, _) = call(&strict, "DELETE", &format!("/v1/sessions/{sid}?user=uma"), &[("X-Api-Key", API_KEY)], b"");
    assert_eq!(st, 200);
    let (st, v) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("session_revoked")));
    let (st, _) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"], "mode": "stateless" }));
    assert_eq!(st, 200, "stateless is asked for by name");

    let stateless = start(&[("TOLLGATE_VERIFY_MODE", "stateless".into())]);
    let t = create(&stateless, "uma");
    let (st, v) = post(&stateless, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, &v["session"]), (200, &Value::Null), "{v}");
}

#[test]
fn several_keys_every_algorithm_and_audience_lists() {
    const OLD_SECRET: &str = "the-previous-hs512-secret-of-sixty-four-bytes-0123456789abcdefgh";
    // The service as it was: HS512, its own kid, one audience.
    let old = start(&[
        ("TOLLGATE_SECRET", OLD_SECRET.into()),
        ("TOLLGATE_ALG", "HS512".into()),
        ("TOLLGATE_KID", "2026-old".into()),
        ("TOLLGATE_AUDIENCE", "web".into()),
    ]);
    // After rotation: an ES256 signing key, the old key kept for verification, two audiences.
    let verify_keys = json!([{ "kid": "2026-old", "alg": "HS512", "secret": OLD_SECRET }]).to_string();
    let new = start(&[
        ("TOLLGATE_SECRET", String::new()),
        ("TOLLGATE_SIGNING_KEY", include_str!("keys/es256.pem").into()),
        ("TOLLGATE_KID", "2026-new".into()),
        ("TOLLGATE_VERIFY_KEYS", verify_keys),
        ("TOLLGATE_AUDIENCE", "api, web".into()),
    ]);
    let old_token = create(&old, "ann")["access_token"].clone();
    let new_token = create(&new, "ann")["access_token"].clone();

    let (st, v) = post(&new, "/v1/verify", &[], json!({ "token": new_token }));
    assert_eq!((st, v["claims"]["aud"].as_str()), (200, Some("api")), "the first audience is written: {v}");
    let (st, v) = post(&new, "/v1/verify", &[], json!({ "token": old_token, "mode": "stateless" }));
    assert_eq!((st, v["claims"]["aud"].as_str()), (200, Some("web")), "the old key verifies, audience web is accepted: {v}");
    let (st, v) = post(&old, "/v1/verify", &[], json!({ "token": new_token, "mode": "stateless" }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("token_invalid")), "the old service knows no new key");

    let (_, jwks) = call(&new, "GET", "/.well-known/jwks.json", &[], b"");
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["2026-new"], "the ES256 public key is published, the HMAC key never");

    // The same key with only the api audience refuses the web token.
    let api_only = start(&[
        ("TOLLGATE_SECRET", OLD_SECRET.into()),
        ("TOLLGATE_ALG", "HS512".into()),
        ("TOLLGATE_KID", "2026-old".into()),
        ("TOLLGATE_AUDIENCE", "api".into()),
    ]);
    let (st, v) = post(&api_only, "/v1/verify", &[], json!({ "token": old_token, "mode": "stateless" }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("token_invalid")), "{v}");

    for (alg, pem) in [("EdDSA", include_str!("keys/ed25519.pem")), ("RS256", include_str!("keys/rs256.pem"))] {
        let s = start(&[("TOLLGATE_SECRET", String::new()), ("TOLLGATE_SIGNING_KEY", pem.into()), ("TOLLGATE_ALG", alg.into())]);
        let t = create(&s, "ann");
        let header = tollgate::engine::b64::decode(t["access_token"].as_str().unwrap().split('.').next().unwrap()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&header).unwrap()["alg"], alg);
        assert_eq!(post(&s, "/v1/verify", &[], json!({ "token": t["access_token"] })).0, 200, "{alg}");
    }
}

#[test]
fn unknown_and_malformed_settings_stop_the_start_naming_them() {
    let hidden = "hunter2-hunter2-hunter2-hunter2-hunter2";
    let garbage_pem = format!("-----BEGIN PRIVATE KEY-----\n{hidden}\n-----END PRIVATE KEY-----");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("TOLLGATE_SECRETS", hidden.into())], "TOLLGATE_SECRETS is not a setting"),
        (vec![("TOLLGATE_REDIS_URL", format!("redis://:{hidden}@h:1"))], "TOLLGATE_REDIS_URL is no longer a setting: use TOLLGATE_STORE"),
        (vec![("TOLLGATE_ACCESS_TTL_S", "60".into())], "use TOLLGATE_ACCESS_TTL"),
        (vec![("TOLLGATE_ACCESS_TTL", hidden.into())], "TOLLGATE_ACCESS_TTL is not a duration"),
        (vec![("TOLLGATE_ON_LIMIT", "evict".into())], "TOLLGATE_ON_LIMIT must be one of evict_oldest, refuse"),
        (vec![("TOLLGATE_VERIFY_KEYS", hidden.into())], "TOLLGATE_VERIFY_KEYS is not a JSON array"),
        (vec![("TOLLGATE_STORE", "kv".into())], "TOLLGATE_STORE names a store this surface does not have"),
        (vec![("TOLLGATE_STORE", format!("redis-sentinel://{hidden}"))], "TOLLGATE_STORE needs the master's name"),
        (vec![("TOLLGATE_KV", "x".into())], "TOLLGATE_KV is a setting of the Worker only"),
        (vec![("TOLLGATE_API_KEYS", String::new())], "TOLLGATE_API_KEYS is not set"),
        (vec![("TOLLGATE_API_KEYS", "short".into())], "TOLLGATE_API_KEYS has a key shorter than 16 characters"),
        (vec![("TOLLGATE_SECRET", "short".into())], "TOLLGATE_SECRET must be at least 32 bytes for HS256"),
        (vec![("TOLLGATE_SECRET", String::new())], "TOLLGATE_SECRET is not set"),
        (vec![("TOLLGATE_IDLE_TTL", "40d".into())], "TOLLGATE_IDLE_TTL cannot exceed TOLLGATE_ABSOLUTE_TTL"),
        (vec![("TOLLGATE_SECRET", String::new()), ("TOLLGATE_SIGNING_KEY", garbage_pem)], "TOLLGATE_SIGNING_KEY is not usable"),
        (vec![("TOLLGATE_LOG", "[[[".into())], "TOLLGATE_LOG is not a log filter"),
        (vec![("TOLLGATE_LISTEN", "localhost".into())], "TOLLGATE_LISTEN is not an IP address and port"),
        (vec![("TOLLGATE_STORE", "d1".into())], "TOLLGATE_STORE names a store this surface does not have"),
        (vec![("TOLLGATE_STORE", format!("postgres://tg:{hidden}@"))], "TOLLGATE_STORE is a database URL without a host"),
    ];
    for (vars, expected) in cases {
        let stderr = refused(&vars);
        assert!(stderr.contains("config_invalid") && stderr.contains(expected), "{vars:?}: {stderr}");
        assert!(!stderr.contains(hidden) && !stderr.contains(SECRET), "{stderr}");
    }
}

#[test]
fn the_listen_flag_wins_over_the_setting() {
    let serve = |listen: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--listen", listen]).env("TOLLGATE_LISTEN", "not-an-address").env("TOLLGATE_STORE", "memory");
        cmd.env("TOLLGATE_SECRET", SECRET).env("TOLLGATE_API_KEYS", API_KEY).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    };
    let out = serve("not-an-address-either").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen takes an IP address and port"));
    let mut child = serve("127.0.0.1:0").spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening on http://127.0.0.1:"), "the flag replaced the bad TOLLGATE_LISTEN: {line}");
}

#[test]
fn keygen_prints_a_usable_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate")).arg("keygen").output().unwrap();
    let secret = String::from_utf8(out.stdout).unwrap();
    assert_eq!(tollgate::engine::b64::decode(secret.trim()).unwrap().len(), 32);
}
