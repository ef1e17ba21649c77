//! Which user's Durable Object serves a request.
//!
//! With the Durable Object store every operation runs inside the object of the
//! user it concerns, so the Worker must name that user before anything is
//! verified. It reads the name from what the request carries, trusting none of
//! it: the object runs the whole request through [`crate::http::HttpApi`] and
//! checks every token and key itself. A forged name (a token's `sub`, a refresh
//! token's locator) only wakes that user's object, which refuses the request
//! when the token does not verify; service-only routes are not forwarded
//! without a valid API key.
//!
//! | request | object |
//! |---|---|
//! | `POST /v1/sessions` with a valid API key | body `user` |
//! | `POST /v1/verify`, strict (`mode: "strict"`, or no mode with the default `verify_mode`) | the token's `sub` (decoded, not verified) |
//! | `POST /v1/refresh` | the refresh token's locator |
//! | `DELETE /v1/sessions/{sid}` | `?user=` with a valid API key, else the Bearer token's `sub` |
//! | `/v1/users/{uid}/sessions` | `uid` with a valid API key, else the Bearer token's `sub` |
//!
//! Anything else is answered by the Worker itself ([`Target::Local`]): health,
//! JWKS, stateless verify (no store needed), and every request that cannot name
//! a user, which fails the same way in the Worker as it would in an object
//! (unauthorized, malformed, unknown route) without waking one.

use serde_json::Value;

use crate::engine::b64;
use crate::engine::ops::VerifyMode;
use crate::engine::token::{check_user_id, RefreshToken};
use crate::http::{percent_decode, query_param, HttpRequest};

/// Where a request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// By the Worker, without a store.
    Local,
    /// By this user's Durable Object.
    User(String),
}

/// Works out the target of `req`. `api_key_ok`: the request carries a valid
/// service API key; `refresh_prefix`: the policy's refresh-token prefix;
/// `verify_mode`: the mode of a verify that names none.
pub fn target(req: &HttpRequest, api_key_ok: bool, refresh_prefix: &str, verify_mode: VerifyMode) -> Target {
    let Some(rest) = req.path.strip_prefix('/') else { return Target::Local };
    let segments: Vec<String> = match rest.split('/').map(percent_decode).collect() {
        Ok(s) => s,
        Err(_) => return Target::Local,
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let has_api_key = req.header("x-api-key").is_some();
    let user = match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["v1", "sessions"]) if api_key_ok => json(req).and_then(|b| string_field(&b, "user")),
        ("POST", ["v1", "verify"]) => json(req)
            .filter(|b| match b.get("mode") {
                None => verify_mode == VerifyMode::Strict,
                Some(mode) => mode.as_str() == Some("strict"),
            })
            .and_then(|b| string_field(&b, "token"))
            .and_then(|t| unverified_sub(&t)),
        ("POST", ["v1", "refresh"]) => json(req)
            .and_then(|b| string_field(&b, "refresh_token"))
            .and_then(|t| RefreshToken::parse(&t, refresh_prefix).ok())
            .map(|t| t.user.clone()),
        ("DELETE", ["v1", "sessions", _]) if has_api_key => api_key_ok.then(|| query_param(&req.query, "user").ok().flatten()).flatten(),
        ("DELETE", ["v1", "sessions", _]) => bearer_sub(req),
        (_, ["v1", "users", uid, "sessions"]) if has_api_key => api_key_ok.then(|| (*uid).to_owned()),
        // A user's token is checked by the object of its own user; that object also
        // refuses (403) a `uid` that is not the token's.
        (_, ["v1", "users", _, "sessions"]) => bearer_sub(req),
        _ => None,
    };
    match user {
        Some(u) if check_user_id(&u).is_ok() => Target::User(u),
        _ => Target::Local,
    }
}

/// The body as JSON, only when the request says it is JSON (else the Worker
/// answers `unsupported_media_type` itself).
fn json(req: &HttpRequest) -> Option<Value> {
    let ct = req.header("content-type")?;
    let mime = ct.split(';').next()?.trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return None;
    }
    serde_json::from_slice(&req.body).ok()
}

fn string_field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn bearer_sub(req: &HttpRequest) -> Option<String> {
    let auth = req.header("authorization")?;
    let token = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))?;
    unverified_sub(token.trim())
}

/// The `sub` claim of a JWT, read WITHOUT checking anything: for routing only.
pub fn unverified_sub(token: &str) -> Option<String> {
    if token.len() > 16 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    let payload = b64::decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    string_field(&claims, "sub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpRequest {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HttpRequest::new(method, path, headers, body.as_bytes().to_vec())
    }

    fn jwt_with(claims: &str) -> String {
        format!("{}.{}.sig", b64::encode(br#"{"alg":"HS256"}"#), b64::encode(claims.as_bytes()))
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    /// The target with the default verify mode, `strict`.
    fn target(req: &HttpRequest, api_key_ok: bool, refresh_prefix: &str) -> Target {
        super::target(req, api_key_ok, refresh_prefix, VerifyMode::Strict)
    }

    #[test]
    fn create_goes_to_the_body_user_only_with_a_valid_key() {
        let r = req("POST", "/v1/sessions", &[JSON, ("x-api-key", "k")], r#"{"user":"alice"}"#);
        assert_eq!(target(&r, true, "tgr"), Target::User("alice".into()));
        assert_eq!(target(&r, false, "tgr"), Target::Local, "a bad key is refused by the Worker");
        let r = req("POST", "/v1/sessions", &[("x-api-key", "k")], r#"{"user":"alice"}"#);
        assert_eq!(target(&r, true, "tgr"), Target::Local, "no JSON content type");
        let r = req("POST", "/v1/sessions", &[JSON, ("x-api-key", "k")], r#"{"user":""}"#);
        assert_eq!(target(&r, true, "tgr"), Target::Local, "an invalid user id");
        let r = req("POST", "/v1/sessions", &[JSON, ("x-api-key", "k")], r#"{"user":"#);
        assert_eq!(target(&r, true, "tgr"), Target::Local);
    }

    #[test]
    fn verify_is_local_unless_strict() {
        let t = jwt_with(r#"{"sub":"bob","sid":"x"}"#);
        let body = format!(r#"{{"token":"{t}","mode":"strict"}}"#);
        assert_eq!(target(&req("POST", "/v1/verify", &[JSON], &body), false, "tgr"), Target::User("bob".into()));
        let body = format!(r#"{{"token":"{t}","mode":"stateless"}}"#);
        assert_eq!(target(&req("POST", "/v1/verify", &[JSON], &body), false, "tgr"), Target::Local);
        // No mode: the configured default, strict unless the Worker says stateless.
        let body = format!(r#"{{"token":"{t}"}}"#);
        assert_eq!(target(&req("POST", "/v1/verify", &[JSON], &body), false, "tgr"), Target::User("bob".into()));
        let stateless = super::target(&req("POST", "/v1/verify", &[JSON], &body), false, "tgr", VerifyMode::Stateless);
        assert_eq!(stateless, Target::Local);
        let body = r#"{"token":"garbage","mode":"strict"}"#;
        assert_eq!(target(&req("POST", "/v1/verify", &[JSON], body), false, "tgr"), Target::Local);
    }

    #[test]
    fn refresh_goes_to_the_locator_user() {
        let rt = RefreshToken::format("tgr", "carol@example.com", &b64::encode(&[7u8; 16]), &[1u8; 32]);
        let body = format!(r#"{{"refresh_token":"{rt}"}}"#);
        assert_eq!(target(&req("POST", "/v1/refresh", &[JSON], &body), false, "tgr"), Target::User("carol@example.com".into()));
        assert_eq!(target(&req("POST", "/v1/refresh", &[JSON], &body), false, "xyz"), Target::Local, "other prefix");
    }

    #[test]
    fn revoke_and_user_routes() {
        let bearer = format!("Bearer {}", jwt_with(r#"{"sub":"dave"}"#));
        let sid = "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA";
        let with_user = format!("{sid}?user=erin%40x");
        assert_eq!(target(&req("DELETE", &with_user, &[("x-api-key", "k")], ""), true, "tgr"), Target::User("erin@x".into()));
        assert_eq!(target(&req("DELETE", &with_user, &[("x-api-key", "k")], ""), false, "tgr"), Target::Local);
        assert_eq!(target(&req("DELETE", sid, &[("x-api-key", "k")], ""), true, "tgr"), Target::Local, "no ?user=");
        assert_eq!(target(&req("DELETE", sid, &[("authorization", &bearer)], ""), false, "tgr"), Target::User("dave".into()));
        assert_eq!(target(&req("DELETE", sid, &[], ""), false, "tgr"), Target::Local);

        let list = "/v1/users/fay%20g/sessions";
        assert_eq!(target(&req("GET", list, &[("x-api-key", "k")], ""), true, "tgr"), Target::User("fay g".into()));
        assert_eq!(target(&req("DELETE", list, &[("x-api-key", "k")], ""), false, "tgr"), Target::Local);
        // The token's own user's object answers, and refuses another uid.
        assert_eq!(target(&req("GET", list, &[("authorization", &bearer)], ""), false, "tgr"), Target::User("dave".into()));
        assert_eq!(target(&req("GET", list, &[("authorization", "Basic x")], ""), false, "tgr"), Target::Local);
    }

    #[test]
    fn everything_else_is_local() {
        for (m, p) in
            [("GET", "/healthz"), ("GET", "/.well-known/jwks.json"), ("GET", "/nope"), ("GET", "/v1/users/%zz/sessions"), ("GET", "")]
        {
            assert_eq!(target(&req(m, p, &[("x-api-key", "k")], ""), true, "tgr"), Target::Local, "{m} {p}");
        }
    }

    #[test]
    fn sub_is_read_without_trust() {
        assert_eq!(unverified_sub(&jwt_with(r#"{"sub":"x"}"#)).as_deref(), Some("x"));
        assert_eq!(unverified_sub(&jwt_with(r#"{"sub":1}"#)), None);
        assert_eq!(unverified_sub("a.b"), None);
        assert_eq!(unverified_sub(""), None);
    }
}
