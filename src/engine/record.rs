//! What is stored: session records, the per-user index, cached user info, and the
//! keys they live under.
//!
//! Every key of one user carries the hash tag `{u:<user>}`, so a Redis Cluster
//! keeps a user's keys in one slot and one script can commit them atomically.
//! Inside the tag the user id is escaped (`%` -> `%25`, `{` -> `%7B`, `}` ->
//! `%7D`, nothing else), so the tag is always the whole `u:<escaped user>`
//! whatever the id holds. Stores add their own prefix in front.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::b64;
use super::client::{bound_user_agent, ClientInfo};
use super::error::Error;
use super::list;
use super::record_bytes;
use super::refresh_key::{RefreshKey, TAG_LEN};
use super::token::{Secret, SecretHash};

/// The user id as written inside a key's `{...}`: no brace can end the tag early,
/// and `%` is escaped too so that two different ids never share a tag.
pub fn escape_user(user: &str) -> Cow<'_, str> {
    if !user.contains(['%', '{', '}']) {
        return Cow::Borrowed(user);
    }
    let mut out = String::with_capacity(user.len() + 8);
    for c in user.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The hash tag of every key of `user`: what [`hash_tag`] answers for each of them.
pub fn user_tag(user: &str) -> String {
    let mut tag = String::with_capacity(2 + user.len());
    tag.push_str("u:");
    push_escaped_user(&mut tag, user);
    tag
}

/// `<kind>:{u:<escaped user>}` then `:<sid>` when given, built in one allocation:
/// a strict verify builds three keys per request.
fn user_key(kind: &str, user: &str, sid: Option<&str>) -> String {
    let mut key = String::with_capacity(kind.len() + 5 + user.len() + sid.map_or(0, |s| 1 + s.len()));
    key.push_str(kind);
    key.push_str(":{u:");
    push_escaped_user(&mut key, user);
    key.push('}');
    if let Some(sid) = sid {
        key.push(':');
        key.push_str(sid);
    }
    key
}

fn push_escaped_user(out: &mut String, user: &str) {
    match escape_user(user) {
        Cow::Borrowed(user) => out.push_str(user),
        Cow::Owned(escaped) => out.push_str(&escaped),
    }
}

pub fn session_key(user: &str, sid: &str) -> String {
    user_key("s", user, Some(sid))
}
pub fn index_key(user: &str) -> String {
    user_key("i", user, None)
}
pub fn user_cache_key(user: &str) -> String {
    user_key("c", user, None)
}

/// Marks one session revoked. Only revocations write it (never a refresh or a touch), so
/// on a store whose reads may be stale (Workers KV) a write made from an old view of
/// the record cannot undo a revocation: the marker is read beside the record.
pub fn revoked_key(user: &str, sid: &str) -> String {
    user_key("r", user, Some(sid))
}
/// Marks every session of the user created up to a time revoked (revoke-all), but one it keeps.
pub fn revoked_all_key(user: &str) -> String {
    user_key("ra", user, None)
}

/// The part of a key a Redis Cluster would hash: between the first `{` and the
/// next `}` when non-empty, else the whole key.
pub fn hash_tag(key: &str) -> &str {
    // A plain byte scan: keys are short, and this is on every read.
    let bytes = key.as_bytes();
    if let Some(open) = bytes.iter().position(|&b| b == b'{') {
        if let Some(len) = bytes[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// Format version of stored values; a reader refuses versions it does not know.
const FORMAT: u8 = 1;

/// The first byte of a session record as stored: format 3 is `[3][MAC, 32 bytes][compact
/// body]` (see [`super::record_bytes`]), what this release writes unless asked for JSON.
pub const COMPACT_RECORD: u8 = 3;
/// Format 2 is `[2][MAC, 32 bytes][JSON]`: written by earlier releases, and by this one
/// when `record_format` is `json` (while a rolling upgrade from such a release runs);
/// read by every release since it appeared.
/// Format 1 (bare JSON, no MAC; its first byte is `{`) is refused as `store_corrupt`:
/// a record no key vouches for could have been written by anyone with store access.
pub const SEALED_RECORD: u8 = 2;
/// What a session record's MAC says it is (an index or a cache entry never passes for one).
pub const SESSION_KIND: &str = "session";

/// How session records are written; both are always read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordFormat {
    /// Format 3, the compact encoding: what this release writes by default.
    #[default]
    Compact,
    /// Format 2, MAC and JSON: what releases before format 3 read. For a rolling
    /// upgrade from such a release, until none of it runs any more.
    Json,
}

/// One rotation still inside the grace window: the hash of the retired secret, when
/// it was retired, and its successor sealed under it (see [`super::token::seal_successor`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rotation {
    #[serde(with = "b64_array")]
    pub hash: SecretHash,
    pub at: u64,
    #[serde(with = "b64_array")]
    pub sealed_next: Secret,
    /// Whether the retired secret carries a chain tag ([`super::token::chain_generation`]):
    /// then, once out of the window, its generation alone makes it reuse and its hash
    /// is dropped. An untagged one (minted by an earlier release) is remembered in
    /// `retired`. Absent (an earlier release rewrote the record): untagged, the safe side.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tagged: bool,
}

impl Rotation {
    /// Whether `now` is within `grace_ms` of the rotation's stamp, before or after it.
    /// A stamp further ahead (a server with a fast clock wrote it) is outside: a
    /// rotation time in the future never widens the window, it fails closed.
    pub fn within_grace(&self, now: u64, grace_ms: u64) -> bool {
        now.abs_diff(self.at) <= grace_ms
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    pub v: u8,
    pub sid: String,
    pub user: String,
    /// Unix milliseconds.
    pub created_at: u64,
    pub last_seen: u64,
    /// Sliding expiry, never past `absolute_expires_at`.
    pub idle_expires_at: u64,
    /// Fixed at issue; never extended.
    pub absolute_expires_at: u64,
    /// Number of rotations so far.
    pub generation: u64,
    /// SHA-256 of the current refresh secret.
    #[serde(with = "b64_array")]
    pub refresh_hash: SecretHash,
    /// Rotations inside the grace window, oldest first; the last one's successor is the current secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<Rotation>,
    /// Truncated hashes of untagged secrets (minted by a release before chain tags)
    /// retired past the grace window, newest last: presenting one is reuse. Bounded;
    /// see `Policy::reuse_memory`. Empty for sessions begun since: a tagged secret's
    /// generation says it is reuse without anything stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// Set when revoked; the record stays as a tombstone until outstanding access tokens expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// The caller's access-token claims, re-used on each refresh.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Value>,
    #[serde(default)]
    pub metadata: Value,
    /// The client of the sign-in or last refresh (docs/cookies.md, "Devices"). Optional:
    /// records written before these fields read as "unknown". Covered by the record's MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// At most [`MAX_USER_AGENT_BYTES`](super::client::MAX_USER_AGENT_BYTES) bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// Reads a record stored under `user` and `sid`, in format 3 or 2: its MAC under
    /// `key` must cover these bytes and this identity, else `store_corrupt` (a forged,
    /// altered, moved or unauthenticated record is never used, so it can never be signed).
    pub fn open(bytes: &[u8], key: &RefreshKey, user: &str, sid: &str) -> Result<Self, Error> {
        let corrupt = || Error::corrupt("session record");
        let (format, tag, body) = match bytes.split_first() {
            Some((&f @ (COMPACT_RECORD | SEALED_RECORD), rest)) if rest.len() > TAG_LEN => {
                let (tag, body) = rest.split_at(TAG_LEN);
                (f, tag, body)
            }
            Some((b'{', _)) => return Err(Error::corrupt("session record (written before records carried a MAC)")),
            _ => return Err(corrupt()),
        };
        if !key.verify_record_tag(SESSION_KIND, user, sid, body, tag) {
            tracing::warn!(target: "tollgate::security", event = "record_mac_invalid", user = %user, sid = %sid, "a stored session record failed its MAC check");
            return Err(Error::corrupt(
                "session record (its MAC does not verify: altered, forged, or written under another refresh_secret)",
            ));
        }
        if format == COMPACT_RECORD {
            return record_bytes::decode(body, user, sid, FORMAT).ok_or_else(corrupt);
        }
        let r: SessionRecord = serde_json::from_slice(body).map_err(|_| corrupt())?;
        if r.v != FORMAT || r.user != user || r.sid != sid {
            return Err(corrupt());
        }
        Ok(r)
    }
    /// The stored form: the format byte, the MAC over the record's identity and body, the body.
    pub fn seal(&self, key: &RefreshKey, format: RecordFormat) -> Vec<u8> {
        let (byte, body) = match format {
            RecordFormat::Compact => (COMPACT_RECORD, record_bytes::encode(self)),
            RecordFormat::Json => (SEALED_RECORD, serde_json::to_vec(self).unwrap_or_default()),
        };
        let tag = key.record_tag(SESSION_KIND, &self.user, &self.sid, &body);
        let mut out = Vec::with_capacity(1 + TAG_LEN + body.len());
        out.push(byte);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&body);
        out
    }
    pub fn new_format() -> u8 {
        FORMAT
    }
    /// When the session stops being usable, absent revocation.
    pub fn expires_at(&self) -> u64 {
        self.idle_expires_at.min(self.absolute_expires_at)
    }
    /// Whether a rotation is outside the grace window at `now`: its sealed successor must go.
    pub fn has_stale_rotation(&self, now: u64, grace_ms: u64) -> bool {
        self.recent.iter().any(|r| !r.within_grace(now, grace_ms))
    }
    /// Drops rotations outside the grace window (their sealed successors with them),
    /// with every older one, so the links kept still form the chain's end. An
    /// untagged secret among them is remembered in `retired` (at most `reuse_memory`,
    /// newest last); a tagged one needs nothing. A kept stamp ahead of `now` comes
    /// back to `now`: a faster clock elsewhere never makes the window end later
    /// than this one says.
    pub fn retire_rotations(&mut self, now: u64, grace_ms: u64, reuse_memory: usize) {
        let stale = self.recent.iter().rposition(|r| !r.within_grace(now, grace_ms)).map_or(0, |i| i + 1);
        self.retire_oldest(stale, reuse_memory);
        for r in &mut self.recent {
            r.at = r.at.min(now);
        }
    }
    /// Drops the `n` oldest rotations, keeping the hashes of untagged secrets in `retired`.
    pub fn retire_oldest(&mut self, n: usize, reuse_memory: usize) {
        for r in self.recent.drain(..n.min(self.recent.len())) {
            if !r.tagged {
                self.retired.push(retired_form(&r.hash));
            }
        }
        let excess = self.retired.len().saturating_sub(reuse_memory);
        self.retired.drain(..excess);
    }
    /// Keeps `client` as the session's device: both fields, so an unknown IP or agent clears an old one.
    pub fn set_client(&mut self, client: &ClientInfo) {
        self.ip = client.ip;
        self.user_agent = client.user_agent.as_deref().and_then(bound_user_agent);
    }
    /// Fails with the session's state when it cannot be used at `now`.
    pub fn check_live(&self, now: u64) -> Result<(), Error> {
        if self.revoked_at.is_some() {
            return Err(Error::session_revoked());
        }
        if now >= self.expires_at() {
            return Err(Error::session_expired());
        }
        Ok(())
    }
}

/// One session in a user's index. `idle_hint` is the idle expiry when the entry
/// was last written: touches do not rewrite the index, so a session past its hint
/// may still be alive and is checked against its record before it is counted out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    pub sid: String,
    pub created_at: u64,
    pub absolute_expires_at: u64,
    pub idle_hint: u64,
}

impl IndexEntry {
    /// The index's entry for a new session's record.
    pub fn of(record: &SessionRecord) -> IndexEntry {
        IndexEntry {
            sid: record.sid.clone(),
            created_at: record.created_at,
            absolute_expires_at: record.absolute_expires_at,
            idle_hint: record.idle_expires_at,
        }
    }
    /// The entry as one counted-list entry; `None` for a sid over 255 bytes.
    pub fn encode(&self) -> Option<Vec<u8>> {
        list::entry(&self.sid, self.created_at, self.absolute_expires_at, self.idle_hint)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct UserIndex {
    pub v: u8,
    /// Oldest first.
    pub sessions: Vec<IndexEntry>,
}

impl UserIndex {
    /// Reads either form: the counted list ([`super::list`]) or the JSON of earlier releases.
    pub fn decode(bytes: Option<&[u8]>) -> Result<Self, Error> {
        let Some(bytes) = bytes else { return Ok(UserIndex { v: FORMAT, sessions: Vec::new() }) };
        if bytes.first() == Some(&list::LIST_MARKER) {
            let entries = list::entries(bytes).ok_or_else(|| Error::corrupt("user index"))?;
            let sessions = entries
                .into_iter()
                .map(|(sid, created_at, absolute_expires_at, idle_hint)| IndexEntry { sid, created_at, absolute_expires_at, idle_hint })
                .collect();
            return Ok(UserIndex { v: FORMAT, sessions });
        }
        let i: UserIndex = serde_json::from_slice(bytes).map_err(|_| Error::corrupt("user index"))?;
        if i.v != FORMAT {
            return Err(Error::corrupt("user index"));
        }
        Ok(i)
    }
    /// The counted list with `Compact` (what an append extends), JSON with `Json` (what
    /// releases before the counted list read: `record_format = json` during such an upgrade).
    /// An entry whose sid does not fit the list (over 255 bytes, never minted here) keeps JSON.
    pub fn encode(&self, format: RecordFormat) -> Vec<u8> {
        if format == RecordFormat::Compact {
            let entries: Option<Vec<Vec<u8>>> = self.sessions.iter().map(IndexEntry::encode).collect();
            if let Some(entries) = entries {
                return list::encode(&entries, self.expires_at());
            }
        }
        serde_json::to_vec(self).unwrap_or_default()
    }
    /// Drops entries that are certainly dead (absolute expiry passed); returns whether any were.
    pub fn prune_certain(&mut self, now: u64) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|e| e.absolute_expires_at > now);
        self.sessions.len() != before
    }
    /// When the store may reclaim the index: after the last absolute expiry.
    pub fn expires_at(&self) -> u64 {
        self.sessions.iter().map(|e| e.absolute_expires_at).max().unwrap_or(0)
    }
}

/// The value under [`revoked_key`]: when the session was revoked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RevokedSession {
    pub v: u8,
    pub at: u64,
}

impl RevokedSession {
    pub fn new(at: u64) -> Self {
        RevokedSession { v: FORMAT, at }
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let r: RevokedSession = serde_json::from_slice(bytes).map_err(|_| Error::corrupt("revocation"))?;
        if r.v != FORMAT {
            return Err(Error::corrupt("revocation"));
        }
        Ok(r)
    }
}

/// The value under [`revoked_all_key`]: sessions created before `before` are revoked,
/// except `keep` (revoke-all "but the current one"). One created in the very
/// millisecond of the revoke-all is left to its tombstone (the index lists it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RevokedAll {
    pub v: u8,
    pub before: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
}

impl RevokedAll {
    pub fn new(before: u64, keep: Option<String>) -> Self {
        RevokedAll { v: FORMAT, before, keep }
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let r: RevokedAll = serde_json::from_slice(bytes).map_err(|_| Error::corrupt("revocation"))?;
        if r.v != FORMAT {
            return Err(Error::corrupt("revocation"));
        }
        Ok(r)
    }
    /// Whether this revoke-all covers the session `sid` created at `created_at`.
    pub fn revokes(&self, sid: &str, created_at: u64) -> bool {
        created_at < self.before && self.keep.as_deref() != Some(sid)
    }
}

/// A cached user-info value with its own expiry (stores may expire late).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CachedUser {
    pub v: u8,
    pub expires_at: u64,
    pub info: Value,
}

impl CachedUser {
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let c: CachedUser = serde_json::from_slice(bytes).map_err(|_| Error::corrupt("cached user"))?;
        if c.v != FORMAT {
            return Err(Error::corrupt("cached user"));
        }
        Ok(c)
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The retired-hash form: 16 bytes of the SHA-256, base64url. Guessing one is a 2^128 search.
pub fn retired_form(hash: &SecretHash) -> String {
    b64::encode(&hash[..16])
}

mod b64_array {
    use super::b64;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64::encode(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let v = b64::decode(&s).map_err(de::Error::custom)?;
        v.try_into().map_err(|_| de::Error::custom("expected 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User ids that stress the key layout: braces, `%` (and text that looks
    /// like an escape already), `:`, `/`, `+`, spaces and non-ASCII.
    const HOSTILE: &[&str] = &[
        "alice",
        "a{b",
        "a}b",
        "{u:bob}",
        "}{",
        "{}",
        "100%",
        "a%7Bb",
        "a%257Bb",
        "%",
        "x:y:z",
        "s:{u:eve}:AAAA",
        "alice+x@example.com",
        "alice x@example.com",
        "a/b",
        "zoë 🦀 {ü}",
    ];

    #[test]
    fn records_without_client_fields_still_read_and_the_mac_covers_them() {
        let key = RefreshKey::derive(b"a secret of at least thirty-two bytes!");
        let old = r#"{"v":1,"sid":"S","user":"u","created_at":1,"last_seen":1,"idle_expires_at":9,"absolute_expires_at":9,"generation":0,"refresh_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","metadata":null}"#;
        let mut r: SessionRecord = serde_json::from_str(old).unwrap();
        assert_eq!((r.ip, r.user_agent.as_deref()), (None, None));
        assert!(!String::from_utf8_lossy(&r.seal(&key, RecordFormat::Json)).contains("user_agent"), "absent fields are not written");
        r.set_client(&ClientInfo::new("::ffff:1.2.3.4".parse().ok(), Some("UA")));
        // Format 3 carries them as optional fields, under the MAC too.
        let compact = r.seal(&key, RecordFormat::Compact);
        let opened = SessionRecord::open(&compact, &key, "u", "S").unwrap();
        assert_eq!((opened.ip, opened.user_agent.as_deref()), (r.ip, Some("UA")));
        let mut forged = compact.clone();
        let at = forged.windows(2).position(|w| w == b"UA").unwrap();
        forged[at] = b'X';
        assert_eq!(SessionRecord::open(&forged, &key, "u", "S").unwrap_err().code().as_str(), "store_corrupt");
        let sealed = r.seal(&key, RecordFormat::Json);
        assert!(String::from_utf8_lossy(&sealed).contains(r#""ip":"::ffff:1.2.3.4","user_agent":"UA""#));
        assert_eq!(SessionRecord::open(&sealed, &key, "u", "S").unwrap(), r);
        let at = sealed.windows(4).position(|w| w == b"1.2.").unwrap();
        let mut forged = sealed.clone();
        forged[at] = b'6';
        assert_eq!(SessionRecord::open(&forged, &key, "u", "S").unwrap_err().code().as_str(), "store_corrupt");
    }

    #[test]
    fn only_percent_and_braces_are_escaped() {
        assert_eq!(escape_user("alice"), Cow::Borrowed("alice"));
        assert_eq!(escape_user("a{b}c"), "a%7Bb%7Dc");
        assert_eq!(escape_user("100%"), "100%25");
        assert_eq!(escape_user("a%7Bb"), "a%257Bb");
        assert_eq!(escape_user("x:y +/ zoë"), "x:y +/ zoë");
        assert_eq!(session_key("a}b", "SID"), "s:{u:a%7Db}:SID");
        assert_eq!(index_key("{x}"), "i:{u:%7Bx%7D}");
        assert_eq!(user_cache_key("%"), "c:{u:%25}");
        assert_eq!(revoked_key("a{", "SID"), "r:{u:a%7B}:SID");
        assert_eq!(revoked_all_key("zoë"), "ra:{u:zoë}");
    }

    #[test]
    fn keys_are_the_layout_written_out() {
        // The keys are built by hand for speed; they must stay what the layout says.
        for user in HOSTILE {
            let tag = format!("u:{}", escape_user(user));
            assert_eq!(user_tag(user), tag);
            assert_eq!(session_key(user, "SID"), format!("s:{{{tag}}}:SID"));
            assert_eq!(revoked_key(user, "SID"), format!("r:{{{tag}}}:SID"));
            assert_eq!(revoked_all_key(user), format!("ra:{{{tag}}}"));
            assert_eq!(index_key(user), format!("i:{{{tag}}}"));
            assert_eq!(user_cache_key(user), format!("c:{{{tag}}}"));
        }
    }

    #[test]
    fn every_key_of_a_user_hashes_to_the_whole_user_tag() {
        for user in HOSTILE {
            let tag = user_tag(user);
            for key in [session_key(user, "AAAAAAAAAAAAAAAAAAAAAA"), index_key(user), user_cache_key(user)] {
                assert_eq!(hash_tag(&key), tag, "{key}");
            }
            assert!(!tag[2..].contains(['{', '}']), "{tag}");
        }
    }

    #[test]
    fn different_users_never_share_a_tag() {
        let mut tags: Vec<String> = HOSTILE.iter().map(|u| user_tag(u)).collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), HOSTILE.len());
        // Exhaustively over short ids of the escaped characters and the escape's own text.
        let alphabet = ['%', '{', '}', '7', 'B', 'D', '2', '5', 'a'];
        let mut seen = std::collections::BTreeMap::new();
        let mut ids = vec![String::new()];
        for _ in 0..4 {
            ids = ids.iter().flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}"))).collect();
            for id in &ids {
                if let Some(other) = seen.insert(user_tag(id), id.clone()) {
                    panic!("{id:?} and {other:?} share a tag");
                }
            }
        }
        assert_eq!(seen.len(), 9 + 81 + 729 + 6561);
    }
}
