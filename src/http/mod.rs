//! The HTTP API, framework-free: a plain request in, a plain response out. The
//! Cloudflare Worker and the native `tollgate serve` both call [`HttpApi::handle`].
//!
//! | route | who may call | does |
//! |---|---|---|
//! | `POST /v1/sessions` | service (API key) | create a session `{user, claims?, metadata?}` |
//! | `POST /v1/verify` | anyone holding the token | verify `{token, mode?: "stateless" \| "strict"}` (default: the `verify_mode` setting, `strict`) |
//! | `POST /v1/refresh` | anyone holding the token | rotate `{refresh_token}` |
//! | `DELETE /v1/sessions/{sid}` | service (`?user=`), or the session's own user | revoke one session |
//! | `GET /v1/users/{uid}/sessions` | service, or that user | list live sessions |
//! | `DELETE /v1/users/{uid}/sessions` | service, or that user | revoke all; `?keep=<sid>` or `?keep=current` |
//! | `GET /.well-known/jwks.json` | anyone | public keys |
//! | `GET /healthz` | anyone | liveness |
//!
//! The service authenticates with `X-Api-Key` (compared in constant time); a
//! user with `Authorization: Bearer <access token>` (verified strictly). Errors
//! are `{"error": {"code", "message"}}` with the code's HTTP status.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::VerifyMode;
use crate::manager::SessionManager;
use crate::store::Store;

/// Request bodies larger than this are refused with `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path without the query, e.g. `/v1/users/alice/sessions`.
    pub path: String,
    /// The raw query string without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// Splits `path?query` for callers that hold the two together.
    pub fn new(method: &str, path_and_query: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        HttpRequest { method: method.to_ascii_uppercase(), path: path.to_owned(), query: query.to_owned(), headers, body }
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
    pub fn error(e: &Error) -> Self {
        Self::json(e.http_status(), &json!({ "error": { "code": e.code().as_str(), "message": e.message() } }))
    }
    /// The body as JSON (for tests and clients).
    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
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
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn err(code: ErrorCode, message: &'static str) -> Error {
    Error::new(code, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    user: String,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    metadata: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    token: String,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

impl<S: Store> HttpApi<S> {
    /// `api_keys`: the keys services present in `X-Api-Key`; empty keys are refused.
    pub fn new(sessions: SessionManager<S>, api_keys: &[&str]) -> Result<Self, Error> {
        if api_keys.is_empty() || api_keys.iter().any(|k| k.len() < 16) {
            return Err(Error::new(ErrorCode::ConfigInvalid, "give at least one API key of 16 or more characters"));
        }
        Ok(HttpApi { sessions, api_key_hashes: api_keys.iter().map(|k| hash(k.as_bytes())).collect() })
    }

    pub fn sessions(&self) -> &SessionManager<S> {
        &self.sessions
    }

    /// Answers one request. Never panics on input; every failure is a coded JSON error.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let route = req.path.clone();
        let method = req.method.clone();
        let result = self.route(req).await;
        match result {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(%method, path = %redact_path(&route), code = e.code().as_str(), "request refused");
                HttpResponse::error(&e)
            }
        }
    }

    async fn route(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        if req.body.len() > MAX_BODY_BYTES {
            return Err(err(ErrorCode::PayloadTooLarge, "the request body exceeds 64 KiB"));
        }
        let segments: Vec<String> = match req.path.strip_prefix('/') {
            Some(rest) => rest.split('/').map(percent_decode).collect::<Result<_, _>>()?,
            None => return Err(not_found()),
        };
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = req.method.as_str();
        match segs.as_slice() {
            ["healthz"] => {
                only(m, "GET")?;
                Ok(HttpResponse::json(200, &json!({ "status": "ok" })))
            }
            [".well-known", "jwks.json"] => {
                only(m, "GET")?;
                let mut r = HttpResponse::json(200, &self.sessions.jwks());
                r.headers[1] = ("cache-control", "public, max-age=300".into());
                Ok(r)
            }
            ["v1", "sessions"] => {
                only(m, "POST")?;
                self.require_service(&req)?;
                let body: CreateBody = json_body(&req)?;
                let t = self.sessions.issue(&body.user, body.claims, body.metadata).await?;
                Ok(HttpResponse::json(201, &serde_json::to_value(&t).unwrap_or_default()))
            }
            ["v1", "verify"] => {
                only(m, "POST")?;
                let body: VerifyBody = json_body(&req)?;
                let mode = match body.mode.as_deref() {
                    None => self.sessions.rules().policy.verify_mode,
                    Some("stateless") => VerifyMode::Stateless,
                    Some("strict") => VerifyMode::Strict,
                    Some(_) => return Err(err(ErrorCode::BadRequest, "mode is \"stateless\" or \"strict\"")),
                };
                let v = self.sessions.verify(&body.token, mode).await?;
                Ok(HttpResponse::json(200, &json!({ "claims": v.claims.to_json(), "session": v.session })))
            }
            ["v1", "refresh"] => {
                only(m, "POST")?;
                let body: RefreshBody = json_body(&req)?;
                let t = self.sessions.refresh(&body.refresh_token).await?;
                Ok(HttpResponse::json(200, &serde_json::to_value(&t).unwrap_or_default()))
            }
            ["v1", "sessions", sid] => {
                only(m, "DELETE")?;
                let user = match self.caller(&req).await? {
                    Caller::Service => query_param(&req.query, "user")?
                        .ok_or_else(|| err(ErrorCode::BadRequest, "name the session's user with ?user=<id>"))?,
                    Caller::User { sub, .. } => sub,
                };
                // A user revoking someone else's session id finds nothing of theirs: not found, no oracle.
                self.sessions.revoke(&user, sid).await?;
                Ok(HttpResponse::json(200, &json!({ "revoked": sid })))
            }
            ["v1", "users", uid, "sessions"] => {
                let caller = self.caller(&req).await?;
                let current = match &caller {
                    Caller::Service => None,
                    Caller::User { sub, sid } => {
                        if sub != uid {
                            return Err(err(ErrorCode::Forbidden, "a user may only list or revoke their own sessions"));
                        }
                        sid.clone()
                    }
                };
                match m {
                    "GET" => {
                        let list = self.sessions.list(uid).await?;
                        Ok(HttpResponse::json(200, &json!({ "sessions": list })))
                    }
                    "DELETE" => {
                        let keep = match query_param(&req.query, "keep")?.as_deref() {
                            None => None,
                            Some("current") => {
                                Some(current.ok_or_else(|| err(ErrorCode::BadRequest, "keep=current needs the caller's access token"))?)
                            }
                            Some(sid) => Some(sid.to_owned()),
                        };
                        let n = self.sessions.revoke_all(uid, keep.as_deref()).await?;
                        Ok(HttpResponse::json(200, &json!({ "revoked": n })))
                    }
                    _ => Err(method_not_allowed()),
                }
            }
            _ => Err(not_found()),
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
        let Some(auth) = req.header("authorization") else {
            return Err(err(ErrorCode::Unauthorized, "send X-Api-Key, or Authorization: Bearer <access token>"));
        };
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .ok_or_else(|| err(ErrorCode::Unauthorized, "the Authorization header must be \"Bearer <access token>\""))?;
        let v = self.sessions.verify(token.trim(), VerifyMode::Strict).await?;
        Ok(Caller::User { sub: v.claims.sub, sid: v.claims.sid })
    }
}

fn not_found() -> Error {
    err(ErrorCode::NotFound, "no such route; see the API table in the README")
}

fn method_not_allowed() -> Error {
    err(ErrorCode::MethodNotAllowed, "this route does not take that method")
}

fn only(method: &str, allowed: &str) -> Result<(), Error> {
    if method == allowed {
        Ok(())
    } else {
        Err(method_not_allowed())
    }
}

fn json_body<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, Error> {
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

pub(crate) fn percent_decode(s: &str) -> Result<String, Error> {
    let bad = || err(ErrorCode::BadRequest, "the URL has a malformed percent-escape");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit)).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| err(ErrorCode::BadRequest, "the URL is not UTF-8"))
}

pub(crate) fn query_param(query: &str, name: &str) -> Result<Option<String>, Error> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(k)? == name {
            return percent_decode(v).map(Some);
        }
    }
    Ok(None)
}

/// Paths name users and sessions, not secrets, but keep logs short and uniform.
fn redact_path(path: &str) -> String {
    path.chars().take(128).collect()
}
