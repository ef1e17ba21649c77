//! The native crypto driver: jsonwebtoken 11 on its aws-lc-rs backend signs and verifies
//! asymmetric signatures and parses PEM and JWK keys.

use std::collections::HashMap;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Map, Value};

use super::{no_key, CryptoDriver, KeyError, KeyMaterial, KeySpec};
use crate::engine::b64;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::jwt::es256_to_low_s;
use crate::engine::keys::{rsa_too_small, Alg, Key, KeySet, MIN_RSA_BITS};

struct NativeKey {
    alg: Algorithm,
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
}

/// Holds the asymmetric keys of a key set.
#[derive(Default)]
pub struct JwtCrypto {
    keys: HashMap<String, NativeKey>,
}

impl std::fmt::Debug for JwtCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtCrypto").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

fn jwt_alg(alg: Alg) -> Algorithm {
    match alg {
        Alg::HS256 => Algorithm::HS256,
        Alg::HS384 => Algorithm::HS384,
        Alg::HS512 => Algorithm::HS512,
        Alg::ES256 => Algorithm::ES256,
        Alg::EdDSA => Algorithm::EdDSA,
        Alg::RS256 => Algorithm::RS256,
    }
}

/// Loads a key set: the first spec is the signing key, the rest verify only.
pub fn load_keys(specs: &[KeySpec]) -> Result<(KeySet, JwtCrypto), KeyError> {
    let (first, rest) = specs.split_first().ok_or_else(|| KeyError::at(0)(Error::config("a key set needs at least a signing key")))?;
    let mut crypto = JwtCrypto::default();
    let signing = load_one(first, &mut crypto, true).map_err(KeyError::at(0))?;
    let mut set = KeySet::new(signing);
    for (i, spec) in (1..).zip(rest) {
        set = set.with_verify_key(load_one(spec, &mut crypto, false).map_err(KeyError::at(i))?).map_err(KeyError::at(i))?;
    }
    Ok((set, crypto))
}

fn load_one(spec: &KeySpec, crypto: &mut JwtCrypto, must_sign: bool) -> Result<Key, Error> {
    let kid = spec.kid.clone();
    if spec.alg.is_hmac() {
        return match &spec.material {
            KeyMaterial::Secret(s) => Key::hmac(kid, spec.alg, s),
            KeyMaterial::Jwk(jwk) => Key::from_oct_jwk(kid, spec.alg, jwk),
            KeyMaterial::Pem(_) => Err(Error::config("HMAC keys are raw secrets or oct JWKs, not PEM")),
        };
    }
    let alg = jwt_alg(spec.alg);
    let (signing, verifying, public) = match &spec.material {
        KeyMaterial::Secret(_) => return Err(Error::config(format!("{} keys are PEM or JWK, not raw secrets", spec.alg.as_str()))),
        KeyMaterial::Pem(pem) => from_pem(spec.alg, pem.as_bytes())?,
        KeyMaterial::Jwk(jwk) => from_jwk(spec.alg, jwk)?,
    };
    if must_sign && signing.is_none() {
        return Err(Error::config("the signing key must be a private key (PKCS#8 PEM or a JWK with \"d\")"));
    }
    let key = Key::external(kid.clone(), spec.alg, public)?;
    crypto.keys.insert(kid, NativeKey { alg, signing, verifying });
    Ok(key)
}

fn bad_key(alg: Alg) -> impl Fn(jsonwebtoken::errors::Error) -> Error {
    move |_| Error::config(format!("the key is not a valid {} key", alg.as_str()))
}

fn public_map(jwk: &Jwk) -> Result<Map<String, Value>, Error> {
    let mut map = match serde_json::to_value(jwk) {
        Ok(Value::Object(m)) => m,
        _ => return Err(Error::config("could not export the public key as a JWK")),
    };
    map.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
    Ok(map)
}

type Loaded = (Option<EncodingKey>, DecodingKey, Map<String, Value>);

fn from_pem(alg: Alg, pem: &[u8]) -> Result<Loaded, Error> {
    // aws-lc refuses a small RSA key with no reason given: measure it first to say why.
    if alg == Alg::RS256 {
        if let Some(bits) = pem_rsa_modulus_bits(pem).filter(|&bits| bits < MIN_RSA_BITS) {
            return Err(rsa_too_small(bits));
        }
    }
    let private = match alg {
        Alg::ES256 => EncodingKey::from_ec_pem(pem),
        Alg::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    };
    // jsonwebtoken's PEM reader accepts some public PEMs as "private" ones; only a
    // key whose public half can be derived counts as private.
    if let Ok(enc) = private {
        if let Ok(jwk) = Jwk::from_encoding_key(&enc, jwt_alg(alg)) {
            let dec = DecodingKey::from_jwk(&jwk).map_err(bad_key(alg))?;
            return Ok((Some(enc), dec, public_map(&jwk)?));
        }
    }
    let dec = match alg {
        Alg::ES256 => DecodingKey::from_ec_pem(pem),
        Alg::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
    .map_err(|_| Error::config(format!("the PEM is neither a PKCS#8 private key nor a public key for {}", alg.as_str())))?;
    let jwk = Jwk::from_decoding_key(&dec, Some(jwt_alg(alg))).map_err(bad_key(alg))?;
    Ok((None, dec, public_map(&jwk)?))
}

/// The modulus size of an RSA key in a PEM (PKCS#8, PKCS#1, SPKI): the first INTEGER longer
/// than 64 bytes found walking the DER, which is `n` in each of those layouts.
fn pem_rsa_modulus_bits(pem: &[u8]) -> Option<usize> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
    let n = first_big_integer(&der, 0)?;
    let n = &n[n.iter().position(|&b| b != 0)?..];
    Some((n.len() - 1) * 8 + (8 - n[0].leading_zeros() as usize))
}

/// Walks DER elements (into SEQUENCE, OCTET STRING and BIT STRING) for an INTEGER over 64 bytes.
fn first_big_integer(mut der: &[u8], depth: usize) -> Option<&[u8]> {
    while depth < 6 && der.len() >= 2 {
        let tag = der[0];
        let (len, header): (usize, usize) = match der[1] {
            l if l < 0x80 => (l as usize, 2),
            0x81 => (*der.get(2)? as usize, 3),
            0x82 => ((*der.get(2)? as usize) << 8 | *der.get(3)? as usize, 4),
            _ => return None,
        };
        let content = der.get(header..header.checked_add(len)?)?;
        match tag {
            0x02 if len > 64 => return Some(content),
            0x30 | 0x04 => {
                if let Some(n) = first_big_integer(content, depth + 1) {
                    return Some(n);
                }
            }
            // A BIT STRING starts with its count of unused bits.
            0x03 if !content.is_empty() => {
                if let Some(n) = first_big_integer(&content[1..], depth + 1) {
                    return Some(n);
                }
            }
            _ => {}
        }
        der = &der[header + len..];
    }
    None
}

// PKCS#8 v1 prefixes for a bare private scalar (RFC 5208 with RFC 5915 / RFC 8410).
const P256_PKCS8_PREFIX: &[u8] = &[
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
];
const ED25519_PKCS8_PREFIX: &[u8] = &[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

fn from_jwk(alg: Alg, value: &Value) -> Result<Loaded, Error> {
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    let (kty, crv) = (field("kty"), field("crv"));
    let fits = match alg {
        Alg::ES256 => kty == Some("EC") && crv == Some("P-256"),
        Alg::EdDSA => kty == Some("OKP") && crv == Some("Ed25519"),
        _ => kty == Some("RSA"),
    };
    if !fits {
        return Err(Error::config(format!("the JWK's kty/crv do not fit {}", alg.as_str())));
    }
    let mut public = value.as_object().cloned().unwrap_or_default();
    public.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
    let jwk: Jwk = serde_json::from_value(Value::Object(public.clone())).map_err(|_| Error::config("the JWK is missing public members"))?;
    let dec = DecodingKey::from_jwk(&jwk).map_err(bad_key(alg))?;
    let signing = match field("d") {
        None => None,
        Some(d) => {
            let d = b64::decode(d).map_err(|_| Error::config("the JWK member \"d\" is not base64url"))?;
            let prefix = match alg {
                Alg::ES256 => P256_PKCS8_PREFIX,
                Alg::EdDSA => ED25519_PKCS8_PREFIX,
                _ => return Err(Error::config("RSA private keys are loaded from PEM, not JWK")),
            };
            if d.len() != 32 {
                return Err(Error::config("the JWK member \"d\" must be 32 bytes"));
            }
            let der = [prefix, &d].concat();
            let enc = match alg {
                Alg::ES256 => EncodingKey::from_ec_der(&der),
                _ => EncodingKey::from_ed_der(&der),
            };
            // The private half must belong to the public half given with it.
            let derived = Jwk::from_encoding_key(&enc, jwt_alg(alg)).map_err(bad_key(alg))?;
            if public_map(&derived)? != public {
                return Err(Error::config("the JWK's private member \"d\" does not match its public members"));
            }
            Some(enc)
        }
    };
    Ok((signing, dec, public))
}

fn driver_error(_: jsonwebtoken::errors::Error) -> Error {
    Error::new(ErrorCode::Internal, "the crypto driver failed to sign")
}

impl JwtCrypto {
    pub fn sign_now(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let key = self.keys.get(kid).ok_or_else(no_key)?;
        let enc = key.signing.as_ref().ok_or_else(no_key)?;
        let sig = jsonwebtoken::crypto::sign(message, enc, key.alg).map_err(driver_error)?;
        let mut sig = b64::decode(&sig).map_err(|_| Error::new(ErrorCode::Internal, "the crypto driver returned a bad signature"))?;
        if key.alg == Algorithm::ES256 {
            es256_to_low_s(&mut sig);
        }
        Ok(sig)
    }

    pub fn verify_now(&self, kid: &str, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        let key = self.keys.get(kid).ok_or_else(no_key)?;
        // A signature jsonwebtoken cannot even parse is simply not valid.
        Ok(jsonwebtoken::crypto::verify(&b64::encode(signature), message, &key.verifying, key.alg).unwrap_or(false))
    }
}

#[async_trait::async_trait]
impl CryptoDriver for JwtCrypto {
    async fn sign(&self, _alg: Alg, kid: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.sign_now(kid, message)
    }
    async fn verify(&self, _alg: Alg, kid: &str, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        self.verify_now(kid, message, signature)
    }
}
