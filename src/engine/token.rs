//! Refresh tokens: `<prefix>_<locator>.<secret>`.
//!
//! The locator is base64url of the 16-byte session id followed by the user id,
//! so the core finds the session's keys without an index. The secret is 32
//! random bytes; only its SHA-256 is stored, and compared in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::b64;
use super::error::Error;

pub const SECRET_LEN: usize = 32;
pub const SID_LEN: usize = 16;
/// Refresh tokens longer than this are refused before decoding.
pub const MAX_REFRESH_TOKEN_LEN: usize = 1024;
/// User ids are 1 to this many bytes of UTF-8 without control characters.
pub const MAX_USER_ID_LEN: usize = 256;

pub type Secret = [u8; SECRET_LEN];
pub type SecretHash = [u8; 32];

/// A parsed refresh token. Debug never prints the secret.
pub struct RefreshToken {
    pub user: String,
    pub sid: String,
    pub secret: Secret,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken").field("user", &self.user).field("sid", &self.sid).finish_non_exhaustive()
    }
}

fn malformed() -> Error {
    Error::token_invalid("the refresh token is malformed; use the refresh token tollgate returned")
}

impl RefreshToken {
    pub fn parse(text: &str, prefix: &str) -> Result<RefreshToken, Error> {
        if text.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(malformed());
        }
        let rest = text.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')).ok_or_else(malformed)?;
        let (locator, secret) = rest.split_once('.').ok_or_else(malformed)?;
        let locator = b64::decode(locator).map_err(|_| malformed())?;
        let secret = b64::decode(secret).map_err(|_| malformed())?;
        let secret: Secret = secret.try_into().map_err(|_| malformed())?;
        if locator.len() <= SID_LEN {
            return Err(malformed());
        }
        let sid = b64::encode(&locator[..SID_LEN]);
        let user = String::from_utf8(locator[SID_LEN..].to_vec()).map_err(|_| malformed())?;
        check_user_id(&user).map_err(|_| malformed())?;
        Ok(RefreshToken { user, sid, secret })
    }

    /// The token text. `sid` must be the base64url of 16 bytes (as the core makes them).
    pub fn format(prefix: &str, user: &str, sid: &str, secret: &Secret) -> String {
        let mut locator = b64::decode(sid).unwrap_or_default();
        locator.extend_from_slice(user.as_bytes());
        let mut out = String::with_capacity(prefix.len() + 1 + locator.len() * 4 / 3 + 46);
        out.push_str(prefix);
        out.push('_');
        b64::encode_into(&locator, &mut out);
        out.push('.');
        b64::encode_into(secret, &mut out);
        out
    }
}

pub fn hash_secret(secret: &Secret) -> SecretHash {
    Sha256::digest(secret).into()
}

pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Seals (or opens: the operation is its own inverse) a successor secret under a
/// one-time pad derived from the secret it replaces. Each secret seals exactly
/// one successor, so the pad is never reused; the store alone cannot open it.
pub fn seal_successor(presented: &Secret, successor: &Secret) -> Secret {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(presented).expect("HMAC takes any key length");
    mac.update(b"tollgate/refresh-successor/v1");
    let pad = mac.finalize().into_bytes();
    let mut out = [0u8; SECRET_LEN];
    for i in 0..SECRET_LEN {
        out[i] = pad[i] ^ successor[i];
    }
    out
}

pub fn check_user_id(user: &str) -> Result<(), Error> {
    if user.is_empty() || user.len() > MAX_USER_ID_LEN || user.chars().any(char::is_control) {
        return Err(Error::bad_request(format!("a user id must be 1 to {MAX_USER_ID_LEN} bytes of UTF-8 without control characters")));
    }
    Ok(())
}

/// Session ids are the base64url of 16 random bytes: 22 characters.
pub fn check_sid(sid: &str) -> Result<(), Error> {
    let ok = sid.len() == 22 && b64::decode(sid).map(|b| b.len() == SID_LEN).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::session_not_found())
    }
}
