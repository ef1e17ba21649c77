//! The Worker's configuration: its vars, secrets and bindings, read by the one
//! settings reader ([`crate::settings`]). The README's settings table lists
//! every name; secrets go in with `wrangler secret put NAME` (`.dev.vars`
//! locally), the rest in `[vars]`. Unknown `TOLLGATE_*` names and malformed
//! values are refused naming the variable, never showing its value.

use crate::crypto::{KeyError, KeyMaterial, KeySpec};
use crate::engine::error::Error;
use crate::engine::keys::{Key, KeySet};
use crate::settings::{Config, Settings, Source, StoreSetting, Surface};

/// The KV namespace binding (`TOLLGATE_STORE = "kv"`).
pub const KV_BINDING: &str = "TOLLGATE_KV";
/// The Durable Object namespace binding (`TOLLGATE_STORE = "durable"`), class [`UserSessions`](super::UserSessions).
pub const DO_BINDING: &str = "TOLLGATE_USERS";

/// Everything the Worker reads from its environment. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub settings: Settings,
    pub config: Config,
}

impl WorkerConfig {
    /// Reads the Worker's settings from its environment.
    pub fn read(source: &Source) -> Result<WorkerConfig, Error> {
        let settings = Settings::read(source, Surface::Worker)?;
        let config = settings.config()?;
        Ok(WorkerConfig { settings, config })
    }

    pub fn store(&self) -> &StoreSetting {
        &self.settings.store
    }

    pub fn api_keys(&self) -> Vec<&str> {
        self.settings.api_keys.0.iter().map(String::as_str).collect()
    }

    /// Whether every key is HMAC, so no crypto driver is ever asked anything.
    pub fn hmac_only(&self) -> bool {
        self.config.keys.iter().all(|k| k.alg.is_hmac())
    }

    /// The key set of an HMAC-only configuration (the first key signs).
    pub fn hmac_key_set(&self) -> Result<KeySet, Error> {
        let load = |spec: &KeySpec| match &spec.material {
            KeyMaterial::Secret(s) => Key::hmac(spec.kid.clone(), spec.alg, s),
            KeyMaterial::Jwk(jwk) => Key::from_oct_jwk(spec.kid.clone(), spec.alg, jwk),
            KeyMaterial::Pem(_) => Err(Error::config("an HMAC key is a secret or an oct JWK, not a PEM")),
        };
        let refused = |e: KeyError| self.key_refused(e);
        let (first, rest) = self.config.keys.split_first().ok_or_else(|| refused(KeyError::at(0)(Error::config("no signing key"))))?;
        let mut set = KeySet::new(load(first).map_err(KeyError::at(0)).map_err(refused)?);
        for (i, spec) in (1..).zip(rest) {
            let key = load(spec).map_err(KeyError::at(i)).map_err(refused)?;
            set = set.with_verify_key(key).map_err(KeyError::at(i)).map_err(refused)?;
        }
        Ok(set)
    }

    /// A key that failed to load, named by its variable.
    pub fn key_refused(&self, e: KeyError) -> Error {
        self.settings.key_refused(&self.config, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::keys::Alg;
    use crate::engine::ops::VerifyMode;
    use crate::engine::policy::LimitPolicy;
    use crate::settings::{setting, Raw};
    use serde_json::json;

    const SECRET: &str = "worker-test-secret-of-at-least-32-bytes";
    const API_KEY: &str = "a-service-key-0123456789";
    const REFRESH: (&str, &str) = ("TOLLGATE_REFRESH_SECRET", "worker-test-refresh-secret-of-32-bytes");

    fn env(pairs: &[(&str, &str)]) -> Source {
        Source::env(pairs.iter().map(|(k, v)| (k.to_string(), Raw::Text(v.to_string()))))
    }

    fn read(pairs: &[(&str, &str)]) -> Result<WorkerConfig, Error> {
        WorkerConfig::read(&env(pairs))
    }

    #[test]
    fn the_binding_names_are_the_tables() {
        assert_eq!(setting("kv").unwrap().env, KV_BINDING);
        assert_eq!(setting("users").unwrap().env, DO_BINDING);
        assert_eq!(setting("db").unwrap().env, crate::store::d1::D1_BINDING);
    }

    #[test]
    fn minimal_configuration_defaults_to_durable_objects_hs256_and_strict_verify() {
        let c = read(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "a-service-key-0123456789, ")]).unwrap();
        assert_eq!(c.store(), &StoreSetting::DurableObjects);
        assert_eq!((c.config.keys[0].alg, c.config.keys[0].kid.as_str()), (Alg::HS256, "k1"));
        assert_eq!(c.api_keys(), vec![API_KEY]);
        assert_eq!(c.config.policy.verify_mode, VerifyMode::Strict);
        assert!(c.hmac_only());
        assert_eq!(c.hmac_key_set().unwrap().signing_key().kid(), "k1");
    }

    #[test]
    fn every_knob_is_read_and_bindings_are_known() {
        let verify_keys = json!([
            { "kid": "k0", "alg": "HS256", "secret": "an-older-secret-of-at-least-32-bytes" },
            { "kid": "k-1", "secret": "the-oldest-secret-of-at-least-32-bytes" },
        ])
        .to_string();
        let vars = [
            ("TOLLGATE_SECRET", SECRET),
            ("TOLLGATE_API_KEYS", API_KEY),
            ("TOLLGATE_STORE", "kv"),
            ("TOLLGATE_ISSUER", "https://auth.example"),
            ("TOLLGATE_AUDIENCE", "api, web"),
            ("TOLLGATE_ACCESS_TTL", "60"),
            ("TOLLGATE_IDLE_TTL", "1h"),
            ("TOLLGATE_ABSOLUTE_TTL", "2h"),
            ("TOLLGATE_REFRESH_GRACE", "1s"),
            ("TOLLGATE_MAX_SESSIONS_PER_USER", "3"),
            ("TOLLGATE_ON_LIMIT", "refuse"),
            ("TOLLGATE_VERIFY_MODE", "stateless"),
            ("TOLLGATE_VERIFY_KEYS", &verify_keys),
        ];
        let mut source = env(&vars);
        for binding in [KV_BINDING, DO_BINDING] {
            source = source.with(binding, Raw::Binding);
        }
        let c = WorkerConfig::read(&source).unwrap();
        let p = &c.config.policy;
        assert_eq!(c.store(), &StoreSetting::WorkersKv);
        assert_eq!(p.claims.audience, vec!["api", "web"]);
        assert_eq!((p.access_ttl_ms, p.idle_ttl_ms, p.refresh_grace_ms), (60_000, 3_600_000, 1000));
        assert_eq!((p.max_sessions_per_user, p.limit_policy, p.verify_mode), (3, LimitPolicy::Refuse, VerifyMode::Stateless));
        assert_eq!(c.hmac_key_set().unwrap().keys().len(), 3);
    }

    #[test]
    fn asymmetric_keys_come_from_a_pem_or_jwk() {
        let pem = include_str!("../../tests/keys/es256.pem");
        let c = read(&[("TOLLGATE_SIGNING_KEY", pem), ("TOLLGATE_ALG", "ES256"), ("TOLLGATE_API_KEYS", API_KEY), REFRESH]).unwrap();
        assert!(matches!(c.config.keys[0].material, KeyMaterial::Pem(_)));
        assert!(!c.hmac_only());
        let c = read(&[("TOLLGATE_SIGNING_KEY", pem), ("TOLLGATE_API_KEYS", API_KEY), REFRESH]).unwrap();
        assert_eq!(c.config.keys[0].alg, Alg::ES256, "ES256 by default with a signing key");
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"x","d":"d"}"#;
        let c = read(&[("TOLLGATE_SIGNING_KEY", jwk), ("TOLLGATE_API_KEYS", API_KEY), REFRESH]).unwrap();
        assert!(matches!(c.config.keys[0].material, KeyMaterial::Jwk(_)));
        assert_eq!(c.config.keys[0].alg, Alg::EdDSA, "a JWK's own algorithm by default");
    }

    #[test]
    fn errors_name_the_variable_and_never_the_value() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("TOLLGATE_API_KEYS", API_KEY)], "TOLLGATE_SECRET"),
            (&[("TOLLGATE_SECRET", SECRET)], "TOLLGATE_API_KEYS"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", "short")], "TOLLGATE_API_KEYS"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_STORE", "redis://h:1")], "TOLLGATE_STORE"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_STORE", "memory")], "TOLLGATE_STORE"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_ALG", "ES256")], "TOLLGATE_ALG"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_ACCESS_TTL", "soon")], "TOLLGATE_ACCESS_TTL"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_VERIFY_KEYS", SECRET)], "TOLLGATE_VERIFY_KEYS"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_ON_LIMIT", "evict")], "TOLLGATE_ON_LIMIT"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_ACCESS_TTL_S", "60")], "TOLLGATE_ACCESS_TTL"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_LISTEN", "127.0.0.1:1")], "TOLLGATE_LISTEN"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_SECRT", SECRET)], "TOLLGATE_SECRT"),
            (&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), (KV_BINDING, "a-string")], KV_BINDING),
            (&[("TOLLGATE_SIGNING_KEY", SECRET), ("TOLLGATE_ALG", "EdDSA"), ("TOLLGATE_API_KEYS", API_KEY)], "TOLLGATE_SIGNING_KEY"),
        ];
        for (pairs, name) in cases {
            let e = read(pairs).unwrap_err();
            assert_eq!(e.code().as_str(), "config_invalid");
            assert!(e.message().contains(name), "{e} should name {name}");
            assert!(!e.message().contains(SECRET) && !e.message().contains("redis://h"), "{e}");
        }
        let c = read(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY)]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(SECRET) && !shown.contains(API_KEY), "{shown}");
    }

    #[test]
    fn a_key_that_does_not_load_is_named_by_its_variable() {
        let bad_oct = json!([{ "kid": "old", "alg": "HS256", "jwk": { "kty": "oct", "k": "!!" } }]).to_string();
        let c = read(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_VERIFY_KEYS", &bad_oct)]).unwrap();
        let e = c.hmac_key_set().unwrap_err();
        assert!(e.message().starts_with("TOLLGATE_VERIFY_KEYS key #1"), "{e}");
    }
}
