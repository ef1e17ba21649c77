//! The compact encoding of a session record (format 3), behind the format byte
//! and the MAC that [`SessionRecord::seal`] puts in front.
//!
//! ```text
//! varint  created_at, last_seen, idle_expires_at, absolute_expires_at, generation
//! [32]    refresh_hash
//! varint  revoked_at + 1 (0: not revoked)
//! varint  rotations in the grace window, each: [32] hash, varint at, [32] sealed_next,
//!         u8 flags (bit 0: the retired secret carried a chain tag)
//! varint  retired hashes (only sessions begun before chain tags), each [16]
//! varint  length, then the claims as a JSON object (length 0: none)
//! varint  length, then the metadata as JSON (length 0: null)
//! then, to the end, optional fields: u8 id, varint length, bytes. A reader skips
//!         ids it does not know, so a later release can add one without a new format.
//!         1: the client IP (4 or 16 bytes), 2: the user agent (UTF-8); each absent when
//!         unknown.
//! ```
//!
//! Integers are unsigned LEB128. The session id and the user id are not in the
//! body: they are the key the record is stored under, and the MAC covers them.
//! A body that does not parse whole is `store_corrupt`, like a bad MAC.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

use super::b64;
use super::record::{Rotation, SessionRecord};

/// Unsigned LEB128.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The body of `record` (everything after the MAC).
pub(super) fn encode(record: &SessionRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + 80 * record.recent.len() + 16 * record.retired.len());
    for n in [record.created_at, record.last_seen, record.idle_expires_at, record.absolute_expires_at, record.generation] {
        put_varint(&mut out, n);
    }
    out.extend_from_slice(&record.refresh_hash);
    put_varint(&mut out, record.revoked_at.map_or(0, |at| at.saturating_add(1)));
    put_varint(&mut out, record.recent.len() as u64);
    for r in &record.recent {
        out.extend_from_slice(&r.hash);
        put_varint(&mut out, r.at);
        out.extend_from_slice(&r.sealed_next);
        out.push(u8::from(r.tagged));
    }
    let retired: Vec<Vec<u8>> = record.retired.iter().filter_map(|h| b64::decode(h).ok().filter(|b| b.len() == 16)).collect();
    put_varint(&mut out, retired.len() as u64);
    for h in &retired {
        out.extend_from_slice(h);
    }
    if record.claims.is_empty() {
        put_varint(&mut out, 0);
    } else {
        put_bytes(&mut out, &serde_json::to_vec(&record.claims).unwrap_or_default());
    }
    if record.metadata.is_null() {
        put_varint(&mut out, 0);
    } else {
        put_bytes(&mut out, &serde_json::to_vec(&record.metadata).unwrap_or_default());
    }
    match record.ip {
        Some(IpAddr::V4(ip)) => put_field(&mut out, FIELD_IP, &ip.octets()),
        Some(IpAddr::V6(ip)) => put_field(&mut out, FIELD_IP, &ip.octets()),
        None => {}
    }
    if let Some(ua) = &record.user_agent {
        put_field(&mut out, FIELD_USER_AGENT, ua.as_bytes());
    }
    out
}

/// Optional field ids (see the module docs).
const FIELD_IP: u8 = 1;
const FIELD_USER_AGENT: u8 = 2;

fn put_field(out: &mut Vec<u8>, id: u8, bytes: &[u8]) {
    out.push(id);
    put_bytes(out, bytes);
}

/// Reads a body; `None` when it does not parse whole.
pub(super) fn decode(body: &[u8], user: &str, sid: &str, format: u8) -> Option<SessionRecord> {
    let mut r = Reader(body);
    let created_at = r.varint()?;
    let last_seen = r.varint()?;
    let idle_expires_at = r.varint()?;
    let absolute_expires_at = r.varint()?;
    let generation = r.varint()?;
    let refresh_hash = r.array::<32>()?;
    let revoked_at = r.varint()?.checked_sub(1);
    let n = r.count(65)?;
    let mut recent = Vec::with_capacity(n);
    for _ in 0..n {
        let hash = r.array::<32>()?;
        let at = r.varint()?;
        let sealed_next = r.array::<32>()?;
        let flags = r.array::<1>()?[0];
        if flags > 1 {
            return None;
        }
        recent.push(Rotation { hash, at, sealed_next, tagged: flags == 1 });
    }
    let n = r.count(16)?;
    let mut retired = Vec::with_capacity(n);
    for _ in 0..n {
        retired.push(b64::encode(&r.array::<16>()?));
    }
    let claims = match r.bytes()? {
        [] => Map::new(),
        json => serde_json::from_slice(json).ok()?,
    };
    let metadata = match r.bytes()? {
        [] => Value::Null,
        json => serde_json::from_slice(json).ok()?,
    };
    let (mut ip, mut user_agent) = (None, None);
    // Optional fields; ids a later release may add are skipped whole.
    while !r.0.is_empty() {
        let [id] = r.array::<1>()?;
        let bytes = r.bytes()?;
        match id {
            FIELD_IP => {
                ip = Some(match bytes.len() {
                    4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?)),
                    16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
                    _ => return None,
                })
            }
            FIELD_USER_AGENT => user_agent = Some(std::str::from_utf8(bytes).ok()?.to_owned()),
            _ => {}
        }
    }
    Some(SessionRecord {
        v: format,
        sid: sid.to_owned(),
        user: user.to_owned(),
        created_at,
        last_seen,
        idle_expires_at,
        absolute_expires_at,
        generation,
        refresh_hash,
        recent,
        retired,
        revoked_at,
        claims,
        metadata,
        ip,
        user_agent,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            let part = u64::from(b & 0x7F);
            // The tenth byte holds bit 63 only; overlong encodings are refused.
            if (i == 9 && b > 1) || (i > 0 && b == 0) {
                return None;
            }
            n |= part << (7 * i);
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }
    /// A count of items of at least `item` bytes each: no more than the bytes left could hold.
    fn count(&mut self, item: usize) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.0.len() / item).then_some(n)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SessionRecord {
        let mut claims = Map::new();
        claims.insert("role".into(), Value::from("member"));
        SessionRecord {
            v: 1,
            sid: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            user: "zoë".into(),
            created_at: 1_800_000_000_000,
            last_seen: 1_800_000_060_000,
            idle_expires_at: 1_801_000_000_000,
            absolute_expires_at: 1_802_000_000_000,
            generation: 70,
            refresh_hash: [7; 32],
            recent: vec![Rotation { hash: [1; 32], at: 1_800_000_059_000, sealed_next: [2; 32], tagged: true }],
            retired: vec![b64::encode(&[3; 16])],
            revoked_at: Some(0),
            claims,
            metadata: serde_json::json!({"device": "laptop"}),
            ip: Some("2001:db8::7".parse().unwrap()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) zoë".into()),
        }
    }

    #[test]
    fn records_round_trip_and_every_cut_is_refused() {
        let client = sample();
        assert_eq!(decode(&encode(&client), &client.user, &client.sid, 1), Some(client.clone()));
        // Without the optional fields, so that no cut falls on a field boundary (where the
        // shorter body is a whole record of its own; the MAC in front refuses it).
        let mut r = sample();
        (r.ip, r.user_agent) = (None, None);
        let body = encode(&r);
        assert_eq!(decode(&body, &r.user, &r.sid, 1), Some(r.clone()));
        for cut in 0..body.len() {
            assert_eq!(decode(&body[..cut], &r.user, &r.sid, 1), None, "cut at {cut}");
        }
        // Empty claims, null metadata, no revocation: the shortest forms.
        let mut bare = sample();
        (bare.claims, bare.metadata, bare.revoked_at, bare.recent, bare.retired) = (Map::new(), Value::Null, None, vec![], vec![]);
        (bare.ip, bare.user_agent) = (None, None);
        let short = encode(&bare);
        assert_eq!(decode(&short, &bare.user, &bare.sid, 1), Some(bare));
        assert!(short.len() < 70, "{} bytes", short.len());
        // An IPv4 client, and the mapped form kept apart from it.
        for ip in ["192.0.2.1", "::ffff:192.0.2.1"] {
            let mut r = sample();
            r.ip = Some(ip.parse().unwrap());
            assert_eq!(decode(&encode(&r), &r.user, &r.sid, 1), Some(r.clone()), "{ip}");
        }
    }

    #[test]
    fn optional_fields_a_reader_does_not_know_are_skipped() {
        let r = sample();
        let mut body = encode(&r);
        body.extend_from_slice(&[9, 3, b'a', b'b', b'c']);
        assert_eq!(decode(&body, &r.user, &r.sid, 1), Some(r.clone()));
        body.push(9);
        assert_eq!(decode(&body, &r.user, &r.sid, 1), None, "a field without its length");
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for n in [0, 1, 127, 128, 300, 1_800_000_000_000, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut r = Reader(&out);
            assert_eq!(r.varint(), Some(n));
            assert!(r.0.is_empty());
        }
        assert_eq!(Reader(&[0x80, 0x00]).varint(), None, "overlong zero");
        assert_eq!(Reader(&[0xFF; 9]).varint(), None, "cut short");
        let mut too_big = vec![0xFF; 9];
        too_big.push(0x02);
        assert_eq!(Reader(&too_big).varint(), None, "past 64 bits");
    }
}
