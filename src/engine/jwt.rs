//! Access tokens: compact JWS, parsed and checked in one pass.
//!
//! The header is parsed into borrowed fields and refused on `none`, an algorithm
//! that is not the key's, an unknown `kid`, and any of `jku`, `jwk`, `x5u`,
//! `x5c`, `crit` (each would let the token choose its own key or rules). HMAC is
//! checked here; other signatures are handed to the driver as an effect.

use std::borrow::Cow;

use serde::de::{self, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod claims_scan;

use super::b64;
use super::error::{Error, ErrorCode};
use super::keys::{Alg, Key, KeySet};

/// What a token must satisfy besides its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimsPolicy {
    /// Written as `iss` and required on verify when set.
    pub issuer: Option<String>,
    /// Written as `aud` (the first) and, when not empty, one of them is required on verify.
    pub audience: Vec<String>,
    /// Slack for `exp` and `nbf`, in milliseconds.
    pub leeway_ms: u64,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
}

/// The claims of a verified access token.
///
/// One buffer: the decoded payload, with each registered claim kept as the place where
/// its text lies in it (a claim the JSON escaped keeps its own unescaped copy). A verify
/// allocates the payload and nothing else; the accessors borrow from it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessClaims {
    payload: String,
    sub: ClaimText,
    sid: Option<ClaimText>,
    jti: Option<ClaimText>,
    iss: Option<ClaimText>,
    aud: Audience<ClaimText>,
    iat: Option<u64>,
    exp: u64,
    nbf: Option<u64>,
}

/// Where a claim's string lies in the payload, or its own copy when the JSON escaped it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ClaimText {
    In { start: usize, end: usize },
    Own(Box<str>),
}

impl ClaimText {
    /// `text` as read from `payload`: a place in it when borrowed from it (the scanner and
    /// serde borrow every string without escapes), a copy otherwise.
    fn of(payload: &str, text: Cow<'_, str>) -> ClaimText {
        if let Cow::Borrowed(s) = text {
            // A string whose bytes lie within the payload's is a slice of it (the same
            // memory), and its ends are character boundaries because it is a `&str`.
            let start = (s.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
            let end = start.wrapping_add(s.len());
            if start <= end && end <= payload.len() {
                return ClaimText::In { start, end };
            }
        }
        ClaimText::Own(text.into())
    }

    fn get<'p>(&'p self, payload: &'p str) -> &'p str {
        match self {
            ClaimText::In { start, end } => payload.get(*start..*end).unwrap_or_default(),
            ClaimText::Own(s) => s,
        }
    }
}

impl AccessClaims {
    /// The subject (`sub`): the user the session belongs to.
    pub fn sub(&self) -> &str {
        self.sub.get(&self.payload)
    }
    /// The session id (`sid`); tokens tollgate issues always carry one.
    pub fn sid(&self) -> Option<&str> {
        self.optional(&self.sid)
    }
    /// The token's id (`jti`).
    pub fn jti(&self) -> Option<&str> {
        self.optional(&self.jti)
    }
    /// The issuer (`iss`).
    pub fn iss(&self) -> Option<&str> {
        self.optional(&self.iss)
    }
    /// The audiences (`aud`), in the token's order: none, one, or the array's.
    pub fn aud(&self) -> impl Iterator<Item = &str> + '_ {
        self.aud.iter().map(|t| t.get(&self.payload))
    }
    fn optional<'s>(&'s self, claim: &'s Option<ClaimText>) -> Option<&'s str> {
        claim.as_ref().map(|t| t.get(&self.payload))
    }
    /// Issued at (`iat`), seconds since the epoch, as in the token.
    pub fn iat(&self) -> Option<u64> {
        self.iat
    }
    /// The expiry (`exp`), seconds since the epoch, as in the token.
    pub fn exp(&self) -> u64 {
        self.exp
    }
    /// Not before (`nbf`), seconds since the epoch, as in the token.
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }
    /// The whole payload as a JSON object (registered and custom claims).
    pub fn to_json(&self) -> Map<String, Value> {
        serde_json::from_str(&self.payload).unwrap_or_default()
    }
    /// The decoded payload as it arrived (a JSON object), for callers that hand
    /// it on as text (the npm package parses it once, in JavaScript).
    pub fn payload(&self) -> &[u8] {
        self.payload.as_bytes()
    }
    /// The payload deserialized into the caller's own type.
    pub fn custom<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload)
            .map_err(|e| Error::bad_request(format!("the token's claims do not fit the requested type: {e}")))
    }
}

impl std::fmt::Debug for AccessClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessClaims")
            .field("sub", &self.sub())
            .field("sid", &self.sid())
            .field("jti", &self.jti())
            .field("iss", &self.iss())
            .field("aud", &self.aud().collect::<Vec<_>>())
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    jku: Option<IgnoredAny>,
    jwk: Option<IgnoredAny>,
    x5u: Option<IgnoredAny>,
    x5c: Option<IgnoredAny>,
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow, default)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    aud: Option<Audience<Cow<'a, str>>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3): as parsed, borrowed where
/// the JSON allows (`Cow`), and as kept in [`AccessClaims`] ([`ClaimText`]). The first is
/// kept apart, so the common single audience needs no list.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Audience<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Audience<T> {
    fn default() -> Self {
        Audience { first: None, rest: Vec::new() }
    }
}

impl<T> Audience<T> {
    fn one(name: T) -> Self {
        Audience { first: Some(name), rest: Vec::new() }
    }
    fn push(&mut self, name: T) {
        match self.first {
            None => self.first = Some(name),
            Some(_) => self.rest.push(name),
        }
    }
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }
    fn map<U>(self, mut f: impl FnMut(T) -> U) -> Audience<U> {
        Audience { first: self.first.map(&mut f), rest: self.rest.into_iter().map(f).collect() }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Audience<Cow<'a, str>> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> de::Visitor<'de> for V<'a> {
            type Value = Audience<Cow<'a, str>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Audience<Cow<'a, str>>, E> {
                Ok(Audience::one(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience<Cow<'a, str>>, E> {
                Ok(Audience::one(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience<Cow<'a, str>>, A::Error> {
                let mut out = Audience::default();
                while let Some(s) = seq.next_element::<BorrowedStr<'a>>()? {
                    out.push(s.0);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the input when it has no escapes (a bare `Cow` always copies).
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> de::Visitor<'de> for V<'a> {
            type Value = BorrowedStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<BorrowedStr<'a>, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BorrowedStr<'a>, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// NumericDate: seconds, possibly fractional (RFC 7519 §2); negative or absurd values are refused.
fn numeric_date<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = f64::deserialize(d)?;
    if !(0.0..=1.0e13).contains(&n) {
        return Err(de::Error::custom("numeric date out of range"));
    }
    Ok(Some(n as u64))
}

/// A token split and its header checked, awaiting its signature check.
pub(crate) struct Parsed<'t> {
    pub signing_input: &'t str,
    pub signature: Signature,
    pub key: &'t Key,
    payload_b64: &'t str,
}

/// A decoded signature: on the stack up to 64 bytes (every HMAC, ES256 and EdDSA
/// signature), on the heap beyond (RSA), so a verify allocates nothing for it.
pub(crate) enum Signature {
    Inline { bytes: [u8; 64], len: u8 },
    Heap(Vec<u8>),
}

impl Signature {
    fn decode(text: &str) -> Result<Signature, Error> {
        let bad = || invalid("the token signature is not base64url");
        match b64::decoded_len(text.len()) {
            Some(len) if len <= 64 => {
                let mut bytes = [0u8; 64];
                if !b64::decode_slice(text.as_bytes(), &mut bytes[..len]) {
                    return Err(bad());
                }
                Ok(Signature::Inline { bytes, len: len as u8 })
            }
            _ => b64::decode(text).map(Signature::Heap).map_err(|_| bad()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Signature::Inline { bytes, len } => &bytes[..usize::from(*len)],
            Signature::Heap(v) => v,
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Signature::Heap(v) => v,
            inline => inline.as_bytes().to_vec(),
        }
    }
}

fn invalid(why: &'static str) -> Error {
    Error::token_invalid(why)
}

/// The three parts of a compact JWS, or `None` unless the token has exactly two dots.
fn split(token: &str) -> Option<(&str, &str, &str)> {
    let (signing_input, s) = token.rsplit_once('.')?;
    let (h, p) = signing_input.split_once('.')?;
    (!p.contains('.')).then_some((h, p, s))
}

fn three_parts() -> Error {
    invalid("an access token has three dot-separated parts")
}

/// Whether `signing_input` starts with `key`'s own header and its dot.
fn is_header_of(signing_input: &str, key: &Key) -> bool {
    let header = key.header_b64.as_bytes();
    signing_input.as_bytes().get(..header.len() + 1).is_some_and(|h| h[header.len()] == b'.' && h[..header.len()] == *header)
}

/// A failure found after the fast path's split, reported as the split's own refusal when
/// the payload holds a dot: every malformed token gets the error a full split gives first.
#[cold]
fn or_shape(payload_b64: &str, e: Error) -> Error {
    if payload_b64.contains('.') {
        three_parts()
    } else {
        e
    }
}

/// Splits the token, checks its size, decodes and checks the header and finds the key.
pub(crate) fn parse<'t>(token: &'t str, keys: &'t KeySet, policy: &ClaimsPolicy) -> Result<Parsed<'t>, Error> {
    if token.is_empty() {
        return Err(invalid("the access token is empty; send the token from the Authorization header"));
    }
    if token.len() > policy.max_token_bytes {
        return Err(invalid("the access token exceeds the size limit"));
    }
    let (signing_input, s) = token.rsplit_once('.').ok_or_else(three_parts)?;
    // Fast path: a header byte-identical to the one tollgate writes for a key is that
    // key's header (alg, typ, kid), so it needs no decoding or parsing.
    if let Some(key) = keys.keys().iter().find(|k| is_header_of(signing_input, k)) {
        let p = &signing_input[key.header_b64.len() + 1..];
        // A payload holding a dot (more than three parts) is refused by its base64 decode, so
        // HMAC keys leave that search to the failure paths (`or_shape`); a driver's check
        // needs the token whole first.
        if key.hmac.is_none() && p.contains('.') {
            return Err(three_parts());
        }
        let signature = Signature::decode(s).map_err(|e| or_shape(p, e))?;
        check_signature_form(key.alg(), signature.as_bytes())?;
        return Ok(Parsed { signing_input, signature, key, payload_b64: p });
    }
    let (h, p, s) = split(token).ok_or_else(three_parts)?;
    let signature = Signature::decode(s)?;
    let mut header_bytes = Vec::with_capacity(h.len());
    b64::decode_into(h.as_bytes(), &mut header_bytes).map_err(|_| invalid("the token header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| invalid("the token header is not a JSON object with \"alg\""))?;
    if header.jku.is_some() || header.jwk.is_some() || header.x5u.is_some() || header.x5c.is_some() {
        return Err(invalid("tokens that name their own key (jku, jwk, x5u, x5c) are refused"));
    }
    if header.crit.is_some() {
        return Err(invalid("tokens with critical header extensions (crit) are refused"));
    }
    let Some(alg) = Alg::parse(&header.alg) else {
        return Err(invalid("the token's algorithm is not accepted (\"none\" never is)"));
    };
    let key = match header.kid.as_deref() {
        Some(kid) => keys.get(kid).ok_or_else(|| invalid("the token's key id (kid) is not in the key set"))?,
        None => {
            let mut same_alg = keys.keys().iter().filter(|k| k.alg() == alg);
            match (same_alg.next(), same_alg.next()) {
                (Some(k), None) => k,
                _ => return Err(invalid("the token has no key id (kid) and the key set cannot choose one")),
            }
        }
    };
    if key.alg() != alg {
        return Err(invalid("the token's algorithm does not match its key"));
    }
    check_signature_form(key.alg(), signature.as_bytes())?;
    Ok(Parsed { signing_input, signature, key, payload_b64: p })
}

/// The order n of P-256 (FIPS 186-4, D.1.2.3), big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
    0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// n / 2, rounded down: the largest S of a low-S signature.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b,
    0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// ES256 signatures are 64 bytes (r || S). Both S and n - S verify (ECDSA is malleable), and
/// both are accepted: RFC 7518 asks for no form, common signers (jsonwebtoken, jose,
/// WebCrypto) make either, and refusing one would refuse half of their tokens. The twin
/// grants nothing: tollgate never identifies an access token by its signature bytes (strict
/// verify checks the session the `sid` claim names, revocation is per session), so a
/// rewritten signature carries the same claims to the same checks. Every signature tollgate
/// makes is low-S anyway ([`es256_to_low_s`]), so its own tokens have one encoding.
fn check_signature_form(alg: Alg, signature: &[u8]) -> Result<(), Error> {
    if alg == Alg::ES256 && signature.len() != 64 {
        return Err(invalid("an ES256 signature is 64 bytes (r and S, big-endian)"));
    }
    Ok(())
}

/// Rewrites a raw ES256 signature (r || S) into low-S form: S becomes n - S when S > n/2.
/// The crypto drivers call it on each signature they make (ECDSA signers pick either form).
pub fn es256_to_low_s(signature: &mut [u8]) {
    if signature.len() != 64 || signature[32..] <= P256_HALF_ORDER[..] {
        return;
    }
    let s = &mut signature[32..];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let subtrahend = u16::from(s[i]) + borrow;
        let minuend = u16::from(P256_ORDER[i]);
        // 0x100 + minuend - subtrahend fits in u16; its low byte is the digit.
        s[i] = (0x100 + minuend - subtrahend) as u8;
        borrow = u16::from(minuend < subtrahend);
    }
}

/// HMAC check for HS keys; `None` when the key is asymmetric and the driver must check.
pub(crate) fn check_hmac(parsed: &Parsed<'_>) -> Option<Result<(), Error>> {
    let hmac = parsed.key.hmac.as_ref()?;
    Some(if hmac.verify(parsed.signing_input.as_bytes(), parsed.signature.as_bytes()) {
        Ok(())
    } else {
        Err(or_shape(parsed.payload_b64, invalid("the token signature does not verify")))
    })
}

/// Decodes the payload and checks the time and audience claims. Call only after the
/// signature has verified.
pub(crate) fn check_claims(parsed: &Parsed<'_>, policy: &ClaimsPolicy, now_ms: u64) -> Result<AccessClaims, Error> {
    // The decoder allocates the payload's exact size once; it becomes the claims' buffer.
    let mut payload = Vec::new();
    b64::decode_into(parsed.payload_b64.as_bytes(), &mut payload)
        .map_err(|_| or_shape(parsed.payload_b64, invalid("the token payload is not base64url")))?;
    // Validating UTF-8 once and parsing from &str spares serde a check per string.
    let payload = String::from_utf8(payload).map_err(|_| invalid("the token payload is not UTF-8"))?;
    let raw = match claims_scan::scan(&payload) {
        Some(raw) => raw,
        None => serde_json::from_str(&payload).map_err(|_| invalid("the token payload is not a JSON object of valid claims"))?,
    };
    let exp = raw.exp.ok_or_else(|| invalid("the token has no expiry (exp)"))?;
    if now_ms >= exp.saturating_mul(1000).saturating_add(policy.leeway_ms) {
        return Err(Error::new(ErrorCode::TokenExpired, "the access token has expired; refresh the session"));
    }
    if let Some(nbf) = raw.nbf {
        if now_ms.saturating_add(policy.leeway_ms) < nbf.saturating_mul(1000) {
            return Err(Error::new(ErrorCode::TokenNotYetValid, "the access token is not valid yet (nbf); check the clocks"));
        }
    }
    if let Some(want) = &policy.issuer {
        if raw.iss.as_deref() != Some(want.as_str()) {
            return Err(invalid("the token's issuer (iss) is not the expected one"));
        }
    }
    let aud = raw.aud.unwrap_or_default();
    if !policy.audience.is_empty() && !aud.iter().any(|a| policy.audience.iter().any(|p| p == a)) {
        return Err(invalid("the token's audience (aud) is not accepted here"));
    }
    let sub = raw.sub.ok_or_else(|| invalid("the token has no subject (sub)"))?;
    let text = |t: Cow<'_, str>| ClaimText::of(&payload, t);
    let aud = aud.map(text);
    let (sub, sid, jti, iss) = (text(sub), raw.sid.map(text), raw.jti.map(text), raw.iss.map(text));
    let (iat, nbf) = (raw.iat, raw.nbf);
    Ok(AccessClaims { payload, sub, sid, jti, iss, aud, iat, exp, nbf })
}

/// Claim names the core writes itself; callers may not set them.
pub const RESERVED_CLAIMS: &[&str] = &["iss", "aud", "sub", "sid", "jti", "iat", "exp", "nbf"];

#[derive(Serialize)]
struct NewClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    sub: &'a str,
    sid: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// What the core needs to mint one access token.
pub(crate) struct Mint<'a> {
    pub sub: &'a str,
    pub sid: &'a str,
    pub jti: &'a str,
    pub now_ms: u64,
    pub ttl_ms: u64,
    pub extra: &'a Map<String, Value>,
}

/// Builds `header.payload` for the signing key.
pub(crate) fn signing_input(key: &Key, policy: &ClaimsPolicy, mint: &Mint<'_>) -> String {
    let claims = NewClaims {
        iss: policy.issuer.as_deref(),
        aud: policy.audience.first().map(String::as_str),
        sub: mint.sub,
        sid: mint.sid,
        jti: mint.jti,
        iat: mint.now_ms / 1000,
        exp: (mint.now_ms + mint.ttl_ms) / 1000,
        extra: mint.extra,
    };
    // Serializing plain strings, integers and a JSON map cannot fail.
    let json = serde_json::to_vec(&claims).unwrap_or_default();
    let mut out = String::with_capacity(key.header_b64.len() + 1 + json.len() * 4 / 3 + 90);
    out.push_str(&key.header_b64);
    out.push('.');
    b64::encode_into(&json, &mut out);
    out
}

/// Appends `.signature` to a signing input.
pub(crate) fn finish(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    b64::encode_into(signature, &mut signing_input);
    signing_input
}

/// Signs with an HMAC key in the core; `None` for asymmetric keys.
pub(crate) fn sign_hmac(key: &Key, signing_input: &str) -> Option<Vec<u8>> {
    let hmac = key.hmac.as_ref()?;
    let mut buf = [0u8; 64];
    let n = hmac.sign_into(signing_input.as_bytes(), &mut buf);
    Some(buf[..n].to_vec())
}

/// Pure, synchronous verify for HMAC-signed tokens: the fast path of stateless verify.
/// Answers `None` when the token's key is asymmetric (the driver must check it).
pub fn verify_hmac(token: &str, keys: &KeySet, policy: &ClaimsPolicy, now_ms: u64) -> Option<Result<AccessClaims, Error>> {
    let parsed = match parse(token, keys, policy) {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    match check_hmac(&parsed)? {
        Ok(()) => Some(check_claims(&parsed, policy, now_ms)),
        Err(e) => Some(Err(e)),
    }
}

#[cfg(test)]
mod tests;
