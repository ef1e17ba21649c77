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
    assert_eq!((claims.sub(), claims.sid(), claims.aud().collect::<Vec<_>>()), ("user-1", Some("AAAAAAAAAAAAAAAAAAAAAA"), vec!["aud"]));
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

/// A token of `payload` (any JSON text) signed with [`keys`]' key under its own header.
fn token_of(payload: &str) -> String {
    let key = keys();
    let key = key.signing_key();
    let input = format!("{}.{}", key.header_b64, b64::encode(payload.as_bytes()));
    let signature = sign_hmac(key, &input).unwrap();
    finish(input, &signature)
}

/// The registered claims as serde_json reads the payload: the accessors' oracle.
fn claims_by_serde(payload: &str) -> (String, Option<String>, Option<String>, Option<String>, Vec<String>) {
    let v: Value = serde_json::from_str(payload).unwrap();
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    let aud = match &v["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        _ => vec![],
    };
    (s("sub").unwrap(), s("sid"), s("jti"), s("iss"), aud)
}

fn claims_by_accessors(c: &AccessClaims) -> (String, Option<String>, Option<String>, Option<String>, Vec<String>) {
    let own = |t: Option<&str>| t.map(str::to_owned);
    (c.sub().to_owned(), own(c.sid()), own(c.jti()), own(c.iss()), c.aud().map(str::to_owned).collect())
}

#[test]
fn claims_read_from_the_payload_or_unescaped_agree_with_serde() {
    for payload in [
        // The scanner's plain form: every claim a place in the payload.
        r#"{"iss":"iss","aud":"aud","sub":"u","sid":"s","jti":"j","exp":1800000900}"#,
        // Escapes send the payload to serde: the escaped claims are copies, the rest places.
        r#"{"iss":"iss","aud":["x\"y","aud","z"],"sub":"a\\b\u00e9","sid":"s","exp":1800000900}"#,
        r#"{"iss":"\u0069ss","aud":["aud"],"sub":"\ud83d\ude00","jti":"j\n","exp":1800000900,"o":{"k":[1]}}"#,
        r#"{"iss":"iss","aud":[],"sub":"","exp":1800000900}"#,
    ] {
        let mut p = policy();
        if payload.contains(r#""aud":[]"#) {
            p.audience.clear();
        }
        let c = verify_hmac(&token_of(payload), &keys(), &p, NOW_MS).unwrap().unwrap();
        assert_eq!(claims_by_accessors(&c), claims_by_serde(payload), "{payload}");
        assert_eq!(c.payload(), payload.as_bytes());
        assert_eq!(c.exp(), 1_800_000_900);
        // Clones and Debug read the same claims; Debug shows no custom claim.
        assert_eq!(claims_by_accessors(&c.clone()), claims_by_serde(payload));
        assert!(!format!("{c:?}").contains("\"o\""), "{c:?}");
    }
    // The plain form copies nothing: every claim is a place in the payload.
    let c = verify(&token()).unwrap();
    let places = [Some(&c.sub), c.sid.as_ref(), c.jti.as_ref(), c.iss.as_ref(), c.aud.first.as_ref()];
    assert!(places.iter().all(|t| matches!(t, Some(ClaimText::In { .. }))), "{places:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn every_verified_payload_reads_as_serde_reads_it(
        sub in "[a-z\"\\\\\u{e9}]{0,6}",
        aud in prop::collection::vec("[a-z\"\u{e9}]{0,4}", 0..4),
        sid in prop::option::of("[a-z0-9\\\\]{0,6}"),
        spaces in "[ \n]{0,1}",
    ) {
        let mut all_aud = aud.clone();
        all_aud.push("aud".to_owned());
        let mut claims = json!({ "iss": "iss", "sub": sub, "aud": all_aud, "exp": 1_800_000_900u64 });
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        let payload = serde_json::to_string(&claims).unwrap().replace(',', &format!(",{spaces}"));
        let c = verify_hmac(&token_of(&payload), &keys(), &policy(), NOW_MS).unwrap().unwrap();
        prop_assert_eq!(claims_by_accessors(&c), claims_by_serde(&payload));
    }
}
