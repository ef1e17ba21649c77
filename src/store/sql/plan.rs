//! What a commit writes, decided from what the database holds: the one commit
//! algorithm every SQL dialect and D1 run. Pure (no IO, no clock): the caller
//! reads the rows, passes `now`, and executes the plan.
//!
//! Every commit moves its tags' version counters, so a counter that did not
//! change since it was read proves no other commit touched the tag (the D1
//! store checks exactly that inside its write batch).

use bytes::Bytes;

use crate::engine::record::hash_tag;
use crate::engine::step::WriteOp;

/// Versions never go below the clock in microseconds: a counter that was swept
/// and starts again still gives versions above every one it gave before.
pub fn version_floor(now_ms: u64) -> u64 {
    now_ms.saturating_mul(1000)
}

/// A tag's version counter as read: `None` when it has no row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRow {
    pub version: u64,
    /// No value this counter versioned lives past this (unix ms).
    pub expires_at: u64,
}

/// One row write of a plan, in the order the commit listed them (one per key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowWrite {
    Put { key: String, tag: String, version: u64, expires_at: u64, value: Bytes },
    Delete { key: String },
}

/// A tag's counter after the commit, and what it held before (for D1's check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterWrite {
    pub tag: String,
    pub seen: Option<u64>,
    pub version: u64,
    pub expires_at: u64,
}

/// Everything a commit writes: rows, then counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub rows: Vec<RowWrite>,
    pub counters: Vec<CounterWrite>,
}

/// The distinct hash tags of a commit, sorted: the order in which row locks
/// are taken, so two commits over the same tags cannot deadlock.
pub fn tags(ops: &[WriteOp]) -> Vec<String> {
    let mut tags: Vec<String> = ops.iter().map(|op| hash_tag(op.key()).to_owned()).collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// The keys whose live version the commit must know (every expectation but `Any`).
pub fn checked_keys(ops: &[WriteOp]) -> Vec<String> {
    let mut keys: Vec<String> =
        ops.iter().filter(|op| op.expect() != crate::engine::step::Expect::Any).map(|op| op.key().to_owned()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Checks every expectation against `live` (the live version of each checked
/// key: `None` when absent or expired) and, when all hold, answers the writes:
/// each put gets the next version of its tag's counter; a put already expired
/// at `now_ms` is a delete; a key written twice keeps its last write.
/// `None` is a conflict: nothing may be written.
pub fn plan(ops: &[WriteOp], live: impl Fn(&str) -> Option<u64>, counters: &[(String, Option<CounterRow>)], now_ms: u64) -> Option<Plan> {
    if !ops.iter().all(|op| op.expect().admits(live(op.key()))) {
        return None;
    }
    let mut next: Vec<CounterWrite> = counters
        .iter()
        .map(|(tag, row)| {
            let last = row.map_or(0, |r| r.version);
            CounterWrite {
                tag: tag.clone(),
                seen: row.map(|r| r.version),
                // Every commit moves the counter, deletes too (see the module docs).
                version: last.saturating_add(1).max(version_floor(now_ms)),
                expires_at: row.map_or(0, |r| r.expires_at),
            }
        })
        .collect();
    let mut given = vec![false; next.len()];
    let mut rows: Vec<RowWrite> = Vec::with_capacity(ops.len());
    for op in ops {
        let write = match op {
            WriteOp::Put { key, value, expires_at, .. } if *expires_at > now_ms => {
                let tag = hash_tag(key);
                let i = next.iter().position(|c| c.tag == tag)?;
                let counter = &mut next[i];
                // The first put takes the counter's next version, each later one the one after.
                if std::mem::replace(&mut given[i], true) {
                    counter.version = counter.version.saturating_add(1);
                }
                counter.expires_at = counter.expires_at.max(*expires_at);
                RowWrite::Put {
                    key: key.clone(),
                    tag: tag.to_owned(),
                    version: counter.version,
                    expires_at: *expires_at,
                    value: value.clone(),
                }
            }
            WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => RowWrite::Delete { key: key.clone() },
            // The SQL stores refuse appends before planning (their caps say they do not apply them).
            WriteOp::Append { .. } | WriteOp::Remove { .. } => return None,
        };
        let key = match &write {
            RowWrite::Put { key, .. } | RowWrite::Delete { key } => key.as_str(),
        };
        rows.retain(|w| !matches!(w, RowWrite::Put { key: k, .. } | RowWrite::Delete { key: k } if k == key));
        rows.push(write);
    }
    Some(Plan { rows, counters: next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::Expect;

    const NOW: u64 = 1_700_000_000_000;

    fn put(key: &str, expect: Expect, expires_at: u64) -> WriteOp {
        WriteOp::Put { key: key.into(), value: Bytes::from_static(b"v"), expect, expires_at }
    }

    fn counters(ops: &[WriteOp], row: Option<CounterRow>) -> Vec<(String, Option<CounterRow>)> {
        tags(ops).into_iter().map(|t| (t, row)).collect()
    }

    #[test]
    fn a_failed_expectation_writes_nothing() {
        let ops = [put("i:{u:a}", Expect::Absent, NOW + 1), put("s:{u:a}:x", Expect::Version(7), NOW + 1)];
        let live = |k: &str| (k == "s:{u:a}:x").then_some(8);
        assert_eq!(plan(&ops, live, &counters(&ops, None), NOW), None);
        let live = |k: &str| (k == "s:{u:a}:x").then_some(7);
        assert!(plan(&ops, live, &counters(&ops, None), NOW).is_some());
    }

    #[test]
    fn versions_rise_past_the_counter_and_the_clock() {
        let ops = [put("i:{u:a}", Expect::Any, NOW + 10), put("s:{u:a}:x", Expect::Any, NOW + 99)];
        let high = Some(CounterRow { version: version_floor(NOW) + 5, expires_at: NOW + 50 });
        let p = plan(&ops, |_| None, &counters(&ops, high), NOW).unwrap();
        let versions: Vec<u64> = p.rows.iter().map(|w| if let RowWrite::Put { version, .. } = w { *version } else { 0 }).collect();
        assert_eq!(versions, vec![version_floor(NOW) + 6, version_floor(NOW) + 7]);
        assert_eq!(p.counters[0].version, version_floor(NOW) + 7);
        assert_eq!(p.counters[0].expires_at, NOW + 99, "the counter outlives every value it versioned");
        assert_eq!(p.counters[0].seen, Some(version_floor(NOW) + 5));
        // A swept counter starts again from the clock, above what it gave before.
        let p = plan(&ops, |_| None, &counters(&ops, None), NOW + 1).unwrap();
        assert!(matches!(p.rows[0], RowWrite::Put { version, .. } if version == version_floor(NOW + 1)));
    }

    #[test]
    fn an_expired_put_is_a_delete_and_the_last_write_to_a_key_wins() {
        let ops = [
            put("i:{u:a}", Expect::Any, NOW),
            put("s:{u:a}:x", Expect::Any, NOW + 1),
            WriteOp::Delete { key: "s:{u:a}:x".into(), expect: Expect::Any },
        ];
        let p = plan(&ops, |_| None, &counters(&ops, None), NOW).unwrap();
        assert_eq!(p.rows, vec![RowWrite::Delete { key: "i:{u:a}".into() }, RowWrite::Delete { key: "s:{u:a}:x".into() }]);
        assert_eq!(p.counters[0].version, version_floor(NOW), "deletes move the counter too");
    }

    #[test]
    fn tags_are_sorted_and_distinct() {
        let ops = [put("s:{u:b}:1", Expect::Any, NOW), put("i:{u:a}", Expect::Any, NOW), put("i:{u:b}", Expect::Absent, NOW)];
        assert_eq!(tags(&ops), vec!["u:a", "u:b"]);
        assert_eq!(checked_keys(&ops), vec!["i:{u:b}"]);
    }
}
