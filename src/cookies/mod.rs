//! The recipe of docs/cookies.md for Rust framework adapters, with no framework in it:
//! the adapter options and their checks, reading and writing the two cookies, the
//! CSRF decision, and which refresh errors clear the cookies. The axum layer
//! ([`crate::axum`]) is one adapter over it; `pkg/adapter.js` is the same recipe in
//! JavaScript, and the two answer the same requests alike.

#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::{SessionInfo, Tokens};

/// `SameSite` of both cookies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
}

/// Where the client IP comes from (docs/cookies.md, "Client IP"): the one rule of the core.
pub use crate::engine::client::TrustedProxy;

/// The adapter options of docs/cookies.md, checked ([`AdapterOptionsBuilder::build`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterOptions {
    refresh_cookie: String,
    refresh_cookie_path: String,
    access_cookie: Option<String>,
    same_site: SameSite,
    trusted_proxy: TrustedProxy,
    allowed_origins: Vec<String>,
}

impl Default for AdapterOptions {
    /// The defaults: `__Host-tg_refresh` at `Path=/`, no access cookie, `SameSite=Strict`.
    fn default() -> Self {
        AdapterOptions {
            refresh_cookie: "__Host-tg_refresh".into(),
            refresh_cookie_path: "/".into(),
            access_cookie: None,
            same_site: SameSite::Strict,
            trusted_proxy: TrustedProxy::None,
            allowed_origins: Vec::new(),
        }
    }
}

/// The options as given, each checked by [`AdapterOptionsBuilder::build`]. The same
/// names as the settings table (`refresh_cookie`, ...) and as `pkg/adapter.js`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdapterOptionsBuilder {
    refresh_cookie: Option<String>,
    refresh_cookie_path: Option<String>,
    access_cookie: Option<String>,
    same_site: Option<String>,
    trusted_proxy: Option<String>,
    allowed_origins: Option<Vec<String>>,
}

/// An unusable option: the setting (snake_case) and what it must be, as `pkg/adapter.js` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionProblem {
    pub setting: &'static str,
    pub what: &'static str,
}

const NOT_TOKEN: &str = "a cookie name is a token (letters, digits, !#$%&'*+-.^_`|~)";
const NO_PREFIX: &str = "the cookie name must start with __Host- or __Secure- (browsers then require Secure)";
const BAD_PATH: &str = "a path starts with '/' and has no ';' or spaces";
const HOST_PATH: &str = "a __Host- cookie must have Path=/: use a __Secure- name to scope the cookie to a path";
const SAME_NAME: &str = "the access and refresh cookies need two names";
const BAD_SAME_SITE: &str = "'strict' or 'lax'";
/// The refusal of a `trusted_proxy` that is not one of the three forms (the settings table says it too).
pub(crate) const BAD_PROXY: &str = "'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'";
const BAD_ORIGIN: &str = "each origin is scheme://host[:port], no path";

impl AdapterOptions {
    pub fn builder() -> AdapterOptionsBuilder {
        AdapterOptionsBuilder::default()
    }
    pub fn refresh_cookie(&self) -> &str {
        &self.refresh_cookie
    }
    pub fn refresh_cookie_path(&self) -> &str {
        &self.refresh_cookie_path
    }
    /// The access cookie's name; `None` when the access token goes in the body.
    pub fn access_cookie(&self) -> Option<&str> {
        self.access_cookie.as_deref()
    }
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }
    pub fn trusted_proxy(&self) -> TrustedProxy {
        self.trusted_proxy
    }
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }
}

impl AdapterOptionsBuilder {
    /// Name of the refresh-token cookie (`__Host-` or `__Secure-` prefixed).
    pub fn refresh_cookie(mut self, name: impl Into<String>) -> Self {
        self.refresh_cookie = Some(name.into());
        self
    }
    /// `Path` of the refresh cookie; a `__Host-` cookie must keep `/`.
    pub fn refresh_cookie_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_cookie_path = Some(path.into());
        self
    }
    /// `off` (the default), or the name of a cookie that carries the access token.
    pub fn access_cookie(mut self, name: impl Into<String>) -> Self {
        self.access_cookie = Some(name.into());
        self
    }
    /// `strict` (the default) or `lax`.
    pub fn same_site(mut self, same_site: impl Into<String>) -> Self {
        self.same_site = Some(same_site.into());
        self
    }
    /// `none` (the default), `x-forwarded-for:N` or `cf-connecting-ip`.
    pub fn trusted_proxy(mut self, proxy: impl Into<String>) -> Self {
        self.trusted_proxy = Some(proxy.into());
        self
    }
    /// Other origins (`https://app.example`) whose pages may send state-changing requests with cookies.
    pub fn allowed_origins<I: IntoIterator<Item = T>, T: Into<String>>(mut self, origins: I) -> Self {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// The checked options, or `config_invalid` naming the first unusable one as Rust spells it.
    pub fn build(&self) -> Result<AdapterOptions, Error> {
        self.check().map_err(|p| Error::config(format!("{}: {}", p.setting, p.what)))
    }

    /// The checks of `pkg/adapter.js` `adapterOptions`, in its order.
    pub fn check(&self) -> Result<AdapterOptions, OptionProblem> {
        let problem = |setting, what| OptionProblem { setting, what };
        let refresh_cookie = cookie_name("refresh_cookie", self.refresh_cookie.as_deref().unwrap_or("__Host-tg_refresh"))?;
        let refresh_cookie_path = self.refresh_cookie_path.clone().unwrap_or_else(|| "/".into());
        if !cookie_path(&refresh_cookie_path) {
            return Err(problem("refresh_cookie_path", BAD_PATH));
        }
        if refresh_cookie.starts_with("__Host-") && refresh_cookie_path != "/" {
            return Err(problem("refresh_cookie_path", HOST_PATH));
        }
        let access_cookie = match self.access_cookie.as_deref().unwrap_or("off") {
            "off" => None,
            name => Some(cookie_name("access_cookie", name)?),
        };
        if access_cookie.as_deref() == Some(refresh_cookie.as_str()) {
            return Err(problem("access_cookie", SAME_NAME));
        }
        let same_site = match self.same_site.as_deref().unwrap_or("strict") {
            "strict" => SameSite::Strict,
            "lax" => SameSite::Lax,
            _ => return Err(problem("same_site", BAD_SAME_SITE)),
        };
        let trusted_proxy =
            self.trusted_proxy.as_deref().unwrap_or("none").parse::<TrustedProxy>().map_err(|_| problem("trusted_proxy", BAD_PROXY))?;
        let allowed_origins = self.allowed_origins.clone().unwrap_or_default();
        if !allowed_origins.iter().all(|o| origin(o)) {
            return Err(problem("allowed_origins", BAD_ORIGIN));
        }
        Ok(AdapterOptions { refresh_cookie, refresh_cookie_path, access_cookie, same_site, trusted_proxy, allowed_origins })
    }
}

/// RFC 6265 token characters: what `pkg/adapter.js` accepts as a cookie name.
fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn cookie_name(setting: &'static str, name: &str) -> Result<String, OptionProblem> {
    if name.is_empty() || !name.bytes().all(token_char) {
        return Err(OptionProblem { setting, what: NOT_TOKEN });
    }
    if !name.starts_with("__Host-") && !name.starts_with("__Secure-") {
        return Err(OptionProblem { setting, what: NO_PREFIX });
    }
    Ok(name.to_owned())
}

/// A path-value of RFC 6265: `/`, then printable ASCII without `;` or space.
fn cookie_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b';')
}

/// `scheme://host[:port]`: a scheme, then a DNS name or IPv4 text, or an IPv6 address in brackets.
fn origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else { return false };
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b));
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, after)) if !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b":.".contains(&b)) => (true, after),
            _ => return false,
        },
        None => {
            let end = rest.find(':').unwrap_or(rest.len());
            let name = &rest[..end];
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b)), &rest[end..])
        }
    };
    let port_ok =
        port.is_empty() || port.strip_prefix(':').is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    scheme_ok && host && port_ok
}

/// The value of cookie `name` in a `Cookie` header: pairs split on `;`, each on its
/// first `=`, names compared exactly after trimming; the first pair with the name
/// wins, and an empty value is no cookie.
pub fn read_cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    for pair in header.split(';') {
        let Some((n, value)) = pair.split_once('=') else { continue };
        if n.trim() != name {
            continue;
        }
        let value = value.trim();
        return (!value.is_empty()).then_some(value);
    }
    None
}

/// One `Set-Cookie` value, attributes in the documented order; never a `Domain`.
pub fn set_cookie(options: &AdapterOptions, name: &str, path: &str, value: &str, max_age: u64) -> String {
    let same_site = match options.same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite={same_site}")
}

/// Whole seconds from `now` to `until` (unix ms), rounded down, at least 1.
fn seconds_until(until_ms: u64, now_ms: u64) -> u64 {
    (until_ms.saturating_sub(now_ms) / 1000).max(1)
}

/// The cookies of a sign-in or refresh: the refresh cookie until the session's
/// sooner expiry, and the access cookie (when on) until the token's `exp`.
pub fn token_cookies(options: &AdapterOptions, tokens: &Tokens, now_ms: u64) -> Vec<String> {
    let s = &tokens.session;
    let refresh_max_age = seconds_until(s.idle_expires_at.min(s.absolute_expires_at), now_ms);
    let mut cookies =
        vec![set_cookie(options, &options.refresh_cookie, &options.refresh_cookie_path, &tokens.refresh_token, refresh_max_age)];
    if let Some(access) = &options.access_cookie {
        cookies.push(set_cookie(options, access, "/", &tokens.access_token, seconds_until(tokens.access_expires_at, now_ms)));
    }
    cookies
}

/// The cookies that clear both: the same name, `Path` and flags, an empty value and `Max-Age=0`.
pub fn clear_cookies(options: &AdapterOptions) -> Vec<String> {
    let mut cookies = vec![set_cookie(options, &options.refresh_cookie, &options.refresh_cookie_path, "", 0)];
    if let Some(access) = &options.access_cookie {
        cookies.push(set_cookie(options, access, "/", "", 0));
    }
    cookies
}

/// The body of a sign-in or refresh: never the refresh token; no access token when its cookie is on.
pub fn tokens_body(options: &AdapterOptions, tokens: &Tokens) -> Value {
    let session = session_json(&tokens.session);
    match options.access_cookie {
        Some(_) => json!({ "access_expires_at": tokens.access_expires_at, "session": session }),
        None => json!({ "access_token": tokens.access_token, "access_expires_at": tokens.access_expires_at, "session": session }),
    }
}

fn session_json(s: &SessionInfo) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// Whether a refresh that failed with `code` can never succeed: its cookies are cleared.
pub fn refresh_is_dead(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::TokenInvalid
            | ErrorCode::SessionNotFound
            | ErrorCode::SessionRevoked
            | ErrorCode::SessionExpired
            | ErrorCode::RefreshTokenReused
    )
}

/// Every method but `GET`, `HEAD` and `OPTIONS` changes state.
pub fn state_changing(method: &str) -> bool {
    !["GET", "HEAD", "OPTIONS"].iter().any(|safe| method.eq_ignore_ascii_case(safe))
}

/// The headers the CSRF check reads; an empty header counts as absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestOrigin<'a> {
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    /// `Host` (or the HTTP/2 authority).
    pub host: Option<&'a str>,
}

/// The CSRF decision of docs/cookies.md, in its order: `true` when the request may go on.
pub fn csrf_allowed(options: &AdapterOptions, req: RequestOrigin<'_>) -> bool {
    let origin = present(req.origin);
    if let Some(o) = origin {
        if options.allowed_origins.iter().any(|allowed| allowed == o) {
            return true;
        }
    }
    if let Some(site) = present(req.sec_fetch_site) {
        return site == "same-origin" || site == "none";
    }
    match origin {
        Some(o) => match (o.split_once("://"), present(req.host)) {
            (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false, // `null`, or no Host to compare with
        },
        None => true,
    }
}

/// A header counts only when it holds something (`Origin:` with no value is no origin).
fn present(header: Option<&str>) -> Option<&str> {
    header.filter(|v| !v.is_empty())
}

/// The refusal of a cross-origin state-changing request.
pub fn forbidden() -> Error {
    Error::new(
        ErrorCode::Forbidden,
        "this state-changing request comes from another origin; send it from a page of this site (or list its origin in allowed_origins)",
    )
}
