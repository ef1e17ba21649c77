//! The JS configuration object, read as JSON and checked field by field.
//! Durations are seconds (numbers, fractions allowed); timestamps in results are unix ms.

use serde::Deserialize;
use serde_json::Value;

use crate::core::error::Error;
use crate::core::keys::Alg;
use crate::core::policy::{LimitPolicy, Policy};
use crate::crypto::KeySpec;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct JsConfig {
    keys: Value,
    issuer: Option<String>,
    audience: Option<OneOrMany<String>>,
    leeway: Option<f64>,
    max_token_bytes: Option<f64>,
    access_ttl: Option<f64>,
    idle_ttl: Option<f64>,
    absolute_ttl: Option<f64>,
    refresh_grace: Option<f64>,
    touch_interval: Option<f64>,
    user_cache_ttl: Option<f64>,
    max_sessions_per_user: Option<f64>,
    on_limit: Option<String>,
    refresh_prefix: Option<String>,
    max_metadata_bytes: Option<f64>,
    max_claims_bytes: Option<f64>,
    max_attempts: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsKey {
    kid: String,
    alg: Option<String>,
    secret: Option<String>,
    pem: Option<String>,
    jwk: Option<Value>,
}

/// The keys (the first signs) and the policy.
pub(crate) fn parse(config: Value) -> Result<(Vec<KeySpec>, Policy), Error> {
    let c: JsConfig = serde_json::from_value(config).map_err(|e| {
        Error::config(format!("the configuration does not fit: {e}; see the README for its fields"))
    })?;
    let keys = match c.keys {
        Value::Array(list) => list,
        one @ Value::Object(_) => vec![one],
        _ => return Err(Error::config("keys is a key ({ kid, secret | pem | jwk }) or an array of them, the first signing")),
    };
    let keys = keys.into_iter().map(key_spec).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(Error::config("keys is empty; give at least the signing key"));
    }
    let mut p = Policy::default();
    p.claims.issuer = c.issuer;
    p.claims.audience = c.audience.map(OneOrMany::into_vec).unwrap_or_default();
    set_ms(&mut p.claims.leeway_ms, c.leeway, "leeway")?;
    set_count(&mut p.claims.max_token_bytes, c.max_token_bytes, "maxTokenBytes")?;
    set_ms(&mut p.access_ttl_ms, c.access_ttl, "accessTtl")?;
    set_ms(&mut p.idle_ttl_ms, c.idle_ttl, "idleTtl")?;
    set_ms(&mut p.absolute_ttl_ms, c.absolute_ttl, "absoluteTtl")?;
    set_ms(&mut p.refresh_grace_ms, c.refresh_grace, "refreshGrace")?;
    set_ms(&mut p.touch_interval_ms, c.touch_interval, "touchInterval")?;
    set_ms(&mut p.user_cache_ttl_ms, c.user_cache_ttl, "userCacheTtl")?;
    if let Some(n) = c.max_sessions_per_user {
        let mut limit = 0usize;
        set_count(&mut limit, Some(n), "maxSessionsPerUser")?;
        p.max_sessions_per_user = Some(u32::try_from(limit).map_err(|_| Error::config("maxSessionsPerUser is too large"))?);
    }
    p.limit_policy = match c.on_limit.as_deref() {
        None | Some("evict_oldest") => LimitPolicy::EvictOldest,
        Some("refuse") => LimitPolicy::Refuse,
        Some(_) => return Err(Error::config("onLimit is \"evict_oldest\" or \"refuse\"")),
    };
    if let Some(prefix) = c.refresh_prefix {
        p.refresh_prefix = prefix;
    }
    set_count(&mut p.max_metadata_bytes, c.max_metadata_bytes, "maxMetadataBytes")?;
    set_count(&mut p.max_claims_bytes, c.max_claims_bytes, "maxClaimsBytes")?;
    let mut attempts = p.max_attempts as usize;
    set_count(&mut attempts, c.max_attempts, "maxAttempts")?;
    p.max_attempts = u32::try_from(attempts).map_err(|_| Error::config("maxAttempts is too large"))?;
    p.validate()?;
    Ok((keys, p))
}

/// Seconds (a finite, non-negative number) into milliseconds.
fn set_ms(slot: &mut u64, secs: Option<f64>, name: &str) -> Result<(), Error> {
    if let Some(s) = secs {
        if !s.is_finite() || s < 0.0 || s > 1.0e10 {
            return Err(Error::config(format!("{name} is a number of seconds, at least 0")));
        }
        *slot = (s * 1000.0).round() as u64;
    }
    Ok(())
}

fn set_count(slot: &mut usize, n: Option<f64>, name: &str) -> Result<(), Error> {
    if let Some(n) = n {
        if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > u32::MAX as f64 {
            return Err(Error::config(format!("{name} is a whole number")));
        }
        *slot = n as usize;
    }
    Ok(())
}

/// The algorithm a JWK implies: its `alg`, else its key type and curve.
fn jwk_alg(jwk: &Value) -> Option<&'static str> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(alg) = field("alg") {
        return Alg::parse(alg).map(Alg::as_str);
    }
    match (field("kty")?, field("crv")) {
        ("EC", Some("P-256")) => Some("ES256"),
        ("OKP", Some("Ed25519")) => Some("EdDSA"),
        ("RSA", _) => Some("RS256"),
        ("oct", _) => Some("HS256"),
        _ => None,
    }
}

fn key_spec(k: Value) -> Result<KeySpec, Error> {
    let k: JsKey = serde_json::from_value(k).map_err(|e| {
        // serde's text may quote a value, and a key's values are secret: keep only field names.
        let text = e.to_string();
        let why = if text.starts_with("unknown field") || text.starts_with("missing field") { text } else { "kid, alg, secret and pem are strings".into() };
        Error::config(format!("a key does not fit {{ kid, alg?, secret | pem | jwk }}: {why}"))
    })?;
    let named = match (&k.alg, &k.jwk, &k.secret) {
        (Some(a), _, _) => Some(a.as_str()),
        (None, Some(jwk), _) => jwk_alg(jwk),
        (None, None, Some(_)) => Some("HS256"),
        _ => None,
    };
    let alg = named
        .and_then(Alg::parse)
        .ok_or_else(|| Error::config(format!("key {:?}: alg is one of HS256, HS384, HS512, ES256, EdDSA, RS256", k.kid)))?;
    match (k.secret, k.pem, k.jwk) {
        (Some(secret), None, None) => Ok(KeySpec::secret(k.kid, alg, secret.into_bytes())),
        (None, Some(pem), None) => Ok(KeySpec::pem(k.kid, alg, pem)),
        (None, None, Some(jwk)) => Ok(KeySpec::jwk(k.kid, alg, jwk)),
        _ => Err(Error::config(format!("key {:?}: give exactly one of secret, pem or jwk", k.kid))),
    }
}
