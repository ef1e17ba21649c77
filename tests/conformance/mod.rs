//! The native harness of the conformance suite (`tollgate::conformance`).
//!
//! A store's test file implements [`Factory`] and invokes
//! `conformance_suite!(FactoryType, attributes..)`, which writes one test per
//! case. Each test runs its case on a multi-threaded runtime, the racing
//! operations on tasks of their own; a skipped case passes and says why. With
//! `TG_TEST_CONFORMANCE_LOG` set, each test appends its outcome there (store,
//! case, outcome, reason or failure; tab-separated) and
//! `scripts/conformance-summary.sh` prints one line per store.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use tollgate::conformance::{self as suite, Outcome, RaceTask, Spawner, Subject};
use tollgate::{ManualClock, Store};

pub trait Factory: Default {
    /// The store's name in the CI log, e.g. `redis-cluster`.
    const LABEL: &'static str;
    /// The store under test and a second client on the same data (a clone of a memory
    /// store, another connection to Redis); `clock` is the case's time.
    fn make(&self, clock: Arc<ManualClock>) -> impl Future<Output = (Arc<dyn Store>, Arc<dyn Store>)>;
}

pub const SECRET: &[u8] = b"conformance-secret-of-at-least-32-bytes!";

pub fn real_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

pub fn unique_user(tag: &str) -> String {
    suite::unique_user(tag)
}

/// Racing operations on tokio tasks: on several threads of the test's runtime.
struct TokioTasks;

impl Spawner for TokioTasks {
    fn spawn(&self, task: RaceTask) -> LocalBoxFuture<'static, ()> {
        let handle = tokio::spawn(task);
        Box::pin(async move {
            // A task that panicked leaves no answer; the case reports it.
            let _ = handle.await;
        })
    }
}

/// Runs the case `name` on a store from `F`; panics (fails the cargo test) when it fails.
pub async fn run<F: Factory>(name: &str) {
    let case = suite::case(name).unwrap_or_else(|| panic!("the conformance suite has no case {name}"));
    let clock = suite::start_clock();
    let (store, peer) = F::default().make(clock.clone()).await;
    let subject = Subject::new(store, clock).with_peer(peer).with_spawner(Arc::new(TokioTasks));
    let outcome = suite::run_case(case, &subject).await;
    record(F::LABEL, name, &outcome);
    match outcome {
        Outcome::Passed => {}
        Outcome::Skipped(reason) => println!("conformance: {}: {name} skipped ({reason})", F::LABEL),
        Outcome::Failed(failure) => panic!("conformance: {}: {name} failed: {failure}", F::LABEL),
    }
}

/// Every case's outcome on stores from `make` (a fresh one per case), as the cargo tests run them.
pub async fn outcomes(make: impl Fn(Arc<ManualClock>) -> Arc<dyn Store>) -> Vec<(&'static str, Outcome)> {
    let mut all = Vec::new();
    for case in suite::cases() {
        let clock = suite::start_clock();
        let subject = Subject::new(make(clock.clone()), clock).with_spawner(Arc::new(TokioTasks));
        all.push((case.name, suite::run_case(case, &subject).await));
    }
    all
}

/// Appends one outcome to `$TG_TEST_CONFORMANCE_LOG`, when set.
fn record(label: &str, name: &str, outcome: &Outcome) {
    let Some(path) = std::env::var_os("TG_TEST_CONFORMANCE_LOG") else { return };
    let line = match outcome {
        Outcome::Passed => format!("{label}\t{name}\tpassed\t\n"),
        Outcome::Skipped(reason) => format!("{label}\t{name}\tskipped\t{reason}\n"),
        Outcome::Failed(failure) => format!("{label}\t{name}\tfailed\t{}\n", failure.to_string().replace(['\t', '\n'], " ")),
    };
    // One write of one short line in append mode: lines of parallel tests do not interleave.
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("the conformance log opens");
    log.write_all(line.as_bytes()).expect("the conformance log is writable");
}

/// Fails when the suite has a case that `listed` (the macro's list) lacks, or the other way round.
pub fn check_listed(listed: &[&str]) {
    let suite: Vec<&str> = suite::cases().iter().map(|c| c.name).collect();
    let missing: Vec<&&str> = suite.iter().filter(|n| !listed.contains(n)).collect();
    let unknown: Vec<&&str> = listed.iter().filter(|n| !suite.contains(n)).collect();
    assert!(missing.is_empty() && unknown.is_empty(), "conformance_suite! lacks {missing:?} and lists unknown {unknown:?}");
}

/// Writes one `#[tokio::test]` per case for the factory type `$factory`
/// (which must implement `Default`); extra attributes (like `#[ignore]`) apply to each.
///
/// A store's test file (say `tests/sql_store.rs`) runs the whole suite with:
///
/// ```ignore
/// mod conformance; // this folder: the harness and this macro
///
/// #[derive(Default)]
/// struct Postgres;
/// impl conformance::Factory for Postgres {
///     const LABEL: &'static str = "postgres"; // its name on the CI line
///     async fn make(&self, clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
///         // the store, and a second client on the same data (its own connection)
///     }
/// }
///
/// mod postgres {
///     use super::*;
///     // #[ignore]: the store needs a server, which the script that runs `--ignored` starts
///     conformance_suite!(Postgres, #[ignore]);
/// }
/// ```
///
/// Several stores in one file each get their own module (test names are the case names).
/// For the store's line in the CI log, the script sets `TG_TEST_CONFORMANCE_LOG` to a
/// file, runs the tests, then `bash scripts/conformance-summary.sh "$TG_TEST_CONFORMANCE_LOG"`
/// (which fails on any failed case), as `scripts/redis.sh` does.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:ty $(, #[$attr:meta])*) => {
        $crate::conformance_suite!(@suite $factory, [$(#[$attr])*], [
            store_get_missing_is_none, store_expectations, store_commit_is_all_or_nothing,
            store_past_expiry_is_invisible, store_appends, store_removes, full_flow, rotation_grace_and_reuse,
            reuse_detected_long_after_rotation, forged_refresh_secret_changes_nothing,
            idle_and_absolute_expiry, access_token_expiry, touch_writes_at_most_once_per_interval,
            revoke_all_keeps_current, metadata_update, user_cache, bad_input_changes_nothing,
            user_ids_with_reserved_characters, limit_evicts_oldest, single_session_mode, limit_refuses, limit_counts_touched_sessions_alive,
            revocation_seen_at_once_by_another_client, reuse_seen_at_once_by_another_client,
            racing_refreshes, racing_issues_respect_limit, revoke_racing_refresh
        ]);
    };
    (@suite $factory:ty, $attrs:tt, [$($case:ident),* $(,)?]) => {
        $( $crate::conformance_suite!(@case $factory, $attrs, $case); )*

        #[test]
        fn every_conformance_case_has_a_test() {
            conformance::check_listed(&[$(stringify!($case)),*]);
        }
    };
    (@case $factory:ty, [$($attr:tt)*], $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $($attr)*
        async fn $case() {
            conformance::run::<$factory>(stringify!($case)).await
        }
    };
}
