//! Which user's Durable Object serves a request, decided from the request's
//! [`Route`] (parsed once, by the one route table in [`crate::http::route`]).
//!
//! With the Durable Object store every operation runs inside the object of the
//! user it concerns, so the Worker must name that user first. It reads the name
//! from what the request carries and checks it before waking an object
//! ([`checked_target`]): an access token must pass the stateless checks
//! (signature, expiry, issuer, audience), a refresh token must be well formed,
//! service-only routes need a valid API key. A request that fails is answered
//! by the Worker, with the answer the object would give (the same handler
//! refuses it before it needs a store), so forged requests wake no object. The
//! object still runs the whole request through [`crate::http::HttpApi`] and
//! checks everything itself. A well-formed refresh token carries no tag the
//! Worker could check, so a made-up one still wakes the object it names, which
//! refuses it without writing.
//!
//! | request | object |
//! |---|---|
//! | `POST /v1/sessions` with a valid API key | body `user` |
//! | `POST /v1/verify` in strict mode (`"mode": "strict"`, or no mode with the default `verify_mode`) | the token's `sub` (decoded, not verified) |
//! | `POST /v1/refresh` | the refresh token's locator |
//! | `DELETE /v1/sessions/{sid}` | `?user=` with a valid API key, else the Bearer token's `sub` |
//! | `/v1/users/{user}/sessions` | `user` with a valid API key, else the Bearer token's `sub` |
//!
//! Anything else is answered by the Worker itself ([`Target::Local`]): health,
//! JWKS, stateless verify (no store needed), and every request that cannot name
//! a user, which fails the same way in the Worker as it would in an object
//! (unauthorized, malformed, unknown route) without waking one.

use serde_json::Value;

use crate::engine::b64;
use crate::engine::ops::VerifyMode;
use crate::engine::token::{check_user_id, RefreshToken};
use crate::http::{bearer_token, json_body, CreateBody, HttpApi, HttpRequest, RefreshBody, Route, VerifyBody};
use crate::store::Store;

/// Where a request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// By the Worker, without a store.
    Local,
    /// By this user's Durable Object.
    User(String),
}

/// Works out the target of a request whose route is `route` (parsed once, by
/// [`Route::of`]). `api` is the Worker's own service: it says whether the API
/// key is valid, which verify mode a body asks for and the refresh-token prefix.
pub fn target<S: Store>(route: &Route, req: &HttpRequest, api: &HttpApi<S>) -> Target {
    let has_api_key = req.header("x-api-key").is_some();
    let api_key_ok = || api.accepts_api_key(req);
    // Every route is named: a new one must say where it is answered.
    let user = match route {
        Route::Health | Route::Ready | Route::Metrics | Route::OpenApi | Route::Jwks => None,
        Route::CreateSession => api_key_ok().then(|| json_body::<CreateBody>(req).ok().map(|b| b.user)).flatten(),
        Route::Verify => json_body::<VerifyBody>(req)
            .ok()
            .filter(|b| matches!(api.verify_mode(b.mode.as_deref()), Ok(VerifyMode::Strict)))
            .and_then(|b| unverified_sub(&b.token)),
        Route::Refresh => json_body::<RefreshBody>(req)
            .ok()
            .and_then(|b| RefreshToken::parse(&b.refresh_token, &api.sessions().rules().policy.refresh_prefix).ok())
            .map(|t| t.user),
        Route::RevokeSession { user, .. } if has_api_key => user.clone().filter(|_| api_key_ok()),
        Route::ListUserSessions { user } | Route::RevokeUserSessions { user, .. } if has_api_key => api_key_ok().then(|| user.clone()),
        // A user's token is checked by the object of its own user; that object also
        // refuses (403) a user in the path or query that is not the token's.
        Route::RevokeSession { .. } | Route::ListUserSessions { .. } | Route::RevokeUserSessions { .. } => bearer_sub(req),
    };
    match user {
        Some(u) if check_user_id(&u).is_ok() => Target::User(u),
        _ => Target::Local,
    }
}

/// [`target`], with the access token the user was read from checked first: a token
/// that fails the stateless checks (signature, expiry, issuer, audience) or names
/// another user sends the request to [`Target::Local`], which answers it as the
/// object would, without waking one.
pub async fn checked_target<S: Store>(route: &Route, req: &HttpRequest, api: &HttpApi<S>) -> Target {
    let target = target(route, req, api);
    let Target::User(user) = &target else { return target };
    let Some(token) = routing_token(route, req) else { return target };
    match api.sessions().verify(&token, VerifyMode::Stateless).await {
        Ok(v) if v.claims.sub() == user => target,
        _ => Target::Local,
    }
}

/// The access token a request is routed by, when it is routed by one (not by an API key).
fn routing_token(route: &Route, req: &HttpRequest) -> Option<String> {
    match route {
        Route::Verify => json_body::<VerifyBody>(req).ok().map(|b| b.token),
        Route::RevokeSession { .. } | Route::ListUserSessions { .. } | Route::RevokeUserSessions { .. }
            if req.header("x-api-key").is_none() =>
        {
            bearer_token(req)?.ok().map(str::to_owned)
        }
        _ => None,
    }
}

fn bearer_sub(req: &HttpRequest) -> Option<String> {
    unverified_sub(bearer_token(req)?.ok()?)
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
    claims.get("sub").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, MemoryStore, SessionManager};

    const KEY: &str = "worker-route-test-key";

    fn api() -> HttpApi<MemoryStore> {
        let config = Config::builder().secret("worker-route-test-secret-of-32-bytes!").build().unwrap();
        HttpApi::new(SessionManager::new(config, MemoryStore::new()).unwrap(), &[KEY]).unwrap()
    }

    fn target_of(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Target {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = HttpRequest::new(method, path, headers, body.as_bytes().to_vec());
        match Route::of(&req) {
            Ok(route) => target(&route, &req, &api()),
            Err(_) => Target::Local,
        }
    }

    fn user(u: &str) -> Target {
        Target::User(u.to_owned())
    }

    fn jwt_with(claims: &str) -> String {
        format!("{}.{}.sig", b64::encode(br#"{"alg":"HS256"}"#), b64::encode(claims.as_bytes()))
    }

    const JSON: (&str, &str) = ("content-type", "application/json");
    const GOOD: (&str, &str) = ("x-api-key", KEY);
    const BAD: (&str, &str) = ("x-api-key", "not-the-key-of-this-api");

    #[test]
    fn create_goes_to_the_body_user_only_with_a_valid_key() {
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, GOOD], r#"{"user":"alice"}"#), user("alice"));
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, BAD], r#"{"user":"alice"}"#), Target::Local, "a bad key");
        assert_eq!(target_of("POST", "/v1/sessions", &[GOOD], r#"{"user":"alice"}"#), Target::Local, "no JSON content type");
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, GOOD], r#"{"user":""}"#), Target::Local, "an invalid user id");
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, GOOD], r#"{"user":"a","x":1}"#), Target::Local, "an unknown field");
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, GOOD], r#"{"user":"#), Target::Local);
        assert_eq!(target_of("POST", "/v1/sessions", &[JSON, GOOD], r#"{"user":"a}b{"}"#), user("a}b{"));
    }

    #[test]
    fn verify_is_local_unless_strict() {
        let t = jwt_with(r#"{"sub":"bob","sid":"x"}"#);
        let body = format!(r#"{{"token":"{t}","mode":"strict"}}"#);
        assert_eq!(target_of("POST", "/v1/verify", &[JSON], &body), user("bob"));
        let body = format!(r#"{{"token":"{t}","mode":"stateless"}}"#);
        assert_eq!(target_of("POST", "/v1/verify", &[JSON], &body), Target::Local);
        let body = format!(r#"{{"token":"{t}","mode":"paranoid"}}"#);
        assert_eq!(target_of("POST", "/v1/verify", &[JSON], &body), Target::Local);
        let body = r#"{"token":"garbage","mode":"strict"}"#;
        assert_eq!(target_of("POST", "/v1/verify", &[JSON], body), Target::Local);
        // No mode: the verify_mode setting's, strict unless the Worker is set to stateless.
        let body = format!(r#"{{"token":"{t}"}}"#);
        assert_eq!(target_of("POST", "/v1/verify", &[JSON], &body), user("bob"));
        let req = HttpRequest::new("POST", "/v1/verify", vec![(JSON.0.into(), JSON.1.into())], body.into_bytes());
        let config = Config::builder().secret("worker-route-test-secret-of-32-bytes!").verify_mode(VerifyMode::Stateless).build().unwrap();
        let stateless = HttpApi::new(SessionManager::new(config, MemoryStore::new()).unwrap(), &[KEY]).unwrap();
        assert_eq!(target(&Route::of(&req).unwrap(), &req, &stateless), Target::Local);
    }

    #[test]
    fn refresh_goes_to_the_locator_user() {
        let rt = RefreshToken::format("tgr", "carol+{x}@example.com", &b64::encode(&[7u8; 16]), &[1u8; 32]);
        let body = format!(r#"{{"refresh_token":"{rt}"}}"#);
        assert_eq!(target_of("POST", "/v1/refresh", &[JSON], &body), user("carol+{x}@example.com"));
        let other = body.replace("tgr_", "xyz_");
        assert_eq!(target_of("POST", "/v1/refresh", &[JSON], &other), Target::Local, "another prefix");
    }

    #[test]
    fn revoke_and_user_routes() {
        let bearer = format!("Bearer {}", jwt_with(r#"{"sub":"dave"}"#));
        let sid = "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA";
        let with_user = format!("{sid}?user=erin%40x+y");
        assert_eq!(target_of("DELETE", &with_user, &[GOOD], ""), user("erin@x+y"));
        assert_eq!(target_of("DELETE", &with_user, &[BAD], ""), Target::Local);
        assert_eq!(target_of("DELETE", sid, &[GOOD], ""), Target::Local, "no ?user=");
        assert_eq!(target_of("DELETE", sid, &[("authorization", &bearer)], ""), user("dave"));
        assert_eq!(target_of("DELETE", &with_user, &[("authorization", &bearer)], ""), user("dave"), "dave's object refuses erin");
        assert_eq!(target_of("DELETE", sid, &[], ""), Target::Local);
        // The scheme is case-insensitive, as in `tollgate serve`.
        for scheme in ["bearer", "BEARER"] {
            let other = bearer.replacen("Bearer", scheme, 1);
            assert_eq!(target_of("DELETE", sid, &[("authorization", &other)], ""), user("dave"), "{scheme}");
        }

        for method in ["GET", "DELETE"] {
            let list = "/v1/users/fay+g%20%7B%7D%2F%25%3A%C3%BC/sessions";
            assert_eq!(target_of(method, list, &[GOOD], ""), user("fay+g {}/%:ü"), "{method}");
            assert_eq!(target_of(method, list, &[BAD], ""), Target::Local, "{method}");
            // The token's own user's object answers, and refuses another user.
            assert_eq!(target_of(method, list, &[("authorization", &bearer)], ""), user("dave"), "{method}");
            assert_eq!(target_of(method, list, &[("authorization", "Basic x")], ""), Target::Local, "{method}");
        }
    }

    #[test]
    fn everything_else_is_local() {
        for (m, p) in [
            ("GET", "/healthz"),
            ("GET", "/.well-known/jwks.json"),
            ("GET", "/nope"),
            ("GET", "/v1/users/%zz/sessions"),
            ("GET", "/v1/users/a/sessions?x=1"),
            ("PUT", "/v1/users/a/sessions"),
            ("GET", ""),
        ] {
            assert_eq!(target_of(m, p, &[GOOD], ""), Target::Local, "{m} {p}");
        }
    }

    const ISSUER: &str = "https://auth.test";

    /// A token of the configuration `checked` routes with, `tweak`ed.
    fn real_token(user: &str, tweak: impl FnOnce(crate::ConfigBuilder) -> crate::ConfigBuilder) -> String {
        minted_at(user, None, tweak)
    }

    /// A token minted at `at` (unix ms; now when `None`).
    fn minted_at(user: &str, at: Option<u64>, tweak: impl FnOnce(crate::ConfigBuilder) -> crate::ConfigBuilder) -> String {
        let config = tweak(Config::builder().secret("worker-route-test-secret-of-32-bytes!").issuer(ISSUER)).build().unwrap();
        let mut sessions = SessionManager::new(config, MemoryStore::new()).unwrap();
        if let Some(at) = at {
            sessions = sessions.with_clock(std::sync::Arc::new(crate::ManualClock::new(at)));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(sessions.issue(user, serde_json::Map::new(), Value::Null)).unwrap().access_token
    }

    fn checked(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Target {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = HttpRequest::new(method, path, headers, body.as_bytes().to_vec());
        let Ok(route) = Route::of(&req) else { return Target::Local };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = Config::builder().secret("worker-route-test-secret-of-32-bytes!").issuer(ISSUER).build().unwrap();
        let api = HttpApi::new(SessionManager::new(config, MemoryStore::new()).unwrap(), &[KEY]).unwrap();
        rt.block_on(checked_target(&route, &req, &api))
    }

    #[test]
    fn only_a_token_that_verifies_wakes_its_users_object() {
        let good = real_token("gus", |b| b);
        let other_key = real_token("gus", |b| b.secret("another-secret-another-secret-32+!"));
        let expired = minted_at("gus", Some(1_000_000_000_000), |b| b); // in 2001
        let other_issuer = real_token("gus", |b| b.issuer("https://elsewhere"));
        // The signature kept, the payload changed to another user: the signature no longer matches.
        let parts: Vec<&str> = good.split('.').collect();
        let payload = String::from_utf8(b64::decode(parts[1]).unwrap()).unwrap().replace("\"gus\"", "\"eve\"");
        let resigned = format!("{}.{}.{}", parts[0], b64::encode(payload.as_bytes()), parts[2]);

        for (token, want) in [
            (good.clone(), user("gus")),
            (other_key, Target::Local),
            (expired, Target::Local),
            (other_issuer, Target::Local),
            (resigned, Target::Local),
            (jwt_with(r#"{"sub":"gus","sid":"AAAAAAAAAAAAAAAAAAAAAA"}"#), Target::Local),
        ] {
            let body = format!(r#"{{"token":"{token}","mode":"strict"}}"#);
            assert_eq!(checked("POST", "/v1/verify", &[JSON], &body), want, "verify {token}");
            let bearer = format!("Bearer {token}");
            for (method, path) in
                [("GET", "/v1/users/gus/sessions"), ("DELETE", "/v1/users/gus/sessions"), ("DELETE", "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA")]
            {
                assert_eq!(checked(method, path, &[("authorization", &bearer)], ""), want, "{method} {path} {token}");
            }
        }
        // Routed by a valid API key: no token to check.
        assert_eq!(checked("GET", "/v1/users/gus/sessions", &[GOOD], ""), user("gus"));
    }

    #[test]
    fn sub_is_read_without_trust() {
        assert_eq!(unverified_sub(&jwt_with(r#"{"sub":"x"}"#)).as_deref(), Some("x"));
        assert_eq!(unverified_sub(&jwt_with(r#"{"sub":1}"#)), None);
        assert_eq!(unverified_sub("a.b"), None);
        assert_eq!(unverified_sub(""), None);
    }
}
