//! The npm package's Redis store, `tollgate/redis-store`: ioredis carries the
//! bytes, and this module decides them with the same [`codec`] as the native
//! `RedisStore`, so a Node service and a Rust service share sessions.
//!
//! The JS side (`pkg/redis-store.js`) is a transport object:
//! `{ kind: "tollgate-redis", prefix, defineCommit(script), mget(keys), commit(keys, args) }`.
//! `defineCommit` receives the commit script from this module (ioredis runs
//! it by `EVALSHA`, falling back to `EVAL`); `mget` resolves to one
//! `Uint8Array` or `null` per key; `commit` resolves to the script's answer.

use bytes::Bytes;
use js_sys::{Array, Function};
use wasm_bindgen::JsValue;

use super::codec::{self, ErrorReply, KeyPrefix, COMMIT_SCRIPT};
use crate::engine::error::Error;
use crate::engine::step::{Versioned, WriteOp};
use crate::store::js::{bytes, call_raw, describe, entries, method, prop, uint8_array};
use crate::store::{Caps, CommitResult, Store, StoreError};

/// What `redisStore()` puts in its transport's `kind`.
const KIND: &str = "tollgate-redis";

/// The Redis store over a JS client.
pub struct JsRedisStore {
    transport: JsValue,
    mget: Function,
    commit: Function,
    prefix: KeyPrefix,
}

impl std::fmt::Debug for JsRedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsRedisStore").field("prefix", &self.prefix.as_str()).finish_non_exhaustive()
    }
}

/// A failed call: a key of another Redis type is not tollgate's data; anything else is the store being unreachable.
fn failure(name: &str, e: &JsValue) -> StoreError {
    let text = describe(e);
    match codec::classify_error(&text) {
        ErrorReply::WrongType => StoreError::corrupt(format!("redis {name}: a key holds another Redis type than tollgate writes ({text})")),
        ErrorReply::Refused | ErrorReply::Other => StoreError::unavailable(format!("redis {name} failed: {text}")),
    }
}

impl JsRedisStore {
    /// Whether `store` is a transport made by `redisStore()`.
    pub fn is_transport(store: &JsValue) -> bool {
        store.is_object() && prop(store, "kind").as_string().as_deref() == Some(KIND)
    }

    /// Takes the transport's methods and prefix, and hands it the commit script.
    pub fn new(transport: JsValue) -> Result<Self, Error> {
        let need = || Error::config("a Redis store comes from redisStore(client, { prefix }) of tollgate/redis-store");
        let mget = method(&transport, "mget").ok_or_else(need)?;
        let commit = method(&transport, "commit").ok_or_else(need)?;
        let define = method(&transport, "defineCommit").ok_or_else(need)?;
        let prefix = match prop(&transport, "prefix") {
            p if p.is_undefined() => KeyPrefix::default(),
            p => KeyPrefix::new(p.as_string().ok_or_else(|| Error::config("the Redis key prefix is a string"))?)?,
        };
        define
            .call1(&transport, &JsValue::from_str(COMMIT_SCRIPT))
            .map_err(|e| Error::config(format!("the Redis client refused the commit script: {}", describe(&e))))?;
        Ok(JsRedisStore { transport, mget, commit, prefix })
    }
}

#[async_trait::async_trait(?Send)]
impl Store for JsRedisStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Array = keys.iter().map(|k| JsValue::from_str(&self.prefix.key(k))).collect();
        let answer = call_raw(&self.transport, &self.mget, &Array::of1(&full)).await.map_err(|e| failure("read", &e))?;
        let shape = || StoreError::corrupt("mget() must resolve to one Uint8Array or null per key");
        let items = entries(&answer, keys.len())
            .ok_or_else(shape)?
            .into_iter()
            .map(|v| if v.is_null() || v.is_undefined() { Ok(None) } else { bytes(&v).map(|b| Some(Bytes::from(b))).ok_or_else(shape) })
            .collect::<Result<Vec<_>, _>>()?;
        codec::decode_values(items, keys.len())
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        Ok(self.commit_versioned(&ops).await?.0)
    }

    /// Every put of a commit carries the commit's version, chosen here.
    async fn commit_versioned(&self, ops: &[WriteOp]) -> Result<(CommitResult, Option<u64>), StoreError> {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|_| StoreError::unavailable("crypto.getRandomValues failed"))?;
        let version = codec::commit_version(random);
        if ops.is_empty() {
            return Ok((CommitResult::Committed, Some(version)));
        }
        let call = codec::encode_commit(&self.prefix, ops, version);
        let keys: Array = call.keys.iter().map(|k| JsValue::from_str(k)).collect();
        let args: Array = call.args.iter().map(|a| uint8_array(a)).collect();
        let answer = call_raw(&self.transport, &self.commit, &Array::of2(&keys, &args)).await.map_err(|e| failure("commit", &e))?;
        match answer.as_f64() {
            Some(n) if n.fract() == 0.0 => Ok((codec::commit_result(n as i64)?, Some(version))),
            _ => Err(StoreError::corrupt("the commit script answered something other than 0 or 1")),
        }
    }

    fn caps(&self) -> Caps {
        Caps { atomic: true, consistent: true, min_ttl_ms: 1, lists: true }
    }
}
