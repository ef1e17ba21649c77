//! The npm facade, run in Node by wasm-bindgen-test:
//! `cargo test --target wasm32-unknown-unknown --features wasm --test wasm`.
#![cfg(all(target_arch = "wasm32", feature = "wasm"))]

use js_sys::{Function, Promise, Reflect};
use tollgate::wasm::TollgateManager;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const SECRET: &str = "a wasm test secret of at least thirty-two bytes";
const ES256_PEM: &str = include_str!("keys/es256.pem");
const ES256_SEC1_PEM: &str = include_str!("keys/es256.sec1.pem");
const ES256_PUB_PEM: &str = include_str!("keys/es256.pub.pem");
const ED25519_PEM: &str = include_str!("keys/ed25519.pem");
const RS256_PEM: &str = include_str!("keys/rs256.pem");
const RS256_PUB_PEM: &str = include_str!("keys/rs256.pub.pem");

fn js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON")
}

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(v.clone(), |v, k| Reflect::get(&v, &s(k)).unwrap_or(JsValue::UNDEFINED))
}

fn get_str(v: &JsValue, path: &str) -> String {
    get(v, path).as_string().unwrap_or_else(|| panic!("{path} is not a string"))
}

async fn ok(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => {
            panic!("rejected: {} {}", get(&e, "code").as_string().unwrap_or_default(), get(&e, "message").as_string().unwrap_or_default())
        }
    }
}

/// Awaits a promise that must reject with a TollgateError; answers its code.
async fn code(p: Promise) -> String {
    match JsFuture::from(p).await {
        Ok(_) => panic!("resolved, but an error was expected"),
        Err(e) => {
            assert!(e.is_instance_of::<js_sys::Error>(), "rejected with an Error");
            assert_eq!(get_str(&e, "name"), "TollgateError");
            get_str(&e, "code")
        }
    }
}

/// A configuration object: the issuer and `fields`.
fn config(fields: &[(&str, JsValue)]) -> JsValue {
    let c = js_sys::Object::new();
    Reflect::set(&c, &s("issuer"), &s("wasm-tests")).unwrap();
    for (k, v) in fields {
        Reflect::set(&c, &s(k), v).unwrap();
    }
    c.into()
}

fn hs_config(extra: &[(&str, JsValue)]) -> JsValue {
    let mut fields = vec![("secret", s(SECRET)), ("kid", s("h1"))];
    fields.extend_from_slice(extra);
    config(&fields)
}

/// A configuration that signs with `pem` (a PKCS#8 PEM) under `alg`.
fn pem_config(kid: &str, alg: &str, pem: &str) -> JsValue {
    config(&[("signingKey", s(pem)), ("alg", s(alg)), ("kid", s(kid)), ("refreshSecret", s("wasm-test-refresh-secret-of-32-bytes!"))])
}

async fn manager(config: JsValue) -> TollgateManager {
    match TollgateManager::create(config).await {
        Ok(m) => m,
        Err(e) => panic!("createManager failed: {e}"),
    }
}

async fn config_error(config: JsValue) -> String {
    match TollgateManager::create(config).await {
        Ok(_) => panic!("the configuration was accepted"),
        Err(e) => e.code().as_str().to_owned(),
    }
}

async fn sleep_ms(ms: u32) {
    let sleep = Function::new_with_args("ms", "return new Promise((r) => setTimeout(r, ms))");
    let p: Promise = sleep.call1(&JsValue::UNDEFINED, &JsValue::from(ms)).unwrap().unchecked_into();
    JsFuture::from(p).await.unwrap();
}

fn none() -> JsValue {
    JsValue::UNDEFINED
}

#[wasm_bindgen_test]
async fn hs256_session_flow() {
    let m = manager(hs_config(&[("refreshGrace", JsValue::from(0))])).await;
    let t = ok(m.issue(s("alice"), js(r#"{"claims":{"role":"admin"},"metadata":{"device":"phone"}}"#))).await;
    let access = get_str(&t, "accessToken");
    assert_eq!(get_str(&t, "session.user"), "alice");
    assert_eq!(get_str(&t, "session.metadata.device"), "phone");

    let v = ok(m.verify(s(&access), s("stateless"))).await;
    assert_eq!(get_str(&v, "claims.sub"), "alice");
    assert_eq!(get_str(&v, "claims.role"), "admin");
    assert!(get(&v, "session").is_null());
    let v = ok(m.verify(s(&access), none())).await;
    assert_eq!(get_str(&v, "session.sid"), get_str(&t, "session.sid"));

    let next = ok(m.refresh(get(&t, "refreshToken"), JsValue::UNDEFINED)).await;
    assert_eq!(get(&next, "session.generation").as_f64(), Some(1.0));
    assert_eq!(ok(m.list(s("alice"), JsValue::UNDEFINED)).await.unchecked_into::<js_sys::Array>().length(), 1);

    // The old refresh token again, past the (zero) grace window: the session dies.
    sleep_ms(5).await;
    assert_eq!(code(m.refresh(get(&t, "refreshToken"), JsValue::UNDEFINED)).await, "refresh_token_reused");
    assert_eq!(code(m.verify(get(&next, "accessToken"), s("strict"))).await, "session_revoked");
    assert_eq!(ok(m.list(s("alice"), JsValue::UNDEFINED)).await.unchecked_into::<js_sys::Array>().length(), 0);
}

#[wasm_bindgen_test]
async fn revoke_list_metadata_and_limit() {
    let m = manager(hs_config(&[("maxSessionsPerUser", JsValue::from(2)), ("onLimit", s("refuse"))])).await;
    let a = ok(m.issue(s("bob"), none())).await;
    let b = ok(m.issue(s("bob"), js(r#"{"metadata":{"n":2}}"#))).await;
    assert_eq!(code(m.issue(s("bob"), none())).await, "session_limit");
    let sid_b = get(&b, "session.sid");
    let info = ok(m.update_metadata(s("bob"), sid_b.clone(), js(r#"{"n":3}"#))).await;
    assert_eq!(get(&info, "metadata.n").as_f64(), Some(3.0));
    let n = ok(m.revoke_all(s("bob"), js(&format!(r#"{{"except":{}}}"#, js_sys::JSON::stringify(&sid_b).unwrap())))).await;
    assert_eq!(n.as_f64(), Some(1.0));
    assert_eq!(code(m.verify(get(&a, "accessToken"), s("strict"))).await, "session_revoked");
    ok(m.revoke(s("bob"), sid_b)).await;
    assert_eq!(code(m.verify(get(&b, "accessToken"), s("strict"))).await, "session_revoked");
    // Stateless verification trusts the signature until the token expires.
    ok(m.verify(get(&b, "accessToken"), s("stateless"))).await;
}

#[wasm_bindgen_test]
async fn asymmetric_keys_sign_verify_and_export_public_jwks() {
    for (alg, pem) in [("ES256", ES256_PEM), ("EdDSA", ED25519_PEM), ("RS256", RS256_PEM)] {
        let m = manager(pem_config("k1", alg, pem)).await;
        let t = ok(m.issue(s("carol"), none())).await;
        let v = ok(m.verify(get(&t, "accessToken"), s("stateless"))).await;
        assert_eq!(get_str(&v, "claims.sub"), "carol", "{alg}");
        let jwks = m.jwks().unwrap();
        let key = js_sys::Array::from(&get(&jwks, "keys")).get(0);
        assert_eq!(get_str(&key, "alg"), alg);
        assert_eq!(get_str(&key, "kid"), "k1");
        assert!(get(&key, "d").is_undefined(), "{alg}: no private member in the JWKS");
        // A tampered signature is refused.
        let token = get_str(&t, "accessToken");
        let flipped = format!("{}{}", &token[..token.len() - 2], if token.ends_with("AA") { "BA" } else { "AA" });
        assert_eq!(code(m.verify(s(&flipped), s("stateless"))).await, "token_invalid", "{alg}");
    }
}

#[wasm_bindgen_test]
async fn public_keys_verify_tokens_of_their_private_halves() {
    let signer = manager(pem_config("k1", "ES256", ES256_PEM)).await;
    let t = ok(signer.issue(s("dave"), none())).await;
    // A verifier holding only the public key (an HMAC key signs there).
    let public_pem = js(&serde_json::json!([{ "kid": "k1", "alg": "ES256", "pem": ES256_PUB_PEM }]).to_string());
    let verifier = manager(hs_config(&[("verifyKeys", public_pem)])).await;
    let v = ok(verifier.verify(get(&t, "accessToken"), s("stateless"))).await;
    assert_eq!(get_str(&v, "claims.sub"), "dave");
    // The same public key as a JWK, exported by the signer.
    let jwk = js_sys::Array::from(&get(&signer.jwks().unwrap(), "keys")).get(0);
    let key = js_sys::Object::new();
    Reflect::set(&key, &s("kid"), &s("k1")).unwrap();
    Reflect::set(&key, &s("jwk"), &jwk).unwrap();
    let verifier = manager(hs_config(&[("verifyKeys", js_sys::Array::of1(&key).into())])).await;
    ok(verifier.verify(get(&t, "accessToken"), s("stateless"))).await;
}

#[wasm_bindgen_test]
async fn bad_configurations_are_coded() {
    assert_eq!(config_error(JsValue::NULL).await, "config_invalid");
    assert_eq!(config_error(JsValue::from(5)).await, "config_invalid");
    assert_eq!(config_error(js("{}")).await, "config_invalid");
    assert_eq!(config_error(js(r#"{"keys":{"kid":"h","secret":"a secret of at least thirty-two bytes"}}"#)).await, "config_invalid");
    assert_eq!(config_error(js(r#"{"secret":"short"}"#)).await, "config_invalid");
    assert_eq!(config_error(js(r#"{"secret":5}"#)).await, "config_invalid");
    assert_eq!(config_error(hs_config(&[("accessTtl", s("15 minutes"))])).await, "config_invalid");
    assert_eq!(config_error(hs_config(&[("accessTtl", JsValue::from(f64::NAN))])).await, "config_invalid");
    assert_eq!(config_error(hs_config(&[("nope", JsValue::TRUE)])).await, "config_invalid");
    assert_eq!(config_error(pem_config("k", "ES256", "not a pem")).await, "config_invalid");
    assert_eq!(config_error(pem_config("k", "ES256", ES256_SEC1_PEM)).await, "config_invalid");
    assert_eq!(config_error(pem_config("k", "EdDSA", ES256_PEM)).await, "config_invalid");
    // A public key cannot be the signing key.
    assert_eq!(config_error(pem_config("k", "RS256", RS256_PUB_PEM)).await, "config_invalid");
    // An asymmetric signing key without refreshSecret (nothing to derive the record MAC key from).
    assert_eq!(config_error(config(&[("signingKey", s(ES256_PEM)), ("alg", s("ES256"))])).await, "config_invalid");
    assert_eq!(config_error(hs_config(&[("store", js(r#"{"get":1}"#))])).await, "config_invalid");
}

#[wasm_bindgen_test]
async fn bad_arguments_are_coded_and_the_instance_keeps_working() {
    let m = manager(hs_config(&[])).await;
    let cases: Vec<(Promise, &str)> = vec![
        (m.issue(none(), none()), "bad_request"),
        (m.issue(JsValue::NULL, none()), "bad_request"),
        (m.issue(JsValue::from(42), none()), "bad_request"),
        (m.issue(s(""), none()), "bad_request"),
        (m.issue(s(&"u".repeat(10_000)), none()), "bad_request"),
        (m.issue(s("eve"), s("options")), "bad_request"),
        (m.issue(s("eve"), js(r#"{"claims":{"sub":"mallory"}}"#)), "bad_request"),
        (m.issue(s("eve"), js(r#"{"claims":[1]}"#)), "bad_request"),
        (m.issue(s("eve"), js(r#"{"unknown":1}"#)), "bad_request"),
        (m.issue(s("eve"), js(&format!(r#"{{"metadata":"{}"}}"#, "x".repeat(20_000)))), "bad_request"),
        (m.verify(none(), none()), "token_invalid"),
        (m.verify(JsValue::from(1), none()), "token_invalid"),
        (m.verify(s("garbage"), none()), "token_invalid"),
        (m.verify(s("a.b.c"), none()), "token_invalid"),
        (m.verify(s(&"a".repeat(1 << 20)), none()), "token_invalid"),
        (m.verify(s("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), s("stateless")), "token_invalid"),
        (m.verify(s("x.y.z"), s("lenient")), "bad_request"),
        (m.refresh(JsValue::NULL, JsValue::UNDEFINED), "token_invalid"),
        (m.refresh(s("tgr_garbage.garbage"), JsValue::UNDEFINED), "token_invalid"),
        (m.revoke(s("eve"), JsValue::from(3)), "bad_request"),
        (m.revoke_all(s("eve"), js(r#"{"except":5}"#)), "bad_request"),
        (m.list(JsValue::from(false), JsValue::UNDEFINED), "bad_request"),
        (m.update_metadata(s("eve"), s("AAAAAAAAAAAAAAAAAAAAAA"), JsValue::NULL), "session_not_found"),
        (m.put_user_info(s("eve"), none()), "bad_request"),
        (m.user_info(s("eve"), s("not a function")), "bad_request"),
        (m.refresh_user_info(JsValue::from(3), none()), "bad_request"),
        (m.delete_user_info(JsValue::NULL), "bad_request"),
    ];
    for (i, (p, want)) in cases.into_iter().enumerate() {
        assert_eq!(code(p).await, want, "case {i}");
    }
    // A cycle and a bigint cannot be JSON.
    let cyclic = js_sys::Object::new();
    Reflect::set(&cyclic, &s("self"), &cyclic).unwrap();
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &s("metadata"), &cyclic).unwrap();
    assert_eq!(code(m.issue(s("eve"), opts.into())).await, "bad_request");
    assert_eq!(code(m.put_user_info(s("eve"), js_sys::BigInt::from(1u32).into())).await, "bad_request");
    // Still working.
    let t = ok(m.issue(s("eve"), none())).await;
    ok(m.verify(get(&t, "accessToken"), s("strict"))).await;
}

#[wasm_bindgen_test]
async fn user_cache_with_a_js_loader() {
    let m = manager(hs_config(&[])).await;
    let loader = Function::new_with_args(
        "user",
        "globalThis.__tgLoads = (globalThis.__tgLoads || 0) + 1; return Promise.resolve({ name: user, plan: 'pro' })",
    );
    assert!(ok(m.user_info(s("frank"), none())).await.is_null(), "a miss without a loader is null");
    let info = ok(m.user_info(s("frank"), loader.clone().into())).await;
    assert_eq!(get_str(&info, "name"), "frank");
    ok(m.user_info(s("frank"), loader.clone().into())).await;
    let loads = Reflect::get(&js_sys::global(), &s("__tgLoads")).unwrap();
    assert_eq!(loads.as_f64(), Some(1.0), "the second read is a hit");
    ok(m.put_user_info(s("frank"), js(r#"{"name":"Frank"}"#))).await;
    assert_eq!(get_str(&ok(m.user_info(s("frank"), none())).await, "name"), "Frank");
    let n = ok(m.refresh_user_info(js(r#"["frank","gina"]"#), loader.clone().into())).await;
    assert_eq!(n.as_f64(), Some(2.0));
    ok(m.delete_user_info(s("frank"))).await;
    assert!(ok(m.user_info(s("frank"), none())).await.is_null());

    // What a loader throws comes back unchanged, and nothing is cached.
    let thrower = Function::new_with_args("user", "const e = new Error('db down'); e.mine = true; throw e");
    let err = JsFuture::from(m.user_info(s("hank"), thrower.into())).await.unwrap_err();
    assert_eq!(get(&err, "mine").as_bool(), Some(true));
    let rejecter = Function::new_with_args("user", "return Promise.reject(new TypeError('nope'))");
    let err = JsFuture::from(m.user_info(s("hank"), rejecter.into())).await.unwrap_err();
    assert_eq!(get_str(&err, "message"), "nope");
    assert!(ok(m.user_info(s("hank"), none())).await.is_null());
    let undefined_loader = Function::new_with_args("user", "return undefined");
    assert_eq!(code(m.user_info(s("hank"), undefined_loader.into())).await, "bad_request");
}

#[wasm_bindgen_test]
async fn a_failing_js_store_is_coded_and_the_instance_keeps_working() {
    let make = Function::new_no_args(
        r#"
        const store = { mode: 'throw',
          get(keys) {
            switch (store.mode) {
              case 'throw': throw new Error('connection refused');
              case 'reject': return Promise.reject('a string');
              case 'number': return Promise.resolve(42);
              case 'short': return Promise.resolve([]);
              case 'entry': return Promise.resolve(keys.map(() => ({ value: 1, version: 'x' })));
              case 'version': return Promise.resolve(keys.map(() => ({ value: new Uint8Array(2), version: -1 })));
              case 'text': return Promise.resolve(keys.map(() => ({ value: '{}', version: 1 })));
              case 'json': return Promise.resolve(keys.map(() => ({ value: new TextEncoder().encode('not json'), version: 1 })));
              default: return Promise.resolve(keys.map(() => null));
            }
          },
          commit(ops) { return store.mode === 'ok' ? Promise.resolve(true) : Promise.resolve('yes'); },
        };
        return store;"#,
    );
    let store = make.call0(&JsValue::UNDEFINED).unwrap();
    let m = manager(hs_config(&[("store", store.clone())])).await;
    let set = |mode: &str| Reflect::set(&store, &s("mode"), &s(mode)).unwrap();
    for (mode, want) in [
        ("throw", "store_unavailable"),
        ("reject", "store_unavailable"),
        ("number", "store_corrupt"),
        ("short", "store_corrupt"),
        ("entry", "store_corrupt"),
        ("version", "store_corrupt"),
        ("text", "store_corrupt"),
        ("json", "store_corrupt"),
        ("commit", "store_corrupt"),
    ] {
        set(mode);
        assert_eq!(code(m.issue(s("jay"), none())).await, want, "{mode}");
    }
    set("ok");
    ok(m.issue(s("jay"), none())).await;
}
