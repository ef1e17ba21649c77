//! The refresh key: a key derived from configuration that authenticates what the
//! store holds, so that write access to the store cannot mint tokens.
//!
//! It is derived from the `refresh_secret` setting, which defaults to the HMAC
//! signing secret (an asymmetric signing key has no secret to derive from, so the
//! setting is then required). Both derive the same way, so setting
//! `refresh_secret` to the old signing secret when rotating an HMAC signing key
//! keeps every stored session readable.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest `refresh_secret` accepted: the output length of SHA-256.
pub const MIN_REFRESH_SECRET_LEN: usize = 32;

/// The bytes of the `refresh_secret` setting. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret(pub Vec<u8>);

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSecret(<redacted>)")
    }
}

/// The derived key, pre-keyed for HMAC-SHA-256. `Debug` never shows it.
#[derive(Clone)]
pub struct RefreshKey(Hmac<Sha256>);

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey(<redacted>)")
    }
}

/// The length of a record's MAC.
pub const TAG_LEN: usize = 32;
/// What a refresh secret's tag says it is.
const CHAIN_KIND: &str = "refresh-chain";

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

impl RefreshKey {
    /// HMAC-SHA-256 of a fixed label under `secret`: a key of its own, never the secret itself
    /// (no salt needed, the secret is random already).
    pub fn derive(secret: &[u8]) -> RefreshKey {
        let mut mac = hmac(secret);
        mac.update(b"tollgate/refresh-key/v1");
        RefreshKey(hmac(&mac.finalize().into_bytes()))
    }

    /// The MAC of a stored record: its kind, the identity it is stored under (user,
    /// session id) and its bytes, each length-prefixed, so a valid record copied
    /// under another session or user, or read as another kind, does not verify.
    pub fn record_tag(&self, kind: &str, user: &str, sid: &str, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        for part in [kind.as_bytes(), user.as_bytes(), sid.as_bytes(), body] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The tag of a refresh secret's signed part (its random bytes and generation),
    /// bound to the session it was minted for; the secret keeps its first
    /// [`CHAIN_TAG_LEN`](super::token::CHAIN_TAG_LEN) bytes. Its own kind, so
    /// no record's MAC is ever a token's tag or the other way round.
    pub fn chain_tag(&self, user: &str, sid: &str, signed: &[u8]) -> [u8; TAG_LEN] {
        self.record_tag(CHAIN_KIND, user, sid, signed)
    }

    /// Constant-time check of a record's MAC.
    pub fn verify_record_tag(&self, kind: &str, user: &str, sid: &str, body: &[u8], tag: &[u8]) -> bool {
        let want = self.record_tag(kind, user, sid, body);
        super::token::hashes_equal(&want, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_binds_kind_identity_and_bytes() {
        let k = RefreshKey::derive(&[7; 32]);
        let t = k.record_tag("session", "alice", "SID", b"{}");
        assert!(k.verify_record_tag("session", "alice", "SID", b"{}", &t));
        assert!(!k.verify_record_tag("session", "alicE", "SID", b"{}", &t));
        assert!(!k.verify_record_tag("session", "alice", "SIE", b"{}", &t));
        assert!(!k.verify_record_tag("session", "alice", "SID", b"{ }", &t));
        assert!(!k.verify_record_tag("index", "alice", "SID", b"{}", &t));
        // Length prefixes: moving bytes between the user and the session id changes the tag.
        assert!(!k.verify_record_tag("session", "alic", "eSID", b"{}", &t));
        assert!(!RefreshKey::derive(&[8; 32]).verify_record_tag("session", "alice", "SID", b"{}", &t));
        assert!(!k.verify_record_tag("session", "alice", "SID", b"{}", &t[..31]));
        assert_eq!(format!("{k:?}"), "RefreshKey(<redacted>)");
        assert_eq!(format!("{:?}", RefreshSecret(vec![1; 32])), "RefreshSecret(<redacted>)");
    }
}
