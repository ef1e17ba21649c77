//! One error type for every surface: a stable machine code, a message that says
//! what to do, and the HTTP status the service answers with.
//!
//! Messages never carry token text, secrets or key material: they are written for
//! logs that anyone on the team may read.

use std::borrow::Cow;
use std::fmt;

/// The stable, machine-readable part of an [`Error`]. The string form
/// ([`ErrorCode::as_str`]) is what JavaScript sees as `err.code` and what the
/// HTTP API returns as `error.code`; it never changes once published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request itself is malformed: a missing field, a bad user id, metadata too large.
    BadRequest,
    /// The access or refresh token is malformed, forged, or fails a check other than time.
    TokenInvalid,
    /// The access token's `exp` has passed (beyond the leeway).
    TokenExpired,
    /// The access token's `nbf` is still in the future (beyond the leeway).
    TokenNotYetValid,
    /// The session does not exist (never did, or expired long ago and was reclaimed).
    SessionNotFound,
    /// The session was revoked.
    SessionRevoked,
    /// The session reached its idle or absolute expiry.
    SessionExpired,
    /// A refresh token was presented again after rotation, past the grace window:
    /// the whole session has been revoked.
    RefreshTokenReused,
    /// The user already has the maximum number of sessions and the policy is to refuse.
    SessionLimit,
    /// The store could not be reached or answered with an error.
    StoreUnavailable,
    /// A stored value could not be decoded: the store holds data tollgate did not write.
    StoreCorrupt,
    /// Concurrent writers kept colliding past the retry budget.
    Conflict,
    /// The configuration or a key is unusable.
    ConfigInvalid,
    /// The request lacks valid service credentials (HTTP API key).
    Unauthorized,
    /// The caller is authenticated but may not act on this resource.
    Forbidden,
    /// No such route or resource.
    NotFound,
    /// The request body exceeds the size limit.
    PayloadTooLarge,
    /// The HTTP method is not allowed on this route.
    MethodNotAllowed,
    /// The request body has the wrong content type.
    UnsupportedMediaType,
    /// The request's body did not arrive in time (the service's `body_timeout`).
    RequestTimeout,
    /// A crypto driver failed to sign or verify for a reason other than a bad signature.
    Internal,
}

impl ErrorCode {
    /// The stable string form of the code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::SessionNotFound => "session_not_found",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::SessionLimit => "session_limit",
            Self::StoreUnavailable => "store_unavailable",
            Self::StoreCorrupt => "store_corrupt",
            Self::Conflict => "conflict",
            Self::ConfigInvalid => "config_invalid",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status the service answers with for this code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::TokenInvalid
            | Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::SessionRevoked
            | Self::SessionExpired
            | Self::RefreshTokenReused
            | Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::SessionNotFound | Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::SessionLimit | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::UnsupportedMediaType => 415,
            Self::ConfigInvalid | Self::StoreCorrupt | Self::Internal => 500,
            Self::StoreUnavailable => 503,
        }
    }

    /// Every code, for documentation and exhaustive tests.
    pub const ALL: &'static [ErrorCode] = &[
        Self::BadRequest,
        Self::TokenInvalid,
        Self::TokenExpired,
        Self::TokenNotYetValid,
        Self::SessionNotFound,
        Self::SessionRevoked,
        Self::SessionExpired,
        Self::RefreshTokenReused,
        Self::SessionLimit,
        Self::StoreUnavailable,
        Self::StoreCorrupt,
        Self::Conflict,
        Self::ConfigInvalid,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::PayloadTooLarge,
        Self::MethodNotAllowed,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::Internal,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error of tollgate. Compare on [`Error::code`]; the message is for people.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: Cow<'static, str>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub(crate) fn token_invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::TokenInvalid, message)
    }
    pub(crate) fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ConfigInvalid, message)
    }
    pub(crate) fn corrupt(what: &'static str) -> Self {
        Self::new(
            ErrorCode::StoreCorrupt,
            format!("the stored {what} could not be decoded; the store holds data tollgate did not write (check that no other program shares the key prefix)"),
        )
    }
    pub(crate) fn conflict() -> Self {
        Self::new(ErrorCode::Conflict, "concurrent updates to this user's sessions kept colliding; retry the request")
    }
    pub(crate) fn session_not_found() -> Self {
        Self::new(ErrorCode::SessionNotFound, "no such session; sign in again")
    }
    pub(crate) fn session_revoked() -> Self {
        Self::new(ErrorCode::SessionRevoked, "the session was revoked; sign in again")
    }
    pub(crate) fn session_expired() -> Self {
        Self::new(ErrorCode::SessionExpired, "the session has expired; sign in again")
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.code.as_str(), self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}
