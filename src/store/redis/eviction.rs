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

/// Asks the master (every master of a cluster) for its policy.
async fn ask(backend: &Backend) -> Result<Value, redis::RedisError> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
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
    let reply = match tokio::time::timeout(timeout, ask(backend)).await {
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
