//! The user-info cache: one value per user with its own expiry. The loader
//! (a Rust async fn, a JS function) is the driver's business: the manager runs
//! `CacheGet`, calls the loader on a miss, and runs `CachePut`.

use bytes::Bytes;
use serde_json::Value;

use super::*;
use crate::engine::record::{user_cache_key, CachedUser};
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::check_user_id;

/// Answers the cached info, or `None` on a miss or an expired entry.
pub struct CacheGet {
    now: u64,
    pending: Pending<Option<Value>>,
}

impl CacheGet {
    pub fn new(user: &str, now: u64) -> Self {
        let pending = match check_user_id(user) {
            Ok(()) => Pending::Store(StoreCmd::Get { keys: vec![user_cache_key(user)] }),
            Err(e) => done(Err(e)),
        };
        CacheGet { now, pending }
    }
}

impl Operation for CacheGet {
    type Output = Option<Value>;
    fn poll(&mut self) -> Step<Option<Value>> {
        self.pending.take()
    }
    fn handle(&mut self, reply: Reply) {
        self.pending = match values(reply, 1) {
            None => unexpected(),
            Some(mut v) => match v.pop().flatten() {
                None => done(Ok(None)),
                Some(slot) => match CachedUser::decode(&slot.value) {
                    Ok(c) if c.expires_at > self.now => done(Ok(Some(c.info))),
                    Ok(_) => done(Ok(None)),
                    Err(e) => done(Err(e)),
                },
            },
        };
    }
}

/// Stores (or replaces) a user's info for `ttl_ms`.
pub struct CachePut {
    pending: Pending<()>,
}

impl CachePut {
    pub fn new(rules: &Rules, user: &str, info: Value, ttl_ms: Option<u64>, now: u64) -> Self {
        let pending = match check_user_id(user).and_then(|()| check_metadata(rules, &info)) {
            Ok(()) => {
                let expires_at = now + ttl_ms.unwrap_or(rules.policy.user_cache_ttl_ms).max(1);
                let value = CachedUser { v: 1, expires_at, info }.encode();
                Pending::Store(StoreCmd::Commit {
                    ops: vec![WriteOp::Put { key: user_cache_key(user), value: Bytes::from(value), expect: Expect::Any, expires_at }],
                })
            }
            Err(e) => done(Err(e)),
        };
        CachePut { pending }
    }
}

/// Removes a user's cached info.
pub struct CacheDelete {
    pending: Pending<()>,
}

impl CacheDelete {
    pub fn new(user: &str) -> Self {
        let pending = match check_user_id(user) {
            Ok(()) => Pending::Store(StoreCmd::Commit { ops: vec![WriteOp::Delete { key: user_cache_key(user), expect: Expect::Any }] }),
            Err(e) => done(Err(e)),
        };
        CacheDelete { pending }
    }
}

macro_rules! unconditional_commit_op {
    ($t:ty) => {
        impl Operation for $t {
            type Output = ();
            fn poll(&mut self) -> Step<()> {
                self.pending.take()
            }
            fn handle(&mut self, reply: Reply) {
                // Writes expecting `Any` cannot conflict.
                self.pending = match commit_outcome(&reply) {
                    CommitOutcome::Committed => done(Ok(())),
                    _ => unexpected(),
                };
            }
        }
    };
}
unconditional_commit_op!(CachePut);
unconditional_commit_op!(CacheDelete);
