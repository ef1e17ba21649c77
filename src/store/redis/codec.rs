//! The Redis format, as code: key prefixing, the value header, the commit
//! script's `KEYS`/`ARGV`, and what Redis's answers mean. `docs/store-format.md`
//! describes it in prose.
//!
//! Plain Rust with no IO and no `redis` crate: the native [`RedisStore`] and the
//! npm package's Redis store (WebAssembly over ioredis) both run this code, so
//! what one writes the other reads.
//!
//! [`RedisStore`]: super::RedisStore

use bytes::Bytes;

use crate::engine::error::{Error, ErrorCode};
use crate::engine::step::{Expect, Versioned, WriteOp};
use crate::store::{CommitResult, StoreError};

/// The commit script, one text for every client (the npm package gets it from
/// the WebAssembly module).
pub const COMMIT_SCRIPT: &str = include_str!("commit.lua");
/// Byte 0 of every stored value.
pub const FORMAT_MARKER: u8 = 0xF1;
/// The marker and the big-endian version in front of every payload.
pub const HEADER_LEN: usize = 9;
/// The key prefix when none is configured.
pub const DEFAULT_PREFIX: &str = "tg:";

/// What goes in front of every key. It may not contain `{` or `}`, so the
/// engine's hash tag stays the one Redis Cluster hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn new(prefix: impl Into<String>) -> Result<Self, Error> {
        let prefix = prefix.into();
        if prefix.contains(['{', '}']) {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                "the Redis key prefix may not contain `{` or `}` (it would change the hash tag)",
            ));
        }
        Ok(KeyPrefix(prefix))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Redis key of an engine key.
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.0.len() + key.len());
        k.push_str(&self.0);
        k.push_str(key);
        k
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        KeyPrefix(DEFAULT_PREFIX.to_owned())
    }
}

/// The 9 bytes in front of a payload written with `version`.
pub fn header(version: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = FORMAT_MARKER;
    h[1..].copy_from_slice(&version.to_be_bytes());
    h
}

/// A stored value: the header, then the payload.
pub fn encode_value(version: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header(version));
    v.extend_from_slice(payload);
    v
}

/// Reads a stored value; anything without the marker and a whole header is
/// `store_corrupt` (a value of another format, or not written by tollgate).
pub fn decode_value(bytes: Bytes) -> Result<Versioned, StoreError> {
    if bytes.len() < HEADER_LEN || bytes[0] != FORMAT_MARKER {
        return Err(StoreError::corrupt("a Redis value is not in tollgate's format (no 0xF1 header); see docs/store-format.md"));
    }
    let mut version = [0u8; 8];
    version.copy_from_slice(&bytes[1..HEADER_LEN]);
    Ok(Versioned { version: u64::from_be_bytes(version), value: bytes.slice(HEADER_LEN..) })
}

/// Reads an `MGET` answer: one entry per key asked for, `None` for a missing key.
pub fn decode_values(items: Vec<Option<Bytes>>, asked: usize) -> Result<Vec<Option<Versioned>>, StoreError> {
    if items.len() != asked {
        return Err(StoreError::corrupt("MGET answered the wrong number of values"));
    }
    items.into_iter().map(|item| item.map(decode_value).transpose()).collect()
}

/// A commit's version from 8 random bytes: any value but zero.
pub fn commit_version(random: [u8; 8]) -> u64 {
    u64::from_be_bytes(random).max(1)
}

/// One commit as the script takes it (`EVALSHA <sha> <keys.len()> keys.. args..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitCall {
    pub keys: Vec<String>,
    pub args: Vec<Vec<u8>>,
}

/// Encodes `ops` for the commit script; every put carries `version`.
pub fn encode_commit(prefix: &KeyPrefix, ops: &[WriteOp], version: u64) -> CommitCall {
    let mut keys = Vec::with_capacity(ops.len());
    let mut args = Vec::with_capacity(ops.len() * 3);
    for op in ops {
        keys.push(prefix.key(op.key()));
        if let WriteOp::Append { entry, max_entries, expires_at, .. } = op {
            let mut expect = Vec::with_capacity(5);
            expect.push(b'+');
            expect.extend_from_slice(&max_entries.to_be_bytes());
            args.push(expect);
            let mut value = Vec::with_capacity(HEADER_LEN + 8 + entry.len());
            value.extend_from_slice(&header(version));
            value.extend_from_slice(&expires_at.to_be_bytes());
            value.extend_from_slice(entry);
            args.push(value);
            args.push(pxat(*expires_at));
            continue;
        }
        if let WriteOp::Remove { sid, .. } = op {
            args.push(b"-".to_vec());
            let mut value = Vec::with_capacity(HEADER_LEN + sid.len());
            value.extend_from_slice(&header(version));
            value.extend_from_slice(sid.as_bytes());
            args.push(value);
            args.push(Vec::new());
            continue;
        }
        args.push(match op.expect() {
            Expect::Any => b"*".to_vec(),
            Expect::Absent => Vec::new(),
            Expect::Version(v) => header(v).to_vec(),
        });
        match op {
            WriteOp::Put { value, expires_at, .. } => {
                args.push(encode_value(version, value));
                args.push(pxat(*expires_at));
            }
            // List writes were encoded above.
            WriteOp::Delete { .. } | WriteOp::Append { .. } | WriteOp::Remove { .. } => {
                args.push(Vec::new());
                args.push(Vec::new());
            }
        }
    }
    CommitCall { keys, args }
}

/// An expiry as `SET .. PXAT` takes it: 1 ..= i64::MAX; 1 is long past, so such a put leaves no key.
fn pxat(expires_at: u64) -> Vec<u8> {
    expires_at.clamp(1, i64::MAX as u64).to_string().into_bytes()
}

/// Reads the script's answer.
pub fn commit_result(reply: i64) -> Result<CommitResult, StoreError> {
    match reply {
        1 => Ok(CommitResult::Committed),
        0 => Ok(CommitResult::Conflict),
        _ => Err(StoreError::corrupt("the commit script answered something other than 0 or 1")),
    }
}

/// What an error reply from Redis says about the call that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorReply {
    /// The server refused the command before running it (a replica, a
    /// loading server, a slot on the move, not enough replicas): sending it
    /// again is safe, and the topology may have changed.
    Refused,
    /// A key holds another Redis type (`WRONGTYPE`): not tollgate's data.
    WrongType,
    /// Anything else: the call may or may not have run.
    Other,
}

/// Classifies an error reply by its text: the code is its first word (Redis 7
/// keeps the code of a command that failed inside a script there), or follows
/// a `: ` (Redis 6 wraps it in `ERR Error running script ..: <CODE> ..`).
pub fn classify_error(text: &str) -> ErrorReply {
    const REFUSALS: [&str; 8] = ["READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK"];
    let first = text.split_whitespace().next();
    let after_colons = text.split(": ").skip(1).filter_map(|s| s.split_whitespace().next());
    let mut codes = first.into_iter().chain(after_colons).map(|w| w.trim_end_matches(':'));
    match codes.find(|c| *c == "WRONGTYPE" || REFUSALS.contains(c)) {
        Some("WRONGTYPE") => ErrorReply::WrongType,
        Some(_) => ErrorReply::Refused,
        None => ErrorReply::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &'static [u8], expect: Expect, expires_at: u64) -> WriteOp {
        WriteOp::Put { key: key.to_owned(), value: Bytes::from_static(value), expect, expires_at }
    }

    #[test]
    fn values_round_trip_and_foreign_ones_are_corrupt() {
        let v = decode_value(Bytes::from(encode_value(0x0102_0304_0506_0708, b"hello"))).unwrap();
        assert_eq!(v.version, 0x0102_0304_0506_0708);
        assert_eq!(&v.value[..], b"hello");
        assert_eq!(encode_value(255, b"")[..], [0xF1, 0, 0, 0, 0, 0, 0, 0, 255]);
        assert!(decode_value(Bytes::from(encode_value(7, b""))).unwrap().value.is_empty());
        // The Rust store's old format (16 hex digits of version, then the payload).
        assert!(decode_value(Bytes::from_static(b"00000000000000ffhello")).is_err());
        assert!(decode_value(Bytes::from_static(b"")).is_err());
        assert!(decode_value(Bytes::from_static(&[0xF1, 0, 0, 0, 0, 0, 0, 1])).is_err(), "a header cut short");
        assert!(decode_value(Bytes::from_static(&[0xF2, 0, 0, 0, 0, 0, 0, 0, 1, b'x'])).is_err(), "another marker");
        let got = decode_values(vec![None, Some(Bytes::from(encode_value(3, b"x")))], 2).unwrap();
        assert_eq!(got[0], None);
        assert_eq!(got[1].as_ref().unwrap().version, 3);
        assert!(decode_values(vec![None], 2).is_err());
    }

    #[test]
    fn commits_encode_keys_expectations_values_and_expiry() {
        let prefix = KeyPrefix::new("app:").unwrap();
        let ops = vec![
            put("s:{u:a}:1", b"rec", Expect::Absent, 1_700_000_000_000),
            put("i:{u:a}", b"idx", Expect::Version(9), 0),
            put("c:{u:a}", b"c", Expect::Any, u64::MAX),
            WriteOp::Delete { key: "s:{u:a}:2".into(), expect: Expect::Version(u64::MAX) },
        ];
        let call = encode_commit(&prefix, &ops, 42);
        assert_eq!(call.keys, ["app:s:{u:a}:1", "app:i:{u:a}", "app:c:{u:a}", "app:s:{u:a}:2"]);
        let args: Vec<&[u8]> = call.args.iter().map(Vec::as_slice).collect();
        assert_eq!(args.len(), 12);
        assert_eq!(args[0], b"");
        assert_eq!(args[1], &encode_value(42, b"rec")[..]);
        assert_eq!(args[2], b"1700000000000");
        assert_eq!(args[3], &header(9)[..]);
        assert_eq!(args[5], b"1", "an expiry of 0 is sent as 1 (PXAT refuses 0)");
        assert_eq!(args[6], b"*");
        assert_eq!(args[8], i64::MAX.to_string().as_bytes(), "PXAT refuses more than i64::MAX");
        assert_eq!(args[9], &header(u64::MAX)[..]);
        assert_eq!((args[10], args[11]), (&b""[..], &b""[..]), "a delete has no value");
    }

    #[test]
    fn appends_encode_their_bound_header_expiry_and_entry() {
        let op = WriteOp::Append { key: "i:{u:a}".into(), entry: Bytes::from_static(b"ent"), max_entries: 0x0102, expires_at: 0x0A0B };
        let call = encode_commit(&KeyPrefix::default(), &[op], 42);
        assert_eq!(call.keys, ["tg:i:{u:a}"]);
        assert_eq!(call.args[0], [b'+', 0, 0, 1, 2], "'+' and the bound, 4 bytes");
        let mut value = header(42).to_vec();
        value.extend_from_slice(&0x0A0Bu64.to_be_bytes());
        value.extend_from_slice(b"ent");
        assert_eq!(call.args[1], value, "the commit's header, the expiry, the entry");
        assert_eq!(call.args[2], b"2571");
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert_eq!(KeyPrefix::new("a{b").unwrap_err().code(), ErrorCode::ConfigInvalid);
        assert!(KeyPrefix::new("a}").is_err());
        assert_eq!(KeyPrefix::new("").unwrap().key("i:{u:x}"), "i:{u:x}");
        assert_eq!(KeyPrefix::default().as_str(), "tg:");
    }

    #[test]
    fn versions_are_never_zero() {
        assert_eq!(commit_version([0; 8]), 1);
        assert_eq!(commit_version([0, 0, 0, 0, 0, 0, 1, 0]), 256);
    }

    #[test]
    fn replies_and_errors_are_classified() {
        assert_eq!(commit_result(1).unwrap(), CommitResult::Committed);
        assert_eq!(commit_result(0).unwrap(), CommitResult::Conflict);
        assert!(commit_result(2).is_err());
        let in_script = "ERR Error running script (call to f_x): @user_script:30: NOREPLICAS Not enough good replicas to write.";
        assert_eq!(classify_error(in_script), ErrorReply::Refused);
        assert_eq!(classify_error("READONLY You can't write against a read only replica."), ErrorReply::Refused);
        assert_eq!(classify_error("MOVED 3999 127.0.0.1:6381"), ErrorReply::Refused);
        assert_eq!(
            classify_error("ERR Error running script: @user_script:21: WRONGTYPE Operation against a key holding the wrong kind of value"),
            ErrorReply::WrongType
        );
        assert_eq!(classify_error("ERR wrong number of arguments"), ErrorReply::Other);
        assert_eq!(classify_error("ERR unknown command 'ASKING-FOR-IT'"), ErrorReply::Other);
        assert_eq!(classify_error("NOREPLICAS: Not enough good replicas to write."), ErrorReply::Refused);
        assert_eq!(
            classify_error("WRONGTYPE Operation against a key holding the wrong kind of value script: 7707, on @user_script:1."),
            ErrorReply::WrongType
        );
    }
}
