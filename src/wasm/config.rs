//! The JS configuration object, read as JSON and checked field by field.
//! Durations are seconds (numbers, fractions allowed); timestamps in results are unix ms.

use serde_json::{Map, Value};

use crate::crypto::KeySpec;
use crate::engine::error::Error;
use crate::engine::keys::Alg;
use crate::engine::policy::{LimitPolicy, Policy};

/// The fields of the configuration object (besides `store`, taken out before).
const FIELDS: &[&str] = &[
    "keys",
    "issuer",
    "audience",
    "leeway",
    "maxTokenBytes",
    "accessTtl",
    "idleTtl",
    "absoluteTtl",
    "refreshGrace",
    "touchInterval",
    "userCacheTtl",
    "maxSessionsPerUser",
    "onLimit",
    "refreshPrefix",
    "maxMetadataBytes",
    "maxClaimsBytes",
    "maxAttempts",
];

/// JSON turns NaN and Infinity into null (which reads as "not given"): refuse them
/// before the configuration goes through JSON.
pub(crate) fn refuse_non_finite(config: &wasm_bindgen::JsValue) -> Result<(), Error> {
    for name in FIELDS {
        let v = js_sys::Reflect::get(config, &wasm_bindgen::JsValue::from_str(name)).unwrap_or(wasm_bindgen::JsValue::UNDEFINED);
        if v.as_f64().is_some_and(|n| !n.is_finite()) {
            return Err(Error::config(format!("{name} must be a finite number")));
        }
    }
    Ok(())
}

/// Read by hand rather than with a serde derive: the derive was the largest
/// function of the module, and this way no message can quote a value.
struct Fields(Map<String, Value>);

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
    fn string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::config(format!("{name} is a string"))),
        }
    }
    fn strings(&self, name: &str) -> Result<Vec<String>, Error> {
        let bad = || Error::config(format!("{name} is a string or an array of strings"));
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(list)) => list.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(bad)).collect(),
            Some(_) => Err(bad()),
        }
    }
    fn number(&self, name: &str) -> Result<Option<f64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| Error::config(format!("{name} is a number"))),
        }
    }
}

/// The keys (the first signs) and the policy.
pub(crate) fn parse(config: Value) -> Result<(Vec<KeySpec>, Policy), Error> {
    let Value::Object(map) = config else {
        return Err(Error::config("the configuration is an object"));
    };
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Error::config(format!("the configuration has no field {k:?}; see the README for its fields")));
    }
    let c = Fields(map);
    let keys = match c.get("keys") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(Error::config("keys is a key ({ kid, secret | pem | jwk }) or an array of them, the first signing")),
    };
    let keys = keys.into_iter().map(key_spec).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(Error::config("keys is empty; give at least the signing key"));
    }
    let mut p = Policy::default();
    p.claims.issuer = c.string("issuer")?;
    p.claims.audience = c.strings("audience")?;
    set_ms(&mut p.claims.leeway_ms, c.number("leeway")?, "leeway")?;
    set_count(&mut p.claims.max_token_bytes, c.number("maxTokenBytes")?, "maxTokenBytes")?;
    set_ms(&mut p.access_ttl_ms, c.number("accessTtl")?, "accessTtl")?;
    set_ms(&mut p.idle_ttl_ms, c.number("idleTtl")?, "idleTtl")?;
    set_ms(&mut p.absolute_ttl_ms, c.number("absoluteTtl")?, "absoluteTtl")?;
    set_ms(&mut p.refresh_grace_ms, c.number("refreshGrace")?, "refreshGrace")?;
    set_ms(&mut p.touch_interval_ms, c.number("touchInterval")?, "touchInterval")?;
    set_ms(&mut p.user_cache_ttl_ms, c.number("userCacheTtl")?, "userCacheTtl")?;
    if let Some(n) = c.number("maxSessionsPerUser")? {
        let mut limit = 0usize;
        set_count(&mut limit, Some(n), "maxSessionsPerUser")?;
        p.max_sessions_per_user = Some(u32::try_from(limit).map_err(|_| Error::config("maxSessionsPerUser is too large"))?);
    }
    p.limit_policy = match c.string("onLimit")?.as_deref() {
        None | Some("evict_oldest") => LimitPolicy::EvictOldest,
        Some("refuse") => LimitPolicy::Refuse,
        Some(_) => return Err(Error::config("onLimit is \"evict_oldest\" or \"refuse\"")),
    };
    if let Some(prefix) = c.string("refreshPrefix")? {
        p.refresh_prefix = prefix;
    }
    set_count(&mut p.max_metadata_bytes, c.number("maxMetadataBytes")?, "maxMetadataBytes")?;
    set_count(&mut p.max_claims_bytes, c.number("maxClaimsBytes")?, "maxClaimsBytes")?;
    let mut attempts = p.max_attempts as usize;
    set_count(&mut attempts, c.number("maxAttempts")?, "maxAttempts")?;
    p.max_attempts = u32::try_from(attempts).map_err(|_| Error::config("maxAttempts is too large"))?;
    p.validate()?;
    Ok((keys, p))
}

/// Seconds (a finite, non-negative number) into milliseconds.
fn set_ms(slot: &mut u64, secs: Option<f64>, name: &str) -> Result<(), Error> {
    if let Some(s) = secs {
        if !(0.0..=1.0e10).contains(&s) {
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
    let Value::Object(map) = k else {
        return Err(Error::config("a key is an object { kid, alg?, secret | pem | jwk }"));
    };
    if let Some(f) = map.keys().find(|f| !matches!(f.as_str(), "kid" | "alg" | "secret" | "pem" | "jwk")) {
        return Err(Error::config(format!("a key has no field {f:?}; it is {{ kid, alg?, secret | pem | jwk }}")));
    }
    let k = Fields(map);
    let kid = k.string("kid")?.ok_or_else(|| Error::config("a key needs a kid (string)"))?;
    let (secret, pem) = (k.string("secret")?, k.string("pem")?);
    let jwk = k.get("jwk").cloned();
    let named = match (k.string("alg")?, &jwk, &secret) {
        (Some(a), _, _) => Alg::parse(&a),
        (None, Some(jwk), _) => jwk_alg(jwk).and_then(Alg::parse),
        (None, None, Some(_)) => Some(Alg::HS256),
        _ => None,
    };
    let alg = named.ok_or_else(|| Error::config(format!("key {kid:?}: alg is one of HS256, HS384, HS512, ES256, EdDSA, RS256")))?;
    match (secret, pem, jwk) {
        (Some(secret), None, None) => Ok(KeySpec::secret(kid, alg, secret.into_bytes())),
        (None, Some(pem), None) => Ok(KeySpec::pem(kid, alg, pem)),
        (None, None, Some(jwk)) => Ok(KeySpec::jwk(kid, alg, jwk)),
        _ => Err(Error::config(format!("key {kid:?}: give exactly one of secret, pem or jwk"))),
    }
}
