#![cfg(not(target_arch = "wasm32"))] // tokio and proptest; the engine is the same in wasm32
//! Model-based test (issue 11): random sequences of issue, verify (stateless and strict),
//! refresh (again within and after the grace window), revoke, revoke-all and clock moves, run
//! against the session manager and against a small reference model of what each answers.
//! After every step: the answer (or error code) is the model's, no user holds more than the
//! limit, a refresh returns the head of its session's one chain, and no revoked or expired
//! session answers as live. On the memory store here; on Redis (`#[ignore]`, run by
//! scripts/redis.sh) in `redis_model`. Cases: PROPTEST_CASES (256 by default).
//!
//! The model knows tokens and answers only, never the record format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{json, Map};
use tollgate::engine::record::{index_key, UserIndex};
use tollgate::engine::step::{Versioned, WriteOp};
use tollgate::store::{Caps, CommitResult, StoreError};
use tollgate::{Clock, Config, ErrorCode, ManualClock, MemoryStore, SessionManager, Store, Tokens, VerifyMode};

const SECRET: &[u8] = b"session-model-secret-of-32-bytes-or-more";
const T0: u64 = 1_800_000_000_000;
const ACCESS_TTL: u64 = 60_000;
/// Idle and absolute lifetimes are equal, so a session ends exactly at creation + this.
const SESSION_TTL: u64 = 300_000;
const GRACE: u64 = 10_000;
const LIMIT: usize = 3;
/// Rotations kept openable inside the grace window (the engine's burst bound).
const RECENT_LINKS: usize = 8;
const USERS: u8 = 2;

#[derive(Clone, Debug)]
enum Op {
    Issue { user: u8 },
    Verify { token: usize, strict: bool },
    Refresh { token: usize },
    Revoke { session: usize },
    RevokeAll { user: u8 },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS).prop_map(|user| Op::Issue { user }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(token, strict)| Op::Verify { token, strict }),
        5 => any::<usize>().prop_map(|token| Op::Refresh { token }),
        1 => any::<usize>().prop_map(|session| Op::Revoke { session }),
        1 => (0..USERS).prop_map(|user| Op::RevokeAll { user }),
        // Inside and past the grace window, the access lifetime, the session lifetime.
        3 => prop_oneof![Just(1u64), Just(2_000), Just(GRACE), Just(GRACE + 1), Just(ACCESS_TTL), Just(SESSION_TTL / 2), Just(SESSION_TTL)]
            .prop_map(|ms| Op::Advance { ms }),
    ]
}

/// How a session ended, in the model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ended {
    /// Revoked (one session, revoke-all, reuse, or the limit): the tombstone keeps the
    /// current token's hash, so its holder is told `session_revoked`.
    Revoked { at: u64 },
    /// Already expired when revoke-all ran: no tombstone is written (the index no longer
    /// lists it), but the user's revoke-all marker covers it, so it answers `session_revoked`
    /// until its record is reclaimed at its own expiry.
    CoveredByMarker,
}

#[derive(Debug)]
struct ModelSession {
    user: u8,
    sid: String,
    created: u64,
    ended: Option<Ended>,
    /// Every refresh token of the session's chain, oldest first; the last is current.
    chain: Vec<String>,
    /// Rotations still openable: (chain position, when it was rotated away). Every
    /// other earlier position answers as reuse (its chain tag says so).
    recent: Vec<(usize, u64)>,
}

impl ModelSession {
    fn expires(&self) -> u64 {
        self.created + SESSION_TTL
    }
    fn live(&self, now: u64) -> bool {
        self.ended.is_none() && now < self.expires()
    }
    /// When the store drops the record: its end plus the access lifetime (leeway is 0).
    fn reclaimed(&self) -> u64 {
        match self.ended {
            Some(Ended::Revoked { at }) => at + ACCESS_TTL,
            Some(Ended::CoveredByMarker) | None => self.expires() + ACCESS_TTL,
        }
    }
    /// A tombstone is written unless there is one already (a session only the marker
    /// covers still has its live-looking record, which a revoke turns into a tombstone).
    fn revoke(&mut self, at: u64) {
        if matches!(self.ended, None | Some(Ended::CoveredByMarker)) {
            self.ended = Some(Ended::Revoked { at });
            self.recent.clear();
        }
    }
}

struct Model {
    now: u64,
    /// Whether the store drops expired records at the model's clock (the memory store on the
    /// manager's clock does; Redis expires keys in real time, after the test has ended).
    reclaims: bool,
    sessions: Vec<ModelSession>,
    /// Access tokens: (session, token, expiry in ms).
    access: Vec<(usize, String, u64)>,
    /// Refresh tokens: (session, chain position).
    refresh: Vec<(usize, usize)>,
}

type Answer = Result<(), ErrorCode>;

impl Model {
    fn visible(&self, s: &ModelSession) -> bool {
        !self.reclaims || self.now < s.reclaimed()
    }

    fn live_of(&self, user: u8) -> Vec<usize> {
        (0..self.sessions.len()).filter(|&i| self.sessions[i].user == user && self.sessions[i].live(self.now)).collect()
    }

    fn expect_verify(&self, session: usize, exp: u64, strict: bool) -> Answer {
        if self.now >= exp {
            return Err(ErrorCode::TokenExpired);
        }
        let s = &self.sessions[session];
        if !strict {
            return Ok(());
        }
        if !self.visible(s) {
            return Err(ErrorCode::SessionNotFound);
        }
        match s.ended {
            Some(_) => Err(ErrorCode::SessionRevoked),
            None if self.now >= s.expires() => Err(ErrorCode::SessionExpired),
            None => Ok(()),
        }
    }
}

/// What a refresh of chain position `pos` answers, in the model.
#[derive(Debug, PartialEq)]
enum RefreshAnswer {
    Rotate,
    /// Within the grace window: the chain's head again.
    Head,
    Fail(ErrorCode),
    Reuse,
}

fn expect_refresh(m: &Model, s: &ModelSession, pos: usize) -> RefreshAnswer {
    if !m.visible(s) {
        return RefreshAnswer::Fail(ErrorCode::SessionNotFound);
    }
    let current = s.chain.len() - 1;
    // The secret first: a token the record does not know is invalid whatever the session's state.
    let known = if pos == current {
        Some(RefreshAnswer::Rotate)
    } else {
        match s.recent.iter().find(|(p, _)| *p == pos) {
            Some((_, at)) if m.now.abs_diff(*at) <= GRACE => Some(RefreshAnswer::Head),
            Some(_) => Some(RefreshAnswer::Reuse),
            None if pos < current => Some(RefreshAnswer::Reuse),
            None => None,
        }
    };
    let Some(known) = known else { return RefreshAnswer::Fail(ErrorCode::TokenInvalid) };
    if s.ended.is_some() {
        return RefreshAnswer::Fail(ErrorCode::SessionRevoked);
    }
    if m.now >= s.expires() {
        return RefreshAnswer::Fail(ErrorCode::SessionExpired);
    }
    known
}

fn code<T>(r: &Result<T, tollgate::Error>) -> Answer {
    r.as_ref().map(|_| ()).map_err(|e| e.code())
}

/// Two managers on one store, as two services: every third step goes through the second,
/// so on Redis each one's memory of what it committed ([`tollgate::store::recent`]) is at
/// times current and at times behind what the other wrote.
struct Harness<S: Store> {
    clock: Arc<ManualClock>,
    sessions: SessionManager<S>,
    other: SessionManager<S>,
    users: [String; USERS as usize],
}

impl<S: Store + Clone> Harness<S> {
    fn new(store: S, clock: Arc<ManualClock>, case: u64) -> Self {
        let config = Config::builder()
            .secret(SECRET.to_vec())
            .access_ttl(Duration::from_millis(ACCESS_TTL))
            .idle_ttl(Duration::from_millis(SESSION_TTL))
            .absolute_ttl(Duration::from_millis(SESSION_TTL))
            .refresh_grace(Duration::from_millis(GRACE))
            .leeway(Duration::ZERO)
            .max_sessions_per_user(LIMIT as u32)
            .build()
            .unwrap();
        let other = SessionManager::new(config.clone(), store.clone()).unwrap().with_clock(clock.clone());
        let sessions = SessionManager::new(config, store).unwrap().with_clock(clock.clone());
        // Users unique to the case, so cases never meet on a shared server.
        let users = [format!("model-{}-{case}-a", std::process::id()), format!("model-{}-{case}-b@x", std::process::id())];
        Harness { clock, sessions, other, users }
    }
}

impl<S: Store> Harness<S> {
    /// The manager that carries out step `step`.
    fn at(&self, step: usize) -> &SessionManager<S> {
        if step % 3 == 2 {
            &self.other
        } else {
            &self.sessions
        }
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if cond {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// Adds an answer's access token to the model's pool, with the expiry the model expects.
fn record_access(access: &mut Vec<(usize, String, u64)>, now: u64, session: usize, t: &Tokens) {
    access.push((session, t.access_token.clone(), (now + ACCESS_TTL) / 1000 * 1000));
}

async fn run_case<S: Store>(h: &Harness<S>, ops: &[Op], reclaims: bool) -> Result<(), TestCaseError> {
    let mut m = Model { now: h.clock.now_ms(), reclaims, sessions: Vec::new(), access: Vec::new(), refresh: Vec::new() };
    for (step, op) in ops.iter().enumerate() {
        let started = m.now - T0;
        let at = |what: &str| format!("step {step} {op:?} at +{started} ms: {what}");
        match *op {
            Op::Advance { ms } => {
                h.clock.advance(ms);
                m.now += ms;
            }
            Op::Issue { user } => {
                let live = m.live_of(user);
                let evict: Vec<usize> = live.iter().copied().take((live.len() + 1).saturating_sub(LIMIT)).collect();
                let got = h.at(step).issue(&h.users[user as usize], Map::new(), json!(null)).await;
                let t = got.map_err(|e| TestCaseError::fail(at(&format!("issue failed: {e}"))))?;
                let mut evicted_sids: Vec<String> = evict.iter().map(|&i| m.sessions[i].sid.clone()).collect();
                let mut got_evicted = t.evicted.clone();
                evicted_sids.sort();
                got_evicted.sort();
                check(got_evicted == evicted_sids, || at(&format!("evicted {got_evicted:?}, model {evicted_sids:?}")))?;
                check(t.access_expires_at == (m.now + ACCESS_TTL) / 1000 * 1000, || at("access expiry"))?;
                for i in evict {
                    m.sessions[i].revoke(m.now);
                }
                let index = m.sessions.len();
                m.sessions.push(ModelSession {
                    user,
                    sid: t.session.sid.clone(),
                    created: m.now,
                    ended: None,
                    chain: vec![t.refresh_token.clone()],
                    recent: Vec::new(),
                });
                m.refresh.push((index, 0));
                record_access(&mut m.access, m.now, index, &t);
                // Distinct creation times: "oldest" is never a tie.
                h.clock.advance(1);
                m.now += 1;
            }
            Op::Verify { token, strict } => {
                if m.access.is_empty() {
                    continue;
                }
                let (session, text, exp) = m.access[token % m.access.len()].clone();
                let mode = if strict { VerifyMode::Strict } else { VerifyMode::Stateless };
                let got = h.at(step).verify(&text, mode).await;
                let want = m.expect_verify(session, exp, strict);
                check(code(&got) == want, || at(&format!("verify answered {:?}, model {want:?}", code(&got))))?;
                if let Ok(v) = got {
                    check(v.claims.sid() == Some(m.sessions[session].sid.as_str()), || at("verified another session"))?;
                }
            }
            Op::Refresh { token } => {
                if m.refresh.is_empty() {
                    continue;
                }
                let (session, pos) = m.refresh[token % m.refresh.len()];
                let want = expect_refresh(&m, &m.sessions[session], pos);
                let text = m.sessions[session].chain[pos].clone();
                let got = h.at(step).refresh(&text).await;
                let now = m.now;
                let s = &mut m.sessions[session];
                match (&want, &got) {
                    (RefreshAnswer::Rotate, Ok(t)) => {
                        check(t.session.sid == s.sid, || at("rotated into another session"))?;
                        check(!s.chain.contains(&t.refresh_token), || at("a rotation handed out an old token"))?;
                        // The engine's rotation: out-of-window links retire, the burst bound holds.
                        s.recent.retain(|(_, at)| now.abs_diff(*at) <= GRACE);
                        s.recent.push((s.chain.len() - 1, now));
                        let burst = s.recent.len().saturating_sub(RECENT_LINKS);
                        s.recent.drain(..burst);
                        s.chain.push(t.refresh_token.clone());
                        let pos = s.chain.len() - 1;
                        m.refresh.push((session, pos));
                        record_access(&mut m.access, now, session, t);
                    }
                    (RefreshAnswer::Head, Ok(t)) => {
                        // One chain per session: a retry inside the window gets the head, not a fork.
                        check(&t.refresh_token == s.chain.last().unwrap(), || at("a retry in the window got another token than the head"))?;
                        record_access(&mut m.access, now, session, t);
                    }
                    (RefreshAnswer::Reuse, Err(e)) if e.code() == ErrorCode::RefreshTokenReused => s.revoke(now),
                    (RefreshAnswer::Fail(c), Err(e)) if e.code() == *c => {}
                    _ => return Err(TestCaseError::fail(at(&format!("refresh answered {:?}, model {want:?}", code(&got))))),
                }
            }
            Op::Revoke { session } => {
                if m.sessions.is_empty() {
                    continue;
                }
                let i = session % m.sessions.len();
                let want = if m.visible(&m.sessions[i]) { Ok(()) } else { Err(ErrorCode::SessionNotFound) };
                let (user, sid) = (h.users[m.sessions[i].user as usize].clone(), m.sessions[i].sid.clone());
                let got = h.at(step).revoke(&user, &sid).await;
                check(code(&got) == want, || at(&format!("revoke answered {:?}, model {want:?}", code(&got))))?;
                if got.is_ok() {
                    m.sessions[i].revoke(m.now);
                }
            }
            Op::RevokeAll { user } => {
                let live = m.live_of(user);
                let got = h.at(step).revoke_all(&h.users[user as usize], None).await;
                check(got.as_ref().ok() == Some(&live.len()), || at(&format!("revoke-all answered {got:?}, model Ok({})", live.len())))?;
                for i in live {
                    m.sessions[i].revoke(m.now);
                }
                for s in m.sessions.iter_mut().filter(|s| s.user == user && s.ended.is_none()) {
                    s.ended = Some(Ended::CoveredByMarker);
                }
            }
        }
        // The limit holds, and the sessions listed are exactly the model's live ones.
        for user in 0..USERS {
            // The stored index, read raw before `list` prunes it: no revoked session stays in
            // it (however it was revoked: one revoke, from memory or not, revoke-all, reuse,
            // the limit), so none counts against the limit. Expired ones may wait for a prune.
            let slot = h.sessions.store().get(vec![index_key(&h.users[user as usize])]).await.unwrap().pop().flatten();
            let index = UserIndex::decode(slot.as_ref().map(|v| &v.value[..])).unwrap();
            for s in m.sessions.iter().filter(|s| s.user == user && matches!(s.ended, Some(Ended::Revoked { .. }))) {
                check(!index.sessions.iter().any(|e| e.sid == s.sid), || at(&format!("user {user}: revoked {} still indexed", s.sid)))?;
            }
            let mut listed: Vec<String> = h.at(step).list(&h.users[user as usize]).await.unwrap().into_iter().map(|s| s.sid).collect();
            let mut live: Vec<String> = m.live_of(user).into_iter().map(|i| m.sessions[i].sid.clone()).collect();
            listed.sort();
            live.sort();
            check(listed.len() <= LIMIT, || at(&format!("user {user} holds {} sessions", listed.len())))?;
            check(listed == live, || at(&format!("user {user}: listed {listed:?}, model {live:?}")))?;
        }
    }
    Ok(())
}

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default_cases);
    TestRunner::new(RunnerConfig { cases, failure_persistence: None, ..RunnerConfig::default() })
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..60)
}

/// Runs the model on a store made afresh for each case on the case's clock; `atomic`: the
/// path the manager must take from the store's caps (tombstone alone, or markers too).
fn model_on<S: Store + Clone>(default_cases: u32, store_on: impl Fn(Arc<ManualClock>) -> S, atomic: bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let case = AtomicU64::new(0);
    runner(default_cases)
        .run(&ops(), |ops| {
            let clock = Arc::new(ManualClock::new(T0));
            let h = Harness::new(store_on(clock.clone()), clock, case.fetch_add(1, Ordering::Relaxed));
            assert_eq!(h.sessions.rules().atomic_store, atomic, "the manager revokes as the store's caps say");
            rt.block_on(run_case(&h, &ops, true))
        })
        .unwrap();
}

#[test]
fn the_manager_answers_as_the_model_on_the_memory_store() {
    model_on(256, |clock| MemoryStore::with_clock(clock), true);
}

/// The memory store declared not atomic. It still checks every expectation, but the engine
/// then keeps a revocation marker per revoked session and reads it beside the record (the
/// path of Workers KV), where an atomic store revokes by the tombstone alone: the model
/// checks that path too.
#[derive(Clone)]
struct DeclaredNotAtomic(MemoryStore);

#[async_trait::async_trait]
impl Store for DeclaredNotAtomic {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        self.0.get(keys).await
    }
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        self.0.commit(ops).await
    }
    fn caps(&self) -> Caps {
        Caps { atomic: false, ..self.0.caps() }
    }
}

#[test]
fn the_manager_answers_as_the_model_with_revocation_markers() {
    model_on(128, |clock| DeclaredNotAtomic(MemoryStore::with_clock(clock)), false);
}

#[cfg(feature = "redis")]
#[path = "support/redis_env.rs"]
mod redis_env;

#[cfg(feature = "redis")]
mod redis_model {
    use super::*;

    #[test]
    #[ignore = "needs the Redis servers of scripts/redis.sh"]
    fn the_manager_answers_as_the_model_on_redis() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = rt.block_on(redis_env::connect(redis_env::single_config()));
        let case = AtomicU64::new(0);
        runner(64)
            .run(&ops(), |ops| {
                // Keys expire in Redis's real time, long after the case: the model keeps records.
                let clock = Arc::new(ManualClock::new(T0));
                let h = Harness::new(store.clone(), clock, case.fetch_add(1, Ordering::Relaxed));
                rt.block_on(run_case(&h, &ops, false))
            })
            .unwrap();
    }
}
