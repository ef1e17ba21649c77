//! What differs between native and WebAssembly outside the core: the clock, the
//! RNG, sleeping, and whether futures must be `Send`.
#![allow(clippy::disallowed_methods)] // the one place the clock and the RNG are read for the engine

use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::Entropy;

/// `Send + Sync` natively; nothing in WebAssembly, where values may hold JS objects.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// Wall-clock time in unix milliseconds. The manager and the memory store read
/// time only through this, so tests move time themselves.
pub trait Clock: MaybeSendSync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    fn now_ms(&self) -> u64 {
        // `CLOCK_REALTIME` as `SystemTime::now` reads it, without its checked conversions and
        // 128-bit millisecond count: a quarter of a memory-store get's instructions before.
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        unix_ms(t.tv_sec, t.tv_nsec)
    }
    #[cfg(target_arch = "wasm32")]
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

/// Unix milliseconds of a `timespec`; a time before 1970 is 0, as `SystemTime` gave.
#[cfg(not(target_arch = "wasm32"))]
fn unix_ms(sec: i64, nsec: i64) -> u64 {
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return 0;
    }
    (sec as u64).saturating_mul(1000).saturating_add(nsec as u64 / 1_000_000)
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(now_ms: u64) -> Self {
        ManualClock(AtomicU64::new(now_ms))
    }
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst)
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// Measures elapsed time for metrics (monotonic natively; `Date.now()` in wasm).
pub struct Stopwatch {
    #[cfg(not(target_arch = "wasm32"))]
    start: std::time::Instant,
    #[cfg(target_arch = "wasm32")]
    start_ms: f64,
}

impl Stopwatch {
    pub fn start() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        return Stopwatch { start: std::time::Instant::now() };
        #[cfg(target_arch = "wasm32")]
        return Stopwatch { start_ms: js_sys::Date::now() };
    }
    pub fn elapsed(&self) -> std::time::Duration {
        #[cfg(not(target_arch = "wasm32"))]
        return self.start.elapsed();
        #[cfg(target_arch = "wasm32")]
        return std::time::Duration::from_micros(((js_sys::Date::now() - self.start_ms).max(0.0) * 1000.0) as u64);
    }
}

/// Fresh random bytes for one operation, from the operating system (or `crypto.getRandomValues`).
pub fn entropy() -> Result<Entropy, Error> {
    let mut bytes = [0u8; 64];
    getrandom::getrandom(&mut bytes).map_err(|_| Error::new(ErrorCode::Internal, "the system random number generator failed"))?;
    Ok(Entropy(bytes))
}

/// Waits a jittered, growing moment before a conflicting operation retries.
pub async fn backoff(attempt: u32) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut b = [0u8; 2];
        let _ = getrandom::getrandom(&mut b);
        let cap_us = 200u64 << attempt.min(6); // 0.4 ms .. 12.8 ms
        let us = u64::from(u16::from_le_bytes(b)) % cap_us;
        tokio::time::sleep(std::time::Duration::from_micros(us)).await;
    }
    #[cfg(target_arch = "wasm32")]
    {
        // No timer without the host; a retry after a yield to the event loop is enough
        // for the single-threaded JS stores this serves.
        let _ = attempt;
    }
}

/// Held by an operation that met a conflict, until it ends: the retries of
/// one user's operations inside this process run one at a time instead of
/// colliding again (a thousand racing writers on one user would otherwise
/// conflict on almost every attempt against a remote store). First attempts
/// never wait; other processes still meet each other's writes as conflicts.
pub struct RetryGate {
    #[cfg(not(target_arch = "wasm32"))]
    _guard: tokio::sync::OwnedMutexGuard<()>,
    #[cfg(target_arch = "wasm32")]
    _held: local_gate::Held,
}

/// Which of 256 stripes the user (hash tag) `tag` queues on: the gates cost a fixed amount of memory.
fn stripe_of(tag: &str) -> usize {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    static HASHER: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = HASHER.get_or_init(std::collections::hash_map::RandomState::new).build_hasher();
    h.write(tag.as_bytes());
    (h.finish() % 256) as usize
}

/// Waits for the retry gate of the user (hash tag) `tag`.
pub async fn retry_gate(tag: &str) -> RetryGate {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::{Arc, OnceLock};
        static STRIPES: OnceLock<Vec<Arc<tokio::sync::Mutex<()>>>> = OnceLock::new();
        let stripes = STRIPES.get_or_init(|| (0..256).map(|_| Arc::new(tokio::sync::Mutex::new(()))).collect());
        RetryGate { _guard: stripes[stripe_of(tag)].clone().lock_owned().await }
    }
    #[cfg(target_arch = "wasm32")]
    {
        // One thread, but an operation on a JS store awaits the host between its read and
        // its commit, so one user's operations interleave there as they do natively.
        RetryGate { _held: local_gate::lock(stripe_of(tag)).await }
    }
}

/// The retry gates of one thread (wasm): a flag per stripe and the wakers of what waits for it.
///
/// In a Worker one isolate serves many requests at once, and workerd cancels a request that
/// waits for something only another request can do (it counts it as hung), so the gates there
/// belong to one request: [`request_scope`] marks what a request polls, and its operations
/// queue only behind each other. Requests meet each other's writes as conflicts, like processes.
#[cfg(target_arch = "wasm32")]
mod local_gate {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::rc::Rc;
    use std::task::{Poll, Waker};

    #[derive(Default)]
    struct Stripe {
        held: Cell<bool>,
        waiting: RefCell<Vec<Waker>>,
    }

    thread_local! {
        /// The request being polled (0: none, as in the npm package).
        pub(super) static SCOPE: Cell<u64> = const { Cell::new(0) };
        static NEXT_SCOPE: Cell<u64> = const { Cell::new(1) };
        static STRIPES: RefCell<HashMap<(u64, usize), Rc<Stripe>>> = RefCell::new(HashMap::new());
    }

    pub(super) fn new_scope() -> u64 {
        NEXT_SCOPE.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        })
    }

    pub struct Held {
        stripe: Rc<Stripe>,
        key: (u64, usize),
    }

    impl Drop for Held {
        fn drop(&mut self) {
            self.stripe.held.set(false);
            // Every waiter checks again and one takes the gate: a waiter dropped while
            // waiting (a cancelled request) can never strand the others.
            // Nobody else has this stripe (only the map and this guard do): forget it, so
            // finished requests leave nothing behind.
            if Rc::strong_count(&self.stripe) == 2 {
                STRIPES.with(|s| s.borrow_mut().remove(&self.key));
            }
            let waiting = std::mem::take(&mut *self.stripe.waiting.borrow_mut());
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    pub async fn lock(stripe: usize) -> Held {
        let key = (SCOPE.with(Cell::get), stripe);
        let stripe = STRIPES.with(|s| s.borrow_mut().entry(key).or_default().clone());
        std::future::poll_fn(|cx| {
            if stripe.held.replace(true) {
                stripe.waiting.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        Held { stripe, key }
    }
}

/// Runs `request` as one request of a Worker: the retry gates it waits for are its own
/// (see `local_gate`). The scope is set while `request` is polled, so every future it
/// polls, however deeply joined, sees it.
#[cfg(target_arch = "wasm32")]
pub async fn request_scope<F: std::future::Future>(request: F) -> F::Output {
    let scope = local_gate::new_scope();
    let mut request = std::pin::pin!(request);
    std::future::poll_fn(|cx| {
        let outer = local_gate::SCOPE.with(|s| s.replace(scope));
        let polled = request.as_mut().poll(cx);
        local_gate::SCOPE.with(|s| s.set(outer));
        polled
    })
    .await
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_what_system_time_reads() {
        #[allow(clippy::disallowed_methods)] // the reference this clock must agree with
        let std_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let before = std_ms();
        let ours = SystemClock.now_ms();
        let after = std_ms();
        assert!(before <= ours && ours <= after, "{before} <= {ours} <= {after}");
    }

    #[test]
    fn a_timespec_becomes_milliseconds() {
        assert_eq!(unix_ms(1_800_000_000, 999_999_999), 1_800_000_000_999);
        assert_eq!(unix_ms(0, 1_000_000), 1);
        assert_eq!(unix_ms(-1, 0), 0);
        assert_eq!(unix_ms(1, 1_000_000_000), 0);
        assert_eq!(unix_ms(i64::MAX, 0), u64::MAX);
    }
}
