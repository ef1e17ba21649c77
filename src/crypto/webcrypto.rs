//! The WebAssembly crypto driver: WebCrypto (`globalThis.crypto.subtle`), which
//! Node 20+, browsers, Deno and Cloudflare Workers all have.
//!
//! Each key is imported once, when the key set is loaded; signing and verifying
//! then cost one `subtle.sign` / `subtle.verify` call each, with the message and
//! signature passed as views of wasm memory (WebCrypto copies them at the call).
//! Private keys are held as non-extractable `CryptoKey`s. HMAC keys never come
//! here: the core computes HMAC itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{no_key, CryptoDriver, KeyError, KeyMaterial, KeySpec};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::keys::{Alg, Key, KeySet};

#[wasm_bindgen]
extern "C" {
    /// `SubtleCrypto`; only the four methods the driver uses.
    type Subtle;
    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_key(
        this: &Subtle,
        format: &str,
        data: &JsValue,
        algorithm: &Object,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = exportKey)]
    fn export_key(this: &Subtle, format: &str, key: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn sign(this: &Subtle, algorithm: &Object, key: &JsValue, data: &[u8]) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn verify(this: &Subtle, algorithm: &Object, key: &JsValue, signature: &[u8], data: &[u8]) -> Result<Promise, JsValue>;
}

struct WebKey {
    kid: String,
    alg: Alg,
    /// The algorithm argument of `sign` / `verify`, built once.
    params: Object,
    private: Option<JsValue>,
    public: JsValue,
}

/// Holds the asymmetric keys of a key set as WebCrypto `CryptoKey`s.
pub struct WebCrypto {
    subtle: Subtle,
    keys: Vec<WebKey>,
}

impl std::fmt::Debug for WebCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebCrypto").field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>()).finish()
    }
}

fn object(pairs: &[(&str, &str)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    o
}

/// The `importKey` and the `sign`/`verify` algorithm arguments of an algorithm.
fn algorithm(alg: Alg) -> (Object, Object) {
    match alg {
        Alg::ES256 => (object(&[("name", "ECDSA"), ("namedCurve", "P-256")]), object(&[("name", "ECDSA"), ("hash", "SHA-256")])),
        Alg::EdDSA => (object(&[("name", "Ed25519")]), object(&[("name", "Ed25519")])),
        _ => (object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")]), object(&[("name", "RSASSA-PKCS1-v1_5")])),
    }
}

fn usages(usage: &str) -> Array {
    Array::of1(&JsValue::from_str(usage))
}

async fn settle(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

fn subtle() -> Result<Subtle, Error> {
    let missing =
        || Error::config("WebCrypto (globalThis.crypto.subtle) is not available in this runtime; use Node 20+, a browser, Deno or Workers");
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(|_| missing())?;
    if !crypto.is_object() {
        return Err(missing());
    }
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).map_err(|_| missing())?;
    if !subtle.is_object() {
        return Err(missing());
    }
    Ok(subtle.unchecked_into())
}

/// Loads a key set: the first spec is the signing key, the rest verify only.
pub async fn load_keys(specs: &[KeySpec]) -> Result<(KeySet, WebCrypto), KeyError> {
    let (first, rest) = specs.split_first().ok_or_else(|| KeyError::at(0)(Error::config("a key set needs at least a signing key")))?;
    let mut crypto = WebCrypto { subtle: subtle().map_err(KeyError::at(0))?, keys: Vec::new() };
    let signing = crypto.load_one(first, true).await.map_err(KeyError::at(0))?;
    let mut set = KeySet::new(signing);
    for (i, spec) in (1..).zip(rest) {
        set = set.with_verify_key(crypto.load_one(spec, false).await.map_err(KeyError::at(i))?).map_err(KeyError::at(i))?;
    }
    Ok((set, crypto))
}

/// The public members of a JWK, which is all [`Key::external`] may hold.
fn public_members(jwk: &Map<String, Value>) -> Map<String, Value> {
    let mut public = jwk.clone();
    public.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
    public
}

fn jwk_fits(alg: Alg, jwk: &Map<String, Value>) -> bool {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    match alg {
        Alg::ES256 => field("kty") == Some("EC") && field("crv") == Some("P-256"),
        Alg::EdDSA => field("kty") == Some("OKP") && field("crv") == Some("Ed25519"),
        _ => field("kty") == Some("RSA"),
    }
}

/// A PEM block's label and DER body. Labels WebCrypto cannot import get a hint.
fn parse_pem(pem: &str) -> Result<(&str, Vec<u8>), Error> {
    let bad = || Error::config("the key is not a PEM block (-----BEGIN ...----- base64 -----END ...-----)");
    let start = pem.find("-----BEGIN ").ok_or_else(bad)? + "-----BEGIN ".len();
    let rest = &pem[start..];
    let label_end = rest.find("-----").ok_or_else(bad)?;
    let label = &rest[..label_end];
    let body_and_end = &rest[label_end + 5..];
    let end = body_and_end.find("-----END ").ok_or_else(bad)?;
    let body: String = body_and_end[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(body).map_err(|_| bad())?;
    match label {
        "PRIVATE KEY" | "PUBLIC KEY" => Ok((label, der)),
        "EC PRIVATE KEY" | "RSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" => Err(Error::config(format!(
            "a {label} PEM cannot be loaded by WebCrypto; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in key.pem`"
        ))),
        "RSA PUBLIC KEY" => Err(Error::config(
            "an RSA PUBLIC KEY (PKCS#1) PEM cannot be loaded by WebCrypto; convert it to SPKI with `openssl rsa -RSAPublicKey_in -pubout`",
        )),
        "ENCRYPTED PRIVATE KEY" => Err(Error::config("encrypted private keys are not supported; decrypt to an unencrypted PKCS#8 PEM")),
        _ => Err(Error::config("the PEM is neither a PKCS#8 PRIVATE KEY nor an SPKI PUBLIC KEY")),
    }
}

impl WebCrypto {
    async fn import(&self, format: &str, data: &JsValue, alg: Alg, extractable: bool, usage: &str) -> Result<JsValue, JsValue> {
        let (import_params, _) = algorithm(alg);
        settle(self.subtle.import_key(format, data, &import_params, extractable, &usages(usage))).await
    }

    async fn export_public_jwk(&self, key: &JsValue) -> Result<Map<String, Value>, Error> {
        let failed = || Error::config("WebCrypto could not export the public key as a JWK");
        let jwk = settle(self.subtle.export_key("jwk", key)).await.map_err(|_| failed())?;
        let text = js_sys::JSON::stringify(&jwk).ok().and_then(|s| s.as_string()).ok_or_else(failed)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(public_members(&map)),
            _ => Err(failed()),
        }
    }

    async fn load_one(&mut self, spec: &KeySpec, must_sign: bool) -> Result<Key, Error> {
        let (alg, kid) = (spec.alg, spec.kid.clone());
        if alg.is_hmac() {
            return match &spec.material {
                KeyMaterial::Secret(s) => Key::hmac(kid, alg, s),
                KeyMaterial::Jwk(jwk) => Key::from_oct_jwk(kid, alg, jwk),
                KeyMaterial::Pem(_) => Err(Error::config("HMAC keys are raw secrets or oct JWKs, not PEM")),
            };
        }
        let name = alg.as_str();
        let (private, public, jwk) = match &spec.material {
            KeyMaterial::Secret(_) => return Err(Error::config(format!("{name} keys are PEM or JWK, not secrets"))),
            KeyMaterial::Pem(pem) => {
                let (label, der) = parse_pem(pem)?;
                let der: JsValue = Uint8Array::from(&der[..]).into();
                if label == "PRIVATE KEY" {
                    let bad = |_| Error::config(format!("the PEM is not a PKCS#8 {name} private key"));
                    // Imported extractable once, only to learn the public half; the kept key is not extractable.
                    let probe = self.import("pkcs8", &der, alg, true, "sign").await.map_err(bad)?;
                    let jwk = self.export_public_jwk(&probe).await?;
                    let private = self.import("pkcs8", &der, alg, false, "sign").await.map_err(bad)?;
                    let public = self.import_public(alg, &jwk).await?;
                    (Some(private), public, jwk)
                } else {
                    let bad = |_| Error::config(format!("the PEM is not an SPKI {name} public key"));
                    let public = self.import("spki", &der, alg, true, "verify").await.map_err(bad)?;
                    let jwk = self.export_public_jwk(&public).await?;
                    (None, public, jwk)
                }
            }
            KeyMaterial::Jwk(value) => {
                let map = value.as_object().ok_or_else(|| Error::config("a JWK is a JSON object"))?;
                if !jwk_fits(alg, map) {
                    return Err(Error::config(format!("the JWK's kty/crv do not fit {name}")));
                }
                let jwk = public_members(map);
                let public = self.import_public(alg, &jwk).await?;
                let private = if map.contains_key("d") {
                    let mut full = map.clone();
                    full.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e" | "d" | "p" | "q" | "dp" | "dq" | "qi"));
                    let data = json_to_js(&Value::Object(full))?;
                    let private = self
                        .import("jwk", &data, alg, false, "sign")
                        .await
                        .map_err(|_| Error::config(format!("the JWK is not a valid {name} private key")))?;
                    Some(private)
                } else {
                    None
                };
                (private, public, jwk)
            }
        };
        if must_sign && private.is_none() {
            return Err(Error::config("the signing key must be a private key (PKCS#8 PEM or a JWK with \"d\")"));
        }
        let (_, params) = algorithm(alg);
        let key = WebKey { kid: kid.clone(), alg, params, private, public };
        if key.private.is_some() {
            // The private half must belong to the public half it came with (a JWK's "d" and "x", say).
            let probe = b"tollgate key check";
            let sig = self.sign_with(&key, probe).await?;
            if !self.verify_with(&key, probe, &sig).await {
                return Err(Error::config("the key's private half does not match its public half"));
            }
        }
        let external = Key::external(kid, alg, jwk)?;
        self.keys.push(key);
        Ok(external)
    }

    async fn import_public(&self, alg: Alg, jwk: &Map<String, Value>) -> Result<JsValue, Error> {
        let data = json_to_js(&Value::Object(jwk.clone()))?;
        self.import("jwk", &data, alg, true, "verify")
            .await
            .map_err(|_| Error::config(format!("the JWK is not a valid {} public key", alg.as_str())))
    }

    fn key(&self, kid: &str) -> Result<&WebKey, Error> {
        self.keys.iter().find(|k| k.kid == kid).ok_or_else(no_key)
    }

    async fn sign_with(&self, key: &WebKey, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = || Error::new(ErrorCode::Internal, "WebCrypto failed to sign");
        let private = key.private.as_ref().ok_or_else(no_key)?;
        let sig = settle(self.subtle.sign(&key.params, private, message)).await.map_err(|_| failed())?;
        if !sig.is_instance_of::<js_sys::ArrayBuffer>() {
            return Err(failed());
        }
        let mut sig = Uint8Array::new(&sig).to_vec();
        if key.alg == Alg::ES256 {
            // WebCrypto's ECDSA picks either S; tollgate's own signatures are low-S, one encoding per token.
            crate::engine::jwt::es256_to_low_s(&mut sig);
        }
        Ok(sig)
    }

    async fn verify_with(&self, key: &WebKey, message: &[u8], signature: &[u8]) -> bool {
        // ECDSA P-256 (r||s) and Ed25519 signatures are 64 bytes; anything else is simply not valid.
        if matches!(key.alg, Alg::ES256 | Alg::EdDSA) && signature.len() != 64 {
            return false;
        }
        // A signature WebCrypto refuses to even check is not valid either.
        match settle(self.subtle.verify(&key.params, &key.public, signature, message)).await {
            Ok(v) => v.as_bool().unwrap_or(false),
            Err(_) => false,
        }
    }
}

fn json_to_js(value: &Value) -> Result<JsValue, Error> {
    let text = serde_json::to_string(value).map_err(|_| Error::config("the JWK could not be encoded"))?;
    js_sys::JSON::parse(&text).map_err(|_| Error::config("the JWK could not be encoded"))
}

#[async_trait::async_trait(?Send)]
impl CryptoDriver for WebCrypto {
    async fn sign(&self, alg: Alg, kid: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.key(kid)?;
        if key.alg != alg {
            return Err(no_key());
        }
        self.sign_with(key, message).await
    }
    async fn verify(&self, alg: Alg, kid: &str, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        let key = self.key(kid)?;
        if key.alg != alg {
            return Ok(false);
        }
        Ok(self.verify_with(key, message, signature).await)
    }
}
