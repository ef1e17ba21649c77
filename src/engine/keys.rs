//! The key set: one signing key and any number of verification keys, found by `kid`.
//!
//! HMAC keys live here, pre-keyed, because the core computes HMAC itself (it is
//! pure and it is the hot path). Asymmetric keys are held by the crypto driver
//! (jsonwebtoken natively, WebCrypto in wasm); the core keeps only their `kid`,
//! algorithm and public JWK, and asks the driver to sign or verify.

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};

use super::b64;
use super::error::Error;
use super::refresh_key::RefreshKey;

/// The JWS algorithms tollgate signs and verifies. `none` is not one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    ES256,
    EdDSA,
    RS256,
}

impl Alg {
    /// Every algorithm, in the order the docs list them.
    pub const ALL: [Alg; 6] = [Alg::HS256, Alg::HS384, Alg::HS512, Alg::ES256, Alg::EdDSA, Alg::RS256];

    pub const fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            "ES256" => Alg::ES256,
            "EdDSA" => Alg::EdDSA,
            "RS256" => Alg::RS256,
            _ => return None,
        })
    }

    pub const fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// Shortest HMAC secret we accept: the hash output length (RFC 7518 §3.2).
    pub const fn min_secret_len(self) -> usize {
        match self {
            Alg::HS256 => 32,
            Alg::HS384 => 48,
            Alg::HS512 => 64,
            _ => 0,
        }
    }
}

/// A pre-keyed HMAC: the inner and outer pad blocks are computed once, and each
/// use clones the state, which saves two compressions per token.
#[derive(Clone)]
pub(crate) enum HmacKey {
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

impl HmacKey {
    fn new(alg: Alg, secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < alg.min_secret_len() {
            return Err(Error::config(format!(
                "an {} secret must be at least {} bytes; generate one with `tollgate keygen`",
                alg.as_str(),
                alg.min_secret_len()
            )));
        }
        let bad = |_| Error::config("HMAC key rejected");
        Ok(match alg {
            Alg::HS256 => HmacKey::S256(Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::HS384 => HmacKey::S384(Hmac::new_from_slice(secret).map_err(bad)?),
            Alg::HS512 => HmacKey::S512(Hmac::new_from_slice(secret).map_err(bad)?),
            _ => return Err(Error::config("not an HMAC algorithm")),
        })
    }

    /// MAC over `message`, written into `out`; returns the length used.
    pub(crate) fn sign_into(&self, message: &[u8], out: &mut [u8; 64]) -> usize {
        fn run<M: Mac + Clone>(m: &M, msg: &[u8], out: &mut [u8; 64]) -> usize {
            let mut m = m.clone();
            m.update(msg);
            let tag = m.finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
            tag.len()
        }
        match self {
            HmacKey::S256(m) => run(m, message, out),
            HmacKey::S384(m) => run(m, message, out),
            HmacKey::S512(m) => run(m, message, out),
        }
    }

    /// Constant-time check of `tag` against the MAC of `message`.
    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let mut mac = [0u8; 64];
        let n = self.sign_into(message, &mut mac);
        // The length of a tag is public (it is the algorithm's); the bytes are compared in
        // constant time, eight at a time (`verify_slice` pays an optimization barrier per byte).
        tag.len() == n && words_ct_eq(&mac[..n], tag)
    }
}

/// Constant-time equality of two slices of one length, a multiple of 8 (every HMAC tag).
fn words_ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let fits = a.len() == b.len() && a.len().is_multiple_of(8);
    // Every differing bit lands in `diff`; only the final comparison goes through `subtle`.
    let diff = a.chunks_exact(8).zip(b.chunks_exact(8)).fold(0u64, |d, (x, y)| d | (word(x) ^ word(y)));
    fits && bool::from(diff.ct_eq(&0))
}

/// One key of the set.
#[derive(Clone)]
pub struct Key {
    kid: String,
    alg: Alg,
    pub(crate) hmac: Option<HmacKey>,
    /// Public JWK (no private part) for asymmetric keys; `None` for HMAC keys,
    /// which never leave the service.
    public_jwk: Option<Map<String, Value>>,
    /// Precomputed base64url of this key's JWT header.
    pub(crate) header_b64: String,
    /// The refresh key an HMAC secret implies when `refresh_secret` is not set.
    pub(crate) refresh_key: Option<RefreshKey>,
}

impl std::fmt::Debug for Key {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl Key {
    /// An HMAC key from its raw secret bytes.
    pub fn hmac(kid: impl Into<String>, alg: Alg, secret: &[u8]) -> Result<Key, Error> {
        let kid = check_kid(kid.into())?;
        let hmac = HmacKey::new(alg, secret)?;
        let refresh_key = Some(RefreshKey::derive(secret));
        Ok(Key { header_b64: header_b64(alg, &kid), kid, alg, hmac: Some(hmac), public_jwk: None, refresh_key })
    }

    /// An asymmetric key whose private or public half the crypto driver holds.
    /// `public_jwk` is exported by [`KeySet::jwks`]; any private member is refused.
    pub fn external(kid: impl Into<String>, alg: Alg, public_jwk: Map<String, Value>) -> Result<Key, Error> {
        let kid = check_kid(kid.into())?;
        if alg.is_hmac() {
            return Err(Error::config("HMAC keys are held by the engine; use Key::hmac"));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if public_jwk.contains_key(private) {
                return Err(Error::config("the public JWK of a key must not contain private members"));
            }
        }
        if alg == Alg::RS256 {
            check_rsa_size(&public_jwk)?;
        }
        let mut jwk = public_jwk;
        jwk.insert("kid".into(), Value::String(kid.clone()));
        jwk.insert("alg".into(), Value::String(alg.as_str().into()));
        jwk.insert("use".into(), Value::String("sig".into()));
        Ok(Key { header_b64: header_b64(alg, &kid), kid, alg, hmac: None, public_jwk: Some(jwk), refresh_key: None })
    }

    /// An HMAC key from an `oct` JWK (`{"kty":"oct","k":"..."}`).
    pub fn from_oct_jwk(kid: impl Into<String>, alg: Alg, jwk: &Value) -> Result<Key, Error> {
        let k = jwk
            .get("kty")
            .and_then(Value::as_str)
            .filter(|kty| *kty == "oct")
            .and_then(|_| jwk.get("k"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::config("an HMAC JWK needs \"kty\":\"oct\" and a base64url \"k\""))?;
        let secret = b64::decode(k).map_err(|_| Error::config("the JWK member \"k\" is not base64url"))?;
        Key::hmac(kid, alg, &secret)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
    pub fn alg(&self) -> Alg {
        self.alg
    }
    /// The refresh key derived from this key's HMAC secret; `None` for asymmetric keys.
    pub fn refresh_key(&self) -> Option<&RefreshKey> {
        self.refresh_key.as_ref()
    }
}

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A: 1024-bit RSA is disallowed).
pub const MIN_RSA_BITS: usize = 2048;

/// The refusal of an RSA key of `bits` bits, saying what to do instead.
pub fn rsa_too_small(bits: usize) -> Error {
    Error::config(format!(
        "the RS256 key has {bits} bits; RSA keys need at least {MIN_RSA_BITS}: generate one with `tollgate keygen --alg RS256`, or use ES256 or EdDSA"
    ))
}

/// Refuses a public RSA JWK whose modulus `n` is shorter than [`MIN_RSA_BITS`].
fn check_rsa_size(public_jwk: &Map<String, Value>) -> Result<(), Error> {
    let n = public_jwk
        .get("n")
        .and_then(Value::as_str)
        .and_then(|n| b64::decode(n).ok())
        .ok_or_else(|| Error::config("an RSA public key needs a base64url modulus \"n\""))?;
    let n = match n.iter().position(|&b| b != 0) {
        Some(first) => &n[first..],
        None => &[][..],
    };
    let bits = n.first().map_or(0, |&top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
    if bits < MIN_RSA_BITS {
        return Err(rsa_too_small(bits));
    }
    Ok(())
}

/// Whether `kid` can go into a JWT header as it is: 1 to 128 printable ASCII characters, no quotes or backslashes.
pub fn kid_is_valid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 128 && kid.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

fn check_kid(kid: String) -> Result<String, Error> {
    if !kid_is_valid(&kid) {
        return Err(Error::config("a key id must be 1 to 128 printable ASCII characters without quotes or backslashes"));
    }
    Ok(kid)
}

fn header_b64(alg: Alg, kid: &str) -> String {
    // kid is checked to need no JSON escaping.
    b64::encode(format!(r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#, alg.as_str(), kid).as_bytes())
}

/// The keys a manager signs and verifies with.
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Vec<Key>,
    signing: usize,
}

impl KeySet {
    /// A set whose signing key is `signing`; add older keys with [`KeySet::with_verify_key`].
    pub fn new(signing: Key) -> KeySet {
        KeySet { keys: vec![signing], signing: 0 }
    }

    /// Adds a key accepted for verification only (a retired signing key, say).
    pub fn with_verify_key(mut self, key: Key) -> Result<KeySet, Error> {
        if self.keys.iter().any(|k| k.kid == key.kid) {
            return Err(Error::config(format!("two keys share the kid {:?}", key.kid)));
        }
        self.keys.push(key);
        Ok(self)
    }

    pub fn signing_key(&self) -> &Key {
        &self.keys[self.signing]
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn get(&self, kid: &str) -> Option<&Key> {
        // Sets hold a handful of keys: a scan beats hashing.
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The JWKS document of the public keys (HMAC keys are never exported).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().filter_map(|k| k.public_jwk.clone().map(Value::Object)).collect();
        json!({ "keys": keys })
    }
}
