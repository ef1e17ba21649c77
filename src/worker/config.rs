//! The Worker's configuration, read from its vars and secrets.
//!
//! Secrets (`wrangler secret put NAME`; `.dev.vars` locally):
//!
//! | name | meaning |
//! |---|---|
//! | `TOLLGATE_SECRET` | HMAC signing secret, at least 32 bytes (48 for HS384, 64 for HS512); `tollgate keygen` makes one |
//! | `TOLLGATE_SIGNING_KEY` | instead of a secret: a PKCS#8 PEM or a private JWK, for `TOLLGATE_ALG` ES256 (the default then), EdDSA or RS256; `TOLLGATE_SIGNING_PEM` (as `tollgate serve` names it) works too |
//! | `TOLLGATE_API_KEYS` | comma-separated API keys of the calling services, 16 characters or more each |
//! | `TOLLGATE_VERIFY_KEYS` | optional: keys accepted for verification only (rotation), a JSON array of `{"kid","alg","secret"\|"pem"\|"jwk"}` |
//!
//! Vars (`[vars]` in wrangler.toml; strings or numbers):
//!
//! | name | default |
//! |---|---|
//! | `TOLLGATE_STORE` | `durable` (or `kv`, or `d1`) |
//! | `TOLLGATE_ALG` | `HS256` with a secret, `ES256` with a signing key |
//! | `TOLLGATE_KID` | `k1` |
//! | `TOLLGATE_ISSUER`, `TOLLGATE_AUDIENCE` (comma-separated, the first is written) | none |
//! | `TOLLGATE_ACCESS_TTL_S`, `TOLLGATE_IDLE_TTL_S`, `TOLLGATE_ABSOLUTE_TTL_S` | 900, 14 days, 30 days |
//! | `TOLLGATE_REFRESH_GRACE_MS` | 10000 |
//! | `TOLLGATE_TOUCH_INTERVAL_S`, `TOLLGATE_LEEWAY_S` | 60, 30 |
//! | `TOLLGATE_MAX_SESSIONS` (per user), `TOLLGATE_ON_LIMIT` (`evict` or `refuse`) | no limit, `evict` |
//! | `TOLLGATE_REFRESH_PREFIX` | `tgr` |
//!
//! Errors name the variable, never its value.

use serde_json::Value;

use crate::crypto::{KeyMaterial, KeySpec};
use crate::engine::error::Error;
use crate::engine::keys::{Alg, Key, KeySet};
use crate::engine::policy::{LimitPolicy, Policy};

/// The KV namespace binding (`TOLLGATE_STORE = "kv"`).
pub const KV_BINDING: &str = "TOLLGATE_KV";
/// The Durable Object namespace binding (`TOLLGATE_STORE = "durable"`), class [`UserSessions`](super::UserSessions).
pub const DO_BINDING: &str = "TOLLGATE_USERS";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Workers KV: not atomic, eventually consistent.
    Kv,
    /// One Durable Object per user: atomic and consistent.
    Durable,
    /// A D1 database (binding [`crate::store::d1::D1_BINDING`]): atomic and consistent.
    D1,
}

/// Everything the Worker reads from its environment. `Debug` shows no secret.
#[derive(Clone)]
pub struct WorkerConfig {
    pub keys: Vec<KeySpec>,
    pub policy: Policy,
    pub api_keys: Vec<String>,
    pub store: StoreKind,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .field("api_keys", &format_args!("<{} redacted>", self.api_keys.len()))
            .field("store", &self.store)
            .finish()
    }
}

fn bad(name: &str, what: &str) -> Error {
    Error::new(crate::ErrorCode::ConfigInvalid, format!("the Worker's {name} {what}"))
}

fn number(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>, Error> {
    match get(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| bad(name, "must be a whole number")),
    }
}

fn alg(name: &str, text: &str) -> Result<Alg, Error> {
    Alg::parse(text.trim()).ok_or_else(|| bad(name, "must be HS256, HS384, HS512, ES256, EdDSA or RS256"))
}

/// Key material from text: a PEM, a JWK (JSON object), or else raw secret bytes for HMAC.
fn material(name: &str, alg: Alg, text: &str) -> Result<KeyMaterial, Error> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        Ok(KeyMaterial::Pem(t.to_owned()))
    } else if t.starts_with('{') {
        serde_json::from_str::<Value>(t).map(KeyMaterial::Jwk).map_err(|_| bad(name, "is not valid JSON (a JWK)"))
    } else if alg.is_hmac() {
        Ok(KeyMaterial::Secret(text.as_bytes().to_vec()))
    } else {
        Err(bad(name, "must be a PKCS#8 PEM or a JWK for an asymmetric algorithm"))
    }
}

fn verify_keys(text: &str) -> Result<Vec<KeySpec>, Error> {
    const NAME: &str = "TOLLGATE_VERIFY_KEYS";
    let shape = || bad(NAME, r#"must be a JSON array of {"kid", "alg", and one of "secret", "pem", "jwk"}"#);
    let list: Vec<Value> = serde_json::from_str(text).map_err(|_| shape())?;
    list.iter()
        .map(|k| {
            let field = |f: &str| k.get(f).and_then(Value::as_str);
            let kid = field("kid").ok_or_else(shape)?;
            let alg = alg(NAME, field("alg").ok_or_else(shape)?)?;
            let material = match (field("secret"), field("pem"), k.get("jwk")) {
                (Some(s), None, None) if alg.is_hmac() => KeyMaterial::Secret(s.as_bytes().to_vec()),
                (None, Some(p), None) => KeyMaterial::Pem(p.to_owned()),
                (None, None, Some(j)) => KeyMaterial::Jwk(j.clone()),
                _ => return Err(shape()),
            };
            Ok(KeySpec { kid: kid.to_owned(), alg, material })
        })
        .collect()
}

impl WorkerConfig {
    /// Reads the configuration through `get` (a var or secret by name; `None` when unset or empty).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<WorkerConfig, Error> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        // TOLLGATE_SIGNING_PEM is what `tollgate serve` reads; accepted here too.
        let signing_key = get("TOLLGATE_SIGNING_KEY").or_else(|| get("TOLLGATE_SIGNING_PEM"));
        let alg = match get("TOLLGATE_ALG") {
            Some(a) => alg("TOLLGATE_ALG", &a)?,
            None if signing_key.is_some() => Alg::ES256,
            None => Alg::HS256,
        };
        let kid = get("TOLLGATE_KID").unwrap_or_else(|| "k1".into());
        let signing = match (get("TOLLGATE_SECRET"), signing_key) {
            (Some(secret), None) if alg.is_hmac() => KeySpec::secret(kid, alg, secret.into_bytes()),
            (Some(_), None) => return Err(bad("TOLLGATE_SECRET", "is for HS256/384/512; give TOLLGATE_SIGNING_KEY for TOLLGATE_ALG")),
            (None, Some(key)) => KeySpec { kid, alg, material: material("TOLLGATE_SIGNING_KEY", alg, &key)? },
            (Some(_), Some(_)) => return Err(bad("TOLLGATE_SECRET and TOLLGATE_SIGNING_KEY", "are both set; keep one")),
            (None, None) => {
                return Err(bad("TOLLGATE_SECRET", "is not set; `wrangler secret put TOLLGATE_SECRET` (see `tollgate keygen`)"))
            }
        };
        let mut keys = vec![signing];
        if let Some(v) = get("TOLLGATE_VERIFY_KEYS") {
            keys.extend(verify_keys(&v)?);
        }

        let api_keys: Vec<String> = get("TOLLGATE_API_KEYS")
            .ok_or_else(|| bad("TOLLGATE_API_KEYS", "is not set; `wrangler secret put TOLLGATE_API_KEYS`"))?
            .split(',')
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect();

        let store = match get("TOLLGATE_STORE").as_deref().map(str::trim) {
            None | Some("durable") => StoreKind::Durable,
            Some("kv") => StoreKind::Kv,
            Some("d1") => StoreKind::D1,
            Some(_) => return Err(bad("TOLLGATE_STORE", "must be \"durable\", \"kv\" or \"d1\"")),
        };

        let mut policy = Policy::default();
        policy.claims.issuer = get("TOLLGATE_ISSUER");
        if let Some(aud) = get("TOLLGATE_AUDIENCE") {
            policy.claims.audience = aud.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
        }
        let secs = |name: &str| number(&get, name).map(|n| n.map(|s| s.saturating_mul(1000)));
        if let Some(ms) = secs("TOLLGATE_ACCESS_TTL_S")? {
            policy.access_ttl_ms = ms;
        }
        if let Some(ms) = secs("TOLLGATE_IDLE_TTL_S")? {
            policy.idle_ttl_ms = ms;
        }
        if let Some(ms) = secs("TOLLGATE_ABSOLUTE_TTL_S")? {
            policy.absolute_ttl_ms = ms;
        }
        if let Some(ms) = secs("TOLLGATE_TOUCH_INTERVAL_S")? {
            policy.touch_interval_ms = ms;
        }
        if let Some(ms) = secs("TOLLGATE_LEEWAY_S")? {
            policy.claims.leeway_ms = ms;
        }
        if let Some(ms) = number(&get, "TOLLGATE_REFRESH_GRACE_MS")? {
            policy.refresh_grace_ms = ms;
        }
        if let Some(n) = number(&get, "TOLLGATE_MAX_SESSIONS")? {
            policy.max_sessions_per_user = Some(u32::try_from(n).map_err(|_| bad("TOLLGATE_MAX_SESSIONS", "is too large"))?);
        }
        policy.limit_policy = match get("TOLLGATE_ON_LIMIT").as_deref().map(str::trim) {
            None | Some("evict") => LimitPolicy::EvictOldest,
            Some("refuse") => LimitPolicy::Refuse,
            Some(_) => return Err(bad("TOLLGATE_ON_LIMIT", "must be \"evict\" or \"refuse\"")),
        };
        if let Some(p) = get("TOLLGATE_REFRESH_PREFIX") {
            policy.refresh_prefix = p.trim().to_owned();
        }
        policy.validate()?;
        Ok(WorkerConfig { keys, policy, api_keys, store })
    }

    /// Whether every key is HMAC, so no crypto driver is ever asked anything.
    pub fn hmac_only(&self) -> bool {
        self.keys.iter().all(|k| k.alg.is_hmac())
    }

    /// The key set of an HMAC-only configuration (the first key signs).
    pub fn hmac_key_set(&self) -> Result<KeySet, Error> {
        let load = |spec: &KeySpec| match &spec.material {
            KeyMaterial::Secret(s) => Key::hmac(spec.kid.clone(), spec.alg, s),
            KeyMaterial::Jwk(jwk) => Key::from_oct_jwk(spec.kid.clone(), spec.alg, jwk),
            KeyMaterial::Pem(_) => Err(bad("key", "for HMAC must be a secret or an oct JWK, not a PEM")),
        };
        let (first, rest) = self.keys.split_first().ok_or_else(|| bad("key set", "is empty"))?;
        let mut set = KeySet::new(load(first)?);
        for spec in rest {
            set = set.with_verify_key(load(spec)?)?;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "worker-test-secret-of-at-least-32-bytes";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn minimal_configuration_defaults_to_durable_objects_and_hs256() {
        let c = WorkerConfig::from_env(env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "a-service-key-0123456789, ")])).unwrap();
        assert_eq!(c.store, StoreKind::Durable);
        assert_eq!((c.keys[0].alg, c.keys[0].kid.as_str()), (Alg::HS256, "k1"));
        assert_eq!(c.api_keys, vec!["a-service-key-0123456789"]);
        assert!(c.hmac_only());
        assert_eq!(c.hmac_key_set().unwrap().signing_key().kid(), "k1");
    }

    #[test]
    fn every_knob_is_read() {
        let c = WorkerConfig::from_env(env(&[
            ("TOLLGATE_SECRET", SECRET),
            ("TOLLGATE_API_KEYS", "k"),
            ("TOLLGATE_STORE", "kv"),
            ("TOLLGATE_ISSUER", "https://auth.example"),
            ("TOLLGATE_AUDIENCE", "api, web"),
            ("TOLLGATE_ACCESS_TTL_S", "60"),
            ("TOLLGATE_IDLE_TTL_S", "3600"),
            ("TOLLGATE_ABSOLUTE_TTL_S", "7200"),
            ("TOLLGATE_REFRESH_GRACE_MS", "1000"),
            ("TOLLGATE_MAX_SESSIONS", "3"),
            ("TOLLGATE_ON_LIMIT", "refuse"),
            ("TOLLGATE_VERIFY_KEYS", r#"[{"kid":"k0","alg":"HS256","secret":"an-older-secret-of-at-least-32-bytes"}]"#),
        ]))
        .unwrap();
        assert_eq!(c.store, StoreKind::Kv);
        assert_eq!(c.policy.claims.audience, vec!["api", "web"]);
        assert_eq!((c.policy.access_ttl_ms, c.policy.refresh_grace_ms), (60_000, 1000));
        assert_eq!((c.policy.max_sessions_per_user, c.policy.limit_policy), (Some(3), LimitPolicy::Refuse));
        assert_eq!(c.hmac_key_set().unwrap().keys().len(), 2);
    }

    #[test]
    fn d1_is_named_by_its_store_kind() {
        let c = WorkerConfig::from_env(env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "k"), ("TOLLGATE_STORE", "d1")])).unwrap();
        assert_eq!(c.store, StoreKind::D1);
    }

    #[test]
    fn asymmetric_keys_come_from_a_pem_or_jwk() {
        let pem = include_str!("../../tests/keys/es256.pem");
        let c =
            WorkerConfig::from_env(env(&[("TOLLGATE_SIGNING_KEY", pem), ("TOLLGATE_ALG", "ES256"), ("TOLLGATE_API_KEYS", "k")])).unwrap();
        assert!(matches!(c.keys[0].material, KeyMaterial::Pem(_)));
        assert!(!c.hmac_only());
        let c = WorkerConfig::from_env(env(&[("TOLLGATE_SIGNING_PEM", pem), ("TOLLGATE_API_KEYS", "k")])).unwrap();
        assert_eq!(c.keys[0].alg, Alg::ES256, "ES256 by default with a signing key, as `tollgate serve`");
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"x","d":"d"}"#;
        let c =
            WorkerConfig::from_env(env(&[("TOLLGATE_SIGNING_KEY", jwk), ("TOLLGATE_ALG", "EdDSA"), ("TOLLGATE_API_KEYS", "k")])).unwrap();
        assert!(matches!(c.keys[0].material, KeyMaterial::Jwk(_)));
    }

    #[test]
    fn errors_name_the_variable_and_never_the_value() {
        let cases: &[&[(&str, &str)]] = &[
            &[("TOLLGATE_API_KEYS", "k")],
            &[("TOLLGATE_SECRET", SECRET)],
            &[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "k"), ("TOLLGATE_STORE", "redis")],
            &[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "k"), ("TOLLGATE_ALG", "ES256")],
            &[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "k"), ("TOLLGATE_ACCESS_TTL_S", "soon")],
            &[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "k"), ("TOLLGATE_VERIFY_KEYS", SECRET)],
            &[("TOLLGATE_SIGNING_KEY", SECRET), ("TOLLGATE_ALG", "EdDSA"), ("TOLLGATE_API_KEYS", "k")],
        ];
        for pairs in cases {
            let e = WorkerConfig::from_env(env(pairs)).unwrap_err();
            assert_eq!(e.code().as_str(), "config_invalid");
            assert!(e.message().contains("TOLLGATE_"), "{e}");
            assert!(!e.message().contains(SECRET), "{e}");
        }
        let c = WorkerConfig::from_env(env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "a-service-key-0123456789")])).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(SECRET) && !shown.contains("a-service-key"), "{shown}");
    }
}
