//! Crypto drivers: they answer the core's `Sign` and `VerifySignature` effects
//! for asymmetric keys (HMAC never leaves the core).
//!
//! Natively the driver is [`native::JwtCrypto`] (jsonwebtoken's crypto and key
//! parsing). In WebAssembly it is WebCrypto, which every JS runtime has.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod webcrypto;

use serde_json::Value;

use crate::engine::error::{Error, ErrorCode};
use crate::engine::keys::Alg;
use crate::platform::MaybeSendSync;

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait CryptoDriver: MaybeSendSync {
    /// The raw JWS signature of `message` with key `kid`.
    async fn sign(&self, alg: Alg, kid: &str, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// Whether `signature` is valid for `message` under key `kid`.
    async fn verify(&self, alg: Alg, kid: &str, message: &[u8], signature: &[u8]) -> Result<bool, Error>;
}

/// A driver for key sets of HMAC keys only: it is never asked anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct HmacOnly;

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl CryptoDriver for HmacOnly {
    async fn sign(&self, _: Alg, _: &str, _: &[u8]) -> Result<Vec<u8>, Error> {
        Err(no_key())
    }
    async fn verify(&self, _: Alg, _: &str, _: &[u8], _: &[u8]) -> Result<bool, Error> {
        Err(no_key())
    }
}

pub(crate) fn no_key() -> Error {
    Error::new(ErrorCode::Internal, "the crypto driver holds no key with that kid")
}

/// A key of a key set that could not be loaded: where it is in the specs (the
/// first signs) and why, so a caller can name the setting it came from.
#[derive(Debug)]
pub struct KeyError {
    pub index: usize,
    pub error: Error,
}

impl KeyError {
    /// Tags an error of the key at `index`.
    pub fn at(index: usize) -> impl Fn(Error) -> KeyError {
        move |error| KeyError { index, error }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Error {
        e.error
    }
}

/// Where a key comes from. `Debug` never shows the material.
#[derive(Clone)]
pub enum KeyMaterial {
    /// Raw HMAC secret bytes.
    Secret(Vec<u8>),
    /// A PEM: PKCS#8 private key (signing) or SPKI public key (verify only).
    Pem(String),
    /// A JWK: `oct`, `EC` (P-256), `OKP` (Ed25519) or `RSA` (public only).
    Jwk(Value),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Secret(_) => "Secret(<redacted>)",
            KeyMaterial::Pem(_) => "Pem(<redacted>)",
            KeyMaterial::Jwk(_) => "Jwk(<redacted>)",
        })
    }
}

/// One key to load: its id, algorithm and material.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub kid: String,
    pub alg: Alg,
    pub material: KeyMaterial,
}

impl KeyMaterial {
    /// The algorithm a JWK implies: its `alg` member, else its key type and curve.
    pub fn implied_alg(&self) -> Option<Alg> {
        let KeyMaterial::Jwk(jwk) = self else { return None };
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if let Some(alg) = field("alg") {
            return Alg::parse(alg);
        }
        match (field("kty")?, field("crv")) {
            ("EC", Some("P-256")) => Some(Alg::ES256),
            ("OKP", Some("Ed25519")) => Some(Alg::EdDSA),
            ("RSA", _) => Some(Alg::RS256),
            ("oct", _) => Some(Alg::HS256),
            _ => None,
        }
    }
}

impl KeySpec {
    pub fn secret(kid: impl Into<String>, alg: Alg, secret: impl Into<Vec<u8>>) -> Self {
        KeySpec { kid: kid.into(), alg, material: KeyMaterial::Secret(secret.into()) }
    }
    pub fn pem(kid: impl Into<String>, alg: Alg, pem: impl Into<String>) -> Self {
        KeySpec { kid: kid.into(), alg, material: KeyMaterial::Pem(pem.into()) }
    }
    pub fn jwk(kid: impl Into<String>, alg: Alg, jwk: Value) -> Self {
        KeySpec { kid: kid.into(), alg, material: KeyMaterial::Jwk(jwk) }
    }
}
