//! What a case is given ([`Subject`]) and how it makes its session managers:
//! the one place that turns a case's settings into a configuration.

use std::sync::Arc;
use std::time::Duration;

use super::check::OrFail;
use super::races::Spawner;
use super::Failure;
use crate::crypto::HmacOnly;
use crate::engine::keys::{Alg, Key, KeySet};
use crate::engine::policy::{LimitPolicy, Rules};
use crate::manager::{Config, SessionManager};
use crate::platform::{Clock, ManualClock, SystemClock};
use crate::store::{Caps, Store};

/// The HMAC secret of every case's key set.
pub(crate) const SECRET: &[u8] = b"conformance-secret-of-at-least-32-bytes!";
pub(crate) const ISSUER: &str = "tollgate-tests";
const KID: &str = "k1";

/// A manager over the store under test, as every case uses it.
pub(crate) type Manager = SessionManager<Arc<dyn Store>>;

/// The store under test, as a case sees it.
pub struct Subject {
    store: Arc<dyn Store>,
    peer: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    user: String,
    one_user: bool,
    spawner: Option<Arc<dyn Spawner>>,
}

impl Subject {
    /// `store`, with `clock` the time of the case (the clock the store was made with, if it reads
    /// one). The case's user is fresh and random, so cases sharing a store never meet.
    pub fn new(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Subject {
        Subject { peer: store.clone(), store, clock, user: unique_user("case"), one_user: false, spawner: None }
    }

    /// A second client on the same data (another connection, another wrapper over the same
    /// map): the cases that check what another client sees use it. By default, the store itself.
    pub fn with_peer(mut self, peer: Arc<dyn Store>) -> Subject {
        self.peer = peer;
        self
    }

    /// A store that holds `user`'s keys only (a Durable Object): the cases touch that user
    /// alone, and those that need several users are skipped.
    pub fn holding_only(mut self, user: impl Into<String>) -> Subject {
        self.user = user.into();
        self.one_user = true;
        self
    }

    /// Runs racing operations through `spawner` instead of interleaving them on one task.
    pub fn with_spawner(mut self, spawner: Arc<dyn Spawner>) -> Subject {
        self.spawner = Some(spawner);
        self
    }

    pub fn caps(&self) -> Caps {
        self.store.caps()
    }

    /// The user whose keys the case touches (other users' too, if it needs several).
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn holds_one_user(&self) -> bool {
        self.one_user
    }

    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    pub(crate) fn spawner(&self) -> Option<&Arc<dyn Spawner>> {
        self.spawner.as_ref()
    }

    /// The case's time, unix ms.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.clock.advance(ms);
    }

    /// A manager over the store under test.
    pub(crate) fn manager(&self, settings: &Settings) -> Result<Arc<Manager>, Failure> {
        manager(settings, self.store.clone(), self.clock.clone())
    }

    /// A manager over the second client.
    pub(crate) fn peer_manager(&self, settings: &Settings) -> Result<Arc<Manager>, Failure> {
        manager(settings, self.peer.clone(), self.clock.clone())
    }
}

/// A manual clock at the current time, for one case.
pub fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now_ms()))
}

/// A fresh user id: `<tag>-` and 16 random hex digits.
pub fn unique_user(tag: &str) -> String {
    let mut b = [0u8; 8];
    // Without randomness the ids could collide on a shared store; a fixed id still runs the case.
    let _ = getrandom::getrandom(&mut b);
    format!("{tag}-{:016x}", u64::from_le_bytes(b))
}

/// What a case changes from the default configuration.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub access_ttl: Option<Duration>,
    pub idle_ttl: Option<Duration>,
    pub absolute_ttl: Option<Duration>,
    pub refresh_grace: Option<Duration>,
    pub touch_interval: Option<Duration>,
    pub leeway: Option<Duration>,
    pub limit: Option<(u32, LimitPolicy)>,
    pub max_metadata_bytes: Option<usize>,
    pub max_attempts: Option<u32>,
    pub user_cache_ttl: Option<Duration>,
}

pub(crate) fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

/// The configuration of a case: HS256 with [`SECRET`], issuer [`ISSUER`], and `s`.
fn config(s: &Settings) -> Result<Config, crate::Error> {
    let mut b = Config::builder().secret(SECRET.to_vec()).kid(KID).issuer(ISSUER);
    if let Some(d) = s.access_ttl {
        b = b.access_ttl(d);
    }
    if let Some(d) = s.idle_ttl {
        b = b.idle_ttl(d);
    }
    if let Some(d) = s.absolute_ttl {
        b = b.absolute_ttl(d);
    }
    if let Some(d) = s.refresh_grace {
        b = b.refresh_grace(d);
    }
    if let Some(d) = s.touch_interval {
        b = b.touch_interval(d);
    }
    if let Some(d) = s.leeway {
        b = b.leeway(d);
    }
    if let Some((n, on_limit)) = s.limit {
        b = b.max_sessions_per_user(n).on_limit(on_limit);
    }
    if let Some(n) = s.max_metadata_bytes {
        b = b.max_metadata_bytes(n);
    }
    if let Some(n) = s.max_attempts {
        b = b.max_attempts(n);
    }
    if let Some(d) = s.user_cache_ttl {
        b = b.user_cache_ttl(d);
    }
    b.build()
}

/// HMAC keys only, so the engine signs and verifies by itself on every target (no crypto driver).
#[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))] // in wasm nothing is Send
fn manager(settings: &Settings, store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Result<Arc<Manager>, Failure> {
    let config = config(settings).or_fail("the case's configuration")?;
    let keys = KeySet::new(Key::hmac(KID, Alg::HS256, SECRET).or_fail("the case's key")?);
    let rules = Rules::new(keys, config.policy).or_fail("the case's rules")?;
    Ok(Arc::new(SessionManager::from_parts(rules, store, Arc::new(HmacOnly), clock)))
}
