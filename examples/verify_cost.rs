//! Instructions per HS256 access-token verify, next to the floor (a bare HMAC-SHA-256 of
//! the same signing input with a pre-keyed state) and to jsonwebtoken's `decode`, as
//! valgrind counts them: repeatable on a busy machine, unlike seconds.
//!
//! `bash scripts/verify-cost.sh` builds this in release and runs each mode under
//! `valgrind --tool=callgrind` twice (N and 2N verifies); the difference divided by N is
//! the cost of one verify without the set-up. By hand:
//! `cargo run --release --example verify_cost -- tollgate 1000`. The modes `memory_get` and
//! `memory_put` count the memory store's get and put the same way.
#![allow(clippy::disallowed_methods)] // an example may read the environment

use std::hint::black_box;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tollgate::engine::jwt;
use tollgate::engine::policy::Policy;
use tollgate::{Alg, Config, KeySpec, SessionManager};

const SECRET: &[u8] = b"bench-secret-of-at-least-thirty-two-bytes";
const ISS: &str = "https://auth.example";
const AUD: &str = "api";

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PeerClaims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    exp: u64,
    role: String,
}

/// A token as tollgate issues it, with one custom claim, signed under `SECRET`.
fn token() -> String {
    let config = Config::builder().secret(std::str::from_utf8(SECRET).unwrap()).kid("k1").issuer(ISS).audience(AUD).build().unwrap();
    let manager = SessionManager::new(config, tollgate::MemoryStore::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut claims = serde_json::Map::new();
    claims.insert("role".into(), "member".into());
    rt.block_on(manager.issue("user-1", claims, serde_json::json!({}))).unwrap().access_token
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "tollgate".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let token = token();
    match mode.as_str() {
        "tollgate" => {
            let (keys, _) = tollgate::crypto::native::load_keys(&[KeySpec::secret("k1", Alg::HS256, SECRET)]).unwrap();
            let mut policy = Policy::default();
            policy.claims.issuer = Some(ISS.into());
            policy.claims.audience = vec![AUD.into()];
            let issued_at = jwt_iat_ms(&token);
            for _ in 0..n {
                let claims = jwt::verify_hmac(black_box(&token), &keys, &policy.claims, issued_at).unwrap().unwrap();
                black_box(claims);
            }
        }
        "jsonwebtoken" => {
            let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_issuer(&[ISS]);
            validation.set_audience(&[AUD]);
            for _ in 0..n {
                black_box(jsonwebtoken::decode::<PeerClaims>(black_box(&token), &key, &validation).unwrap());
            }
        }
        "hmac" => {
            let signing_input = &token[..token.rfind('.').unwrap()];
            let mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
            for _ in 0..n {
                let mut m = mac.clone();
                m.update(black_box(signing_input.as_bytes()));
                black_box(m.finalize().into_bytes());
            }
        }
        // The memory store's get and put on the bench's workload (benches/core.rs,
        // `memory_store`): 10,000 session keys, 300-byte values, every get a hit.
        "memory_get" | "memory_put" => {
            use tollgate::engine::step::{Expect, WriteOp};
            let store = tollgate::MemoryStore::new();
            let value = bytes::Bytes::from(vec![7u8; 300]);
            let keys: Vec<String> = (0..10_000).map(|i| format!("s:{{u:u{i}}}:sid")).collect();
            let puts: Vec<[WriteOp; 1]> = keys
                .iter()
                .map(|k| [WriteOp::Put { key: k.clone(), value: value.clone(), expect: Expect::Any, expires_at: u64::MAX / 2 }])
                .collect();
            for op in &puts {
                store.commit_now(op);
            }
            for i in 0..n as usize {
                if mode == "memory_get" {
                    black_box(store.get_one(black_box(&keys[i % keys.len()])));
                } else {
                    black_box(store.commit_now(black_box(&puts[i % puts.len()])));
                }
            }
        }
        other => panic!("mode is tollgate, jsonwebtoken, hmac, memory_get or memory_put, not {other}"),
    }
}

/// The token's `iat`, in milliseconds: the verifying clock of the `tollgate` mode.
fn jwt_iat_ms(token: &str) -> u64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["iat"].as_u64().unwrap() * 1000
}
