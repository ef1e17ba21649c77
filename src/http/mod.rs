//! The HTTP API, framework-free: a plain request in, a plain response out. The
//! Cloudflare Worker and the native `tollgate serve` both call [`HttpApi::handle`].
//!
//! - [`route`]: the route table; a request is parsed once into a [`Route`].
//! - this module: the requests and responses, who is calling, and what each route does.
//!
//! The service authenticates with `X-Api-Key` (compared in constant time); a
//! user with `Authorization: Bearer <access token>` (verified strictly). Errors
//! are `{"error": {"code", "message"}}` with the code's HTTP status.

pub mod route;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::net::IpAddr;

use crate::engine::client::{ClientInfo, TrustedProxy};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::{Verified, VerifyMode};
use crate::manager::SessionManager;
use crate::store::Store;

pub use route::{Keep, Route};

/// Request bodies larger than this are refused with `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI 3.1 document of every route, served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// The key `GET /readyz` reads: no session is stored under it, so the store answers "nothing".
const READY_PROBE_KEY: &str = "tollgate:readyz";

/// Who may read `GET /metrics` through [`HttpApi::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Nobody: `not_found` (the Worker; `tollgate serve` with an admin listener, which serves them there).
    Hidden,
    /// Callers with the service's API key.
    ApiKey,
}

#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path as sent (still percent-encoded), without the query, e.g. `/v1/users/alice%40x/sessions`.
    pub path: String,
    /// The query as sent (still percent-encoded), without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection's remote address, when the server knows it (the client IP under
    /// `trusted_proxy = none`). The Worker sets `CF-Connecting-IP` here: Cloudflare writes
    /// that header itself, so in a Worker it is the peer.
    pub peer: Option<IpAddr>,
}

impl HttpRequest {
    /// Splits `path?query` for callers that hold the two together.
    pub fn new(method: &str, path_and_query: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        HttpRequest { method: method.to_ascii_uppercase(), path: path.to_owned(), query: query.to_owned(), headers, body, peer: None }
    }
    /// The same request, from the remote address `peer`.
    pub fn with_peer(mut self, peer: Option<IpAddr>) -> Self {
        self.peer = peer;
        self
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(status: u16, value: &Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
    /// The error as a client sees it. A failure of the store or a crypto driver is
    /// logged in full and answered with a fixed message per code, so no store or
    /// driver text reaches the client. (`config_invalid` keeps its message: it names
    /// the setting to fix, never a value.)
    pub fn error(e: &Error) -> Self {
        let message = match server_side_message(e.code()) {
            Some(fixed) => {
                log_failure(e);
                fixed
            }
            None => e.message(),
        };
        Self::json(e.http_status(), &json!({ "error": { "code": e.code().as_str(), "message": message } }))
    }
    /// The body as JSON (for tests and clients).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The one message a client gets for a store or driver failure; `None` for codes
/// whose message is written for the client.
fn server_side_message(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::StoreUnavailable => Some("the session store is unavailable; retry shortly"),
        ErrorCode::StoreCorrupt => Some("the session store holds data this service cannot read; the operator's logs say more"),
        ErrorCode::Internal => Some("the service failed unexpectedly; retry, and report it if it persists"),
        _ => None,
    }
}

/// Logs a store or driver failure for the operator: `tracing` natively, the
/// console in the Worker (which has no tracing subscriber).
fn log_failure(e: &Error) {
    tracing::warn!(target: "tollgate::http", code = e.code().as_str(), detail = %e.message(), "store or driver failure");
    #[cfg(all(target_arch = "wasm32", feature = "worker"))]
    worker::console_error!("tollgate: {}: {}", e.code().as_str(), e.message());
}

/// Who is calling.
enum Caller {
    Service,
    User { sub: String, sid: Option<String> },
}

/// The HTTP API over one session manager.
pub struct HttpApi<S> {
    sessions: SessionManager<S>,
    /// SHA-256 of each accepted API key (several, for rotation).
    api_key_hashes: Vec<[u8; 32]>,
    metrics_access: MetricsAccess,
    /// Where the client IP of sign-ins and refreshes comes from.
    trusted_proxy: TrustedProxy,
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn err(code: ErrorCode, message: &'static str) -> Error {
    Error::new(code, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    pub(crate) user: String,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    pub(crate) token: String,
    #[serde(default)]
    pub(crate) mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    pub(crate) refresh_token: String,
}

impl<S: Store> HttpApi<S> {
    /// `api_keys`: the keys services present in `X-Api-Key`; empty keys are refused.
    pub fn new(sessions: SessionManager<S>, api_keys: &[&str]) -> Result<Self, Error> {
        if api_keys.is_empty() || api_keys.iter().any(|k| k.len() < 16) {
            return Err(Error::new(ErrorCode::ConfigInvalid, "give at least one API key of 16 or more characters"));
        }
        let api_key_hashes = api_keys.iter().map(|k| hash(k.as_bytes())).collect();
        Ok(HttpApi { sessions, api_key_hashes, metrics_access: MetricsAccess::Hidden, trusted_proxy: TrustedProxy::None })
    }

    /// Reads the client IP of sign-ins and refreshes by `proxy`'s rule (setting `trusted_proxy`).
    pub fn with_trusted_proxy(mut self, proxy: TrustedProxy) -> Self {
        self.trusted_proxy = proxy;
        self
    }

    /// The client of a request: its IP by the trusted-proxy rule, and its `User-Agent`.
    pub fn client_of(&self, req: &HttpRequest) -> ClientInfo {
        ClientInfo::from_request(self.trusted_proxy, req.peer, req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// Serves `GET /metrics` to callers with the API key (hidden by default).
    pub fn with_metrics_access(mut self, access: MetricsAccess) -> Self {
        self.metrics_access = access;
        self
    }

    /// Answers a request on `tollgate serve`'s admin listener: `/metrics`,
    /// `/healthz` and `/readyz`, without a key; any other route is `not_found`.
    pub async fn handle_admin(&self, req: HttpRequest) -> HttpResponse {
        let result = match Route::of(&req) {
            Ok(Route::Metrics) => Ok(self.metrics()),
            Ok(route @ (Route::Health | Route::Ready)) => self.answer(route, &req).await,
            Ok(_) => Err(err(ErrorCode::NotFound, "the admin listener serves only /metrics, /healthz and /readyz")),
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| HttpResponse::error(&e))
    }

    fn metrics(&self) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![("content-type", "text/plain; version=0.0.4".into()), ("cache-control", "no-store".into())],
            body: self.sessions.metrics().render().into_bytes(),
        }
    }

    pub fn sessions(&self) -> &SessionManager<S> {
        &self.sessions
    }

    /// Answers one request. Never panics on input; every failure is a coded JSON error.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let route = Route::of(&req);
        self.handle_route(route, req).await
    }

    /// Answers a request whose route the caller has parsed already (the Worker
    /// parses it once, to pick a Durable Object): `route` is [`Route::of`]`(&req)`.
    pub async fn handle_route(&self, route: Result<Route, Error>, req: HttpRequest) -> HttpResponse {
        let result = if req.body.len() > MAX_BODY_BYTES {
            Err(err(ErrorCode::PayloadTooLarge, "the request body exceeds 64 KiB"))
        } else {
            match route {
                Ok(route) => self.answer(route, &req).await,
                Err(e) => Err(e),
            }
        };
        result.unwrap_or_else(|e| {
            tracing::debug!(method = %req.method, path = %redact_path(&req.path), code = e.code().as_str(), "request refused");
            HttpResponse::error(&e)
        })
    }

    async fn answer(&self, route: Route, req: &HttpRequest) -> Result<HttpResponse, Error> {
        match route {
            Route::Health => Ok(HttpResponse::json(200, &json!({ "status": "ok" }))),
            Route::Ready => {
                self.sessions.store().get(vec![READY_PROBE_KEY.to_owned()]).await?;
                Ok(HttpResponse::json(200, &json!({ "status": "ready" })))
            }
            Route::Metrics => match self.metrics_access {
                MetricsAccess::Hidden => Err(err(ErrorCode::NotFound, "metrics are served on the admin listener (TOLLGATE_ADMIN_LISTEN)")),
                MetricsAccess::ApiKey => {
                    self.require_service(req)?;
                    Ok(self.metrics())
                }
            },
            Route::OpenApi => Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type", "application/json".into()), ("cache-control", "public, max-age=300".into())],
                body: OPENAPI_JSON.as_bytes().to_vec(),
            }),
            Route::Jwks => {
                let mut r = HttpResponse::json(200, &self.sessions.jwks());
                r.headers[1] = ("cache-control", "public, max-age=300".into());
                Ok(r)
            }
            Route::CreateSession => {
                self.require_service(req)?;
                let body: CreateBody = json_body(req)?;
                let t = self.sessions.issue_from(&body.user, body.claims, body.metadata, &self.client_of(req)).await?;
                Ok(HttpResponse::json(201, &serde_json::to_value(&t).unwrap_or_default()))
            }
            Route::Verify => {
                let body: VerifyBody = json_body(req)?;
                let mode = self.verify_mode(body.mode.as_deref())?;
                let v = self.sessions.verify(&body.token, mode).await?;
                Ok(verified(&v))
            }
            Route::Refresh => {
                let body: RefreshBody = json_body(req)?;
                let t = self.sessions.refresh_from(&body.refresh_token, &self.client_of(req)).await?;
                Ok(HttpResponse::json(200, &serde_json::to_value(&t).unwrap_or_default()))
            }
            Route::RevokeSession { sid, user } => {
                let user = match (self.caller(req).await?, user) {
                    (Caller::Service, Some(user)) => user,
                    (Caller::Service, None) => return Err(err(ErrorCode::BadRequest, "name the session's user with ?user=<id>")),
                    (Caller::User { sub, .. }, Some(user)) if user != sub => return Err(forbidden()),
                    (Caller::User { sub, .. }, _) => sub,
                };
                // A user revoking someone else's session id finds nothing of theirs: not found, no oracle.
                self.sessions.revoke(&user, &sid).await?;
                Ok(HttpResponse::json(200, &json!({ "revoked": sid })))
            }
            Route::ListUserSessions { user } => {
                // A user's own session is marked `current`; the service has none.
                let current = self.caller_for_user(req, &user).await?;
                let list = self.sessions.list_marking(&user, current.as_deref()).await?;
                Ok(HttpResponse::json(200, &json!({ "sessions": list })))
            }
            Route::RevokeUserSessions { user, keep } => {
                let current = self.caller_for_user(req, &user).await?;
                let keep = match keep {
                    Keep::Nothing => None,
                    Keep::Current => {
                        Some(current.ok_or_else(|| err(ErrorCode::BadRequest, "keep=current needs the caller's access token"))?)
                    }
                    Keep::Session(sid) => Some(sid),
                };
                let n = self.sessions.revoke_all(&user, keep.as_deref()).await?;
                Ok(HttpResponse::json(200, &json!({ "revoked": n })))
            }
        }
    }

    /// The mode `POST /v1/verify` runs in for the body's `mode`; the Worker asks
    /// it too, to know whether a verify needs the user's Durable Object.
    pub(crate) fn verify_mode(&self, requested: Option<&str>) -> Result<VerifyMode, Error> {
        match requested {
            None => Ok(self.sessions.rules().policy.verify_mode),
            Some("stateless") => Ok(VerifyMode::Stateless),
            Some("strict") => Ok(VerifyMode::Strict),
            Some(_) => Err(err(ErrorCode::BadRequest, "mode is \"stateless\" or \"strict\"")),
        }
    }

    /// Checks that the caller is the service or `user` themselves; answers the
    /// caller's own session id when a user calls.
    async fn caller_for_user(&self, req: &HttpRequest, user: &str) -> Result<Option<String>, Error> {
        match self.caller(req).await? {
            Caller::Service => Ok(None),
            Caller::User { sub, sid } if sub == user => Ok(sid),
            Caller::User { .. } => Err(forbidden()),
        }
    }

    fn require_service(&self, req: &HttpRequest) -> Result<(), Error> {
        match req.header("x-api-key") {
            Some(key) if self.api_key_ok(key) => Ok(()),
            Some(_) => Err(err(ErrorCode::Unauthorized, "the API key is not valid")),
            None => Err(err(ErrorCode::Unauthorized, "this route needs the service's API key in X-Api-Key")),
        }
    }

    /// Whether the request carries one of the service's API keys. The Worker asks
    /// this before it wakes a user's Durable Object for a service-only route.
    pub fn accepts_api_key(&self, req: &HttpRequest) -> bool {
        req.header("x-api-key").is_some_and(|key| self.api_key_ok(key))
    }

    fn api_key_ok(&self, key: &str) -> bool {
        // Hashing first makes the comparison constant-time in the key's length too.
        let h = hash(key.as_bytes());
        self.api_key_hashes.iter().fold(false, |ok, k| ok | bool::from(k.ct_eq(&h)))
    }

    async fn caller(&self, req: &HttpRequest) -> Result<Caller, Error> {
        if req.header("x-api-key").is_some() {
            self.require_service(req)?;
            return Ok(Caller::Service);
        }
        let token = match bearer_token(req) {
            Some(token) => token?,
            None => return Err(err(ErrorCode::Unauthorized, "send X-Api-Key, or Authorization: Bearer <access token>")),
        };
        let v = self.sessions.verify(token, VerifyMode::Strict).await?;
        Ok(Caller::User { sub: v.claims.sub().to_owned(), sid: v.claims.sid().map(str::to_owned) })
    }
}

/// `{"claims": {..}, "session": {..} | null}`. The claims are the token's payload as
/// it arrived: the verify checked that it is one JSON object, so it is copied, not
/// parsed into a map and written again.
fn verified(v: &Verified) -> HttpResponse {
    let payload = v.claims.payload();
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return HttpResponse::json(200, &json!({ "claims": v.claims.to_json(), "session": v.session }));
    }
    let mut body = Vec::with_capacity(payload.len() + 160);
    body.extend_from_slice(b"{\"claims\":");
    body.extend_from_slice(payload);
    body.extend_from_slice(b",\"session\":");
    if serde_json::to_writer(&mut body, &v.session).is_err() {
        return HttpResponse::json(200, &json!({ "claims": v.claims.to_json(), "session": v.session }));
    }
    body.push(b'}');
    let mut resp = HttpResponse::json(200, &Value::Null);
    resp.body = body;
    resp
}

fn forbidden() -> Error {
    err(ErrorCode::Forbidden, "a user may only list or revoke their own sessions")
}

/// The access token of `Authorization: Bearer <token>`: `None` without the
/// header, an error when it names another scheme or no token. The scheme is
/// matched case-insensitively (RFC 9110: `bearer`, `BEARER`). The Worker reads it too.
pub(crate) fn bearer_token(req: &HttpRequest) -> Option<Result<&str, Error>> {
    req.header("authorization").map(bearer_of)
}

/// The token of an `Authorization` header's value (see [`bearer_token`]); the axum layer reads it too.
pub(crate) fn bearer_of(auth: &str) -> Result<&str, Error> {
    let (scheme, rest) = auth.split_once([' ', '\t']).unwrap_or((auth, ""));
    let token = rest.trim_matches([' ', '\t']);
    // One token: `Bearer a b` is a malformed header (RFC 6750's b64token has no
    // spaces), answered as such rather than as a bad token; the npm adapters agree.
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains([' ', '\t']) {
        return Err(err(ErrorCode::Unauthorized, "the Authorization header must be \"Bearer <access token>\""));
    }
    Ok(token)
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, Error> {
    let ct = req.header("content-type").unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(err(ErrorCode::UnsupportedMediaType, "send the body as application/json"));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| Error::new(ErrorCode::BadRequest, format!("the JSON body is malformed or misses a field: {}", describe(&e))))
}

/// The error's category and position, without echoing input (which may hold tokens).
fn describe(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "invalid JSON",
        serde_json::error::Category::Data => "a field is missing, unknown or of the wrong type",
        serde_json::error::Category::Io => "unreadable body",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Paths name users and sessions, not secrets, but keep logs short and uniform.
fn redact_path(path: &str) -> String {
    path.chars().take(128).collect()
}
