//! `SessionManager`: the async Rust API. It supplies the clock and randomness,
//! and drives the core's operations against a store and a crypto driver.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::Instrument;

use crate::core::error::Error;
use crate::core::jwt;
use crate::core::keys::{Alg, KeySet};
use crate::core::ops::{self, SessionInfo, Tokens, Verified, VerifyMode};
use crate::core::policy::{Core, LimitPolicy, Policy};
use crate::core::step::Operation;
use crate::crypto::{CryptoDriver, KeySpec};
use crate::platform::{self, Clock};
use crate::store::{drive, Store};

/// What a manager is built from: keys (the first signs) and the policy.
#[derive(Clone, Debug)]
pub struct Config {
    pub keys: Vec<KeySpec>,
    pub policy: Policy,
}

impl Config {
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { config: Config { keys: Vec::new(), policy: Policy::default() } }
    }
}

/// Builds a [`Config`]. Defaults: access token 15 min, idle 14 days, absolute
/// 30 days, refresh grace 10 s, touch interval 60 s, leeway 30 s, no session limit.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ConfigBuilder {
    /// The key that signs new access tokens (also accepted for verification).
    pub fn signing_key(mut self, spec: KeySpec) -> Self {
        self.config.keys.insert(0, spec);
        self
    }
    /// A key accepted for verification only, e.g. the previous signing key during rotation.
    pub fn verify_key(mut self, spec: KeySpec) -> Self {
        self.config.keys.push(spec);
        self
    }
    /// Shorthand for an HS256 signing key from a secret of at least 32 bytes.
    pub fn hs256_secret(self, kid: &str, secret: impl Into<Vec<u8>>) -> Self {
        self.signing_key(KeySpec::secret(kid, Alg::HS256, secret))
    }
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.config.policy.claims.issuer = Some(iss.into());
        self
    }
    /// Adds an accepted audience; the first one is written into new tokens.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.config.policy.claims.audience.push(aud.into());
        self
    }
    pub fn leeway(mut self, d: Duration) -> Self {
        self.config.policy.claims.leeway_ms = ms(d);
        self
    }
    pub fn max_token_bytes(mut self, n: usize) -> Self {
        self.config.policy.claims.max_token_bytes = n;
        self
    }
    pub fn access_ttl(mut self, d: Duration) -> Self {
        self.config.policy.access_ttl_ms = ms(d);
        self
    }
    pub fn idle_ttl(mut self, d: Duration) -> Self {
        self.config.policy.idle_ttl_ms = ms(d);
        self
    }
    pub fn absolute_ttl(mut self, d: Duration) -> Self {
        self.config.policy.absolute_ttl_ms = ms(d);
        self
    }
    pub fn refresh_grace(mut self, d: Duration) -> Self {
        self.config.policy.refresh_grace_ms = ms(d);
        self
    }
    pub fn touch_interval(mut self, d: Duration) -> Self {
        self.config.policy.touch_interval_ms = ms(d);
        self
    }
    /// At most `n` live sessions per user; `on_limit` says whether to evict the oldest or refuse.
    pub fn max_sessions_per_user(mut self, n: u32, on_limit: LimitPolicy) -> Self {
        self.config.policy.max_sessions_per_user = Some(n);
        self.config.policy.limit_policy = on_limit;
        self
    }
    pub fn refresh_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.policy.refresh_prefix = prefix.into();
        self
    }
    pub fn max_metadata_bytes(mut self, n: usize) -> Self {
        self.config.policy.max_metadata_bytes = n;
        self
    }
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.policy.max_attempts = n;
        self
    }
    pub fn user_cache_ttl(mut self, d: Duration) -> Self {
        self.config.policy.user_cache_ttl_ms = ms(d);
        self
    }
    /// Replaces the whole policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }
    pub fn build(self) -> Result<Config, Error> {
        if self.config.keys.is_empty() {
            return Err(Error::new(
                crate::ErrorCode::ConfigInvalid,
                "no signing key; add one with signing_key() or hs256_secret()",
            ));
        }
        self.config.policy.validate()?;
        Ok(self.config)
    }
}

/// Issues, verifies, refreshes, lists and revokes sessions.
pub struct SessionManager<S> {
    core: Core,
    store: S,
    crypto: Arc<dyn CryptoDriver>,
    clock: Arc<dyn Clock>,
}

impl<S> std::fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").field("keys", &self.core.keys).finish_non_exhaustive()
    }
}

impl<S: Store> SessionManager<S> {
    /// A manager over `store`, with keys loaded by the native crypto driver.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(config: Config, store: S) -> Result<Self, Error> {
        let (keys, crypto) = crate::crypto::native::load_keys(&config.keys)?;
        Ok(Self::from_parts(Core::new(keys, config.policy)?, store, Arc::new(crypto), Arc::new(platform::SystemClock)))
    }

    /// A manager from parts: for other crypto drivers (WebCrypto) and clocks.
    pub fn from_parts(core: Core, store: S, crypto: Arc<dyn CryptoDriver>, clock: Arc<dyn Clock>) -> Self {
        SessionManager { core, store, crypto, clock }
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }
    pub fn core(&self) -> &Core {
        &self.core
    }
    pub fn keys(&self) -> &KeySet {
        &self.core.keys
    }
    /// The JWKS document of the public keys (empty for HMAC-only key sets).
    pub fn jwks(&self) -> Value {
        self.core.keys.jwks()
    }
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn run<O: Operation>(&self, name: &'static str, op: O) -> Result<O::Output, Error> {
        let span = tracing::debug_span!("tollgate", op = name);
        let result = drive(op, &self.store, &*self.crypto).instrument(span).await;
        if let Err(e) = &result {
            tracing::debug!(op = name, code = e.code().as_str(), "operation failed");
        }
        result
    }

    /// Starts a session for `user`. `claims` go into every access token of the
    /// session (not the reserved names); `metadata` is stored with it.
    pub async fn issue(&self, user: &str, claims: Map<String, Value>, metadata: Value) -> Result<Tokens, Error> {
        let op = ops::Issue::new(&self.core, user, claims, metadata, self.now(), platform::entropy()?);
        self.run("issue", op).await
    }

    /// Verifies an access token. `Strict` also reads the session.
    pub async fn verify(&self, access_token: &str, mode: VerifyMode) -> Result<Verified, Error> {
        let now = self.now();
        if mode == VerifyMode::Stateless {
            // The HMAC fast path: one pass, no allocation of the operation.
            if let Some(r) = jwt::verify_hmac(access_token, &self.core.keys, &self.core.policy.claims, now) {
                return r.map(|claims| Verified { claims, session: None });
            }
        }
        self.run("verify", ops::Verify::new(&self.core, access_token, mode, now)).await
    }

    /// Rotates a refresh token into a new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let op = ops::Refresh::new(&self.core, refresh_token, self.now(), platform::entropy()?);
        self.run("refresh", op).await
    }

    /// Revokes one session. Revoking a revoked session succeeds.
    pub async fn revoke(&self, user: &str, sid: &str) -> Result<(), Error> {
        self.run("revoke", ops::Revoke::new(&self.core, user, sid, self.now())).await
    }

    /// Revokes all of a user's sessions except `keep`; answers how many.
    pub async fn revoke_all(&self, user: &str, keep: Option<&str>) -> Result<usize, Error> {
        self.run("revoke_all", ops::RevokeAll::new(&self.core, user, keep, self.now())).await
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        self.run("list", ops::ListSessions::new(user, self.now())).await
    }

    /// Replaces a live session's metadata.
    pub async fn update_metadata(&self, user: &str, sid: &str, metadata: Value) -> Result<SessionInfo, Error> {
        self.run("update_metadata", ops::UpdateMetadata::new(&self.core, user, sid, metadata, self.now())).await
    }

    /// The user's cached info, loaded with `loader` (and cached) on a miss.
    pub async fn user_info<F, Fut>(&self, user: &str, loader: F) -> Result<Value, Error>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        if let Some(info) = self.cached_user_info(user).await? {
            return Ok(info);
        }
        let info = loader(user.to_owned()).await?;
        self.put_user_info(user, info.clone()).await?;
        Ok(info)
    }

    /// The cached info, if present and fresh; never calls a loader.
    pub async fn cached_user_info(&self, user: &str) -> Result<Option<Value>, Error> {
        self.run("user_cache_get", ops::CacheGet::new(user, self.now())).await
    }

    /// Caches `info` for the configured user-cache lifetime.
    pub async fn put_user_info(&self, user: &str, info: Value) -> Result<(), Error> {
        self.run("user_cache_put", ops::CachePut::new(&self.core, user, info, None, self.now())).await
    }

    /// Reloads and caches the info of each user; answers how many were refreshed.
    /// A loader error stops the batch and is returned.
    pub async fn refresh_user_info<F, Fut>(&self, users: &[&str], loader: F) -> Result<usize, Error>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        for user in users {
            let info = loader((*user).to_owned()).await?;
            self.put_user_info(user, info).await?;
        }
        Ok(users.len())
    }

    pub async fn delete_user_info(&self, user: &str) -> Result<(), Error> {
        self.run("user_cache_delete", ops::CacheDelete::new(user)).await
    }
}
