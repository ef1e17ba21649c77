//! The conformance suite (feature `conformance`): what every [`Store`](crate::Store)
//! must do, run on every store and on every target.
//!
//! A case is an async function of a [`Subject`]: the store under test, a second
//! client on the same data, the one user whose keys the case may touch (a
//! Durable Object holds one user), and a [`ManualClock`](crate::ManualClock) the
//! case moves (stores that keep real time ignore it; validity always comes from
//! the times written in each record). A case answers `Ok(())` or the
//! [`Failure`] of the first check that did not hold; no check panics.
//!
//! Each case says what it [`Needs`] of the store. [`run_case`] skips a case the
//! store's [`Caps`] say it cannot pass (or that needs several users of a store
//! that holds one, a Durable Object), and says why.
//!
//! Races are `futures` joins, so they run anywhere (in wasm they interleave at
//! the store's awaits); a native harness may hand in a [`Spawner`] so that the
//! racing operations run on several threads.
//!
//! Harnesses: `tests/memory_store.rs` and `tests/redis_store.rs` (one cargo test
//! per case); [`wasm`] exports the suite to JavaScript for stores written in JS
//! (`js/test/conformance.mjs`); [`workerd`] adds test-only routes to the Worker
//! for Workers KV and Durable Objects (`js/worker/test/conformance.mjs`). Each
//! prints one line per store, e.g. `conformance: workers-kv: 20 passed, 5 skipped (...)`.
#![allow(clippy::disallowed_methods)] // a test suite: it picks random user ids

mod check;
mod clients;
mod limits;
mod races;
mod sessions;
mod setup;
mod store_contract;
mod users;
#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod wasm;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod workerd;

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::store::Caps;
pub use check::Failure;
pub use races::{MaybeSend, RaceTask, Spawner};
pub use setup::{start_clock, unique_user, Subject};

/// What a case answers: nothing, or the check that failed.
pub type Checked = Result<(), Failure>;

/// The skip reason of a case that needs an atomic commit.
pub const NEEDS_ATOMIC: &str = "needs atomic commit";
/// The skip reason of a case that needs reads to see every acknowledged write, from anywhere.
pub const NEEDS_CONSISTENT: &str = "needs consistent reads";
/// The skip reason of a case that needs several users' keys in one store.
pub const NEEDS_SEVERAL_USERS: &str = "needs several users in one store";

/// What a case relies on beyond the store contract itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Racing commits: all-or-nothing, expectations checked at the moment of writing.
    pub atomic: bool,
    /// A second client sees a write the moment it is acknowledged.
    pub consistent: bool,
    /// Keys of several users side by side (a Durable Object holds one user's).
    pub several_users: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs { atomic: false, consistent: false, several_users: false };
    pub const ATOMIC: Needs = Needs { atomic: true, ..Needs::NOTHING };
    pub const CONSISTENT: Needs = Needs { consistent: true, ..Needs::NOTHING };
    pub const SEVERAL_USERS: Needs = Needs { several_users: true, ..Needs::NOTHING };

    /// Why a store with `caps` (holding one user's keys only, if `one_user`) cannot pass a
    /// case with these needs, if it cannot.
    pub fn unmet_by(self, caps: Caps, one_user: bool) -> Option<&'static str> {
        if self.atomic && !caps.atomic {
            Some(NEEDS_ATOMIC)
        } else if self.consistent && !caps.consistent {
            Some(NEEDS_CONSISTENT)
        } else if self.several_users && one_user {
            Some(NEEDS_SEVERAL_USERS)
        } else {
            None
        }
    }
}

/// One case of the suite.
pub struct Case {
    pub name: &'static str,
    pub needs: Needs,
    run: for<'a> fn(&'a Subject) -> LocalBoxFuture<'a, Checked>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).field("needs", &self.needs).finish()
    }
}

macro_rules! case {
    ($module:ident :: $name:ident, $needs:expr) => {
        Case { name: stringify!($name), needs: $needs, run: |subject| Box::pin($module::$name(subject)) }
    };
}

static CASES: &[Case] = &[
    case!(store_contract::store_get_missing_is_none, Needs::NOTHING),
    case!(store_contract::store_expectations, Needs::NOTHING),
    case!(store_contract::store_commit_is_all_or_nothing, Needs::NOTHING),
    case!(store_contract::store_past_expiry_is_invisible, Needs::NOTHING),
    case!(store_contract::store_appends, Needs::NOTHING),
    case!(store_contract::store_removes, Needs::NOTHING),
    case!(sessions::full_flow, Needs::NOTHING),
    case!(sessions::rotation_grace_and_reuse, Needs::NOTHING),
    case!(sessions::reuse_detected_long_after_rotation, Needs::NOTHING),
    case!(sessions::forged_refresh_secret_changes_nothing, Needs::NOTHING),
    case!(sessions::idle_and_absolute_expiry, Needs::NOTHING),
    case!(sessions::access_token_expiry, Needs::NOTHING),
    case!(sessions::touch_writes_at_most_once_per_interval, Needs::NOTHING),
    case!(sessions::revoke_all_keeps_current, Needs::NOTHING),
    case!(sessions::metadata_update, Needs::NOTHING),
    case!(sessions::user_cache, Needs::NOTHING),
    case!(sessions::bad_input_changes_nothing, Needs::NOTHING),
    case!(users::user_ids_with_reserved_characters, Needs::SEVERAL_USERS),
    case!(limits::limit_evicts_oldest, Needs::NOTHING),
    case!(limits::single_session_mode, Needs::NOTHING),
    case!(limits::limit_refuses, Needs::NOTHING),
    case!(limits::limit_counts_touched_sessions_alive, Needs::NOTHING),
    case!(clients::revocation_seen_at_once_by_another_client, Needs::CONSISTENT),
    case!(clients::reuse_seen_at_once_by_another_client, Needs::CONSISTENT),
    case!(races::racing_refreshes, Needs::ATOMIC),
    case!(races::racing_issues_respect_limit, Needs::ATOMIC),
    case!(races::revoke_racing_refresh, Needs::ATOMIC),
];

/// Every case, in the order harnesses run them.
pub fn cases() -> &'static [Case] {
    CASES
}

/// The case named `name`.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// The case list as JSON: `[{ name, needs: { atomic, consistent, severalUsers } }]`, for the JS harnesses.
pub fn cases_json() -> Value {
    let needs = |n: Needs| json!({ "atomic": n.atomic, "consistent": n.consistent, "severalUsers": n.several_users });
    CASES.iter().map(|c| json!({ "name": c.name, "needs": needs(c.needs) })).collect()
}

/// How a case went on one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Not run: the store cannot pass it ([`NEEDS_ATOMIC`], [`NEEDS_CONSISTENT`], [`NEEDS_SEVERAL_USERS`]).
    Skipped(&'static str),
    Failed(Failure),
}

impl Outcome {
    /// `{ outcome: "passed" }`, `{ outcome: "skipped", reason }` or `{ outcome: "failed", failure }`.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Passed => json!({ "outcome": "passed" }),
            Outcome::Skipped(reason) => json!({ "outcome": "skipped", "reason": reason }),
            Outcome::Failed(failure) => json!({ "outcome": "failed", "failure": failure.to_string() }),
        }
    }
}

/// Runs `case` on `subject`, or skips it when the store cannot pass it.
pub async fn run_case(case: &Case, subject: &Subject) -> Outcome {
    if let Some(reason) = case.needs.unmet_by(subject.caps(), subject.holds_one_user()) {
        return Outcome::Skipped(reason);
    }
    match (case.run)(subject).await {
        Ok(()) => Outcome::Passed,
        Err(failure) => Outcome::Failed(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_needs_are_checked_against_caps() {
        let mut names: Vec<&str> = cases().iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cases().len());
        let kv = Caps { atomic: false, consistent: false, min_ttl_ms: 60_000, lists: false };
        assert_eq!(Needs::ATOMIC.unmet_by(kv, false), Some(NEEDS_ATOMIC));
        assert_eq!(Needs::CONSISTENT.unmet_by(kv, false), Some(NEEDS_CONSISTENT));
        assert_eq!(Needs::NOTHING.unmet_by(kv, false), None);
        assert_eq!(Needs::SEVERAL_USERS.unmet_by(kv, false), None);
        let sentinel = Caps { atomic: true, consistent: false, min_ttl_ms: 1, lists: false };
        assert_eq!(Needs::ATOMIC.unmet_by(sentinel, false), None);
        assert_eq!(Needs::CONSISTENT.unmet_by(sentinel, false), Some(NEEDS_CONSISTENT));
        let durable = Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false };
        assert_eq!(Needs::SEVERAL_USERS.unmet_by(durable, true), Some(NEEDS_SEVERAL_USERS));
        assert_eq!(Needs::ATOMIC.unmet_by(durable, true), None);
    }
}
