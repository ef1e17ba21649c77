//! [`ConfigBuilder`]: the Rust surface of the settings table, one method per
//! engine setting, named as the setting. Every other surface reads its
//! settings into one of these (see [`super::Settings`]).

use std::time::Duration;

use crate::crypto::{KeyMaterial, KeySpec};
use crate::engine::error::Error;
use crate::engine::keys::{kid_is_valid, Alg};
use crate::engine::ops::VerifyMode;
use crate::engine::policy::{refresh_secret_required, InvalidSetting, LimitPolicy, Policy};
use crate::engine::record::RecordFormat;
use crate::engine::refresh_key::RefreshSecret;

/// What a manager is built from: keys (the first signs) and the policy.
#[derive(Clone, Debug)]
pub struct Config {
    pub keys: Vec<KeySpec>,
    pub policy: Policy,
}

impl Config {
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }
}

/// Builds a [`Config`]: a signing key (`secret`, or `signing_key` for an
/// asymmetric algorithm) and any other setting of the README's settings table,
/// each with the default shown there. `Debug` shows no key material.
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder(Box<Draft>);

/// Boxed, so that passing the builder by value moves a pointer: the settings
/// table makes one such call per setting, each inlined in the wasm module.
#[derive(Clone, Debug, Default)]
struct Draft {
    secret: Option<KeyMaterial>,
    signing_key: Option<KeyMaterial>,
    alg: Option<Alg>,
    kid: Option<String>,
    verify_keys: Vec<KeySpec>,
    policy: Policy,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ConfigBuilder {
    /// The HMAC secret that signs access tokens: 32 bytes or more for HS256
    /// (48 for HS384, 64 for HS512); `tollgate keygen` makes one.
    pub fn secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.0.secret = Some(KeyMaterial::Secret(secret.into()));
        self
    }
    /// Instead of a secret: the private key that signs, a PKCS#8 PEM or a JWK
    /// (for ES256, EdDSA or RS256; an `oct` JWK for HMAC).
    pub fn signing_key(mut self, key: KeyMaterial) -> Self {
        self.0.signing_key = Some(key);
        self
    }
    /// The signing algorithm. Default: HS256 with a secret; with a signing key,
    /// what a JWK says, else ES256.
    pub fn alg(mut self, alg: Alg) -> Self {
        self.0.alg = Some(alg);
        self
    }
    /// The signing key's id, written as the `kid` header; default `k1`.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.0.kid = Some(kid.into());
        self
    }
    /// A key accepted for verification only (the previous signing key during
    /// rotation, another service's public key); call once per key.
    pub fn verify_key(mut self, spec: KeySpec) -> Self {
        self.0.verify_keys.push(spec);
        self
    }
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.0.policy.claims.issuer = Some(iss.into());
        self
    }
    /// Adds an accepted audience; the first one is written into new tokens.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.0.policy.claims.audience.push(aud.into());
        self
    }
    pub fn leeway(mut self, d: Duration) -> Self {
        self.0.policy.claims.leeway_ms = ms(d);
        self
    }
    pub fn max_token_bytes(mut self, n: usize) -> Self {
        self.0.policy.claims.max_token_bytes = n;
        self
    }
    pub fn access_ttl(mut self, d: Duration) -> Self {
        self.0.policy.access_ttl_ms = ms(d);
        self
    }
    pub fn idle_ttl(mut self, d: Duration) -> Self {
        self.0.policy.idle_ttl_ms = ms(d);
        self
    }
    pub fn absolute_ttl(mut self, d: Duration) -> Self {
        self.0.policy.absolute_ttl_ms = ms(d);
        self
    }
    pub fn refresh_grace(mut self, d: Duration) -> Self {
        self.0.policy.refresh_grace_ms = ms(d);
        self
    }
    pub fn touch_interval(mut self, d: Duration) -> Self {
        self.0.policy.touch_interval_ms = ms(d);
        self
    }
    pub fn user_cache_ttl(mut self, d: Duration) -> Self {
        self.0.policy.user_cache_ttl_ms = ms(d);
        self
    }
    /// At most `n` live sessions per user (100 by default); [`ConfigBuilder::on_limit`] says what happens at the limit.
    pub fn max_sessions_per_user(mut self, n: u32) -> Self {
        self.0.policy.max_sessions_per_user = n;
        self
    }
    /// Evict the oldest session (the default) or refuse the new one with `session_limit`.
    pub fn on_limit(mut self, policy: LimitPolicy) -> Self {
        self.0.policy.limit_policy = policy;
        self
    }
    pub fn refresh_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.0.policy.refresh_prefix = prefix.into();
        self
    }
    pub fn max_metadata_bytes(mut self, n: usize) -> Self {
        self.0.policy.max_metadata_bytes = n;
        self
    }
    pub fn max_claims_bytes(mut self, n: usize) -> Self {
        self.0.policy.max_claims_bytes = n;
        self
    }
    /// Keys the manager remembers of its own commits (0: none); see [`crate::store::recent`].
    pub fn recent_writes(mut self, n: usize) -> Self {
        self.0.policy.recent_writes = n;
        self
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.0.policy.max_attempts = n;
        self
    }
    /// The mode of a verify that names none: HTTP `POST /v1/verify` without
    /// `mode` and JS `verify(token)`. Default [`VerifyMode::Strict`].
    pub fn verify_mode(mut self, mode: VerifyMode) -> Self {
        self.0.policy.verify_mode = mode;
        self
    }
    /// How session records are written; both formats are always read. Default
    /// [`RecordFormat::Compact`]; [`RecordFormat::Json`] while a rolling upgrade
    /// from a release that reads only format 2 runs.
    pub fn record_format(mut self, format: RecordFormat) -> Self {
        self.0.policy.record_format = format;
        self
    }

    /// The secret the refresh key derives from: the key that authenticates stored
    /// sessions (so write access to the store cannot mint tokens). Default: the HMAC
    /// signing secret; required with an asymmetric signing key. When rotating an HMAC
    /// signing secret, set this to the old secret so stored sessions stay readable.
    pub fn refresh_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.0.policy.refresh_secret = Some(RefreshSecret(secret.into()));
        self
    }

    /// The configuration, or `config_invalid` naming the first unusable setting.
    pub fn build(self) -> Result<Config, Error> {
        self.check().map_err(|e| super::refusal(&e, super::Naming::Rust))
    }

    /// The configuration, or the first unusable setting (each surface names it its own way).
    pub(crate) fn check(self) -> Result<Config, InvalidSetting> {
        let draft = *self.0;
        let signing = draft.signing_spec()?;
        let mut keys = vec![signing];
        for (i, spec) in (1..).zip(&draft.verify_keys) {
            check_key(spec).map_err(|problem| InvalidSetting::new("verify_keys", format!("key #{i} {problem}")))?;
            if keys.iter().any(|k| k.kid == spec.kid) {
                return Err(InvalidSetting::new("verify_keys", format!("key #{i} has the kid of another key; each key needs its own")));
            }
            keys.push(spec.clone());
        }
        draft.policy.check()?;
        if draft.policy.refresh_secret.is_none() && !keys[0].alg.is_hmac() {
            return Err(refresh_secret_required());
        }
        Ok(Config { keys, policy: draft.policy })
    }
}

impl Draft {
    /// The signing key from `secret` or `signing_key`, `alg` and `kid`.
    fn signing_spec(&self) -> Result<KeySpec, InvalidSetting> {
        let (material, setting, default_alg) = match (&self.secret, &self.signing_key) {
            (Some(secret), None) => (secret.clone(), "secret", Alg::HS256),
            (None, Some(key)) => (key.clone(), "signing_key", key.implied_alg().unwrap_or(Alg::ES256)),
            (Some(_), Some(_)) => return Err(InvalidSetting::with_other("secret", "and {} are both set; keep one", "signing_key")),
            (None, None) => {
                return Err(InvalidSetting::with_other("secret", "is not set: give it (`tollgate keygen` makes one), or {}", "signing_key"))
            }
        };
        let alg = self.alg.unwrap_or(default_alg);
        if setting == "secret" && !alg.is_hmac() {
            return Err(InvalidSetting::with_other("alg", "is asymmetric: its key is given with {}, not a secret", "signing_key"));
        }
        let kid = self.kid.clone().unwrap_or_else(|| "k1".into());
        if !kid_is_valid(&kid) {
            return Err(InvalidSetting::new("kid", "must be 1 to 128 printable ASCII characters without quotes or backslashes"));
        }
        let spec = KeySpec { kid, alg, material };
        check_key(&spec).map_err(|problem| InvalidSetting::new(setting, problem))?;
        Ok(spec)
    }
}

/// What can be told of a key without parsing it: its kid, and material that fits its algorithm.
/// The PEM or JWK itself is parsed when the keys are loaded.
fn check_key(spec: &KeySpec) -> Result<(), String> {
    let alg = spec.alg.as_str();
    if !kid_is_valid(&spec.kid) {
        return Err("has a kid that is not 1 to 128 printable ASCII characters without quotes or backslashes".into());
    }
    match &spec.material {
        KeyMaterial::Secret(_) if !spec.alg.is_hmac() => Err(format!("is a secret, which {alg} does not use: give a PEM or a JWK")),
        KeyMaterial::Secret(s) if s.len() < spec.alg.min_secret_len() => {
            Err(format!("must be at least {} bytes for {alg}; `tollgate keygen` makes one", spec.alg.min_secret_len()))
        }
        KeyMaterial::Pem(_) if spec.alg.is_hmac() => Err(format!("is a PEM, which {alg} does not use: give a secret")),
        KeyMaterial::Jwk(_) if spec.material.implied_alg().is_some_and(|a| a.is_hmac() != spec.alg.is_hmac()) => {
            Err(format!("is a JWK of another kind of key than {alg}"))
        }
        _ => Ok(()),
    }
}
