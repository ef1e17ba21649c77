//! Writes the seed corpora of the fuzz targets (fuzz/fuzz_targets) from real tokens, records,
//! requests and settings: `cargo run --example fuzz_seeds -- <corpus dir>` (scripts/fuzz.sh).
#![allow(clippy::disallowed_methods)] // an example reads real time and randomness

#[path = "../fuzz/src/lib.rs"]
mod fixtures;

use std::path::Path;

use serde_json::{json, Map};
use tollgate::engine::b64;
use tollgate::engine::record::{index_key, session_key, user_cache_key};
use tollgate::VerifyMode;

use fixtures::{encode_request, manager, runtime, API_KEY, CONFIG_ENV, CONFIG_JSON, CONFIG_TOML, KEYS};

/// A seed request: method, target, headers, body.
type Request<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, String);

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds <corpus dir>");
    let dir = Path::new(&dir);
    let rt = runtime();
    let mut claims = Map::new();
    claims.insert("role".into(), json!("member"));

    for (choice, (alg, _)) in KEYS.iter().enumerate() {
        let sessions = manager(choice as u8);
        let user = format!("user-{}@example.com", alg.as_str());
        let t = rt.block_on(sessions.issue(&user, claims.clone(), json!({"device": "seed"}))).unwrap();
        rt.block_on(sessions.verify(&t.access_token, VerifyMode::Strict)).unwrap();
        // The token for its own key set and for each other one (a verify key there).
        for c in 0..KEYS.len() as u8 {
            write(dir, "jwt_verify", &format!("{}-for-{c}", alg.as_str()), &[&[c][..], t.access_token.as_bytes()].concat());
        }
        let (head, _) = t.access_token.split_once('.').unwrap();
        let none = format!("{}.{}.", b64::encode(br#"{"alg":"none","typ":"JWT"}"#), t.access_token.split('.').nth(1).unwrap());
        write(dir, "jwt_verify", &format!("{}-alg-none", alg.as_str()), &[&[choice as u8][..], none.as_bytes()].concat());
        write(dir, "jwt_verify", &format!("{}-header", alg.as_str()), &[&[choice as u8][..], head.as_bytes()].concat());

        write(dir, "refresh_token", alg.as_str(), t.refresh_token.as_bytes());
        let next = rt.block_on(sessions.refresh(&t.refresh_token)).unwrap();
        write(dir, "refresh_token", &format!("{}-rotated", alg.as_str()), next.refresh_token.as_bytes());

        rt.block_on(sessions.put_user_info(&user, json!({"name": "Seed", "plan": "pro"}))).unwrap();
        let store = sessions.store();
        let stored = |key: &str| store.get_one(key).map(|v| v.value.to_vec()).unwrap();
        write(
            dir,
            "record_decode",
            &format!("{}-session", alg.as_str()),
            &[&[0u8][..], &stored(&session_key(&user, &t.session.sid))].concat(),
        );
        write(dir, "record_decode", &format!("{}-index", alg.as_str()), &[&[1u8][..], &stored(&index_key(&user))].concat());
        write(dir, "record_decode", &format!("{}-user", alg.as_str()), &[&[2u8][..], &stored(&user_cache_key(&user))].concat());
        rt.block_on(sessions.revoke(&user, &t.session.sid)).unwrap();
        write(
            dir,
            "record_decode",
            &format!("{}-revoked", alg.as_str()),
            &[&[0u8][..], &stored(&session_key(&user, &t.session.sid))].concat(),
        );
    }

    // Requests, made against a live service so tokens and sids are real.
    let api = fixtures::http_api();
    let key = ("X-Api-Key", API_KEY);
    let json_type = ("Content-Type", "application/json");
    let created = rt.block_on(api.handle(tollgate::http::HttpRequest::new(
        "POST",
        "/v1/sessions",
        vec![(key.0.into(), key.1.into()), (json_type.0.into(), json_type.1.into())],
        br#"{"user":"alice@example.com","claims":{"role":"admin"},"metadata":{"ua":"seed"}}"#.to_vec(),
    )));
    let created: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
    let access = created["access_token"].as_str().expect("issued over HTTP").to_owned();
    let refresh = created["refresh_token"].as_str().unwrap().to_owned();
    let sid = created["session"]["sid"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let requests: Vec<Request> = vec![
        ("POST", "/v1/sessions".into(), vec![key, json_type], r#"{"user":"bob","claims":{"n":1},"metadata":null}"#.into()),
        ("POST", "/v1/verify".into(), vec![key, json_type], format!(r#"{{"token":"{access}","mode":"strict"}}"#)),
        ("POST", "/v1/verify".into(), vec![key, json_type], format!(r#"{{"token":"{access}","mode":"stateless"}}"#)),
        ("POST", "/v1/refresh".into(), vec![key, json_type], format!(r#"{{"refresh_token":"{refresh}"}}"#)),
        ("GET", "/v1/users/alice%40example.com/sessions".into(), vec![key], String::new()),
        ("GET", "/v1/users/alice%40example.com/sessions".into(), vec![("Authorization", &bearer)], String::new()),
        ("DELETE", format!("/v1/sessions/{sid}?user=alice%40example.com"), vec![key], String::new()),
        ("DELETE", format!("/v1/users/alice%40example.com/sessions?keep={sid}"), vec![key], String::new()),
        ("DELETE", "/v1/users/alice%40example.com/sessions?keep=current".into(), vec![("authorization", &bearer)], String::new()),
        ("GET", "/healthz".into(), vec![], String::new()),
        ("GET", "/readyz".into(), vec![], String::new()),
        ("GET", "/metrics".into(), vec![key], String::new()),
        ("GET", "/.well-known/jwks.json".into(), vec![], String::new()),
        ("GET", "/openapi.json".into(), vec![], String::new()),
    ];
    for (i, (method, target, headers, body)) in requests.iter().enumerate() {
        write(dir, "http_request", &format!("{i:02}-{method}"), &encode_request(method, target, headers, body.as_bytes()));
    }

    let configs: [(u8, &str, &str); 6] = [
        (CONFIG_ENV, "env", "TOLLGATE_SECRET=fuzz-hs256-secret-of-at-least-32-bytes\nTOLLGATE_API_KEYS=fuzz-api-key-0123456789\nTOLLGATE_ACCESS_TTL=15m\nTOLLGATE_REFRESH_GRACE=500ms\nTOLLGATE_STORE=memory\n"),
        (CONFIG_ENV, "env-keys", "TOLLGATE_SECRET=fuzz-hs256-secret-of-at-least-32-bytes\nTOLLGATE_API_KEYS=a-key-of-16-chars-min,another-key-0123456\nTOLLGATE_VERIFY_KEYS=[{\"kid\":\"old\",\"secret\":\"an-old-secret-of-at-least-32-bytes!!\"}]\nTOLLGATE_MAX_SESSIONS_PER_USER=5\n"),
        (CONFIG_JSON, "js", r#"{"secret":"fuzz-hs256-secret-of-at-least-32-bytes","accessTtl":"10m","idleTtl":86400,"issuer":"https://fuzz.example","audience":"fuzz","verifyMode":"stateless"}"#),
        (CONFIG_JSON, "snake", r#"{"secret":"fuzz-hs256-secret-of-at-least-32-bytes","api_keys":"fuzz-api-key-0123456789","access_ttl":"10m","store":"memory","max_sessions_per_user":3,"on_limit":"refuse"}"#),
        (CONFIG_TOML, "toml", "secret = \"fuzz-hs256-secret-of-at-least-32-bytes\"\napi_keys = \"fuzz-api-key-0123456789\"\naccess_ttl = \"15m\"\nrefresh_grace = 10\nstore = \"memory\"\n"),
        (CONFIG_TOML, "toml-es256", &format!("signing_key = '''{}'''\nalg = \"ES256\"\nkid = \"ec1\"\nrefresh_secret = \"fuzz-refresh-secret-0123456789-abcdef\"\napi_keys = \"fuzz-api-key-0123456789\"\n", KEYS[1].1)),
    ];
    for (reader, name, text) in configs {
        write(dir, "config_sources", name, &[&[reader][..], text.as_bytes()].concat());
    }
    println!("fuzz seeds written to {}", dir.display());
}
