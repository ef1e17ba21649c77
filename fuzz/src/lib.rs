//! What the fuzz targets and their seed writer (`examples/fuzz_seeds.rs`, which includes this
//! file) share: the keys, the clock, the service and the encoding of an HTTP request as bytes.
#![allow(clippy::disallowed_methods, dead_code)]

use std::sync::Arc;

use tollgate::crypto::{KeyMaterial, KeySpec};
use tollgate::engine::keys::Alg;
use tollgate::http::{HttpApi, HttpRequest};
use tollgate::{Config, ManualClock, MemoryStore, SessionManager};

/// The moment every target runs at, so seeded tokens are still valid.
pub const T0_MS: u64 = 1_800_000_000_000;
pub const HS_SECRET: &[u8] = b"fuzz-hs256-secret-of-at-least-32-bytes";
pub const API_KEY: &str = "fuzz-api-key-0123456789";
pub const ISSUER: &str = "https://fuzz.example";

/// The signing keys a target can pick (by the first input byte): HMAC and each asymmetric kind.
pub const KEYS: [(Alg, &str); 4] = [
    (Alg::HS256, ""),
    (Alg::ES256, include_str!("../../tests/keys/es256.pem")),
    (Alg::EdDSA, include_str!("../../tests/keys/ed25519.pem")),
    (Alg::RS256, include_str!("../../tests/keys/rs256.pem")),
];

/// A session manager on the memory store at [`T0_MS`] signing with `KEYS[choice % 4]`,
/// and verifying with every other key too (rotation: a token of another kind finds its key).
pub fn manager(choice: u8) -> SessionManager<MemoryStore> {
    let (alg, pem) = KEYS[choice as usize % KEYS.len()];
    let mut b = Config::builder().issuer(ISSUER).audience("fuzz").kid(format!("k{}", choice as usize % KEYS.len()));
    b = if alg == Alg::HS256 {
        b.secret(HS_SECRET.to_vec())
    } else {
        b.signing_key(KeyMaterial::Pem(pem.into())).alg(alg).refresh_secret(HS_SECRET.to_vec())
    };
    for (i, (other, pem)) in KEYS.iter().enumerate() {
        if i == choice as usize % KEYS.len() {
            continue;
        }
        b = b.verify_key(if *other == Alg::HS256 {
            KeySpec::secret(format!("k{i}"), *other, HS_SECRET.to_vec())
        } else {
            KeySpec::pem(format!("k{i}"), *other, *pem)
        });
    }
    let clock = Arc::new(ManualClock::new(T0_MS));
    SessionManager::new(b.build().expect("fuzz config"), MemoryStore::with_clock(clock.clone())).expect("fuzz manager").with_clock(clock)
}

/// The HTTP service on a fresh memory store (HS256 only: cheap enough to make per input, so
/// each input runs alone and a crash replays from its input).
pub fn http_api() -> HttpApi<MemoryStore> {
    let clock = Arc::new(ManualClock::new(T0_MS));
    let config = Config::builder().secret(HS_SECRET.to_vec()).issuer(ISSUER).audience("fuzz").kid("k0").build().expect("fuzz config");
    let sessions = SessionManager::new(config, MemoryStore::with_clock(clock.clone())).expect("fuzz manager").with_clock(clock);
    HttpApi::new(sessions, &[API_KEY]).expect("fuzz http api")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime")
}

/// A request as bytes: `METHOD path?query\n`, then `name: value\n` per header, an empty line,
/// then the body.
pub fn encode_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target}\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The inverse of [`encode_request`]; `None` when the head is not UTF-8 or has no request line.
pub fn decode_request(data: &[u8]) -> Option<HttpRequest> {
    let split = data.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2)).unwrap_or((data.len(), data.len()));
    let head = std::str::from_utf8(&data[..split.0]).ok()?;
    let body = data[split.1..].to_vec();
    let mut lines = head.split('\n');
    let (method, target) = lines.next()?.split_once(' ')?;
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    Some(HttpRequest::new(method, target, headers, body))
}

/// Configuration inputs: the first byte picks the reader, the rest is its text.
pub const CONFIG_ENV: u8 = 0;
pub const CONFIG_JSON: u8 = 1;
pub const CONFIG_TOML: u8 = 2;
