//! The extractors: [`Session`] and [`StatelessClaims`] verify a route's credentials
//! (docs/cookies.md, "A route's credentials"); [`Sessions`] is the handle of the
//! sign-in, refresh and sign-out handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use ::axum::extract::{ConnectInfo, FromRequestParts};
use ::axum::http::request::Parts;
use ::axum::http::{header, HeaderMap, Method};

use super::{ErrorResponse, Installed, Shared};
use crate::cookies::{self, RequestOrigin};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::jwt::AccessClaims;
use crate::engine::ops::{SessionInfo, Verified, VerifyMode};

/// A header value that is not visible ASCII: present, and equal to nothing the checks accept.
const UNREADABLE: &str = "\u{0}";

/// A strictly verified request: the token's claims and its live session. A revoked
/// or expired session is refused (`session_revoked`, `session_expired`).
#[derive(Clone, Debug)]
pub struct Session {
    pub claims: AccessClaims,
    pub session: SessionInfo,
}

/// A statelessly verified request: signature and claims only, no store read.
#[derive(Clone, Debug)]
pub struct StatelessClaims(pub AccessClaims);

/// The adapter's handle for one request: signs in ([`Sessions::sign_in`]), and
/// serves the ready handlers. It keeps the request's method, headers and peer.
pub struct Sessions {
    pub(super) shared: Arc<Shared>,
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) peer: Option<SocketAddr>,
    pub(super) authority: Option<String>,
}

fn installed(parts: &Parts) -> Result<Arc<Shared>, Error> {
    parts.extensions.get::<Installed>().map(|i| i.0.clone()).ok_or_else(|| {
        Error::new(
            ErrorCode::Internal,
            "tollgate's SessionLayer is not installed on this route: add .layer(SessionLayer::new(..)) to its router",
        )
    })
}

/// A header as text: `None` when absent, [`UNREADABLE`] when not visible ASCII.
pub(super) fn header_text<'h>(headers: &'h HeaderMap, name: &header::HeaderName) -> Option<&'h str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(UNREADABLE))
}

/// Every `Cookie` header, joined (HTTP/2 may send one per cookie).
pub(super) fn cookie_header(headers: &HeaderMap) -> String {
    let values: Vec<&str> = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    values.join("; ")
}

/// The headers of the CSRF check; `Host`, or the HTTP/2 authority.
pub(super) fn request_origin<'a>(headers: &'a HeaderMap, authority: Option<&'a str>) -> RequestOrigin<'a> {
    RequestOrigin {
        origin: header_text(headers, &header::ORIGIN),
        sec_fetch_site: headers.get("sec-fetch-site").map(|v| v.to_str().unwrap_or(UNREADABLE)),
        host: header_text(headers, &header::HOST).or(authority),
    }
}

/// The access token of a request: the `Authorization` header if present (it must be
/// `Bearer`; the cookie is then not consulted), else the access cookie if configured.
/// Answers whether it came from the cookie.
pub(super) fn credentials(shared: &Shared, headers: &HeaderMap) -> Result<(String, bool), Error> {
    if let Some(auth) = header_text(headers, &header::AUTHORIZATION) {
        return crate::http::bearer_of(auth).map(|t| (t.to_owned(), false));
    }
    if let Some(name) = shared.options.access_cookie() {
        if let Some(token) = cookies::read_cookie(&cookie_header(headers), name) {
            return Ok((token.to_owned(), true));
        }
    }
    Err(Error::new(ErrorCode::Unauthorized, "this route needs an access token: send Authorization: Bearer <token>, or sign in"))
}

/// Verifies a protected request in `mode`. A state-changing request that only the
/// access cookie could authenticate passes the CSRF check before the cookie is read.
async fn authenticate(parts: &Parts, mode: VerifyMode) -> Result<Verified, Error> {
    let shared = installed(parts)?;
    let headers = &parts.headers;
    let cookie_only = !headers.contains_key(header::AUTHORIZATION) && shared.options.access_cookie().is_some();
    if cookie_only && cookies::state_changing(parts.method.as_str()) {
        let authority = parts.uri.authority().map(|a| a.as_str());
        if !cookies::csrf_allowed(&shared.options, request_origin(headers, authority)) {
            return Err(cookies::forbidden());
        }
    }
    let (token, _) = credentials(&shared, headers)?;
    shared.backend.verify(&token, mode).await
}

impl<St: Send + Sync> FromRequestParts<St> for Session {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ErrorResponse> {
        let v = authenticate(parts, VerifyMode::Strict).await?;
        let session = v.session.ok_or_else(|| Error::new(ErrorCode::Internal, "a strict verify answered no session"))?;
        Ok(Session { claims: v.claims, session })
    }
}

impl<St: Send + Sync> FromRequestParts<St> for StatelessClaims {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ErrorResponse> {
        Ok(StatelessClaims(authenticate(parts, VerifyMode::Stateless).await?.claims))
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Sessions {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ErrorResponse> {
        Ok(Sessions {
            shared: installed(parts)?,
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
        })
    }
}
