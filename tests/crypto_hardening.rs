#![cfg(not(target_arch = "wasm32"))] // the native crypto driver; tests/wasm.rs covers WebCrypto
//! Issue 11, finding 12: ECDSA signatures in low-S form only, RSA keys of 2048 bits or more.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tollgate::crypto::native::load_keys;
use tollgate::crypto::{KeyMaterial, KeySpec};
use tollgate::engine::b64;
use tollgate::engine::keys::Alg;
use tollgate::{Config, ErrorCode, ManualClock, MemoryStore, SessionManager, VerifyMode};

const T0: u64 = 1_800_000_000_000;

/// The order n of P-256 and n / 2 (rounded down), big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
    0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b,
    0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn es256_sessions() -> SessionManager<MemoryStore> {
    let clock = Arc::new(ManualClock::new(T0));
    let config = Config::builder()
        .signing_key(KeyMaterial::Pem(key_file("es256.pem")))
        .alg(Alg::ES256)
        .kid("ec1")
        .refresh_secret(vec![9u8; 32])
        .build()
        .unwrap();
    SessionManager::new(config, MemoryStore::with_clock(clock.clone())).unwrap().with_clock(clock)
}

/// n - s, big-endian: the other valid signature (r, n - s) of the same message.
fn negate_s(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = P256_N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = d.rem_euclid(256) as u8;
    }
    out
}

fn split_signature(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input, b64::decode(sig).unwrap())
}

#[tokio::test]
async fn finding_12_every_es256_signature_tollgate_makes_is_low_s() {
    let sessions = es256_sessions();
    // An unnormalized signer writes high S half of the time: 40 tokens all low would be luck of 2^-40.
    for i in 0..40 {
        let t = sessions.issue(&format!("user{i}"), Map::new(), json!(null)).await.unwrap();
        let (_, sig) = split_signature(&t.access_token);
        assert_eq!(sig.len(), 64);
        assert!(sig[32..] <= P256_HALF_N[..], "token {i} carries a high-S signature");
        sessions.verify(&t.access_token, VerifyMode::Stateless).await.unwrap();
    }
}

#[tokio::test]
async fn finding_12_a_high_s_twin_carries_the_same_session_and_nothing_more() {
    let sessions = es256_sessions();
    let t = sessions.issue("mallory-target", Map::new(), json!(null)).await.unwrap();
    let (input, sig) = split_signature(&t.access_token);
    let twin = [&sig[..32], &negate_s(&sig[32..])].concat();
    assert_ne!(twin, sig, "the twin is another encoding");
    // The twin is a valid ECDSA signature of the same message (other signers make such
    // signatures half of the time), so it is accepted, with the same claims ...
    let forged = format!("{input}.{}", b64::encode(&twin));
    for mode in [VerifyMode::Stateless, VerifyMode::Strict] {
        let original = sessions.verify(&t.access_token, mode).await.unwrap();
        let rewritten = sessions.verify(&forged, mode).await.unwrap();
        assert_eq!(rewritten.claims, original.claims, "{mode:?}");
    }
    // ... and the same session: revoking it refuses both encodings in strict mode.
    sessions.revoke("mallory-target", &t.session.sid).await.unwrap();
    for token in [&t.access_token, &forged] {
        let e = sessions.verify(token, VerifyMode::Strict).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::SessionRevoked, "{e}");
    }
}

#[test]
fn finding_12_rsa_keys_under_2048_bits_are_refused_at_configuration() {
    let jwk: Value = serde_json::from_str(&key_file("rs1024.pub.jwk.json")).unwrap();
    let attempts = [
        (
            "private PEM as the signing key",
            Config::builder()
                .signing_key(KeyMaterial::Pem(key_file("rs1024.pem")))
                .alg(Alg::RS256)
                .kid("r1")
                .refresh_secret(vec![9u8; 32])
                .build(),
        ),
        (
            "public PEM as a verify key",
            Config::builder().secret(vec![7u8; 32]).verify_key(KeySpec::pem("old", Alg::RS256, key_file("rs1024.pub.pem"))).build(),
        ),
        ("public JWK as a verify key", Config::builder().secret(vec![7u8; 32]).verify_key(KeySpec::jwk("old", Alg::RS256, jwk)).build()),
    ];
    for (what, config) in attempts {
        let e = match config {
            Ok(config) => SessionManager::new(config, MemoryStore::new()).map(|_| ()).unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{what}: {e}");
        assert!(e.message().contains("1024 bits") && e.message().contains("at least 2048"), "{what}: {e}");
    }
    // 2048 bits load as before.
    load_keys(&[KeySpec::pem("r2", Alg::RS256, key_file("rs256.pem"))]).unwrap();
    let (_, _) =
        load_keys(&[KeySpec::secret("h", Alg::HS256, vec![7u8; 32]), KeySpec::pem("r", Alg::RS256, key_file("rs256.pub.pem"))]).unwrap();
}

#[test]
fn finding_12_the_key_error_names_no_key_material() {
    let e = load_keys(&[KeySpec::pem("r1", Alg::RS256, key_file("rs1024.pem"))]).unwrap_err();
    let pem = key_file("rs1024.pem");
    let body: String = pem.lines().nth(1).unwrap().chars().take(24).collect();
    assert!(!e.error.to_string().contains(&body) && !format!("{:?}", e.error).contains(&body));
}
