//! Racing operations on one user: 100 refreshes of one token, 1,000 issues
//! under a limit of 5 with a watcher, revoke against refresh.
//!
//! The racers are joined with `futures`, so they interleave at every await of
//! the store on any target; a harness that hands in a [`Spawner`] runs each on
//! its own task (natively, on a multi-threaded runtime).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::future::{join, join_all, LocalBoxFuture};
use serde_json::{json, Map};

use super::check::{ensure, ensure_eq, expect_code, OrFail};
use super::sessions::meta;
use super::setup::Settings;
use super::{Checked, Failure, Subject};
use crate::engine::error::ErrorCode;
use crate::engine::ops::VerifyMode;
use crate::engine::policy::LimitPolicy;

/// `Send` natively, where racers may run on other threads; nothing in wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// One racing operation, as a [`Spawner`] receives it.
#[cfg(not(target_arch = "wasm32"))]
pub type RaceTask = Pin<Box<dyn Future<Output = ()> + Send>>;
#[cfg(target_arch = "wasm32")]
pub type RaceTask = Pin<Box<dyn Future<Output = ()>>>;

/// Starts racing operations on tasks of their own.
pub trait Spawner: crate::platform::MaybeSendSync {
    /// Starts `task`; the answer completes when the task has ended, however it ended.
    fn spawn(&self, task: RaceTask) -> LocalBoxFuture<'static, ()>;
}

/// Runs `racers` at once; answers their results in order.
async fn race<T, F>(s: &Subject, racers: Vec<F>) -> Result<Vec<T>, Failure>
where
    T: MaybeSend + 'static,
    F: Future<Output = T> + MaybeSend + 'static,
{
    let Some(spawner) = s.spawner() else { return Ok(join_all(racers).await) };
    let slots: Vec<Arc<Mutex<Option<T>>>> = racers.iter().map(|_| Arc::new(Mutex::new(None))).collect();
    let ended = racers.into_iter().zip(&slots).map(|(racer, slot)| {
        let slot = slot.clone();
        spawner.spawn(Box::pin(async move {
            let result = racer.await;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        }))
    });
    join_all(ended).await;
    slots
        .into_iter()
        .map(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take().or_fail("a racing task ended without an answer"))
        .collect()
}

/// Lets the other joined futures run once.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub(super) async fn racing_refreshes(s: &Subject) -> Checked {
    let settings = Settings::default();
    let (here, there) = (s.manager(&settings)?, s.peer_manager(&settings)?);
    let user = s.user();
    let t = here.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    // Half through each client.
    let racers = (0..100)
        .map(|i| {
            let (m, token) = (if i % 2 == 0 { here.clone() } else { there.clone() }, t.refresh_token.clone());
            async move { m.refresh(&token).await }
        })
        .collect();
    let mut successors = Vec::new();
    for (i, answer) in race(s, racers).await?.into_iter().enumerate() {
        successors.push(answer.or_fail(&format!("racing refresh {i} (every refresh within the grace window succeeds)"))?.refresh_token);
    }
    successors.sort_unstable();
    successors.dedup();
    ensure_eq!(successors.len(), 1, "distinct successors of 100 racing refreshes (one chain, never a fork)");
    let sessions = here.list(user).await.or_fail("list")?;
    ensure_eq!(sessions.len(), 1, "sessions listed after the race (no orphans)");
    ensure_eq!(sessions[0].generation, 1, "the generation after the race");
    let next = here.refresh(&successors[0]).await.or_fail("refresh of the successor")?;
    ensure_eq!(next.session.generation, 2, "the generation after refreshing the successor");
    Ok(())
}

pub(super) async fn racing_issues_respect_limit(s: &Subject) -> Checked {
    const ISSUES: usize = 1000;
    let settings = Settings { limit: Some((5, LimitPolicy::EvictOldest)), max_attempts: Some(64), ..Settings::default() };
    let (here, there) = (s.manager(&settings)?, s.peer_manager(&settings)?);
    let user = s.user().to_owned();
    let racers = (0..ISSUES)
        .map(|i| {
            let (m, user) = (if i % 2 == 0 { here.clone() } else { there.clone() }, user.clone());
            async move { m.issue(&user, Map::new(), json!({})).await }
        })
        .collect();
    // A watcher checks the limit at every moment, not only at the end.
    let done = Rc::new(Cell::new(false));
    let watcher = async {
        let mut most = 0;
        while !done.get() {
            most = most.max(here.list(&user).await.map_or(0, |l| l.len()));
            YieldNow(false).await;
        }
        most
    };
    let issuing = async {
        let answers = race(s, racers).await;
        done.set(true);
        answers
    };
    let (most_seen, answers) = join(watcher, issuing).await;
    let mut issued = Vec::new();
    for answer in answers? {
        match answer {
            Ok(t) => issued.push(t),
            Err(e) => ensure_eq!(e.code(), ErrorCode::Conflict, "the error of a racing issue (only contention may fail one)"),
        }
    }
    ensure!(most_seen <= 5, "the watcher saw {most_seen} live sessions under a limit of 5");
    let live = here.list(&user).await.or_fail("list after the race")?;
    ensure_eq!(live.len(), 5, "sessions listed after the race");
    ensure!(issued.len() >= ISSUES * 9 / 10, "only {} of {ISSUES} racing issues succeeded", issued.len());
    // Exactly the listed sessions pass strict verification.
    let mut alive = 0;
    for t in &issued {
        if here.verify(&t.access_token, VerifyMode::Strict).await.is_ok() {
            alive += 1;
            ensure!(live.iter().any(|l| l.sid == t.session.sid), "an unlisted session passed strict verification");
        }
    }
    ensure_eq!(alive, 5, "sessions passing strict verification");
    Ok(())
}

pub(super) async fn revoke_racing_refresh(s: &Subject) -> Checked {
    let m = s.manager(&Settings::default())?;
    let user = s.user().to_owned();
    for round in 0..20 {
        let t = m.issue(&user, Map::new(), meta()).await.or_fail(&format!("issue in round {round}"))?;
        let (refresher, revoker) = (m.clone(), m.clone());
        let (rt, u, sid) = (t.refresh_token.clone(), user.clone(), t.session.sid.clone());
        let racers: Vec<RefreshOrRevoke> = vec![
            Box::pin(async move { refresher.refresh(&rt).await.map(Some) }),
            Box::pin(async move { revoker.revoke(&u, &sid).await.map(|()| None) }),
        ];
        let mut answers = race(s, racers).await?.into_iter();
        let refreshed = answers.next().or_fail("the refresher's answer")?;
        answers.next().or_fail("the revoker's answer")?.or_fail(&format!("revoke in round {round}"))?;
        // Whatever the order, the session ends revoked and its tokens are dead.
        let strict = m.verify(&t.access_token, VerifyMode::Strict).await;
        expect_code(strict, ErrorCode::SessionRevoked, &format!("strict verify after the race, round {round}"))?;
        if let Ok(Some(r)) = refreshed {
            let what = format!("the refreshed pair after the race, round {round}");
            expect_code(m.refresh(&r.refresh_token).await, ErrorCode::SessionRevoked, &what)?;
            expect_code(m.verify(&r.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, &what)?;
        }
        ensure!(m.list(&user).await.or_fail("list after the race")?.is_empty(), "a session listed after revoke raced refresh");
    }
    Ok(())
}

/// A racer of [`revoke_racing_refresh`]: the refresher's new pair, or the revoker's nothing.
#[cfg(not(target_arch = "wasm32"))]
type RefreshOrRevoke = Pin<Box<dyn Future<Output = Result<Option<crate::Tokens>, crate::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
type RefreshOrRevoke = Pin<Box<dyn Future<Output = Result<Option<crate::Tokens>, crate::Error>>>>;
