//! `SessionManager`: the async Rust API. It supplies the clock and randomness,
//! and drives the core's operations against a store and a crypto driver.

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::Instrument;

use crate::crypto::CryptoDriver;
use crate::engine::audit::AuditEvent;
use crate::engine::client::ClientInfo;
use crate::engine::error::Error;
use crate::engine::jwt;
use crate::engine::keys::KeySet;
use crate::engine::ops::{self, ListedSession, SessionInfo, Tokens, Verified, VerifyMode};
use crate::engine::policy::Rules;
use crate::engine::step::Operation;
use crate::metrics::{Metrics, SecurityEvent};
use crate::platform::{self, Clock, Stopwatch};
pub use crate::settings::{Config, ConfigBuilder};
use crate::store::recent::RecentValues;
use crate::store::{drive_recalling, DriveCounts, Store};

/// A function handed each audit event (see [`SessionManager::with_audit`]).
#[cfg(not(target_arch = "wasm32"))]
pub type AuditHook = Arc<dyn Fn(&AuditEvent) + Send + Sync>;
/// A function handed each audit event (in WebAssembly, perhaps a JS function).
#[cfg(target_arch = "wasm32")]
pub type AuditHook = Arc<dyn Fn(&AuditEvent)>;

/// Issues, verifies, refreshes, lists and revokes sessions.
pub struct SessionManager<S> {
    rules: Rules,
    store: S,
    crypto: Arc<dyn CryptoDriver>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    audit: Option<AuditHook>,
    /// The records this manager committed lately, for refreshes that skip their read
    /// (`recent_writes` keys; `None` when it is 0). See [`crate::store::recent`].
    recent: Option<RecentValues>,
}

impl<S> std::fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").field("keys", &self.rules.keys).finish_non_exhaustive()
    }
}

impl<S: Store> SessionManager<S> {
    /// A manager over `store`, with keys loaded by the native crypto driver.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(config: Config, store: S) -> Result<Self, Error> {
        let (keys, crypto) = crate::crypto::native::load_keys(&config.keys)?;
        let clock = Arc::new(crate::platform::SystemClock);
        Ok(Self::from_parts(Rules::new(keys, config.policy)?, store, Arc::new(crypto), clock))
    }

    /// A manager from parts: for other crypto drivers (WebCrypto) and clocks.
    /// The store's caps decide whether revocation rests on tombstones alone ([`Rules::atomic_store`]).
    pub fn from_parts(mut rules: Rules, store: S, crypto: Arc<dyn CryptoDriver>, clock: Arc<dyn Clock>) -> Self {
        rules.atomic_store = store.caps().atomic;
        let recent = (rules.policy.recent_writes > 0).then(|| RecentValues::new(rules.policy.recent_writes));
        SessionManager { rules, store, crypto, clock, metrics: Arc::new(Metrics::default()), audit: None, recent }
    }

    /// Hands every audit event to `hook`, after the operation that caused it committed:
    /// issued, refreshed, revoked, revoked_all, reuse_detected, limit_evicted. The hook
    /// runs on the caller's task, before the operation answers: keep it quick (queue the
    /// event, as `tollgate serve`'s webhook does). A panic in it is the caller's own.
    pub fn with_audit(mut self, hook: AuditHook) -> Self {
        self.audit = Some(hook);
        self
    }

    /// Shares `metrics` (e.g. one registry for several managers).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counters and latency histograms of this manager's operations.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }
    pub fn rules(&self) -> &Rules {
        &self.rules
    }
    pub fn keys(&self) -> &KeySet {
        &self.rules.keys
    }
    /// The JWKS document of the public keys (empty for HMAC-only key sets).
    pub fn jwks(&self) -> Value {
        self.rules.keys.jwks()
    }
    /// The clock the manager reads (the system clock unless [`SessionManager::with_clock`] set another).
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn run<O: Operation>(&self, name: &'static str, op: O) -> Result<O::Output, Error> {
        self.run_timed(name, Stopwatch::start(), operation_span(name), op).await
    }

    /// [`run`](Self::run) for an operation whose first part ran already, timed by `watch`, inside `span`.
    async fn run_timed<O: Operation>(
        &self,
        name: &'static str,
        watch: Stopwatch,
        span: tracing::Span,
        mut op: O,
    ) -> Result<O::Output, Error> {
        let mut counts = DriveCounts::default();
        let result = drive_recalling(&mut op, &self.store, &*self.crypto, &mut counts, self.recent.as_ref()).instrument(span).await;
        if let Some(hook) = &self.audit {
            for event in op.take_audit() {
                hook(&event);
            }
        }
        for (event, count) in [
            (SecurityEvent::ConflictRetried, counts.conflicts),
            (if name == "revoke" { SecurityEvent::RevokeFromMemory } else { SecurityEvent::RefreshFromMemory }, counts.from_memory),
            (SecurityEvent::MemoryStale, counts.memory_stale),
        ] {
            if count > 0 {
                self.metrics.event(event, u64::from(count));
            }
        }
        self.observe(name, &result, &watch);
        result
    }

    fn observe<T>(&self, name: &'static str, result: &Result<T, Error>, watch: &Stopwatch) {
        let outcome = result.as_ref().map(|_| ()).map_err(Error::code);
        if let Err(code) = outcome {
            tracing::debug!(op = name, code = code.as_str(), "operation failed");
            match code {
                crate::ErrorCode::RefreshTokenReused => self.metrics.event(SecurityEvent::ReuseDetected, 1),
                crate::ErrorCode::SessionLimit => self.metrics.event(SecurityEvent::LimitRefused, 1),
                _ => {}
            }
        }
        self.metrics.observe(name, outcome, watch.elapsed());
    }

    /// Starts a session for `user`. `claims` go into every access token of the
    /// session (not the reserved names); `metadata` is stored with it.
    pub async fn issue(&self, user: &str, claims: Map<String, Value>, metadata: Value) -> Result<Tokens, Error> {
        let op = ops::Issue::new(&self.rules, user, claims, metadata, self.now(), platform::entropy()?);
        self.run_issue(op.one_trip(self.store.caps().lists)).await
    }

    /// [`issue`](Self::issue) for a client: its IP and user agent are kept with the
    /// session (listed, and carried by audit events). Build `client` with
    /// [`ClientInfo::from_request`](crate::ClientInfo::from_request) and the `trusted_proxy` rule.
    pub async fn issue_from(&self, user: &str, claims: Map<String, Value>, metadata: Value, client: &ClientInfo) -> Result<Tokens, Error> {
        let op = ops::Issue::new(&self.rules, user, claims, metadata, self.now(), platform::entropy()?).with_client(client.clone());
        self.run_issue(op.one_trip(self.store.caps().lists)).await
    }

    async fn run_issue(&self, op: ops::Issue<'_>) -> Result<Tokens, Error> {
        let tokens = self.run("issue", op).await?;
        if !tokens.evicted.is_empty() {
            self.metrics.event(SecurityEvent::LimitEvicted, tokens.evicted.len() as u64);
        }
        Ok(tokens)
    }

    /// Verifies an access token. `Strict` also reads the session.
    pub async fn verify(&self, access_token: &str, mode: VerifyMode) -> Result<Verified, Error> {
        let now = self.now();
        let name = if mode == VerifyMode::Strict { "verify_strict" } else { "verify_stateless" };
        let (watch, span) = (Stopwatch::start(), operation_span(name));
        // The HMAC fast path: signature and claims in one pass, no copy of the token and
        // no operation for a stateless verify; a strict one goes on to the session read.
        let checked = span.in_scope(|| jwt::verify_hmac(access_token, &self.rules.keys, &self.rules.policy.claims, now));
        match (checked, mode) {
            (Some(Ok(claims)), VerifyMode::Strict) => {
                self.run_timed(name, watch, span, ops::Verify::of_checked(&self.rules, claims, now)).await
            }
            (Some(r), _) => {
                let r = r.map(|claims| Verified { claims, session: None });
                self.observe(name, &r, &watch);
                r
            }
            // An asymmetric key: the crypto driver checks the signature.
            (None, _) => self.run_timed(name, watch, span, ops::Verify::new(&self.rules, access_token, mode, now)).await,
        }
    }

    /// Rotates a refresh token into a new pair.
    /// The session keeps the client it had.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let op = ops::Refresh::new(&self.rules, refresh_token, self.now(), platform::entropy()?);
        self.run("refresh", self.recalling(op)).await
    }

    /// The refresh reads through this manager's memory when the store answers versions.
    fn recalling<'r>(&self, op: ops::Refresh<'r>) -> ops::Refresh<'r> {
        match &self.recent {
            Some(recent) if recent.answers() => op.recalling(),
            _ => op,
        }
    }

    /// [`refresh`](Self::refresh) for a client: when the token rotates, the session
    /// keeps this client's IP and user agent (an unknown one clears the old).
    pub async fn refresh_from(&self, refresh_token: &str, client: &ClientInfo) -> Result<Tokens, Error> {
        let op = ops::Refresh::new(&self.rules, refresh_token, self.now(), platform::entropy()?).with_client(client.clone());
        self.run("refresh", self.recalling(op)).await
    }

    /// Revokes one session. Revoking a revoked session succeeds.
    pub async fn revoke(&self, user: &str, sid: &str) -> Result<(), Error> {
        let recall = self.recent.as_ref().is_some_and(|r| r.answers());
        let op = ops::Revoke::new(&self.rules, user, sid, self.now()).one_trip(self.store.caps().lists, recall);
        self.run("revoke", op).await
    }

    /// Revokes all of a user's sessions except `keep`; answers how many.
    pub async fn revoke_all(&self, user: &str, keep: Option<&str>) -> Result<usize, Error> {
        self.run("revoke_all", ops::RevokeAll::new(&self.rules, user, keep, self.now())).await
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, Error> {
        self.run("list", ops::ListSessions::new(&self.rules, user, self.now())).await
    }

    /// The user's live sessions, oldest first, each marked `current` when it is
    /// `current_sid` (the session of the caller's access token; `None`: none is).
    pub async fn list_marking(&self, user: &str, current_sid: Option<&str>) -> Result<Vec<ListedSession>, Error> {
        let list = self.list(user).await?;
        Ok(list.into_iter().map(|session| ListedSession { current: current_sid == Some(session.sid.as_str()), session }).collect())
    }

    /// Replaces a live session's metadata.
    pub async fn update_metadata(&self, user: &str, sid: &str, metadata: Value) -> Result<SessionInfo, Error> {
        self.run("update_metadata", ops::UpdateMetadata::new(&self.rules, user, sid, metadata, self.now())).await
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
        self.run("user_cache_put", ops::CachePut::new(&self.rules, user, info, None, self.now())).await
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

/// The span of one operation. `otel.name`: the span's name when traces are exported
/// (feature `otel` of `tollgate serve`).
fn operation_span(name: &'static str) -> tracing::Span {
    tracing::debug_span!("tollgate", op = name, otel.name = name)
}
