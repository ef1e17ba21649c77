//! Values across the JS boundary, and the one place errors become JS `Error`s.
//!
//! Everything that crosses is checked: a wrong type, `undefined`, `null`, a
//! number for a string, a huge string or a value JSON cannot hold becomes a
//! coded error (`bad_request` unless the caller says otherwise), never a panic.
//! Objects cross as JSON: `JSON.stringify` on the way in, `JSON.parse` of
//! serde_json's output on the way out (one boundary crossing each).
//!
//! A caller's value is only ever touched by `typeof` checks and by calls whose
//! throws are caught (`JSON.stringify`, `Reflect.get`, `Function.call`): a
//! getter or a Proxy trap that throws must not unwind through wasm frames.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::{JsString, Promise, Reflect};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

use crate::engine::error::{Error, ErrorCode};

/// Why a call failed: a tollgate error, or a value the caller's own function
/// (a user-info loader) threw, which is handed back unchanged.
pub(crate) enum Failure {
    Tollgate(Error),
    Thrown(JsValue),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Tollgate(e)
    }
}

/// The one mapping of tollgate errors to JS: an `Error` named `TollgateError`
/// with `code` (the stable string) and `status` (the HTTP status).
pub(crate) fn js_error(e: &Error) -> JsValue {
    let err = js_sys::Error::new(e.message());
    err.set_name("TollgateError");
    let _ = Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(e.code().as_str()));
    let _ = Reflect::set(&err, &JsValue::from_str("status"), &JsValue::from(e.http_status()));
    err.into()
}

fn failure_to_js(f: Failure) -> JsValue {
    match f {
        Failure::Tollgate(e) => js_error(&e),
        Failure::Thrown(v) => v,
    }
}

/// Runs a call and answers a Promise. The call is polled once at once: with
/// the memory store and HMAC keys most calls finish there, and the Promise is
/// settled without a trip through the task queue; the rest continue as a task.
pub(crate) fn promise<F>(fut: F) -> Promise
where
    F: Future<Output = Result<JsValue, Failure>> + 'static,
{
    let mut fut: Pin<Box<F>> = Box::pin(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(v)) => Promise::resolve(&v),
        Poll::Ready(Err(f)) => Promise::reject(&failure_to_js(f)),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(async move { fut.await.map_err(failure_to_js) }),
    }
}

/// A string argument of at most `max` UTF-16 units, checked before it is copied.
pub(crate) fn string_arg(v: &JsValue, name: &str, max: u32, code: ErrorCode) -> Result<String, Error> {
    let Some(s) = v.dyn_ref::<JsString>() else {
        return Err(Error::new(code, format!("{name} must be a string, not {}", type_name(v))));
    };
    if s.length() > max {
        return Err(Error::new(code, format!("{name} is longer than {max} characters")));
    }
    s.as_string().ok_or_else(|| Error::new(code, format!("{name} is not a valid string")))
}

/// An optional string argument: `undefined` and `null` are `None`.
pub(crate) fn opt_string_arg(v: &JsValue, name: &str, max: u32) -> Result<Option<String>, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    string_arg(v, name, max, ErrorCode::BadRequest).map(Some)
}

pub(crate) fn type_name(v: &JsValue) -> &'static str {
    if v.is_undefined() {
        "undefined"
    } else if v.is_null() {
        "null"
    } else if v.as_f64().is_some() {
        "a number"
    } else if v.as_bool().is_some() {
        "a boolean"
    } else if v.is_string() {
        "a string"
    } else if v.is_function() {
        "a function"
    } else if v.is_bigint() {
        "a bigint"
    } else if v.is_object() {
        "an object"
    } else {
        "a symbol"
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `Object.assign`, with its throws caught (a getter or a Proxy trap may throw).
    #[wasm_bindgen(js_namespace = Object, js_name = assign, catch)]
    fn object_assign(target: &js_sys::Object, source: &JsValue) -> Result<js_sys::Object, JsValue>;
}

/// A shallow copy of a caller's object; anything it throws is `None`.
pub(crate) fn shallow_copy(v: &JsValue) -> Option<js_sys::Object> {
    object_assign(&js_sys::Object::new(), v).ok()
}

/// JSON text of a JS value is refused past this size before it is copied into wasm.
pub(crate) const MAX_JSON_CHARS: u32 = 1 << 20;

/// A JS value as JSON (`JSON.stringify` semantics: dates become strings, functions vanish).
/// `undefined` is `None`; a value JSON cannot hold (a cycle, a bigint) is an error.
pub(crate) fn json_arg(v: &JsValue, name: &str) -> Result<Option<Value>, Error> {
    if v.is_undefined() {
        return Ok(None);
    }
    let refuse = || Error::bad_request(format!("{name} must be JSON-serializable (no cycles, bigints or symbols)"));
    let text = js_sys::JSON::stringify(v).map_err(|_| refuse())?;
    // `JSON.stringify` answers undefined (not a string) for functions and symbols.
    let text: JsValue = text.into();
    let Some(s) = text.dyn_ref::<JsString>() else { return Err(refuse()) };
    if s.length() > MAX_JSON_CHARS {
        return Err(Error::bad_request(format!("{name} is larger than {MAX_JSON_CHARS} characters as JSON")));
    }
    let s = s.as_string().ok_or_else(refuse)?;
    serde_json::from_str(&s).map(Some).map_err(|_| refuse())
}

/// A Rust value as a plain JS value (objects, arrays, numbers, strings).
pub(crate) fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, Error> {
    let text = serde_json::to_string(v).map_err(|_| Error::new(ErrorCode::Internal, "a result could not be encoded"))?;
    parse_json(&text)
}

pub(crate) fn parse_json(text: &str) -> Result<JsValue, Error> {
    js_sys::JSON::parse(text).map_err(|_| Error::new(ErrorCode::Internal, "a result could not be decoded"))
}
