//! The npm package's facade: `createManager(config)` and the `TollgateManager`
//! class. Each method converts its arguments, calls [`SessionManager`], and
//! converts the result; the rules all live in the core.
//!
//! Every method answers a Promise (except `jwks()`, which is pure) and never
//! throws synchronously. Failures reject with a `TollgateError` whose `code`
//! is the Rust [`ErrorCode`](crate::ErrorCode) string; the one mapping is
//! [`convert::js_error`]. Nothing here panics on any input, so the instance
//! keeps working after any error.

mod convert;

use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Function, Promise, Reflect};
use serde::Serialize;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

use crate::crypto::webcrypto;
use std::net::IpAddr;

use crate::engine::audit::AuditEvent;
use crate::engine::client::{parse_entry, ClientInfo, TrustedProxy};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::{SessionInfo, Tokens, VerifyMode};
use crate::engine::policy::Rules;
use crate::engine::token::{MAX_REFRESH_TOKEN_LEN, MAX_USER_ID_LEN};
use crate::manager::{AuditHook, SessionManager};
use crate::platform::SystemClock;
use crate::settings::{Settings, Source, Surface, SETTINGS};
use crate::store::js::JsStore;
use crate::store::redis::js::JsRedisStore;
use crate::store::{MemoryStore, Store};
use convert::{json_arg, opt_string_arg, promise, string_arg, to_js, Failure};

type Manager = SessionManager<Arc<dyn Store>>;

/// Tokens longer than this are refused before they are copied into wasm; the
/// core applies the configured limit (8 KiB by default) after.
const MAX_TOKEN_CHARS: u32 = 1 << 16;
const MAX_ID_CHARS: u32 = MAX_USER_ID_LEN as u32;

/// Sessions, from JavaScript. Made by `createManager(config)`.
#[wasm_bindgen]
pub struct TollgateManager {
    inner: Rc<Manager>,
}

/// Builds a manager: loads the keys (importing asymmetric ones into WebCrypto
/// once) and picks the store (`config.store`: `tollgate/redis-store`'s, a JS
/// store, or memory).
#[wasm_bindgen(js_name = createManager)]
pub fn create_manager(config: JsValue) -> Promise {
    promise(async move { Ok(TollgateManager::create(config).await?.into()) })
}

impl TollgateManager {
    /// What `createManager` does, for Rust callers (and the wasm-bindgen tests).
    pub async fn create(config: JsValue) -> Result<TollgateManager, Error> {
        Ok(TollgateManager { inner: Rc::new(build(config).await?) })
    }
}

/// JSON turns NaN and Infinity into null (which reads as "not set"): refuse
/// them before the configuration goes through JSON.
fn refuse_non_finite(config: &JsValue) -> Result<(), Error> {
    for name in SETTINGS.iter().filter_map(|s| s.js) {
        let v = Reflect::get(config, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
        if v.as_f64().is_some_and(|n| !n.is_finite()) {
            return Err(Error::config(format!("{name} must be a finite number")));
        }
    }
    Ok(())
}

// SessionManager's parts are Arcs (the same types natively); in wasm nothing is Send.
#[allow(clippy::arc_with_non_send_sync)]
async fn build(config: JsValue) -> Result<Manager, Error> {
    if !config.is_object() {
        return Err(Error::config(format!("createManager takes a configuration object, not {}", convert::type_name(&config))));
    }
    // The store is an object with methods (and perhaps a client inside): it does not go through JSON.
    let store_value = Reflect::get(&config, &JsValue::from_str("store")).unwrap_or(JsValue::UNDEFINED);
    let on_audit = Reflect::get(&config, &JsValue::from_str("onAudit")).unwrap_or(JsValue::UNDEFINED);
    let on_audit = match on_audit.dyn_into::<Function>() {
        Ok(f) => Some(f),
        Err(v) if v.is_undefined() || v.is_null() => None,
        Err(_) => return Err(Error::config("onAudit is a function (event) => void")),
    };
    refuse_non_finite(&config)?;
    let copy = convert::shallow_copy(&config).ok_or_else(|| Error::config("the configuration object threw when read"))?;
    let _ = Reflect::delete_property(&copy, &JsValue::from_str("store"));
    let _ = Reflect::delete_property(&copy, &JsValue::from_str("onAudit"));
    let json = json_arg(&copy, "the configuration").map_err(|e| Error::config(e.message().to_owned()))?.unwrap_or(Value::Null);
    let settings = Settings::read(&Source::js(json)?, Surface::Js)?;
    let config = settings.config()?;
    let store: Arc<dyn Store> = if store_value.is_undefined() || store_value.is_null() {
        Arc::new(MemoryStore::new())
    } else if JsRedisStore::is_transport(&store_value) {
        Arc::new(JsRedisStore::new(store_value)?)
    } else {
        Arc::new(JsStore::new(store_value)?)
    };
    let (keys, crypto) = webcrypto::load_keys(&config.keys).await.map_err(|e| settings.key_refused(&config, e))?;
    let rules = Rules::new(keys, config.policy)?;
    let manager = SessionManager::from_parts(rules, store, Arc::new(crypto), Arc::new(SystemClock));
    Ok(match on_audit {
        Some(f) => manager.with_audit(audit_hook(f)),
        None => manager,
    })
}

/// The client IP of a request by the trusted-proxy rule (docs/cookies.md, "Client IP"),
/// for the JS adapters: `clientIp(trustedProxy, peer, headers)`. `peer` is the socket's
/// remote address or null; `headers` an object with the request's `x-forwarded-for`
/// and `cf-connecting-ip` values (each header's values joined with ", ", as Node and
/// fetch's `Headers` join them). Answers the canonical IP text or null; a bad
/// `trustedProxy` throws `config_invalid`.
#[wasm_bindgen(js_name = clientIp)]
pub fn client_ip(trusted_proxy: JsValue, peer: JsValue, headers: JsValue) -> Result<JsValue, JsValue> {
    let run = || -> Result<JsValue, Error> {
        let proxy = opt_string_arg(&trusted_proxy, "trustedProxy", 32)?.unwrap_or_else(|| "none".into());
        let proxy: TrustedProxy = proxy
            .parse()
            .map_err(|_| Error::config("trustedProxy: 'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'"))?;
        let peer = opt_string_arg(&peer, "peer", 64)?.and_then(|p| parse_entry(&p));
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        if headers.is_object() {
            for name in ["x-forwarded-for", "cf-connecting-ip"] {
                let v = Reflect::get(&headers, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
                if let Some(v) = opt_string_arg(&v, name, 8192)? {
                    pairs.push((name, v));
                }
            }
        }
        let ip = proxy.client_ip(peer, pairs.iter().map(|(n, v)| (*n, v.as_str())));
        Ok(ip.map_or(JsValue::NULL, |ip| JsValue::from_str(&ip.to_string())))
    };
    run().map_err(|e| convert::js_error(&e))
}

/// A session as JavaScript sees it: camelCase, timestamps in unix ms.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsSession<'a> {
    sid: &'a str,
    user: &'a str,
    created_at: u64,
    last_seen: u64,
    idle_expires_at: u64,
    absolute_expires_at: u64,
    generation: u64,
    metadata: &'a Value,
    ip: Option<IpAddr>,
    user_agent: Option<&'a str>,
    /// In `list()` only: whether it is the session named by `{ current }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<bool>,
}

impl<'a> From<&'a SessionInfo> for JsSession<'a> {
    fn from(s: &'a SessionInfo) -> Self {
        JsSession {
            sid: &s.sid,
            user: &s.user,
            created_at: s.created_at,
            last_seen: s.last_seen,
            idle_expires_at: s.idle_expires_at,
            absolute_expires_at: s.absolute_expires_at,
            generation: s.generation,
            metadata: &s.metadata,
            ip: s.ip,
            user_agent: s.user_agent.as_deref(),
            current: None,
        }
    }
}

/// An audit event as `onAudit` receives it: `{ kind, user, sid, at, ip, userAgent, count? }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsAuditEvent<'a> {
    kind: &'static str,
    user: &'a str,
    sid: Option<&'a str>,
    at: u64,
    ip: Option<IpAddr>,
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

/// The config's `onAudit` as the manager's hook: each event is handed to it; what it
/// throws is caught and logged to the console (an audit sink never fails an operation).
#[allow(clippy::arc_with_non_send_sync)] // AuditHook is an Arc on every target; nothing is Send in wasm
fn audit_hook(f: Function) -> AuditHook {
    Arc::new(move |e: &AuditEvent| {
        let event = JsAuditEvent {
            kind: e.kind.as_str(),
            user: &e.user,
            sid: e.sid.as_deref(),
            at: e.at,
            ip: e.ip,
            user_agent: e.user_agent.as_deref(),
            count: e.count,
        };
        if let Ok(v) = to_js(&event) {
            if f.call1(&JsValue::UNDEFINED, &v).is_err() {
                console_warn("tollgate: onAudit threw; the event is dropped");
            }
        }
    })
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

/// The `client` option of `issue()` and `refresh()`: `{ ip?, userAgent? }`.
fn client_option(o: &mut Map<String, Value>, method: &str) -> Result<Option<ClientInfo>, Error> {
    let bad = || Error::bad_request(format!("{method}()'s client is {{ ip?: string | null, userAgent?: string | null }}"));
    let Some(v) = o.remove("client") else { return Ok(None) };
    let Value::Object(mut c) = v else {
        return if v.is_null() { Ok(None) } else { Err(bad()) };
    };
    let ip =
        match c.remove("ip") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_entry(&s).ok_or_else(|| {
                Error::bad_request(format!("{method}()'s client.ip is not an IP address; pass null when it is not known"))
            })?),
            Some(_) => return Err(bad()),
        };
    let ua = match c.remove("userAgent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad()),
    };
    if !c.is_empty() {
        return Err(bad());
    }
    Ok(Some(ClientInfo::new(ip, ua.as_deref())))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsTokens<'a> {
    access_token: &'a str,
    access_expires_at: u64,
    refresh_token: &'a str,
    session: JsSession<'a>,
}

fn tokens_to_js(t: &Tokens) -> Result<JsValue, Error> {
    to_js(&JsTokens {
        access_token: &t.access_token,
        access_expires_at: t.access_expires_at,
        refresh_token: &t.refresh_token,
        session: JsSession::from(&t.session),
    })
}

fn user_arg(v: &JsValue) -> Result<String, Error> {
    string_arg(v, "user", MAX_ID_CHARS, ErrorCode::BadRequest)
}

fn sid_arg(v: &JsValue) -> Result<String, Error> {
    string_arg(v, "sid", 64, ErrorCode::BadRequest)
}

/// An options object: `undefined`/`null` is empty; anything else must be a plain object.
fn options(v: &JsValue, method: &str) -> Result<Map<String, Value>, Error> {
    let not_object = || Error::bad_request(format!("the options of {method}() are an object"));
    if v.is_undefined() || v.is_null() {
        return Ok(Map::new());
    }
    if !v.is_object() || v.is_function() {
        return Err(not_object());
    }
    match json_arg(v, "options")? {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(not_object()),
    }
}

fn refuse_unknown(options: &Map<String, Value>, allowed: &[&str], method: &str) -> Result<(), Error> {
    match options.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::bad_request(format!("{method}() has no option {k:?}; it takes {allowed:?}"))),
        None => Ok(()),
    }
}

fn loader_arg(v: &JsValue) -> Result<Function, Error> {
    v.clone()
        .dyn_into::<Function>()
        .map_err(|_| Error::bad_request(format!("the loader must be a function (user) => info, not {}", convert::type_name(v))))
}

/// Calls the caller's loader for `user`. What it throws is kept in `thrown` and
/// handed back unchanged; what it answers must be JSON-serializable.
async fn call_loader(loader: &Function, user: String, thrown: &std::cell::RefCell<Option<JsValue>>) -> Result<Value, Error> {
    let loader_failed = || Error::new(ErrorCode::Internal, "the user-info loader failed");
    let result = match loader.call1(&JsValue::UNDEFINED, &JsValue::from_str(&user)) {
        Ok(r) => wasm_bindgen_futures::JsFuture::from(Promise::resolve(&r)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(info) => match json_arg(&info, "the loader's answer")? {
            Some(v) => Ok(v),
            None => Err(Error::bad_request("the loader answered undefined; answer the user's info, or null")),
        },
        Err(e) => {
            *thrown.borrow_mut() = Some(e);
            Err(loader_failed())
        }
    }
}

/// Maps a loader's error back to what it threw.
fn with_thrown(e: Error, thrown: &std::cell::RefCell<Option<JsValue>>) -> Failure {
    match thrown.borrow_mut().take() {
        Some(v) => Failure::Thrown(v),
        None => Failure::Tollgate(e),
    }
}

#[wasm_bindgen]
impl TollgateManager {
    /// Starts a session: `issue(user, { claims?, metadata? })`.
    pub fn issue(&self, user: JsValue, options: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            let mut o = self::options(&options, "issue")?;
            refuse_unknown(&o, &["claims", "metadata", "client"], "issue")?;
            let client = client_option(&mut o, "issue")?;
            let claims = match o.remove("claims") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(c)) => c,
                Some(_) => return Err(Error::bad_request("claims is an object of custom claims").into()),
            };
            let metadata = o.remove("metadata").unwrap_or(Value::Null);
            let tokens = match client {
                Some(client) => m.issue_from(&user, claims, metadata, &client).await?,
                None => m.issue(&user, claims, metadata).await?,
            };
            Ok(tokens_to_js(&tokens)?)
        })
    }

    /// Verifies an access token: `verify(token, mode)`, mode `"stateless"` or `"strict"`;
    /// without one, the `verifyMode` setting (default `"strict"`).
    /// Answers `{ claims, session }` (`session` is null in stateless mode).
    pub fn verify(&self, token: JsValue, mode: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let token = string_arg(&token, "the access token", MAX_TOKEN_CHARS, ErrorCode::TokenInvalid)?;
            let mode = match opt_string_arg(&mode, "mode", 16)?.as_deref() {
                None => m.rules().policy.verify_mode,
                Some("strict") => VerifyMode::Strict,
                Some("stateless") => VerifyMode::Stateless,
                Some(_) => return Err(Error::bad_request("mode is \"stateless\" or \"strict\"").into()),
            };
            let verified = m.verify(&token, mode).await?;
            // The payload is JSON already: spliced into the answer, parsed once in JS.
            let payload = std::str::from_utf8(verified.claims.payload())
                .map_err(|_| Error::new(ErrorCode::TokenInvalid, "the token payload is not UTF-8"))?;
            let session = match &verified.session {
                Some(s) => serde_json::to_string(&JsSession::from(s))
                    .map_err(|_| Error::new(ErrorCode::Internal, "a result could not be encoded"))?,
                None => "null".into(),
            };
            let mut text = String::with_capacity(payload.len() + session.len() + 24);
            text.push_str("{\"claims\":");
            text.push_str(payload);
            text.push_str(",\"session\":");
            text.push_str(&session);
            text.push('}');
            Ok(convert::parse_json(&text)?)
        })
    }

    /// Rotates a refresh token into a new pair: `refresh(token, { client? })`; with a
    /// client, the session keeps its IP and user agent.
    pub fn refresh(&self, refresh_token: JsValue, options: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let max = MAX_REFRESH_TOKEN_LEN as u32;
            let token = string_arg(&refresh_token, "the refresh token", max, ErrorCode::TokenInvalid)?;
            let mut o = self::options(&options, "refresh")?;
            refuse_unknown(&o, &["client"], "refresh")?;
            let tokens = match client_option(&mut o, "refresh")? {
                Some(client) => m.refresh_from(&token, &client).await?,
                None => m.refresh(&token).await?,
            };
            Ok(tokens_to_js(&tokens)?)
        })
    }

    /// Revokes one session; revoking a revoked session succeeds.
    pub fn revoke(&self, user: JsValue, sid: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let (user, sid) = (user_arg(&user)?, sid_arg(&sid)?);
            m.revoke(&user, &sid).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Revokes all of a user's sessions, `{ except: sid }` aside; answers how many.
    #[wasm_bindgen(js_name = revokeAll)]
    pub fn revoke_all(&self, user: JsValue, options: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            let o = self::options(&options, "revokeAll")?;
            refuse_unknown(&o, &["except"], "revokeAll")?;
            let except = match o.get("except") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err(Error::bad_request("except is a session id (string)").into()),
            };
            let n = m.revoke_all(&user, except).await?;
            Ok(JsValue::from(n as f64))
        })
    }

    /// The user's live sessions, oldest first: `list(user, { current? })`. Each has
    /// `current`: whether it is the session `current` names (the caller's own).
    pub fn list(&self, user: JsValue, options: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            let o = self::options(&options, "list")?;
            refuse_unknown(&o, &["current"], "list")?;
            let current = match o.get("current") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err(Error::bad_request("current is a session id (string)").into()),
            };
            let sessions = m.list_marking(&user, current).await?;
            let out: Vec<JsSession<'_>> =
                sessions.iter().map(|l| JsSession { current: Some(l.current), ..JsSession::from(&l.session) }).collect();
            Ok(to_js(&out)?)
        })
    }

    /// Replaces a live session's metadata; answers the session.
    #[wasm_bindgen(js_name = updateMetadata)]
    pub fn update_metadata(&self, user: JsValue, sid: JsValue, metadata: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let (user, sid) = (user_arg(&user)?, sid_arg(&sid)?);
            let metadata = json_arg(&metadata, "metadata")?.unwrap_or(Value::Null);
            let info = m.update_metadata(&user, &sid, metadata).await?;
            Ok(to_js(&JsSession::from(&info))?)
        })
    }

    /// The JWKS document of the public keys, for `jose.createLocalJWKSet` and the like.
    /// Pure, so synchronous; HMAC keys are never in it.
    pub fn jwks(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.jwks()).map_err(|e| convert::js_error(&e))
    }

    /// The user's cached info. With a loader `(user) => info | Promise<info>`, a miss
    /// calls it and caches the answer; without one, a miss answers `null`.
    /// What the loader throws is thrown unchanged, and nothing is cached.
    #[wasm_bindgen(js_name = userInfo)]
    pub fn user_info(&self, user: JsValue, loader: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            if loader.is_undefined() || loader.is_null() {
                return Ok(to_js(&m.cached_user_info(&user).await?)?);
            }
            let loader = loader_arg(&loader)?;
            let thrown = std::cell::RefCell::new(None);
            let info = m.user_info(&user, |u| call_loader(&loader, u, &thrown)).await.map_err(|e| with_thrown(e, &thrown))?;
            Ok(to_js(&info)?)
        })
    }

    /// Caches `info` for the user (for `userCacheTtl` seconds).
    #[wasm_bindgen(js_name = putUserInfo)]
    pub fn put_user_info(&self, user: JsValue, info: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            let Some(info) = json_arg(&info, "info")? else {
                return Err(Error::bad_request("info is undefined; give the user's info, or null").into());
            };
            m.put_user_info(&user, info).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Reloads and caches the info of a user or a list of users with the loader;
    /// answers how many were refreshed. A loader error stops the batch.
    #[wasm_bindgen(js_name = refreshUserInfo)]
    pub fn refresh_user_info(&self, users: JsValue, loader: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let not_users = || Error::bad_request("users is a user id or an array of user ids");
            let users: Vec<String> = if users.is_string() {
                vec![user_arg(&users)?]
            } else {
                match json_arg(&users, "users")? {
                    Some(Value::Array(list)) if list.len() <= 10_000 => list
                        .into_iter()
                        .map(|u| match u {
                            Value::String(s) => Ok(s),
                            _ => Err(not_users()),
                        })
                        .collect::<Result<_, _>>()?,
                    Some(Value::Array(_)) => return Err(Error::bad_request("refreshUserInfo takes at most 10000 users at once").into()),
                    _ => return Err(not_users().into()),
                }
            };
            let loader = loader_arg(&loader)?;
            let thrown = std::cell::RefCell::new(None);
            let refs: Vec<&str> = users.iter().map(String::as_str).collect();
            let n = m.refresh_user_info(&refs, |u| call_loader(&loader, u, &thrown)).await.map_err(|e| with_thrown(e, &thrown))?;
            Ok(JsValue::from(n as f64))
        })
    }

    /// Drops the user's cached info.
    #[wasm_bindgen(js_name = deleteUserInfo)]
    pub fn delete_user_info(&self, user: JsValue) -> Promise {
        let m = self.inner.clone();
        promise(async move {
            let user = user_arg(&user)?;
            m.delete_user_info(&user).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
