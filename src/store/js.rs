//! A store written in JavaScript: any object with async `get(keys)` and
//! `commit(ops)` (over Deno KV, a SQL client, a Map, anything).
//!
//! # The shapes (documented for users in pkg/README.md and pkg/index.d.ts)
//!
//! `get(keys: string[])` resolves to an array with one entry per key, in order:
//! `null` (or `undefined`) for a missing or expired key, else
//! `{ value: Uint8Array, version: number | string }`. `version` is a
//! non-negative integer (a number, or a decimal string for counters past 2^53).
//!
//! `commit(ops)` resolves to `true` (every write applied) or `false` (an
//! expectation failed and nothing was written). Each op is
//! `{ type: "put", key, value: Uint8Array, expect, version?, expiresAt }` or
//! `{ type: "delete", key, expect, version? }`, where `expect` is `"absent"`,
//! `"any"` or `"version"` (then `version` holds the version, as a number when it
//! is at most 2^53 - 1, else as a decimal string) and `expiresAt` is unix ms.
//!
//! A `get` or `commit` that throws or rejects is `store_unavailable`; an answer of
//! the wrong shape is `store_corrupt`. Either way the manager keeps working.
//! Answers are read without running the caller's code where it could throw
//! through WebAssembly: every property read is a `Reflect.get` that catches,
//! and a value is a `Uint8Array` by its internal slots, not by `instanceof`.

use js_sys::{Array, ArrayBuffer, Function, Object, Promise, Reflect, Uint8Array};
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

/// `target[name]`, or `undefined` when reading it throws.
pub(crate) fn prop(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A method of `target`, or `None`.
pub(crate) fn method(target: &JsValue, name: &str) -> Option<Function> {
    prop(target, name).dyn_into::<Function>().ok()
}

/// Calls `target.method(args..)` and waits for its answer: what it throws or rejects with is the error.
pub(crate) async fn call_raw(target: &JsValue, method: &Function, args: &Array) -> Result<JsValue, JsValue> {
    let returned = Reflect::apply(method, target, args)?;
    JsFuture::from(Promise::resolve(&returned)).await
}

/// [`call_raw`], with throws and rejections `unavailable`.
async fn call(target: &JsValue, method: &Function, name: &str, args: &Array) -> Result<JsValue, StoreError> {
    call_raw(target, method, args).await.map_err(|e| StoreError::unavailable(format!("the JS store's {name}() failed: {}", describe(&e))))
}

/// A short description of a thrown JS value, for the error message.
pub(crate) fn describe(e: &JsValue) -> String {
    let text = e
        .as_string()
        .or_else(|| if e.is_object() { prop(e, "message").as_string() } else { None })
        .unwrap_or_else(|| "a value without a message was thrown".into());
    text.chars().take(200).collect()
}

/// The `expected` entries of an array answer, or `None` when it is not an array of that length.
pub(crate) fn entries(answer: &JsValue, expected: usize) -> Option<Vec<JsValue>> {
    let is_array =
        INTRINSICS.with(|i| Some(Reflect::apply(&i.as_ref()?.is_array, &JsValue::UNDEFINED, &Array::of1(answer)).ok()?.is_truthy()));
    if is_array != Some(true) || prop(answer, "length").as_f64() != Some(expected as f64) {
        return None;
    }
    (0..expected as u32).map(|i| Reflect::get_u32(answer, i).ok()).collect()
}

/// Built-in functions, looked up once from objects of our own making.
struct Intrinsics {
    /// `Array.isArray` (throws for a revoked Proxy: called through `Reflect.apply`, which catches).
    is_array: Function,
    /// `%TypedArray%.prototype[Symbol.toStringTag]`'s getter: a typed array's
    /// kind, read from its internal slot; `undefined` for anything else.
    typed_array_tag: Function,
    uint8_array: Function,
}

thread_local! {
    static INTRINSICS: Option<Intrinsics> = {
        let sample: JsValue = Uint8Array::new_with_length(0).into();
        let uint8_proto = Reflect::get_prototype_of(&sample).ok();
        let typed_proto = uint8_proto.as_ref().and_then(|p| Reflect::get_prototype_of(p).ok());
        let tag = typed_proto.and_then(|p| Reflect::get_own_property_descriptor(&p, &js_sys::Symbol::to_string_tag()).ok());
        let array_constructor = method(&Array::new(), "constructor");
        Some(Intrinsics {
            is_array: array_constructor.and_then(|a| method(&a, "isArray"))?,
            typed_array_tag: tag.and_then(|d| method(&d, "get"))?,
            uint8_array: uint8_proto.and_then(|p| method(&p, "constructor"))?,
        })
    };
}

/// The bytes of a `Uint8Array` (a Node `Buffer` is one), copied; `None` for
/// anything else, including a Proxy or an object dressed as one.
pub(crate) fn bytes(v: &JsValue) -> Option<Vec<u8>> {
    // Reads an internal slot: no getter or trap of `v` runs.
    if !ArrayBuffer::is_view(v) {
        return None;
    }
    INTRINSICS.with(|i| {
        let i = i.as_ref()?;
        if Reflect::apply(&i.typed_array_tag, v, &Array::new()).ok()?.as_string()? != "Uint8Array" {
            return None;
        }
        // A copy made by the constructor from the internal slots (a detached buffer throws, and is caught).
        let copy: Uint8Array = Reflect::construct(&i.uint8_array, &Array::of1(v)).ok()?.unchecked_into();
        Some(copy.to_vec())
    })
}

/// A `Uint8Array` holding `bytes`.
pub(crate) fn uint8_array(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

impl JsStore {
    /// Wraps a JS object with `get` and `commit` methods; `caps` (optional)
    /// is `{ atomic?: boolean, consistent?: boolean, minTtlMs?: number }`.
    pub fn new(target: JsValue) -> Result<Self, Error> {
        let need = || Error::config("a store is an object with async get(keys) and commit(ops) methods");
        if !target.is_object() {
            return Err(need());
        }
        let get = method(&target, "get").ok_or_else(need)?;
        let commit = method(&target, "commit").ok_or_else(need)?;
        let caps_value = prop(&target, "caps");
        let flag = |name: &str, default: bool| prop(&caps_value, name).as_bool().unwrap_or(default);
        let caps = if caps_value.is_object() {
            Caps {
                atomic: flag("atomic", true),
                consistent: flag("consistent", true),
                min_ttl_ms: prop(&caps_value, "minTtlMs").as_f64().filter(|n| n.is_finite() && *n >= 0.0).map_or(0, |n| n as u64),
                // A JS store is handed puts and deletes only; sign-ins read its index first.
                lists: false,
            }
        } else {
            Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false }
        };
        Ok(JsStore { target, get, commit, caps })
    }
}

fn parse_version(v: &JsValue) -> Option<u64> {
    if let Some(n) = v.as_f64() {
        return (n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER as f64).then_some(n as u64);
    }
    let s = v.as_string()?;
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn parse_answer(answer: &JsValue, expected: usize) -> Result<Vec<Option<Versioned>>, StoreError> {
    let shape =
        || StoreError::corrupt("get() must resolve to an array of null or { value: Uint8Array, version: number | string }, one per key");
    entries(answer, expected)
        .ok_or_else(shape)?
        .into_iter()
        .map(|entry| {
            if entry.is_null() || entry.is_undefined() {
                return Ok(None);
            }
            let value = bytes(&prop(&entry, "value")).ok_or_else(shape)?;
            let version = parse_version(&prop(&entry, "version")).ok_or_else(shape)?;
            Ok(Some(Versioned { value: value.into(), version }))
        })
        .collect()
}

fn set(target: &Object, name: &str, value: &JsValue) {
    // A fresh plain object: setting a property cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// One op as the store's `commit` receives it.
fn js_op(op: &WriteOp) -> Object {
    let o = Object::new();
    let (expect, version) = match op.expect() {
        Expect::Absent => ("absent", None),
        Expect::Any => ("any", None),
        Expect::Version(v) if v <= MAX_SAFE_INTEGER => ("version", Some(JsValue::from(v as f64))),
        Expect::Version(v) => ("version", Some(JsValue::from_str(&v.to_string()))),
    };
    match op {
        WriteOp::Put { key, value, expires_at, .. } => {
            set(&o, "type", &JsValue::from_str("put"));
            set(&o, "key", &JsValue::from_str(key));
            set(&o, "value", &uint8_array(value));
            set(&o, "expiresAt", &JsValue::from(*expires_at as f64));
        }
        WriteOp::Delete { key, .. } => {
            set(&o, "type", &JsValue::from_str("delete"));
            set(&o, "key", &JsValue::from_str(key));
        }
        // Never handed over: `commit` refuses list writes first (this store's caps do not offer them).
        WriteOp::Append { key, .. } | WriteOp::Remove { key, .. } => {
            set(&o, "type", &JsValue::from_str(if op.is_append() { "append" } else { "remove" }));
            set(&o, "key", &JsValue::from_str(key));
        }
    }
    set(&o, "expect", &JsValue::from_str(expect));
    if let Some(v) = version {
        set(&o, "version", &v);
    }
    o
}

#[async_trait::async_trait(?Send)]
impl Store for JsStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        let arg: Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
        let answer = call(&self.target, &self.get, "get", &Array::of1(&arg)).await?;
        parse_answer(&answer, keys.len())
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        crate::store::refuse_list_writes(&ops)?;
        let arg: Array = ops.iter().map(js_op).collect();
        match call(&self.target, &self.commit, "commit", &Array::of1(&arg)).await?.as_bool() {
            Some(true) => Ok(CommitResult::Committed),
            Some(false) => Ok(CommitResult::Conflict),
            None => Err(StoreError::corrupt("commit() must resolve to true (committed) or false (conflict)")),
        }
    }

    fn caps(&self) -> Caps {
        self.caps
    }
}
