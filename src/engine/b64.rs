//! base64url without padding, the only encoding JWTs and refresh tokens use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out)
}

/// Strict decode: no padding, no trailing bits, no characters outside the alphabet.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Decodes into a caller's buffer (cleared first), so hot paths reuse one allocation.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    out.clear();
    URL_SAFE_NO_PAD.decode_vec(text, out)
}
