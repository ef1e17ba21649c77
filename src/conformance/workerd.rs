//! Test-only routes of the Worker (features `worker,conformance`: a separate
//! test build; a deployed Worker never has them). They run the suite where the
//! stores live: Workers KV and D1 in the Worker, a Durable Object's store
//! inside the user's object.
//!
//! | request | runs |
//! |---|---|
//! | `GET /__conformance/cases` | nothing: the case list, `[{ name, needs }]` |
//! | `POST /__conformance/workers-kv/{case}` | the case in the Worker, on [`KvStore`] over the `TOLLGATE_KV` binding |
//! | `POST /__conformance/d1/{case}` | the case in the Worker, on [`D1Store`] over the `TOLLGATE_DB` binding |
//! | `POST /__conformance/durable-objects/{case}` | the case in a fresh user's object, on its [`DurableStore`] |
//!
//! Each run answers `{ outcome, reason?, failure? }` (see [`super::Outcome::to_json`]).
//! The objects' users have braces, `%`, `:` and a space in their ids, which their
//! keys escape, so every case also checks an object holding such a user.

use std::sync::Arc;

use worker::{Env, Method, Request, RequestInit, Response, State};

use super::{case, cases_json, run_case, start_clock, unique_user, Subject};
use crate::engine::b64;
use crate::platform::Clock;
use crate::store::d1::{D1Store, D1_BINDING};
use crate::store::durable::DurableStore;
use crate::store::kv::KvStore;
use crate::store::Store;
use crate::worker::config::{DO_BINDING, KV_BINDING};

const PREFIX: &str = "/__conformance/";
/// The object's own route: `/__conformance/object/{case}/{user, base64url}` (the object is named by its user).
const OBJECT_PREFIX: &str = "/__conformance/object/";

/// Answers the conformance routes in the Worker; `None` for every other request.
pub async fn worker_route(req: &Request, env: &Env) -> Option<worker::Result<Response>> {
    let path = req.path();
    let rest = path.strip_prefix(PREFIX)?;
    Some(match (req.method(), rest.split_once('/')) {
        (Method::Get, None) if rest == "cases" => Response::from_json(&cases_json()),
        (Method::Post, Some(("workers-kv", name))) => on_kv(env, name).await,
        (Method::Post, Some(("d1", name))) => on_d1(env, name).await,
        (Method::Post, Some(("durable-objects", name))) => in_object(env, name).await,
        _ => Response::error(format!("no conformance route {path}"), 404),
    })
}

/// Answers the object's conformance route inside the Durable Object; `None` for every other request.
#[allow(clippy::arc_with_non_send_sync)] // in wasm nothing is Send
pub async fn object_route(req: &Request, state: &State) -> Option<worker::Result<Response>> {
    let path = req.path();
    let (name, encoded) = path.strip_prefix(OBJECT_PREFIX)?.split_once('/')?;
    let Some(case) = case(name) else { return Some(Response::error(format!("no conformance case {name}"), 404)) };
    let Some(user) = b64::decode(encoded).ok().and_then(|b| String::from_utf8(b).ok()) else {
        return Some(Response::error("the object's user is not base64url UTF-8", 400));
    };
    let open = || DurableStore::open(state, &user).map_err(|e| worker::Error::RustError(e.to_string()));
    let (store, another) = match (open(), open()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
    };
    // The object's store keeps its own (real) time; the case's clock drives the managers.
    let subject = Subject::new(Arc::new(store), start_clock()).with_peer(Arc::new(another)).holding_only(user);
    Some(Response::from_json(&run_case(case, &subject).await.to_json()))
}

/// Runs the case in the Worker on Workers KV, the store reading the case's clock.
#[allow(clippy::arc_with_non_send_sync)] // in wasm nothing is Send
async fn on_kv(env: &Env, name: &str) -> worker::Result<Response> {
    let Some(case) = case(name) else { return Response::error(format!("no conformance case {name}"), 404) };
    let clock = start_clock();
    let kv = |clock: Arc<dyn Clock>| -> worker::Result<Arc<dyn Store>> { Ok(Arc::new(KvStore::new(env.kv(KV_BINDING)?, clock))) };
    let subject = Subject::new(kv(clock.clone())?, clock.clone()).with_peer(kv(clock)?);
    Response::from_json(&run_case(case, &subject).await.to_json())
}

/// Runs the case in the Worker on D1: the store and its peer are two stores over
/// the one database, each reading the case's clock.
#[allow(clippy::arc_with_non_send_sync)] // in wasm nothing is Send
async fn on_d1(env: &Env, name: &str) -> worker::Result<Response> {
    let Some(case) = case(name) else { return Response::error(format!("no conformance case {name}"), 404) };
    let clock = start_clock();
    let d1 = async |clock: Arc<dyn Clock>| -> worker::Result<Arc<dyn Store>> {
        let store = D1Store::open(env.d1(D1_BINDING)?, clock).await.map_err(|e| worker::Error::RustError(e.to_string()))?;
        let store: Arc<dyn Store> = Arc::new(store);
        Ok(store)
    };
    let subject = Subject::new(d1(clock.clone()).await?, clock.clone()).with_peer(d1(clock).await?);
    Response::from_json(&run_case(case, &subject).await.to_json())
}

/// Forwards the case to the Durable Object of a fresh user.
async fn in_object(env: &Env, name: &str) -> worker::Result<Response> {
    let user = format!("{{u:do}} 100%:{}", unique_user(""));
    let stub = env.durable_object(DO_BINDING)?.id_from_name(&user)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post);
    let url = format!("https://tollgate.internal{OBJECT_PREFIX}{name}/{}", b64::encode(user.as_bytes()));
    stub.fetch_with_request(Request::new_with_init(&url, &init)?).await
}
