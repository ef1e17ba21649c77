//! The eviction check (issue 11, finding 3): under any `maxmemory-policy` but `noeviction`,
//! Redis may drop a user's session index when memory runs short, after which revoke-all
//! misses that user's sessions and the per-user limit undercounts. The store reads the
//! policy of every master at connect and refuses (or warns about) any other policy.

use std::time::Duration;

use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::Value;

use super::calls::{describe, Backend};
use super::config::config_error;
use crate::engine::error::Error;

/// What the store does at connect when a master's `maxmemory-policy` may evict keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvictionPolicyCheck {
    /// Refuse to connect (`config_invalid`): the default, because eviction silently breaks
    /// revoke-all and the session limit, and the fix is one server setting.
    #[default]
    Refuse,
    /// Connect, and log a warning naming the policy (the operator accepts the risk).
    Warn,
}

/// The one policy under which Redis never drops a key to free memory.
const SAFE_POLICY: &str = "noeviction";

/// Every `maxmemory-policy` value found in a `CONFIG GET` reply (one per master in a cluster).
fn policies(reply: &Value, out: &mut Vec<String>) {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match reply {
        Value::Array(items) | Value::Set(items) => {
            let mut iter = items.iter().peekable();
            while let Some(item) = iter.next() {
                if text(item).as_deref() == Some("maxmemory-policy") {
                    if let Some(policy) = iter.next().and_then(text) {
                        out.push(policy);
                    }
                } else {
                    policies(item, out);
                }
            }
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                match text(k).as_deref() {
                    Some("maxmemory-policy") => out.extend(text(v)),
                    _ => policies(v, out),
                }
            }
        }
        _ => {}
    }
}

/// Sends `cmd` to the master (to every master of a cluster, answered one reply per node).
async fn ask(backend: &Backend, cmd: redis::Cmd) -> Result<Value, redis::RedisError> {
    match backend {
        Backend::Single(conn) => cmd.query_async(&mut conn.clone()).await,
        Backend::Sentinel(s) => cmd.query_async(&mut s.current().reads.clone()).await,
        Backend::Cluster(conn) => {
            let route = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::Special)));
            conn.clone().route_command(cmd, route).await
        }
    }
}

/// Refuses or warns when a master may evict keys. A server that will not say (a managed
/// Redis without `CONFIG`, an ACL without `config|get`) is warned about, never refused.
pub(super) async fn check(backend: &Backend, mode: EvictionPolicyCheck, timeout: Duration) -> Result<(), Error> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
    let reply = match tokio::time::timeout(timeout, ask(backend, cmd)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return unknown(&describe(&e)),
        Err(_) => return unknown("timed out"),
    };
    let mut found = Vec::new();
    policies(&reply, &mut found);
    if found.is_empty() {
        return unknown("no maxmemory-policy in the reply");
    }
    let Some(evicting) = found.iter().find(|p| p.as_str() != SAFE_POLICY) else {
        return Ok(());
    };
    match mode {
        EvictionPolicyCheck::Refuse => Err(config_error(format!(
            "Redis runs with maxmemory-policy `{evicting}`, which may evict tollgate's keys (a lost session index makes \
             revoke-all miss sessions and the per-user limit undercount): set `maxmemory-policy noeviction` on every \
             master, or connect with RedisConfig::eviction_policy_check(EvictionPolicyCheck::Warn) to accept the risk"
        ))),
        EvictionPolicyCheck::Warn => {
            tracing::warn!(
                target: "tollgate::redis",
                policy = evicting.as_str(),
                "Redis may evict tollgate's keys under this maxmemory-policy; set `noeviction`"
            );
            Ok(())
        }
    }
}

/// The keys Redis has evicted since it started (INFO `evicted_keys`), summed over every
/// master; `None` when a server will not say. Any count above zero means tollgate's keys may
/// be among them: an index that lost entries (revoke-all and the limit miss sessions) or a
/// revocation marker (see `docs/store-format.md`).
pub(super) async fn evicted_keys(backend: &Backend, timeout: Duration) -> Option<u64> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("stats");
    let reply = tokio::time::timeout(timeout, ask(backend, cmd)).await.ok()?.ok()?;
    let mut counts = Vec::new();
    evicted_counts(&reply, &mut counts);
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// Every `evicted_keys:<n>` line of the INFO texts in a reply (one text per master).
fn evicted_counts(reply: &Value, out: &mut Vec<u64>) {
    let mut scan = |text: &str| out.extend(text.lines().filter_map(|l| l.strip_prefix("evicted_keys:")?.trim().parse::<u64>().ok()));
    match reply {
        Value::BulkString(b) => scan(&String::from_utf8_lossy(b)),
        Value::SimpleString(s) => scan(s),
        Value::VerbatimString { text, .. } => scan(text),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|v| evicted_counts(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| evicted_counts(v, out)),
        _ => {}
    }
}

/// Logs a warning when Redis has already evicted keys: whatever the policy is now, data
/// tollgate relies on may be gone (the loss is detectable, not silent).
pub(super) async fn warn_if_evicted(backend: &Backend, timeout: Duration) {
    if let Some(count) = evicted_keys(backend, timeout).await.filter(|&n| n > 0) {
        tracing::warn!(
            target: "tollgate::redis",
            evicted_keys = count,
            "Redis has evicted keys since it started (INFO evicted_keys); tollgate's session indexes or revocation \
             markers may be among them: run Redis with `maxmemory-policy noeviction`, and revoke-all affected users"
        );
    }
}

/// A policy that could not be read: a warning, never a refusal.
fn unknown(why: &str) -> Result<(), Error> {
    tracing::warn!(
        target: "tollgate::redis",
        reason = why,
        "could not read Redis's maxmemory-policy; make sure it is `noeviction` (any other policy may evict session indexes)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicted_counts_are_read_from_every_master() {
        let info = |n: u64| {
            Value::BulkString(format!("# Stats\r\ntotal_connections_received:3\r\nevicted_keys:{n}\r\nexpired_keys:9\r\n").into_bytes())
        };
        let mut out = Vec::new();
        evicted_counts(&info(4), &mut out);
        evicted_counts(&Value::Map(vec![(bulk("127.0.0.1:7000"), info(0)), (bulk("127.0.0.1:7001"), info(7))]), &mut out);
        assert_eq!(out, vec![4, 0, 7]);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn the_policy_is_found_in_each_reply_shape() {
        let mut out = Vec::new();
        policies(&Value::Array(vec![bulk("maxmemory-policy"), bulk("volatile-lru")]), &mut out);
        policies(&Value::Map(vec![(bulk("maxmemory-policy"), bulk("noeviction"))]), &mut out);
        // A cluster's per-node answers (ResponsePolicy::Special): node -> reply.
        let per_node = Value::Map(vec![
            (bulk("127.0.0.1:7000"), Value::Array(vec![bulk("maxmemory-policy"), bulk("noeviction")])),
            (bulk("127.0.0.1:7001"), Value::Map(vec![(bulk("maxmemory-policy"), bulk("allkeys-lru"))])),
        ]);
        policies(&per_node, &mut out);
        assert_eq!(out, ["volatile-lru", "noeviction", "noeviction", "allkeys-lru"]);
        let mut none = Vec::new();
        policies(&Value::Array(vec![]), &mut none);
        assert!(none.is_empty());
    }
}
