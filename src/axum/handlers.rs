//! Sign-in, refresh, sign-out and sign-out everywhere (docs/cookies.md, "Handlers").
//! Each checks the method and CSRF first, then reads cookies; all answer JSON with
//! `Cache-Control: no-store`.

use ::axum::http::Method;
use ::axum::response::Response;
use serde_json::{json, Map, Value};

use super::answer;
use super::extract::{cookie_header, credentials, request_origin, Sessions};
use crate::cookies;
use crate::engine::client::ClientInfo;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::{ListedSession, Tokens, VerifyMode};
use crate::http::HttpResponse;

/// `POST /auth/refresh`: rotates the refresh cookie (docs/cookies.md, "Refresh").
pub async fn refresh(sessions: Sessions) -> Response {
    sessions.refresh().await
}

/// `POST /auth/sign-out`: revokes this session and clears the cookies.
pub async fn sign_out(sessions: Sessions) -> Response {
    sessions.sign_out().await
}

/// `POST /auth/sign-out-everywhere`: revokes every session of the access token's user.
pub async fn sign_out_everywhere(sessions: Sessions) -> Response {
    sessions.sign_out_everywhere().await
}

fn refused(e: &Error) -> Response {
    answer(HttpResponse::error(e), Vec::new())
}

fn ok(body: &Value, cookies: Vec<String>) -> Response {
    answer(HttpResponse::json(200, body), cookies)
}

impl Sessions {
    /// Signs `user` in, after the app authenticated them: CSRF check, issue, the
    /// refresh cookie (and access cookie), and the body of docs/cookies.md; or the
    /// issue's error (`session_limit`, `bad_request`), cookies untouched.
    pub async fn sign_in(&self, user: &str, claims: Map<String, Value>, metadata: Value) -> Response {
        if let Err(e) = self.same_origin() {
            return refused(&e);
        }
        let client = self.client();
        match self.shared.backend.issue(user, claims, metadata, &client).await {
            Ok(tokens) => self.tokens_reply(&tokens),
            Err(e) => refused(&e),
        }
    }

    /// The refresh handler's work ([`super::refresh`]).
    pub async fn refresh(&self) -> Response {
        if let Err(e) = self.post("refresh with POST").and_then(|()| self.same_origin()) {
            return refused(&e);
        }
        let Some(token) = self.refresh_cookie() else {
            return refused(&Error::new(ErrorCode::Unauthorized, "no refresh cookie: sign in"));
        };
        let client = self.client();
        // A loser of a race within the grace window gets the winner's successor: the same cookie, 200.
        match self.shared.backend.refresh(&token, &client).await {
            Ok(tokens) => self.tokens_reply(&tokens),
            Err(e) if cookies::refresh_is_dead(e.code()) => answer(HttpResponse::error(&e), self.cleared()),
            Err(e) => refused(&e),
        }
    }

    /// The sign-out handler's work ([`super::sign_out`]).
    pub async fn sign_out(&self) -> Response {
        if let Err(e) = self.post("sign out with POST").and_then(|()| self.same_origin()) {
            return refused(&e);
        }
        let signed_out = || ok(&json!({ "signed_out": true }), self.cleared());
        let mut session = None; // (user, sid)
        if let Ok((token, _)) = credentials(&self.shared, &self.headers) {
            // An unusable access token: the refresh cookie may still name the session.
            if let Ok(v) = self.shared.backend.verify(&token, VerifyMode::Stateless).await {
                session = v.claims.sid().map(|sid| (v.claims.sub().to_owned(), sid.to_owned()));
            }
        }
        let (user, sid) = match session {
            Some(s) => s,
            None => {
                let Some(token) = self.refresh_cookie() else { return signed_out() };
                // The rotation proves the cookie and names the session.
                match self.shared.backend.refresh(&token, &self.client()).await {
                    Ok(t) => (t.session.user, t.session.sid),
                    Err(e) if cookies::refresh_is_dead(e.code()) => return signed_out(),
                    Err(e) => return refused(&e),
                }
            }
        };
        match self.shared.backend.revoke(&user, &sid).await {
            Err(e) if !cookies::refresh_is_dead(e.code()) => refused(&e),
            _ => signed_out(),
        }
    }

    /// The sign-out-everywhere handler's work ([`super::sign_out_everywhere`]).
    pub async fn sign_out_everywhere(&self) -> Response {
        if let Err(e) = self.post("sign out everywhere with POST").and_then(|()| self.same_origin()) {
            return refused(&e);
        }
        let result = async {
            let (token, _) = credentials(&self.shared, &self.headers)?;
            let v = self.shared.backend.verify(&token, VerifyMode::Strict).await?;
            self.shared.backend.revoke_all(v.claims.sub()).await
        };
        match result.await {
            Ok(revoked) => ok(&json!({ "revoked": revoked }), self.cleared()),
            Err(e) => refused(&e),
        }
    }

    /// The user's live sessions, oldest first (for a route such as `GET /api/sessions`).
    /// `user`'s sessions, the one named `current_sid` (the caller's) marked `current`.
    pub async fn list(&self, user: &str, current_sid: Option<&str>) -> Result<Vec<ListedSession>, Error> {
        self.shared.backend.list(user, current_sid).await
    }

    /// Revokes one of `user`'s sessions.
    pub async fn revoke(&self, user: &str, sid: &str) -> Result<(), Error> {
        self.shared.backend.revoke(user, sid).await
    }

    fn post(&self, what: &'static str) -> Result<(), Error> {
        match self.method == Method::POST {
            true => Ok(()),
            false => Err(Error::new(ErrorCode::MethodNotAllowed, what)),
        }
    }

    /// The CSRF check of docs/cookies.md on this request: `forbidden` when a state-changing
    /// request comes from another origin. The ready handlers and [`Sessions::sign_in`] run it
    /// first; a login route may run it before it reads the body.
    pub fn same_origin(&self) -> Result<(), Error> {
        match cookies::csrf_allowed(&self.shared.options, request_origin(&self.headers, self.authority.as_deref())) {
            true => Ok(()),
            false => Err(cookies::forbidden()),
        }
    }

    fn refresh_cookie(&self) -> Option<String> {
        cookies::read_cookie(&cookie_header(&self.headers), self.shared.options.refresh_cookie()).map(str::to_owned)
    }

    fn cleared(&self) -> Vec<String> {
        cookies::clear_cookies(&self.shared.options)
    }

    fn tokens_reply(&self, tokens: &Tokens) -> Response {
        let now = self.shared.backend.now_ms();
        ok(&cookies::tokens_body(&self.shared.options, tokens), cookies::token_cookies(&self.shared.options, tokens, now))
    }

    /// The one place the client is read: the peer address (`ConnectInfo`, when the app
    /// serves with `into_make_service_with_connect_info`) and the `User-Agent`. The
    /// trusted-proxy rule (`options().trusted_proxy()`) turns the peer and headers into the IP.
    fn client(&self) -> ClientInfo {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
        ClientInfo::from_request(self.shared.options.trusted_proxy(), self.peer.map(|p| p.ip()), headers.iter().copied())
    }
}
