//! Refresh tokens: `<prefix>_<locator>.<secret>`.
//!
//! The locator is base64url of the 16-byte session id followed by the user id,
//! so the core finds the session's keys without an index. The secret is 32
//! bytes; only its SHA-256 is stored, and compared in constant time.
//!
//! # The secret carries its place in the chain
//!
//! A secret is `random (16) ‖ generation (4, big-endian) ‖ tag (12)`, where the
//! tag is the first 12 bytes of an HMAC-SHA-256 under the refresh key (derived
//! from `refresh_secret`, [`RefreshKey::chain_tag`]) over the user, the session
//! id, the generation and the random bytes. The generation is the number of
//! rotations the session had made when the secret was minted (0 at sign-in).
//! So a presented secret whose tag verifies and whose generation is below the
//! record's was provably minted by this service for an earlier link of this
//! session's chain: it is **reuse**, however many rotations ago, and nothing
//! about it has to be stored. The record keeps the hash of the current secret,
//! the generation, and the links still inside the grace window (`recent`);
//! its size does not grow with rotations.
//!
//! Why each promise of the README holds:
//! - *Hashed at rest*: the store holds the SHA-256 of the current secret and of
//!   the secrets inside the grace window, and successors sealed under secrets it
//!   does not hold. Nothing new is stored for reuse detection.
//! - *A store reader cannot mint tokens*: a usable token is the preimage of the
//!   stored hash (16 random bytes it never saw, and a tag it cannot compute
//!   without the refresh key, which lives in configuration, not in the store).
//! - *A forged token changes nothing*: only a valid tag makes an unknown secret
//!   count as reuse, and only the refresh key makes a valid tag (2^-96 per guess),
//!   so a secret made up for a known user and session id (both are in every
//!   access token) is `token_invalid` and revokes nothing.
//! - *The grace window keeps one chain*: a secret inside the window is found by
//!   its hash in `recent` before its generation is looked at, and gets the
//!   same successor back, as before.
//! - A tag-valid secret whose generation is not below the record's (a store that
//!   lost its latest write, say) is not an earlier link: `token_invalid`.
//! - Rotating `refresh_secret` turns every earlier token into `token_invalid`
//!   instead of reuse; the records written under the old key stop opening too.
//!
//! Secrets minted before generations existed (32 random bytes, no tag) keep
//! working: they are matched by hash exactly as before, and the ones retired
//! after the grace window are remembered as truncated hashes (`retired`, at
//! most `reuse_memory`), as the older releases did. A release that knows
//! nothing of tags reads a tagged secret as 32 opaque bytes and matches its
//! hash: both kinds of secret work on both kinds of release.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::b64;
use super::error::Error;
use super::refresh_key::RefreshKey;

pub const SECRET_LEN: usize = 32;
/// Random bytes at the start of a secret.
pub const SECRET_RANDOM_LEN: usize = 16;
/// The chain tag at the end of a secret.
pub const CHAIN_TAG_LEN: usize = 12;
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

/// A secret for link `generation` of the chain of session `sid`: the random bytes,
/// the generation and the tag that proves this service minted it. A generation
/// past `u32::MAX` is written as `u32::MAX` (a session rotating every second would
/// need 136 years to get there; older links still read as below the record's).
pub fn chain_secret(key: &RefreshKey, user: &str, sid: &str, generation: u64, random: &[u8; SECRET_RANDOM_LEN]) -> Secret {
    let mut s = [0u8; SECRET_LEN];
    s[..SECRET_RANDOM_LEN].copy_from_slice(random);
    s[SECRET_RANDOM_LEN..SECRET_LEN - CHAIN_TAG_LEN].copy_from_slice(&u32::try_from(generation).unwrap_or(u32::MAX).to_be_bytes());
    let tag = key.chain_tag(user, sid, &s[..SECRET_LEN - CHAIN_TAG_LEN]);
    s[SECRET_LEN - CHAIN_TAG_LEN..].copy_from_slice(&tag[..CHAIN_TAG_LEN]);
    s
}

/// The generation a secret was minted for, when its tag proves this service minted
/// it for session `sid` of `user`; `None` for any other secret (forged, of another
/// session, under another refresh key, or minted before secrets carried tags).
pub fn chain_generation(key: &RefreshKey, user: &str, sid: &str, secret: &Secret) -> Option<u64> {
    let (signed, tag) = secret.split_at(SECRET_LEN - CHAIN_TAG_LEN);
    let want = key.chain_tag(user, sid, signed);
    if !hashes_equal(&want[..CHAIN_TAG_LEN], tag) {
        return None;
    }
    let mut g = [0u8; 4];
    g.copy_from_slice(&signed[SECRET_RANDOM_LEN..]);
    Some(u64::from(u32::from_be_bytes(g)))
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
