//! The suite exported to JavaScript, for stores written in JS (a test build of
//! the wasm with features `wasm,conformance`; the npm package never has it).
//!
//! ```js
//! for (const { name, needs } of conformanceCases()) {
//!   const { outcome, reason, failure } = await runConformanceCase(name, store, anotherClient);
//! }
//! ```
//!
//! `store` (and the optional second client on the same data) is a transport
//! from `tollgate/redis-store` or follows the JS store contract of
//! [`crate::store::js`], as `createManager` takes them; without one, the case
//! runs on the npm package's default store, a [`MemoryStore`] in wasm. A case that fails
//! resolves with `outcome: "failed"` and the failed check; only an unknown case
//! name or a value that is not a store rejects.

use std::sync::Arc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{case, cases_json, run_case, start_clock, Subject};
use crate::store::js::JsStore;
use crate::store::redis::js::JsRedisStore;
use crate::store::{MemoryStore, Store};

fn to_js(value: &serde_json::Value) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&value.to_string())
}

/// `[{ name, needs: { atomic, consistent } }]`, in the order to run them.
#[wasm_bindgen(js_name = conformanceCases)]
pub fn conformance_cases() -> Result<JsValue, JsValue> {
    to_js(&cases_json())
}

/// Runs one case on `store`; resolves to `{ outcome: "passed" | "skipped" | "failed", reason?, failure? }`.
#[wasm_bindgen(js_name = runConformanceCase)]
#[allow(clippy::arc_with_non_send_sync)] // in wasm nothing is Send; stores are shared as in the npm facade
pub fn run_conformance_case(name: String, store: JsValue, another_client: JsValue) -> Promise {
    future_to_promise(async move {
        let case = case(&name).ok_or_else(|| js_sys::Error::new(&format!("the conformance suite has no case {name:?}")))?;
        // As createManager picks them: tollgate/redis-store's transport, or a store written in JS.
        let open = |value: JsValue| -> Result<Arc<dyn Store>, JsValue> {
            let refused = |e: crate::Error| js_sys::Error::new(e.message());
            Ok(if JsRedisStore::is_transport(&value) {
                Arc::new(JsRedisStore::new(value).map_err(refused)?)
            } else {
                Arc::new(JsStore::new(value).map_err(refused)?)
            })
        };
        let absent = |v: &JsValue| v.is_undefined() || v.is_null();
        let clock = start_clock();
        let first: Arc<dyn Store> = if absent(&store) { Arc::new(MemoryStore::with_clock(clock.clone())) } else { open(store)? };
        let second = if absent(&another_client) { first.clone() } else { open(another_client)? };
        let subject = Subject::new(first, clock).with_peer(second);
        to_js(&run_case(case, &subject).await.to_json())
    })
}
