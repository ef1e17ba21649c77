//! The route table: a request's method, path and query, parsed once into a
//! [`Route`]. [`super::HttpApi`] dispatches on it, and the Worker picks a user's
//! Durable Object from the same value (`crate::worker::route`): there is one
//! parser, and a route is added in one place, [`TABLE`].
//!
//! | route | who may call | does |
//! |---|---|---|
//! | `GET /healthz` | anyone | liveness |
//! | `GET /.well-known/jwks.json` | anyone | public keys |
//! | `POST /v1/sessions` | service (API key) | create a session `{user, claims?, metadata?}` |
//! | `POST /v1/verify` | anyone holding the token | verify `{token, mode?: "stateless" \| "strict"}` (default: the `verify_mode` setting, `strict`) |
//! | `POST /v1/refresh` | anyone holding the token | rotate `{refresh_token}` |
//! | `DELETE /v1/sessions/{sid}` | service (`?user=`), or the session's own user | revoke one session |
//! | `GET /v1/users/{user}/sessions` | service, or that user | list live sessions |
//! | `DELETE /v1/users/{user}/sessions` | service, or that user | revoke all; `?keep=<sid>` or `?keep=current` |
//!
//! Decoding: each path segment, and each query name and value, is
//! percent-decoded on its own (`%2F` inside a user id is part of the id, not a
//! separator). Only `%XX` is decoded: `+` is a literal character in paths and
//! queries, so `/v1/users/alice+x@example.com/sessions` names `alice+x@example.com`.
//! A malformed escape, text that is not UTF-8, an invalid user id, a query
//! parameter the route does not take, or one given twice is `bad_request`; an
//! unknown path is `not_found`; a known path with another method is
//! `method_not_allowed`. All of it is decided here, before anyone is authenticated.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::HttpRequest;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::token::{check_sid, check_user_id};

/// One request of the HTTP API, with its path and query parameters decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`
    Health,
    /// `GET /.well-known/jwks.json`
    Jwks,
    /// `POST /v1/sessions`
    CreateSession,
    /// `POST /v1/verify`
    Verify,
    /// `POST /v1/refresh`
    Refresh,
    /// `DELETE /v1/sessions/{sid}`, with `?user=` when the service calls.
    RevokeSession { sid: String, user: Option<String> },
    /// `GET /v1/users/{user}/sessions`
    ListUserSessions { user: String },
    /// `DELETE /v1/users/{user}/sessions`, with `?keep=`.
    RevokeUserSessions { user: String, keep: Keep },
}

/// Which session `DELETE /v1/users/{user}/sessions` spares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// None: every session is revoked.
    Nothing,
    /// `?keep=current`: the session of the caller's access token.
    Current,
    /// `?keep=<sid>`
    Session(String),
}

/// One row of [`TABLE`].
struct Entry {
    method: &'static str,
    /// Literal segments, and [`PARAM`] where the path takes a parameter.
    path: &'static [&'static str],
    /// The query parameters the route takes; any other is refused.
    query: &'static [&'static str],
    /// Builds the route from the path parameters (in order) and the query.
    build: fn(Vec<String>, Query) -> Result<Route, Error>,
}

/// A path parameter in [`Entry::path`].
const PARAM: &str = "{}";

/// Every route of the HTTP API (the Worker and `tollgate serve` answer the same).
const TABLE: &[Entry] = &[
    Entry { method: "GET", path: &["healthz"], query: &[], build: |_, _| Ok(Route::Health) },
    Entry { method: "GET", path: &[".well-known", "jwks.json"], query: &[], build: |_, _| Ok(Route::Jwks) },
    Entry { method: "POST", path: &["v1", "sessions"], query: &[], build: |_, _| Ok(Route::CreateSession) },
    Entry { method: "POST", path: &["v1", "verify"], query: &[], build: |_, _| Ok(Route::Verify) },
    Entry { method: "POST", path: &["v1", "refresh"], query: &[], build: |_, _| Ok(Route::Refresh) },
    Entry {
        method: "DELETE",
        path: &["v1", "sessions", PARAM],
        query: &["user"],
        build: |params, mut query| {
            let user = query.take("user").map(user_id).transpose()?;
            Ok(Route::RevokeSession { sid: only(params), user })
        },
    },
    Entry {
        method: "GET",
        path: &["v1", "users", PARAM, "sessions"],
        query: &[],
        build: |params, _| Ok(Route::ListUserSessions { user: user_id(only(params))? }),
    },
    Entry {
        method: "DELETE",
        path: &["v1", "users", PARAM, "sessions"],
        query: &["keep"],
        build: |params, mut query| {
            let keep = match query.take("keep").as_deref() {
                None => Keep::Nothing,
                Some("current") => Keep::Current,
                Some(sid) if check_sid(sid).is_ok() => Keep::Session(sid.to_owned()),
                Some(_) => return Err(bad_request("keep= takes a session id or \"current\"")),
            };
            Ok(Route::RevokeUserSessions { user: user_id(only(params))?, keep })
        },
    },
];

impl Route {
    /// The route of `req`.
    pub fn of(req: &HttpRequest) -> Result<Route, Error> {
        Self::parse(&req.method, &req.path, &req.query)
    }

    /// Parses a request line: `method` in capitals, `path` without the query, `query` without `?`.
    pub fn parse(method: &str, path: &str, query: &str) -> Result<Route, Error> {
        let Some(rest) = path.strip_prefix('/') else { return Err(not_found()) };
        let segments: Vec<String> = rest.split('/').map(decode).collect::<Result<_, _>>()?;
        let mut path_known = false;
        for entry in TABLE {
            let Some(params) = matches(entry.path, &segments) else { continue };
            path_known = true;
            if entry.method == method {
                return (entry.build)(params, Query::parse(query, entry.query)?);
            }
        }
        Err(if path_known { method_not_allowed() } else { not_found() })
    }

    /// The path pattern, for logs and metrics: it never carries a user id.
    pub fn pattern(&self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Jwks => "/.well-known/jwks.json",
            Route::CreateSession => "/v1/sessions",
            Route::Verify => "/v1/verify",
            Route::Refresh => "/v1/refresh",
            Route::RevokeSession { .. } => "/v1/sessions/{sid}",
            Route::ListUserSessions { .. } | Route::RevokeUserSessions { .. } => "/v1/users/{user}/sessions",
        }
    }
}

/// The path parameters when `segments` fit `pattern`.
fn matches(pattern: &[&str], segments: &[String]) -> Option<Vec<String>> {
    if pattern.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (want, got) in pattern.iter().zip(segments) {
        if *want == PARAM {
            params.push(got.clone());
        } else if want != got {
            return None;
        }
    }
    Some(params)
}

/// The one parameter of a route whose pattern has one.
fn only(params: Vec<String>) -> String {
    params.into_iter().next().unwrap_or_default()
}

fn user_id(user: String) -> Result<String, Error> {
    check_user_id(&user)?;
    Ok(user)
}

/// The query parameters a route takes, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str, allowed: &[&str]) -> Result<Query, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            // The name is not echoed: a confused client may put a token there.
            if !allowed.contains(&name.as_str()) {
                return Err(bad_request(match allowed {
                    [] => "this route takes no query parameters".to_owned(),
                    names => format!("this route takes only these query parameters: {}", names.join(", ")),
                }));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(bad_request(format!("the query parameter {name} is given twice; give it once")));
            }
            pairs.push((name, value));
        }
        Ok(Query(pairs))
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`).
fn decode(text: &str) -> Result<String, Error> {
    // percent-encoding passes a malformed escape through as text; a URL with one is refused instead.
    let bytes = text.as_bytes();
    let well_formed = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(at, _)| bytes.get(at + 1..at + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return Err(bad_request("the URL has a malformed percent-escape: % must be followed by two hex digits"));
    }
    match percent_decode_str(text).decode_utf8() {
        Ok(Cow::Borrowed(s)) => Ok(s.to_owned()),
        Ok(Cow::Owned(s)) => Ok(s),
        Err(_) => Err(bad_request("the URL's percent-escapes do not decode to UTF-8")),
    }
}

fn bad_request(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorCode::BadRequest, message)
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such route; see the API table in the README")
}

fn method_not_allowed() -> Error {
    Error::new(ErrorCode::MethodNotAllowed, "this route does not take that method")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path_and_query: &str) -> Result<Route, ErrorCode> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        Route::parse(method, path, query).map_err(|e| e.code())
    }

    fn list(user: &str) -> Result<Route, ErrorCode> {
        Ok(Route::ListUserSessions { user: user.to_owned() })
    }

    #[test]
    fn every_route_of_the_table() {
        assert_eq!(parse("GET", "/healthz"), Ok(Route::Health));
        assert_eq!(parse("GET", "/.well-known/jwks.json"), Ok(Route::Jwks));
        assert_eq!(parse("POST", "/v1/sessions"), Ok(Route::CreateSession));
        assert_eq!(parse("POST", "/v1/verify"), Ok(Route::Verify));
        assert_eq!(parse("POST", "/v1/refresh"), Ok(Route::Refresh));
        assert_eq!(parse("DELETE", "/v1/sessions/abc"), Ok(Route::RevokeSession { sid: "abc".into(), user: None }));
        assert_eq!(
            parse("DELETE", "/v1/sessions/abc?user=bob%40x"),
            Ok(Route::RevokeSession { sid: "abc".into(), user: Some("bob@x".into()) })
        );
        assert_eq!(parse("GET", "/v1/users/bob/sessions"), list("bob"));
        let revoke = |keep| Ok(Route::RevokeUserSessions { user: "bob".into(), keep });
        assert_eq!(parse("DELETE", "/v1/users/bob/sessions"), revoke(Keep::Nothing));
        assert_eq!(parse("DELETE", "/v1/users/bob/sessions?keep=current"), revoke(Keep::Current));
        let sid = "AAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(parse("DELETE", &format!("/v1/users/bob/sessions?keep={sid}")), revoke(Keep::Session(sid.into())));
    }

    #[test]
    fn unknown_paths_and_methods() {
        for path in ["/nope", "", "*", "healthz", "/healthz/", "/v1/sessions/x/y", "/v1/users/bob", "/v1//sessions", "/V1/verify"] {
            assert_eq!(parse("GET", path), Err(ErrorCode::NotFound), "{path:?}");
        }
        for (method, path) in [
            ("POST", "/healthz"),
            ("GET", "/v1/sessions"),
            ("GET", "/v1/verify"),
            ("GET", "/v1/sessions/abc"),
            ("PUT", "/v1/users/bob/sessions"),
            ("get", "/healthz"),
        ] {
            assert_eq!(parse(method, path), Err(ErrorCode::MethodNotAllowed), "{method} {path}");
        }
    }

    #[test]
    fn only_percent_escapes_are_decoded_and_plus_is_literal() {
        assert_eq!(parse("GET", "/v1/users/alice+x@example.com/sessions"), list("alice+x@example.com"));
        assert_eq!(parse("GET", "/v1/users/alice%2Bx%40example.com/sessions"), list("alice+x@example.com"));
        assert_eq!(parse("GET", "/v1/users/alice%20x/sessions"), list("alice x"));
        assert_eq!(parse("GET", "/v1/users/a%2Fb%2F/sessions"), list("a/b/"));
        assert_eq!(parse("GET", "/v1/users/%7Bu%3Aeve%7D/sessions"), list("{u:eve}"));
        assert_eq!(parse("GET", "/v1/users/100%25/sessions"), list("100%"));
        assert_eq!(parse("GET", "/v1/users/%2525/sessions"), list("%25"), "decoded once");
        assert_eq!(parse("GET", "/v1/users/zo%C3%AB%20%F0%9F%A6%80/sessions"), list("zoë 🦀"));
        assert_eq!(parse("GET", "/v1/users/zoë/sessions"), list("zoë"), "raw UTF-8 as some clients send it");
        assert_eq!(parse("GET", "/v1/%75sers/bob/sessions"), list("bob"), "literal segments match after decoding");
        assert_eq!(
            parse("DELETE", "/v1/sessions/abc?user=alice+x%2By%26z%3D"),
            Ok(Route::RevokeSession { sid: "abc".into(), user: Some("alice+x+y&z=".into()) })
        );
    }

    #[test]
    fn malformed_urls_and_user_ids_are_bad_requests() {
        for path in [
            "/v1/users/%zz/sessions",
            "/v1/users/%4/sessions",
            "/v1/users/abc%/sessions",
            "/v1/users/%+1/sessions",
            "/v1/users/%ff/sessions",
            "/v1/users/%C3/sessions",
            "/v1/users/%C3%28/sessions",
            "/v1/users/%ED%A0%80/sessions",
            "/v1/users//sessions",
            "/v1/users/a%0Ab/sessions",
            "/v1/users/a%00/sessions",
            "/nope/%zz",
            "/healthz?%zz",
            "/healthz?x=1",
            "/v1/sessions/abc?user=",
            "/v1/sessions/abc?user",
            "/v1/sessions/abc?user=%FF",
            "/v1/sessions/abc?user=a&user=b",
            "/v1/sessions/abc?user=a&keep=current",
            "/v1/users/bob/sessions?keep=",
            "/v1/users/bob/sessions?keep=garbage",
            "/v1/users/bob/sessions?keep=current&keep=current",
            "/v1/users/bob/sessions?kep=current",
        ] {
            let method = if path.contains("?user") || path.contains("keep") || path.contains("kep") { "DELETE" } else { "GET" };
            assert_eq!(parse(method, path), Err(ErrorCode::BadRequest), "{method} {path}");
        }
        let long = format!("/v1/users/{}/sessions", "x".repeat(300));
        assert_eq!(parse("GET", &long), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn messages_never_echo_the_query() {
        let e = Route::parse("DELETE", "/v1/users/bob/sessions", "eyJhbGciOi.secret=1").unwrap_err();
        assert!(!e.message().contains("eyJ") && !e.message().contains("secret"), "{}", e.message());
        assert!(e.message().contains("keep"), "names what the route takes: {}", e.message());
    }

    #[test]
    fn patterns_carry_no_user_data() {
        let r = parse("GET", "/v1/users/alice/sessions").unwrap();
        assert_eq!(r.pattern(), "/v1/users/{user}/sessions");
    }
}
