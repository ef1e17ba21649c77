//! A store written in JavaScript: any object with async `get(keys)` and
//! `commit(ops)` (over ioredis, Deno KV, a Map, anything).
//!
//! # The shapes (JSON-compatible, documented for users in pkg/README.md)
//!
//! `get(keys: string[])` resolves to an array with one entry per key, in order:
//! `null` for a missing or expired key, else
//! `{ value: string, version: number | string }`. `version` is a non-negative
//! integer (a number, or a decimal string for counters past 2^53).
//!
//! `commit(ops)` resolves to `true` (every write applied) or `false` (an
//! expectation failed and nothing was written). Each op is
//! `{ type: "put", key, value: string, expect, version?, expiresAt }` or
//! `{ type: "delete", key, expect, version? }`, where `expect` is `"absent"`,
//! `"any"` or `"version"` (then `version` holds the version, as a number when it
//! is at most 2^53 - 1, else as a decimal string) and `expiresAt` is unix ms.
//!
//! A `get` or `commit` that throws or rejects is `store_unavailable`; an answer of
//! the wrong shape is `store_corrupt`. Either way the manager keeps working.

use js_sys::{Array, Function, Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::{Caps, CommitResult, Store, StoreError};
use crate::engine::error::Error;
use crate::engine::step::{Expect, Versioned, WriteOp};

/// The JS store object and its two methods, looked up once.
pub struct JsStore {
    target: JsValue,
    get: Function,
    commit: Function,
    caps: Caps,
}

impl std::fmt::Debug for JsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsStore").field("caps", &self.caps).finish_non_exhaustive()
    }
}

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn prop(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

impl JsStore {
    /// Wraps a JS object with `get` and `commit` methods; `caps` (optional)
    /// is `{ atomic?: boolean, consistent?: boolean, minTtlMs?: number }`.
    pub fn new(target: JsValue) -> Result<Self, Error> {
        let need = || Error::config("a store is an object with async get(keys) and commit(ops) methods");
        if !target.is_object() {
            return Err(need());
        }
        let get = prop(&target, "get").dyn_into::<Function>().map_err(|_| need())?;
        let commit = prop(&target, "commit").dyn_into::<Function>().map_err(|_| need())?;
        let caps_value = prop(&target, "caps");
        let flag = |name: &str, default: bool| prop(&caps_value, name).as_bool().unwrap_or(default);
        let caps = if caps_value.is_object() {
            Caps {
                atomic: flag("atomic", true),
                consistent: flag("consistent", true),
                min_ttl_ms: prop(&caps_value, "minTtlMs").as_f64().filter(|n| n.is_finite() && *n >= 0.0).map_or(0, |n| n as u64),
            }
        } else {
            Caps { atomic: true, consistent: true, min_ttl_ms: 0 }
        };
        Ok(JsStore { target, get, commit, caps })
    }

    /// Calls a store method and waits for its answer; throws and rejections are `unavailable`.
    async fn call(&self, method: &Function, name: &str, arg: &JsValue) -> Result<JsValue, StoreError> {
        let failed = |e: JsValue| StoreError::unavailable(format!("the JS store's {name}() failed: {}", describe(&e)));
        let returned = method.call1(&self.target, arg).map_err(failed)?;
        JsFuture::from(Promise::resolve(&returned)).await.map_err(failed)
    }
}

/// A short description of a thrown JS value, for the error message.
fn describe(e: &JsValue) -> String {
    let text = e
        .as_string()
        .or_else(|| if e.is_object() { prop(e, "message").as_string() } else { None })
        .unwrap_or_else(|| "a value without a message was thrown".into());
    text.chars().take(200).collect()
}

/// What `get` answers per key, read from its JSON form (so a getter or a Proxy
/// in the answer cannot throw through wasm): `null` or `{ value, version }`.
#[derive(Deserialize)]
struct JsEntry {
    value: String,
    version: JsVersionIn,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsVersionIn {
    Number(f64),
    Text(String),
}

fn parse_version(v: &JsVersionIn) -> Option<u64> {
    match v {
        JsVersionIn::Number(n) => (*n >= 0.0 && n.fract() == 0.0 && *n <= MAX_SAFE_INTEGER as f64).then_some(*n as u64),
        JsVersionIn::Text(s) if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        JsVersionIn::Text(_) => None,
    }
}

fn parse_answer(answer: &JsValue, expected: usize) -> Result<Vec<Option<Versioned>>, StoreError> {
    let shape = "get() must resolve to an array of null or { value: string, version: number | string }, one per key";
    let text = js_sys::JSON::stringify(answer).ok().and_then(|s| JsValue::from(s).as_string()).ok_or_else(|| StoreError::corrupt(shape))?;
    let entries: Vec<Option<JsEntry>> = serde_json::from_str(&text).map_err(|_| StoreError::corrupt(shape))?;
    if entries.len() != expected {
        return Err(StoreError::corrupt("get() must answer one entry per key"));
    }
    entries
        .into_iter()
        .map(|e| match e {
            None => Ok(None),
            Some(e) => {
                let version = parse_version(&e.version).ok_or_else(|| StoreError::corrupt(shape))?;
                Ok(Some(Versioned { value: e.value.into_bytes().into(), version }))
            }
        })
        .collect()
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsVersion {
    Number(u64),
    Text(String),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsOp<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    expect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<JsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

fn js_op(op: &WriteOp) -> Result<JsOp<'_>, StoreError> {
    let (expect, version) = match op.expect() {
        Expect::Absent => ("absent", None),
        Expect::Any => ("any", None),
        Expect::Version(v) if v <= MAX_SAFE_INTEGER => ("version", Some(JsVersion::Number(v))),
        Expect::Version(v) => ("version", Some(JsVersion::Text(v.to_string()))),
    };
    Ok(match op {
        WriteOp::Put { key, value, expires_at, .. } => JsOp {
            kind: "put",
            key,
            // Every value tollgate writes is JSON text.
            value: Some(std::str::from_utf8(value).map_err(|_| StoreError::unavailable("a value is not UTF-8"))?),
            expect,
            version,
            expires_at: Some(*expires_at),
        },
        WriteOp::Delete { key, .. } => JsOp { kind: "delete", key, value: None, expect, version, expires_at: None },
    })
}

#[async_trait::async_trait(?Send)]
impl Store for JsStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        let arg: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let answer = self.call(&self.get, "get", &arg).await?;
        parse_answer(&answer, keys.len())
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        let ops = ops.iter().map(js_op).collect::<Result<Vec<_>, _>>()?;
        let text = serde_json::to_string(&ops).map_err(|_| StoreError::unavailable("the commit could not be encoded"))?;
        let arg = js_sys::JSON::parse(&text).map_err(|_| StoreError::unavailable("the commit could not be encoded"))?;
        match self.call(&self.commit, "commit", &arg).await?.as_bool() {
            Some(true) => Ok(CommitResult::Committed),
            Some(false) => Ok(CommitResult::Conflict),
            None => Err(StoreError::corrupt("commit() must resolve to true (committed) or false (conflict)")),
        }
    }

    fn caps(&self) -> Caps {
        self.caps
    }
}
