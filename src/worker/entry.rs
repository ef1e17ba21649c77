//! The Worker's fetch handler, and the conversions between workers-rs requests
//! and responses and the framework-free [`HttpRequest`] / [`HttpResponse`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::StreamExt;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, ScheduleContext, ScheduledEvent};

use super::config::{WorkerConfig, DO_BINDING, KV_BINDING};
use super::route::{self, Target};
use super::user_sessions::OWNER_HEADER;
use crate::crypto::{CryptoDriver, HmacOnly};
use crate::engine::b64;
use crate::engine::client::parse_entry;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::policy::Rules;
use crate::engine::step::{Versioned, WriteOp};
use crate::http::{HttpApi, HttpRequest, HttpResponse, Route, MAX_BODY_BYTES};
use crate::manager::SessionManager;
use crate::platform::SystemClock;
use crate::settings::{Raw, Source, StoreSetting};
use crate::store::d1::{D1Store, D1_BINDING};
use crate::store::kv::KvStore;
use crate::store::{Caps, CommitResult, Store, StoreError};

/// What the Worker answers with: a whole service over KV, or, with Durable
/// Objects, a store-less service for the requests it answers itself.
enum Gateway {
    Kv(HttpApi<KvStore>),
    Durable(HttpApi<NoStore>),
    D1(HttpApi<D1Store>),
}

thread_local! {
    // One per isolate: the configuration and imported keys are reused across requests.
    static GATEWAY: RefCell<Option<Rc<Gateway>>> = const { RefCell::new(None) };
}

/// The Worker's environment as a settings source: each `TOLLGATE_*` name with
/// its value as text (strings) or JSON (numbers, booleans, plain objects and
/// arrays in `[vars]`), or as a binding (KV and Durable Object namespaces).
fn source(env: &Env) -> Source {
    let names = Object::keys(env.unchecked_ref::<Object>());
    let plain = Object::get_prototype_of(&Object::new().into());
    let vars = names.iter().filter_map(|name| name.as_string()).filter(|name| name.starts_with("TOLLGATE_")).map(|name| {
        let v = Reflect::get(env, &JsValue::from_str(&name)).unwrap_or(JsValue::UNDEFINED);
        let raw = if let Some(s) = v.as_string() {
            Raw::Text(s)
        } else if let Some(n) = v.as_f64() {
            serde_json::Number::from_f64(n).map_or(Raw::Binding, |n| Raw::Json(n.into()))
        } else if let Some(b) = v.as_bool() {
            Raw::Json(b.into())
        } else if Array::is_array(&v) || (v.is_object() && Object::get_prototype_of(&v) == plain) {
            let text = js_sys::JSON::stringify(&v).ok().and_then(|t| t.as_string()).unwrap_or_default();
            serde_json::from_str(&text).map_or(Raw::Binding, Raw::Json)
        } else {
            Raw::Binding
        };
        (name, raw)
    });
    Source::env(vars.collect::<Vec<_>>())
}

fn config(env: &Env) -> Result<WorkerConfig, Error> {
    WorkerConfig::read(&source(env))
}

async fn crypto(config: &WorkerConfig) -> Result<(Rules, Arc<dyn CryptoDriver>), Error> {
    if config.hmac_only() {
        // HMAC is computed by the core; no WebCrypto import needed.
        let keys = config.hmac_key_set()?;
        Ok((Rules::new(keys, config.config.policy.clone())?, Arc::new(HmacOnly)))
    } else {
        let (keys, driver) = crate::crypto::webcrypto::load_keys(&config.config.keys).await.map_err(|e| config.key_refused(e))?;
        Ok((Rules::new(keys, config.config.policy.clone())?, Arc::new(driver)))
    }
}

async fn service_from<S: Store>(config: &WorkerConfig, store: S) -> Result<HttpApi<S>, Error> {
    let (rules, driver) = crypto(config).await?;
    Ok(HttpApi::new(SessionManager::from_parts(rules, store, driver, Arc::new(SystemClock)), &config.api_keys())?
        .with_trusted_proxy(config.settings.trusted_proxy))
}

/// The HTTP service over `store`, configured from `env` (a Durable Object builds its own).
pub(crate) async fn load_service<S: Store>(env: &Env, store: S) -> Result<HttpApi<S>, Error> {
    service_from(&config(env)?, store).await
}

async fn gateway(env: &Env) -> Result<Rc<Gateway>, Error> {
    if let Some(g) = GATEWAY.with(|g| g.borrow().clone()) {
        return Ok(g);
    }
    let config = config(env)?;
    let gateway = match config.store() {
        StoreSetting::WorkersKv => {
            let kv = env.kv(KV_BINDING).map_err(|_| {
                Error::new(ErrorCode::ConfigInvalid, format!("TOLLGATE_STORE is \"kv\" but the Worker has no KV binding {KV_BINDING}"))
            })?;
            Gateway::Kv(service_from(&config, KvStore::new(kv, Arc::new(SystemClock))).await?)
        }
        StoreSetting::DurableObjects => {
            if env.durable_object(DO_BINDING).is_err() {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!("TOLLGATE_STORE is \"durable\" but the Worker has no Durable Object binding {DO_BINDING}"),
                ));
            }
            Gateway::Durable(service_from(&config, NoStore).await?)
        }
        StoreSetting::D1 => {
            let db = env.d1(D1_BINDING).map_err(|_| {
                Error::new(ErrorCode::ConfigInvalid, format!("TOLLGATE_STORE is \"d1\" but the Worker has no D1 binding {D1_BINDING}"))
            })?;
            Gateway::D1(service_from(&config, D1Store::open(db, Arc::new(SystemClock)).await?).await?)
        }
        // Settings::read takes only the Worker's stores for the Worker.
        _ => return Err(Error::new(ErrorCode::ConfigInvalid, "TOLLGATE_STORE names a store the Worker does not have")),
    };
    let gateway = Rc::new(gateway);
    GATEWAY.with(|g| *g.borrow_mut() = Some(gateway.clone()));
    Ok(gateway)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    crate::platform::request_scope(handle(req, env)).await
}

async fn handle(req: Request, env: Env) -> worker::Result<Response> {
    #[cfg(feature = "conformance")]
    if let Some(resp) = crate::conformance::workerd::worker_route(&req, &env).await {
        return resp;
    }
    let req = match read_request(req).await {
        Ok(r) => r,
        Err(refused) => return into_response(refused),
    };
    let gateway = match gateway(&env).await {
        Ok(g) => g,
        Err(e) => {
            worker::console_error!("tollgate: {e}");
            return into_response(HttpResponse::error(&e));
        }
    };
    let resp = match &*gateway {
        Gateway::Kv(service) => service.handle(req).await,
        Gateway::D1(service) => service.handle(req).await,
        Gateway::Durable(local) => {
            // Parsed once: the route picks the object, and the Worker answers with it when local.
            let route = Route::of(&req);
            if route == Ok(Route::Ready) {
                // No store of its own to ask: each user's object holds its sessions, so loaded settings mean ready.
                return into_response(HttpResponse::json(200, &serde_json::json!({ "status": "ready" })));
            }
            let target = match &route {
                Ok(r) => route::checked_target(r, &req, local).await,
                Err(_) => Target::Local,
            };
            match target {
                Target::User(user) => return forward(&env, &user, req).await,
                Target::Local => local.handle_route(route, req).await,
            }
        }
    };
    into_response(resp)
}

/// The cron trigger: the D1 store's expired rows are deleted here (KV expires
/// its own entries; each Durable Object sweeps itself with an alarm).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let swept = match gateway(&env).await {
        Ok(g) => match &*g {
            Gateway::D1(service) => service.sessions().store().sweep().await.map_err(Error::from),
            Gateway::Kv(_) | Gateway::Durable(_) => return,
        },
        Err(e) => Err(e),
    };
    match swept {
        Ok(removed) => worker::console_log!("tollgate: swept {removed} expired D1 rows"),
        Err(e) => worker::console_error!("tollgate: the D1 sweep failed: {e}"),
    }
}

/// Sends the request to `user`'s Durable Object and answers with its response.
async fn forward(env: &Env, user: &str, req: HttpRequest) -> worker::Result<Response> {
    let sent: worker::Result<Response> = async {
        let stub = env.durable_object(DO_BINDING)?.id_from_name(user)?.get_stub()?;
        let headers = Headers::new();
        for (k, v) in req.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case(OWNER_HEADER)) {
            headers.append(k, v)?;
        }
        headers.set(OWNER_HEADER, &b64::encode(user.as_bytes()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::from(req.method.clone())).with_headers(headers);
        if !req.body.is_empty() {
            init.with_body(Some(js_sys::Uint8Array::from(&req.body[..]).into()));
        }
        let sep = if req.query.is_empty() { "" } else { "?" };
        let url = format!("https://tollgate.internal{}{sep}{}", req.path, req.query);
        stub.fetch_with_request(Request::new_with_init(&url, &init)?).await
    }
    .await;
    match sent {
        Ok(resp) => Ok(resp),
        Err(e) => {
            worker::console_error!("tollgate: the Durable Object did not answer: {e}");
            let e = Error::new(ErrorCode::StoreUnavailable, "the user's Durable Object did not answer; retry shortly");
            into_response(HttpResponse::error(&e))
        }
    }
}

/// Streamed bodies past the limit are read (and dropped) up to this many bytes
/// before the 413, so ordinary clients read the answer instead of a reset.
const DRAIN_BYTES: usize = 1024 * 1024;

/// Reads a request, refusing bodies over 64 KiB: at once when Content-Length says
/// so, else while streaming, keeping nothing past the limit.
pub(crate) async fn read_request(mut req: Request) -> Result<HttpRequest, HttpResponse> {
    let too_large = || HttpResponse::error(&Error::new(ErrorCode::PayloadTooLarge, "the request body exceeds 64 KiB"));
    let unreadable = || HttpResponse::error(&Error::new(ErrorCode::BadRequest, "the request could not be read"));
    let url = req.url().map_err(|_| unreadable())?;
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    let declared = req.headers().get("content-length").ok().flatten().and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    if req.inner().body().is_some() {
        let mut stream = req.stream().map_err(|_| unreadable())?;
        let mut seen = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| unreadable())?;
            seen += chunk.len();
            if seen > MAX_BODY_BYTES {
                // Nothing past the limit is kept. A little more is read and dropped
                // so that a client still sending sees the 413 rather than a reset.
                if seen > DRAIN_BYTES {
                    return Err(too_large());
                }
                continue;
            }
            body.extend_from_slice(&chunk);
        }
        if seen > MAX_BODY_BYTES {
            return Err(too_large());
        }
    }
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    // A Worker sees no socket: Cloudflare's CF-Connecting-IP (which it overwrites on
    // every request, so a client cannot choose it) is the peer of `trusted_proxy = none`.
    let peer = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("cf-connecting-ip")).and_then(|(_, v)| parse_entry(v));
    Ok(HttpRequest::new(req.method().as_ref(), &path_and_query, headers, body).with_peer(peer))
}

pub(crate) fn into_response(r: HttpResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers.set(k, v)?;
    }
    Ok(Response::from_bytes(r.body)?.with_status(r.status).with_headers(headers))
}

/// The Worker's store when each user's object holds the data: the requests the
/// Worker answers itself (health, JWKS, stateless verify, refusals) never reach it.
struct NoStore;

fn not_here() -> StoreError {
    StoreError::unavailable("this request needs a user's Durable Object but named no user")
}

#[async_trait::async_trait(?Send)]
impl Store for NoStore {
    async fn get(&self, _: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        Err(not_here())
    }
    async fn commit(&self, _: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        Err(not_here())
    }
    fn caps(&self) -> Caps {
        Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false }
    }
}
