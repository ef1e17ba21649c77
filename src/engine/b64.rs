//! base64url without padding, the only encoding JWTs and refresh tokens use.
//!
//! Decoding is this module's own loop (a verify decodes the payload and the signature of
//! every token, and the `base64` crate's general engine was a sixth of a verify's time under
//! `perf`); it accepts exactly what `URL_SAFE_NO_PAD` accepts, and a refusal is reported by
//! that engine itself, so the error values are the crate's (the tests below compare both).

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
    let mut out = Vec::new();
    decode_into(text.as_bytes(), &mut out)?;
    Ok(out)
}

/// Decodes into a caller's buffer (cleared first), so hot paths reuse one allocation.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    out.clear();
    let Some(len) = decoded_len(text.len()) else { return Err(refusal(text)) };
    out.resize(len, 0);
    if decode_slice(text, out) {
        Ok(())
    } else {
        out.clear();
        Err(refusal(text))
    }
}

/// The bytes `chars` characters of unpadded base64 decode to; `None` for a length no
/// encoding has (one character past a whole group).
pub const fn decoded_len(chars: usize) -> Option<usize> {
    match chars % 4 {
        1 => None,
        r => Some(chars / 4 * 3 + r.saturating_sub(1)),
    }
}

/// Decodes `text` into `out`, which must be exactly [`decoded_len`] bytes long; `false` on
/// a character outside the alphabet, a wrong length or trailing bits that are not zero.
pub fn decode_slice(text: &[u8], out: &mut [u8]) -> bool {
    if decoded_len(text.len()) != Some(out.len()) {
        return false;
    }
    let groups = text.len() / 4;
    let (body, tail) = text.split_at(groups * 4);
    let (out_body, out_tail) = out.split_at_mut(groups * 3);
    // A refused character sets bit 31 in every table: or'ed over the whole input, that one
    // bit says whether any character was refused (no branch per character).
    let mut refused = 0u32;
    let mut pairs = body.chunks_exact(8);
    let mut outs = out_body.chunks_exact_mut(6);
    for (src, dst) in (&mut pairs).zip(&mut outs) {
        let (n, m) = (group(&src[..4]), group(&src[4..]));
        refused |= n | m;
        let both = u64::from(n) << 40 | u64::from(m) << 16;
        dst.copy_from_slice(&both.to_be_bytes()[..6]);
    }
    if let ([_, _, _, _], dst) = (pairs.remainder(), outs.into_remainder()) {
        let n = group(pairs.remainder());
        refused |= n;
        dst.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    match (tail, out_tail) {
        ([], []) => {}
        // Two characters carry 12 bits for one byte: the low 4 bits must be zero.
        ([x, y], [o]) => {
            let n = TABLES[0][usize::from(*x)] | TABLES[1][usize::from(*y)];
            refused |= n | u32::from(n & 0xf000 != 0) << 31;
            *o = (n >> 16) as u8;
        }
        // Three characters carry 18 bits for two bytes: the low 2 bits must be zero.
        ([x, y, z], [o, p]) => {
            let n = TABLES[0][usize::from(*x)] | TABLES[1][usize::from(*y)] | TABLES[2][usize::from(*z)];
            refused |= n | u32::from(n & 0xc0 != 0) << 31;
            *o = (n >> 16) as u8;
            *p = (n >> 8) as u8;
        }
        _ => return false,
    }
    refused >> 31 == 0
}

/// Four characters as 24 bits (bit 31 set when one is outside the alphabet).
#[inline(always)]
fn group(src: &[u8]) -> u32 {
    TABLES[0][usize::from(src[0])] | TABLES[1][usize::from(src[1])] | TABLES[2][usize::from(src[2])] | TABLES[3][usize::from(src[3])]
}

/// The crate's own refusal of `text`, for the (cold) error path.
#[cold]
fn refusal(text: &[u8]) -> base64::DecodeError {
    match URL_SAFE_NO_PAD.decode(text) {
        Err(e) => e,
        // Not reached: both decoders refuse the same inputs (tested below).
        Ok(_) => base64::DecodeError::InvalidPadding,
    }
}

/// For each position in a group of four characters, every byte's 6 bits shifted into place
/// (18, 12, 6, 0); a byte outside the base64url alphabet is bit 31.
static TABLES: [[u32; 256]; 4] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut t = [[1u32 << 31; 256]; 4];
    let mut i = 0;
    while i < 64 {
        let c = alphabet[i] as usize;
        t[0][c] = (i as u32) << 18;
        t[1][c] = (i as u32) << 12;
        t[2][c] = (i as u32) << 6;
        t[3][c] = i as u32;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Ours and the crate's decoder agree: the same bytes, or both refuse with the same error.
    fn agrees(text: &[u8]) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        let ours = decode_into(text, &mut out).map(|()| out);
        let theirs = URL_SAFE_NO_PAD.decode(text);
        prop_assert_eq!(ours, theirs, "on {:?}", String::from_utf8_lossy(text));
        Ok(())
    }

    #[test]
    fn edges_agree_with_the_crate() {
        for text in [
            "",
            "A",
            "AA",
            "AB",
            "AAA",
            "AAB",
            "AAAA",
            "QQ",
            "QR",
            "QUE",
            "QUF",
            "////",
            "____",
            "----",
            "+A",
            "AA==",
            "AA=",
            "A===",
            "AAAAA",
            "eyJhbGciOiJIUzI1NiJ9",
            "é",
            "AAA\n",
            " AAA",
            "AA.A",
        ] {
            agrees(text.as_bytes()).unwrap();
        }
        for byte in 0..=255u8 {
            for at in 0..4 {
                let mut text = *b"QUJD";
                text[at] = byte;
                agrees(&text).unwrap();
                agrees(&text[..3]).unwrap();
                agrees(&text[..2]).unwrap();
            }
        }
    }

    #[test]
    fn round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        for n in 0..bytes.len() {
            assert_eq!(decode(&encode(&bytes[..n])).unwrap(), &bytes[..n]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn decode_agrees_with_the_crate_on_any_text(text in "[A-Za-z0-9_\\-+/=. \u{e9}]{0,24}") {
            agrees(text.as_bytes())?;
        }

        #[test]
        fn decode_agrees_with_the_crate_on_encodings(bytes in prop::collection::vec(any::<u8>(), 0..80), flip in any::<(usize, u8)>()) {
            let text = encode(&bytes);
            agrees(text.as_bytes())?;
            // One character changed anywhere, to anything.
            if !text.is_empty() {
                let mut bent = text.into_bytes();
                let at = flip.0 % bent.len();
                bent[at] = flip.1;
                agrees(&bent)?;
            }
        }
    }
}
