//! Prometheus metrics, natively: a counter per operation and outcome, a latency
//! histogram per operation, and a counter per security event. Lock-free (one
//! atomic add per observation). Labels are operation names, error codes and
//! event names only: never user ids, session ids or tokens.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::error::ErrorCode;

/// The operations the manager runs, in label order.
pub const OPS: &[&str] = &[
    "issue",
    "verify_stateless",
    "verify_strict",
    "refresh",
    "revoke",
    "revoke_all",
    "list",
    "update_metadata",
    "user_cache_get",
    "user_cache_put",
    "user_cache_delete",
];

/// Security events worth an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A rotated refresh token came back after the grace window; the session was revoked.
    ReuseDetected,
    /// A new session was refused at the per-user limit.
    LimitRefused,
    /// An old session was revoked to make room at the per-user limit.
    LimitEvicted,
    /// A commit conflicted and the operation was retried.
    ConflictRetried,
    /// A refresh rotated from the manager's memory of its commits: one round trip.
    RefreshFromMemory,
    /// A revoke committed on that memory (its record remembered): one round trip.
    RevokeFromMemory,
    /// A commit made on that memory conflicted (another process wrote since); the operation read.
    MemoryStale,
}

const EVENTS: &[(SecurityEvent, &str)] = &[
    (SecurityEvent::ReuseDetected, "reuse_detected"),
    (SecurityEvent::LimitRefused, "limit_refused"),
    (SecurityEvent::LimitEvicted, "limit_evicted"),
    (SecurityEvent::ConflictRetried, "conflict_retried"),
    (SecurityEvent::RefreshFromMemory, "refresh_from_memory"),
    (SecurityEvent::RevokeFromMemory, "revoke_from_memory"),
    (SecurityEvent::MemoryStale, "memory_stale"),
];

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: &[u64] = &[50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

struct OpStats {
    /// Index 0 is "ok"; index i + 1 is `ErrorCode::ALL[i]`.
    outcomes: Vec<AtomicU64>,
    /// One per bucket, plus +Inf.
    buckets: Vec<AtomicU64>,
    sum_us: AtomicU64,
}

pub struct Metrics {
    ops: Vec<OpStats>,
    events: Vec<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let counters = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Metrics {
            ops: OPS
                .iter()
                .map(|_| OpStats {
                    outcomes: counters(ErrorCode::ALL.len() + 1),
                    buckets: counters(BUCKETS_US.len() + 1),
                    sum_us: AtomicU64::new(0),
                })
                .collect(),
            events: counters(EVENTS.len()),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one finished operation. Unknown names are ignored.
    pub fn observe(&self, op: &str, outcome: Result<(), ErrorCode>, elapsed: Duration) {
        let Some(i) = OPS.iter().position(|o| *o == op) else { return };
        let stats = &self.ops[i];
        let slot = match outcome {
            Ok(()) => 0,
            Err(code) => ErrorCode::ALL.iter().position(|c| *c == code).map_or(0, |p| p + 1),
        };
        stats.outcomes[slot].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(BUCKETS_US.len());
        stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stats.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn event(&self, event: SecurityEvent, count: u64) {
        if let Some(i) = EVENTS.iter().position(|(e, _)| *e == event) {
            self.events[i].fetch_add(count, Ordering::Relaxed);
        }
    }

    pub fn event_count(&self, event: SecurityEvent) -> u64 {
        EVENTS.iter().position(|(e, _)| *e == event).map_or(0, |i| self.events[i].load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tollgate_operations_total Session operations by name and outcome (ok or an error code).\n");
        out.push_str("# TYPE tollgate_operations_total counter\n");
        for (op, stats) in OPS.iter().zip(&self.ops) {
            for (slot, counter) in stats.outcomes.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n == 0 && slot != 0 {
                    continue;
                }
                let outcome = if slot == 0 { "ok" } else { ErrorCode::ALL[slot - 1].as_str() };
                let _ = writeln!(out, "tollgate_operations_total{{op=\"{op}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        out.push_str("# HELP tollgate_operation_duration_seconds Latency of session operations, store round trips included.\n");
        out.push_str("# TYPE tollgate_operation_duration_seconds histogram\n");
        for (op, stats) in OPS.iter().zip(&self.ops) {
            let mut cumulative = 0;
            for (i, counter) in stats.buckets.iter().enumerate() {
                cumulative += counter.load(Ordering::Relaxed);
                let le = BUCKETS_US.get(i).map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
                let _ = writeln!(out, "tollgate_operation_duration_seconds_bucket{{op=\"{op}\",le=\"{le}\"}} {cumulative}");
            }
            let sum = stats.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "tollgate_operation_duration_seconds_sum{{op=\"{op}\"}} {sum}");
            let _ = writeln!(out, "tollgate_operation_duration_seconds_count{{op=\"{op}\"}} {cumulative}");
        }
        out.push_str("# HELP tollgate_security_events_total Refresh-token reuse, session-limit hits and retried conflicts.\n");
        out.push_str("# TYPE tollgate_security_events_total counter\n");
        for ((_, name), counter) in EVENTS.iter().zip(&self.events) {
            let _ = writeln!(out, "tollgate_security_events_total{{event=\"{name}\"}} {}", counter.load(Ordering::Relaxed));
        }
        out
    }
}
