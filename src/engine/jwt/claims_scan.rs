//! The claims of an access token read in one pass over the JSON, for the payloads that
//! tokens really carry: an object of plain strings (no escapes), whole numbers, `true`,
//! `false`, `null`, and `aud` as a string or an array of plain strings.
//!
//! Why: after the HMAC, parsing the claims was the largest cost of a stateless verify
//! (serde's field matching, its escape scanning and number parsing; see
//! `scripts/verify-cost.sh`). This scanner answers only when it is sure: anything else
//! (an escape, a nested object, a fraction, a duplicate registered claim, a `null` where a
//! claim is expected, trailing text) makes it answer `None`, and the caller parses with
//! serde, whose answer is the rule. So for every payload the scanner accepts, serde gives
//! the same claims; the differential tests below (proptest, serde as the oracle) check
//! exactly that.

use std::borrow::Cow;

use super::{Audience, RawClaims};

/// The claims of `text`, or `None` when the payload is not of the plain form above.
pub(super) fn scan(text: &str) -> Option<RawClaims<'_>> {
    let mut s = Scanner { text, bytes: text.as_bytes(), at: 0 };
    let mut claims = RawClaims { sub: None, sid: None, jti: None, iss: None, aud: None, exp: None, nbf: None, iat: None };
    s.skip_ws();
    s.eat(b'{')?;
    s.skip_ws();
    if !s.eat_if(b'}') {
        loop {
            let claim = s.key()?;
            s.skip_ws();
            s.eat(b':')?;
            s.skip_ws();
            match claim {
                Some(Claim::Sub) => set(&mut claims.sub, Cow::Borrowed(s.plain_string()?))?,
                Some(Claim::Sid) => set(&mut claims.sid, Cow::Borrowed(s.plain_string()?))?,
                Some(Claim::Jti) => set(&mut claims.jti, Cow::Borrowed(s.plain_string()?))?,
                Some(Claim::Iss) => set(&mut claims.iss, Cow::Borrowed(s.plain_string()?))?,
                Some(Claim::Aud) => {
                    let aud = s.audience()?;
                    set(&mut claims.aud, aud)?
                }
                Some(Claim::Exp) => set(&mut claims.exp, s.numeric_date()?)?,
                Some(Claim::Nbf) => set(&mut claims.nbf, s.numeric_date()?)?,
                Some(Claim::Iat) => set(&mut claims.iat, s.numeric_date()?)?,
                None => s.skip_plain_value()?,
            }
            s.skip_ws();
            if s.eat_if(b',') {
                s.skip_ws();
                continue;
            }
            s.eat(b'}')?;
            break;
        }
    }
    s.skip_ws();
    (s.at == s.bytes.len()).then_some(claims)
}

enum Claim {
    Sub,
    Sid,
    Jti,
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
}

/// The registered claim a three-byte key names: one integer compare per claim instead of a
/// string compare per arm.
fn registered([a, b, c]: [u8; 3]) -> Option<Claim> {
    const fn word(k: &[u8; 3]) -> u32 {
        u32::from_le_bytes([k[0], k[1], k[2], 0])
    }
    Some(match u32::from_le_bytes([a, b, c, 0]) {
        w if w == word(b"sub") => Claim::Sub,
        w if w == word(b"sid") => Claim::Sid,
        w if w == word(b"jti") => Claim::Jti,
        w if w == word(b"iss") => Claim::Iss,
        w if w == word(b"aud") => Claim::Aud,
        w if w == word(b"exp") => Claim::Exp,
        w if w == word(b"nbf") => Claim::Nbf,
        w if w == word(b"iat") => Claim::Iat,
        _ => return None,
    })
}

/// A registered claim given twice is serde's error to report, not the scanner's.
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.eat_if(byte).then_some(())
    }
    fn eat_if(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.at += usize::from(hit);
        hit
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }
    /// A member's name: `Some(claim)` for a registered claim, `Some(None)` for any other
    /// plain string.
    fn key(&mut self) -> Option<Option<Claim>> {
        // Every registered claim's name is three letters, and so are most names in a token:
        // read those without a search for the closing quote.
        if let Some(&[b'"', a, b, c, b'"']) = self.bytes.get(self.at..self.at + 5) {
            if [a, b, c].iter().all(|&x| x >= 0x20 && x != b'"' && x != b'\\') {
                self.at += 5;
                return Some(registered([a, b, c]));
            }
        }
        self.plain_string().map(|_| None)
    }
    /// A string without escapes or control characters, borrowed.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let len = string_end(&self.bytes[start..])?;
        self.at = start + len;
        self.eat(b'"')?;
        // The text is valid UTF-8 and both ends are ASCII quotes: a character boundary each.
        self.text.get(start..start + len)
    }
    /// A whole number of seconds in the range `numeric_date` accepts (serde reads it as f64:
    /// exact for every integer up to 1e13).
    fn numeric_date(&mut self) -> Option<u64> {
        let start = self.at;
        let mut n = 0u64;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n * 10 + u64::from(d - b'0');
            self.at += 1;
            // More digits than 1e13 has: serde decides.
            if self.at - start > 14 {
                return None;
            }
        }
        let len = self.at - start;
        // Empty, a leading zero (`01` is not JSON), or a fraction or exponent follows: serde decides.
        if len == 0 || (len > 1 && self.bytes[start] == b'0') || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        (n <= 10_000_000_000_000).then_some(n)
    }
    fn audience(&mut self) -> Option<Audience<Cow<'a, str>>> {
        if !self.eat_if(b'[') {
            return Some(Audience::one(Cow::Borrowed(self.plain_string()?)));
        }
        let mut out = Audience::default();
        self.skip_ws();
        if self.eat_if(b']') {
            return Some(out);
        }
        loop {
            self.skip_ws();
            out.push(Cow::Borrowed(self.plain_string()?));
            self.skip_ws();
            if !self.eat_if(b',') {
                self.eat(b']')?;
                return Some(out);
            }
        }
    }
    /// The value of a claim the core does not read: a plain string, a number, `true`,
    /// `false` or `null`. Objects and arrays go to serde.
    fn skip_plain_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.plain_string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }
    /// A JSON number `-? (0 | [1-9][0-9]*) (. [0-9]+)?` of at most 15 integer digits: always a
    /// finite f64. An exponent or a longer number goes to serde, which refuses the ones that
    /// overflow.
    fn number(&mut self) -> Option<()> {
        self.eat_if(b'-');
        let start = self.at;
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.at - start > 15 {
            return None;
        }
        if self.eat_if(b'.') {
            self.some_digits()?;
        }
        (!matches!(self.peek(), Some(b'e' | b'E'))).then_some(())
    }
    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }
    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// Where a plain string's body ends: the offset of the first `"`, `\` or control character,
/// found eight bytes at a time (claims are mostly strings).
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let w = u64::from_le_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]]);
        // A byte of `x - ONES & !x & HIGH` is set where x's byte is zero (below 0x20 for the
        // last term); bytes above the first such one may be set too, so take the lowest.
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        let hits = (quote.wrapping_sub(ONES) & !quote | slash.wrapping_sub(ONES) & !slash | w.wrapping_sub(ONES * 0x20) & !w) & HIGH;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a payload means, in a form both readers produce.
    fn meaning(c: &RawClaims<'_>) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            c.sub,
            c.sid,
            c.jti,
            c.iss,
            c.aud.as_ref().map(|a| a.iter().collect::<Vec<_>>()),
            c.exp,
            c.nbf,
            c.iat
        )
    }

    /// The scanner either defers to serde or agrees with it.
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = scan(text) {
            let slow: Result<RawClaims, _> = serde_json::from_str(text);
            prop_assert!(slow.is_ok(), "the scanner accepted what serde refuses: {text:?}");
            prop_assert_eq!(meaning(&fast), meaning(&slow.unwrap()), "on {:?}", text);
        }
        Ok(())
    }

    #[test]
    fn the_tokens_tollgate_issues_are_scanned() {
        let text = r#"{"iss":"https://auth.example","aud":"api","sub":"user-1","sid":"s1","jti":"j1","iat":1800000000,"exp":1800000900,"role":"member","n":-1.5,"ok":true,"x":null}"#;
        let c = scan(text).expect("the plain form is scanned");
        assert_eq!(c.sub.as_deref(), Some("user-1"));
        assert_eq!(c.aud.as_ref().map(|a| a.iter().count()), Some(1));
        assert_eq!((c.iat, c.exp, c.nbf), (Some(1_800_000_000), Some(1_800_000_900), None));
        agrees(text).unwrap();
    }

    #[test]
    fn anything_else_goes_to_serde() {
        for text in [
            r#"{"sub":"a\"b"}"#,                                 // an escape
            r#"{"sub":"a","sub":"b"}"#,                          // a registered claim twice
            r#"{"exp":1.5}"#,                                    // a fraction
            r#"{"exp":01}"#,                                     // not JSON
            r#"{"exp":null}"#,                                   // serde's error
            r#"{"sub":null}"#,                                   // serde's None
            r#"{"x":{"y":1}}"#,                                  // nested
            r#"{"aud":["a",1]}"#,                                // not a string
            r#"{"x":1e999}"#,                                    // serde refuses an infinite number
            r#"{"x":1234567890123456789012345678901234567890}"#, // a long one
            r#"{"sub":"a"} x"#,                                  // trailing text
            r#"{"sub":"a",}"#,                                   // trailing comma
            r#"{"exp":99999999999999}"#,                         // out of range
            "{\"sub\":\"a\u{1}\"}",                              // a control character
            r#"["sub"]"#,
            "",
        ] {
            assert!(scan(text).is_none(), "scanned {text:?}");
        }
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\\".to_owned()),
            Just("\"".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            prop::sample::select(vec!["sub", "sid", "jti", "iss", "aud", "exp", "nbf", "iat", "role"]).prop_map(|k| format!("\"{k}\"")),
            "-?[0-9]{0,15}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
            "\"[a-z\u{e9}\u{1}]{0,4}\"",
            "\"[a-z\u{e9}\u{1}\"\\\\]{6,20}\"",
        ]
    }

    #[test]
    fn numbers_at_the_edges_agree() {
        for key in ["exp", "nbf", "iat", "role"] {
            for n in [
                "0",
                "1",
                "00",
                "-0",
                "-1",
                "1.0",
                "1e3",
                "9999999999999",
                "10000000000000",
                "10000000000001",
                "99999999999999",
                "999999999999999",
                "1000000000000000",
                "18446744073709551616",
                "0.5",
                "-1.25",
            ] {
                let text = format!("{{\"{key}\":{n}}}");
                agrees(&text).unwrap();
                if key != "role" && !n.contains(['.', 'e', '-']) && n.len() > 1 && !n.starts_with('0') {
                    assert_eq!(scan(&text).is_some(), n.parse::<u64>().is_ok_and(|v| v <= 10_000_000_000_000), "{key}: {n}");
                }
            }
        }
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["sub", "sid", "jti", "iss", "aud", "exp", "nbf", "iat", "role"]).prop_map(|k| format!("\"{k}\"")),
            fragment(),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?(0|[1-9][0-9]{0,16})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            "\"[a-z\u{e9}\u{1}\\\\]{0,4}\"",
            "\"[a-z0-9\u{e9}\u{1}\\\\]{5,24}\"",
            prop::collection::vec("\"[a-z]{0,3}\"|1|null", 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            Just("null".to_owned()),
            Just("false".to_owned()),
            Just("{}".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn string_end_finds_the_first_stop(bytes in prop::collection::vec(prop_oneof![
            4 => 0x20u8..0x7f,
            1 => Just(b'"'),
            1 => Just(b'\\'),
            1 => 0u8..0x20,
            1 => 0x7fu8..=0xff,
        ], 0..40)) {
            let naive = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_end(&bytes), naive);
        }

        #[test]
        fn scanner_agrees_with_serde(parts in prop::collection::vec(fragment(), 0..24)) {
            agrees(&parts.concat())?;
        }

        #[test]
        fn scanner_agrees_with_serde_on_objects(
            pairs in prop::collection::vec((key(), value()), 0..5),
            spaces in "[ \t\n\r]{0,2}",
        ) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}{spaces}:{spaces}{v}")).collect();
            agrees(&format!("{{{}}}", body.join(",")))?;
        }
    }
}
