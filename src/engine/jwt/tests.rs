//! The verify path's answers for tokens bent out of shape: the fast path (a header that is
//! byte for byte a key's own) leaves the search for extra dots to its failure paths, and
//! must still give every malformed token the answer a full split gives first.

use proptest::prelude::*;
use serde_json::{json, Map};

use super::*;

const SECRET: &[u8] = b"a-test-secret-of-at-least-thirty-two-bytes";

fn keys() -> KeySet {
    KeySet::new(Key::hmac("k1", Alg::HS256, SECRET).unwrap())
}

fn policy() -> ClaimsPolicy {
    ClaimsPolicy { issuer: Some("iss".into()), audience: vec!["aud".into()], leeway_ms: 0, max_token_bytes: 8 * 1024 }
}

const NOW_MS: u64 = 1_800_000_000_000;

/// A token tollgate issues under [`keys`], with one custom claim.
fn token() -> String {
    let keys = keys();
    let key = keys.signing_key();
    let extra: Map<String, Value> = json!({ "role": "member" }).as_object().unwrap().clone();
    let mint =
        Mint { sub: "user-1", sid: "AAAAAAAAAAAAAAAAAAAAAA", jti: "BBBBBBBBBBBBBBBBBBBBBB", now_ms: NOW_MS, ttl_ms: 60_000, extra: &extra };
    let input = signing_input(key, &policy(), &mint);
    let signature = sign_hmac(key, &input).unwrap();
    finish(input, &signature)
}

fn verify(token: &str) -> Result<AccessClaims, Error> {
    verify_hmac(token, &keys(), &policy(), NOW_MS).expect("an HMAC key answers in the core")
}

#[test]
fn a_token_tollgate_issues_verifies() {
    let claims = verify(&token()).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_deref(), claims.aud.as_slice()),
        ("user-1", Some("AAAAAAAAAAAAAAAAAAAAAA"), &["aud".to_owned()][..])
    );
    assert_eq!(claims.to_json()["role"], "member");
}

#[test]
fn more_or_fewer_parts_are_refused_as_such() {
    let t = token();
    let (h, rest) = t.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let mid = p.len() / 2;
    for bent in [
        format!("{h}.{}.{}.{s}", &p[..mid], &p[mid..]), // a dot inside the payload
        format!("{h}.{p}.{s}."),                        // an empty fourth part
        format!("{h}.{p}..{s}"),                        // an empty third part
        format!("{h}..{p}.{s}"),                        // an empty second part
        format!("{h}.{p}{s}"),                          // two parts
        format!("{h}{p}{s}"),                           // one
        format!("{h}.{p}.x.{s}"),                       // a payload that verifies nothing
        format!("{h}.{p}.{s}.{s}"),
    ] {
        let e = verify(&bent).unwrap_err();
        assert_eq!(e.message(), "an access token has three dot-separated parts", "{bent}");
    }
}

/// What the split of a compact JWS says about `token`: `Some(error)` when a token without
/// exactly two dots must be refused as such.
fn shape(token: &str) -> Option<&'static str> {
    (token.bytes().filter(|&b| b == b'.').count() != 2).then_some("an access token has three dot-separated parts")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]
    #[test]
    fn any_bent_token_gets_the_answer_of_its_shape(at in any::<prop::sample::Index>(), byte in prop_oneof![Just(b'.'), Just(b'A'), Just(b'_'), Just(b'='), any::<u8>()], insert in any::<bool>()) {
        let mut bytes = token().into_bytes();
        let i = at.index(bytes.len());
        if insert { bytes.insert(i, byte) } else { bytes[i] = byte }
        let Ok(bent) = String::from_utf8(bytes) else { return Ok(()) };
        match (verify(&bent), shape(&bent)) {
            (Err(e), Some(why)) => prop_assert_eq!(e.message(), why, "{}", bent),
            (Ok(_), Some(_)) => prop_assert!(false, "a token of another shape verified: {}", bent),
            (r, None) => prop_assert!(r.is_err() || bent == token(), "{}", bent),
        }
    }
}

#[test]
fn an_hmac_tag_differing_anywhere_is_refused() {
    let t = token();
    let (input, s) = t.rsplit_once('.').unwrap();
    let tag = b64::decode(s).unwrap();
    let hmac = keys().signing_key().hmac.clone().unwrap();
    assert!(hmac.verify(input.as_bytes(), &tag));
    for i in 0..tag.len() {
        for bit in 0..8 {
            let mut bent = tag.clone();
            bent[i] ^= 1 << bit;
            assert!(!hmac.verify(input.as_bytes(), &bent), "byte {i} bit {bit}");
        }
    }
    assert!(!hmac.verify(input.as_bytes(), &tag[..31]));
    assert!(!hmac.verify(input.as_bytes(), &[tag.as_slice(), &[0]].concat()));
    assert!(!hmac.verify(input.as_bytes(), &[]));
}
