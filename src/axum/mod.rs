//! The axum layer (feature `axum`): docs/cookies.md for axum 0.8 apps.
//!
//! ```no_run
//! use axum::{routing::{get, post}, Json, Router};
//! use serde_json::{json, Map, Value};
//! use tollgate::axum::{Session, SessionLayer, Sessions};
//! use tollgate::cookies::AdapterOptions;
//! use tollgate::{Config, MemoryStore, SessionManager};
//!
//! async fn login(sessions: Sessions, Json(body): Json<Value>) -> axum::response::Response {
//!     let user = body["user"].as_str().unwrap_or_default(); // the app authenticates the user first
//!     sessions.sign_in(user, Map::new(), json!({})).await
//! }
//! async fn me(session: Session) -> Json<Value> {
//!     Json(json!({ "user": session.claims.sub() }))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Config::builder().secret("a secret of at least thirty-two bytes!").build()?, MemoryStore::new())?;
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/api/me", get(me))
//!     .route("/auth/refresh", post(tollgate::axum::refresh))
//!     .route("/auth/sign-out", post(tollgate::axum::sign_out))
//!     .route("/auth/sign-out-everywhere", post(tollgate::axum::sign_out_everywhere))
//!     .layer(SessionLayer::new(manager, AdapterOptions::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! [`SessionLayer`] holds the manager and the options; the extractors [`Session`]
//! (strict) and [`StatelessClaims`] verify a route's credentials; [`Sessions`] is
//! the handle the app's login handler signs in with, and [`refresh`], [`sign_out`]
//! and [`sign_out_everywhere`] are ready handlers. Refusals answer the HTTP API's
//! `{"error": {"code", "message"}}` with the code's status ([`ErrorResponse`]).

mod extract;
mod handlers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::axum::body::Body;
use ::axum::http::{header, HeaderValue, Request, StatusCode};
use ::axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::cookies::AdapterOptions;
use crate::engine::client::ClientInfo;
use crate::engine::error::Error;
use crate::engine::ops::{ListedSession, Tokens, Verified, VerifyMode};
use crate::http::HttpResponse;
use crate::manager::SessionManager;
use crate::store::Store;

pub use extract::{Session, Sessions, StatelessClaims};
pub use handlers::{refresh, sign_out, sign_out_everywhere};

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The manager's operations the adapter calls, over any store: extractors and
/// handlers name no store type.
trait Backend: Send + Sync {
    fn issue<'a>(&'a self, user: &'a str, claims: Map<String, Value>, metadata: Value, client: &'a ClientInfo) -> Answer<'a, Tokens>;
    fn verify<'a>(&'a self, token: &'a str, mode: VerifyMode) -> Answer<'a, Verified>;
    fn refresh<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Answer<'a, Tokens>;
    fn revoke<'a>(&'a self, user: &'a str, sid: &'a str) -> Answer<'a, ()>;
    fn revoke_all<'a>(&'a self, user: &'a str) -> Answer<'a, usize>;
    fn list<'a>(&'a self, user: &'a str, current_sid: Option<&'a str>) -> Answer<'a, Vec<ListedSession>>;
    fn now_ms(&self) -> u64;
}

impl<S: Store + 'static> Backend for SessionManager<S> {
    fn issue<'a>(&'a self, user: &'a str, claims: Map<String, Value>, metadata: Value, client: &'a ClientInfo) -> Answer<'a, Tokens> {
        Box::pin(SessionManager::issue_from(self, user, claims, metadata, client))
    }
    fn verify<'a>(&'a self, token: &'a str, mode: VerifyMode) -> Answer<'a, Verified> {
        Box::pin(SessionManager::verify(self, token, mode))
    }
    fn refresh<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Answer<'a, Tokens> {
        Box::pin(SessionManager::refresh_from(self, token, client))
    }
    fn revoke<'a>(&'a self, user: &'a str, sid: &'a str) -> Answer<'a, ()> {
        Box::pin(SessionManager::revoke(self, user, sid))
    }
    fn revoke_all<'a>(&'a self, user: &'a str) -> Answer<'a, usize> {
        Box::pin(SessionManager::revoke_all(self, user, None))
    }
    fn list<'a>(&'a self, user: &'a str, current_sid: Option<&'a str>) -> Answer<'a, Vec<ListedSession>> {
        Box::pin(SessionManager::list_marking(self, user, current_sid))
    }
    fn now_ms(&self) -> u64 {
        self.clock().now_ms()
    }
}

/// What the layer puts in each request's extensions for the extractors.
#[derive(Clone)]
struct Installed(Arc<Shared>);

struct Shared {
    backend: Arc<dyn Backend>,
    options: AdapterOptions,
}

/// The tower layer: holds the manager and the adapter options, and hands them to
/// the extractors of every route it wraps. A route outside it answers `internal`.
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    /// The layer over `manager` (or an `Arc` of one the app shares, e.g. between two routers).
    pub fn new<S: Store + 'static>(manager: impl Into<Arc<SessionManager<S>>>, options: AdapterOptions) -> Self {
        let backend: Arc<dyn Backend> = manager.into();
        SessionLayer { shared: Arc::new(Shared { backend, options }) }
    }

    pub fn options(&self) -> &AdapterOptions {
        &self.shared.options
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer").field("options", &self.shared.options).finish_non_exhaustive()
    }
}

impl<Svc> tower_layer::Layer<Svc> for SessionLayer {
    type Service = SessionService<Svc>;
    fn layer(&self, inner: Svc) -> SessionService<Svc> {
        SessionService { inner, shared: self.shared.clone() }
    }
}

/// The service [`SessionLayer`] wraps a route in.
#[derive(Clone)]
pub struct SessionService<Svc> {
    inner: Svc,
    shared: Arc<Shared>,
}

impl<Svc, B> tower_service::Service<Request<B>> for SessionService<Svc>
where
    Svc: tower_service::Service<Request<B>>,
{
    type Response = Svc::Response;
    type Error = Svc::Error;
    type Future = Svc::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(Installed(self.shared.clone()));
        self.inner.call(req)
    }
}

/// A tollgate error as an HTTP response: the HTTP API's body and the code's status,
/// made by [`HttpResponse::error`] as `tollgate serve` makes it. Apps may answer
/// their own errors with it too.
#[derive(Clone, Debug)]
pub struct ErrorResponse(pub Error);

impl From<Error> for ErrorResponse {
    fn from(e: Error) -> Self {
        ErrorResponse(e)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        answer(HttpResponse::error(&self.0), Vec::new())
    }
}

/// `r` as an axum response, with `cookies` as `Set-Cookie` headers in order.
fn answer(r: HttpResponse, cookies: Vec<String>) -> Response {
    let mut res = Response::new(Body::from(r.body));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    for (name, value) in r.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    for cookie in cookies {
        // Cookie values are tokens and checked names: always valid header text.
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    res
}
