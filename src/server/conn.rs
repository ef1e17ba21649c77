//! One connection of `tollgate serve`: its timeouts, its request count and its
//! part in the connection cap. hyper parses HTTP; the clocks are kept here,
//! because hyper's own header timeout also cuts idle keep-alive waits short.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::settings::ServeSettings;

/// The clocks of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_requests: u32,
}

impl Limits {
    pub fn of(s: &ServeSettings) -> Limits {
        Limits {
            header_timeout: s.header_timeout,
            body_timeout: s.body_timeout,
            idle_timeout: s.idle_timeout,
            max_requests: s.max_requests_per_connection,
        }
    }
}

/// Where a connection is between requests.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// No request in flight since `since`; `first_byte`: when the next request's first byte came.
    Waiting { since: Instant, first_byte: Option<Instant>, fresh: bool },
    /// A request is being answered (its body has its own deadline).
    Busy,
}

/// What the connection's watchdog reads and the service and the socket write.
#[derive(Debug)]
pub struct Activity {
    phase: Mutex<Phase>,
    requests: AtomicU64,
    /// Set when the cap needs this connection's slot, or the watchdog gave up on it.
    evicted: AtomicBool,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        let phase = Phase::Waiting { since: Instant::now(), first_byte: None, fresh: true };
        Activity { phase: Mutex::new(phase), requests: AtomicU64::new(0), evicted: AtomicBool::new(false), changed: Notify::new() }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: the first of a request starts its header clock.
    fn on_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if let Phase::Waiting { first_byte: first @ None, .. } = &mut *phase {
            *first = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's head arrived; answers how many this connection has now had.
    pub fn request_started(&self) -> u64 {
        self.set(Phase::Busy);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn request_finished(&self) {
        self.set(Phase::Waiting { since: Instant::now(), first_byte: None, fresh: false });
    }

    fn idle(&self) -> bool {
        matches!(self.phase(), Phase::Waiting { first_byte: None, .. })
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// When the connection must be closed if nothing changes; `None` while a request runs.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match self.phase() {
            Phase::Busy => None,
            Phase::Waiting { first_byte: Some(first), .. } => Some(first + limits.header_timeout),
            Phase::Waiting { since, fresh: true, .. } => Some(since + limits.header_timeout),
            Phase::Waiting { since, fresh: false, .. } => Some(since + limits.idle_timeout),
        }
    }

    /// Resolves when the connection should be dropped: a deadline passed, or it was evicted.
    pub async fn expired(&self, limits: &Limits) {
        loop {
            // Eviction picked an idle connection; one whose request began since is closed once idle again.
            if self.evicted.load(Ordering::Relaxed) && self.idle() {
                return;
            }
            let changed = self.changed.notified();
            match self.deadline(limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A socket that tells its [`Activity`] when bytes arrive.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, oldest first, and the slots of the connection cap.
pub struct Connections {
    slots: Arc<Semaphore>,
    cap: u32,
    open: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// A connection's slot: held while it is open, returned when dropped.
pub struct Slot {
    id: u64,
    pub activity: Arc<Activity>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

impl Connections {
    pub fn new(cap: u32) -> Arc<Connections> {
        Arc::new(Connections {
            slots: Arc::new(Semaphore::new(cap as usize)),
            cap,
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// A slot for a connection just accepted: at the cap, the longest-open
    /// connection with no request under way is closed to make room (else this waits).
    pub async fn admit(self: &Arc<Self>) -> Slot {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let oldest_idle = self.open.lock().unwrap_or_else(|p| p.into_inner()).values().find(|a| a.idle()).cloned();
                if let Some(activity) = oldest_idle {
                    activity.evict();
                }
                tracing::debug!(cap = self.cap, "at the connection cap: closed the oldest idle connection");
                self.slots.clone().acquire_owned().await.expect("the semaphore is never closed")
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(id, activity.clone());
        Slot { id, activity, connections: self.clone(), _permit: permit }
    }

    /// Waits until every connection has closed, or `deadline` passed; answers how many are still open.
    pub async fn drained(&self, deadline: Duration) -> usize {
        let all = self.slots.acquire_many(self.cap);
        match tokio::time::timeout(deadline, all).await {
            Ok(_) => 0,
            Err(_) => self.open.lock().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }
}

/// The open-files limit (soft), raised to the hard limit first where allowed.
#[cfg(unix)]
pub fn open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

#[cfg(not(unix))]
pub fn open_files_limit() -> Option<u64> {
    None
}

/// Files kept free of connections: listeners, the store's sockets, logs, the runtime's own.
pub const FILES_IN_RESERVE: u64 = 64;

/// `max_connections`, lowered so that connections cannot use up the open-files limit.
pub fn connection_cap(max_connections: u32, open_files: Option<u64>) -> u32 {
    match open_files {
        Some(files) => {
            let room = files.saturating_sub(FILES_IN_RESERVE).max(1);
            max_connections.min(u32::try_from(room).unwrap_or(u32::MAX))
        }
        None => max_connections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_files_for_everything_else() {
        assert_eq!(connection_cap(4096, Some(1024)), 960);
        assert_eq!(connection_cap(100, Some(1024)), 100);
        assert_eq!(connection_cap(4096, Some(10)), 1);
        assert_eq!(connection_cap(4096, None), 4096);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_expires_by_its_phase() {
        let limits = Limits {
            header_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            max_requests: 10,
        };
        let a = Activity::new();
        let opened = Instant::now();
        a.expired(&limits).await;
        assert_eq!(Instant::now() - opened, Duration::from_secs(2), "a new connection has the header timeout");
        a.request_started();
        assert_eq!(a.deadline(&limits), None, "no clock while a request runs");
        a.request_finished();
        let idle_from = Instant::now();
        a.expired(&limits).await;
        assert_eq!(Instant::now() - idle_from, Duration::from_secs(30), "between requests: the idle timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_evicts_the_oldest_idle_connection() {
        let connections = Connections::new(2);
        let first = connections.admit().await;
        let second = connections.admit().await;
        second.activity.request_started();
        let admitting = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit().await.id }
        });
        tokio::task::yield_now().await;
        assert!(first.activity.evicted.load(Ordering::Relaxed), "the idle one was asked to close");
        assert!(!second.activity.evicted.load(Ordering::Relaxed), "the busy one was spared");
        drop(first);
        assert_eq!(admitting.await.unwrap(), 2);
    }
}
