//! The counted list: a value a store can append to without understanding its
//! entries ([`WriteOp::Append`](super::step::WriteOp::Append)), and the user
//! index written in it.
//!
//! ```text
//! [0xB1] [count: u32 BE] [expires_at: u64 BE] entry*       the list
//! [sid length: u8] [sid] [created_at] [absolute_expires_at] [idle_hint]   one index entry (u64 BE each)
//! ```
//!
//! An append is a concatenation plus a new count and expiry in the 13 bytes in
//! front, so the Redis script and the memory store apply it without decoding an
//! entry. A removal ([`WriteOp::Remove`](super::step::WriteOp::Remove)) walks the
//! entries by their first byte (every entry is that many bytes of sid and then 24)
//! and keeps those of other sids. The first byte tells a list from the JSON index
//! of earlier releases (`{`).

/// Byte 0 of a counted list.
pub const LIST_MARKER: u8 = 0xB1;
/// The marker, the count and the expiry.
pub const LIST_HEADER_LEN: usize = 13;

/// The list holding only `entry`.
pub fn single(entry: &[u8], expires_at: u64) -> Vec<u8> {
    with_header(1, expires_at, &[], entry)
}

/// How many entries `value` holds, and its expiry; `None` when it is not a counted list.
pub fn header(value: &[u8]) -> Option<(u32, u64)> {
    if value.len() < LIST_HEADER_LEN || value[0] != LIST_MARKER {
        return None;
    }
    let count = u32::from_be_bytes(value[1..5].try_into().ok()?);
    let expires_at = u64::from_be_bytes(value[5..13].try_into().ok()?);
    Some((count, expires_at))
}

/// What [`WriteOp::Append`](super::step::WriteOp::Append) leaves under a key
/// holding `current` (`None`: nothing live): the new value and its expiry, or
/// `None` when the append is refused (no room under `max_entries`, or not a list).
/// Stores that append natively (the memory store) call this; the Redis script
/// does the same in Lua.
pub fn append(current: Option<&[u8]>, entry: &[u8], max_entries: u32, expires_at: u64) -> Option<(Vec<u8>, u64)> {
    let Some(current) = current else {
        return (max_entries >= 1).then(|| (single(entry, expires_at), expires_at));
    };
    let (count, old_expiry) = header(current)?;
    if count >= max_entries {
        return None;
    }
    let expiry = old_expiry.max(expires_at);
    Some((with_header(count + 1, expiry, &current[LIST_HEADER_LEN..], entry), expiry))
}

/// Bytes after an entry's sid: created_at, absolute_expires_at, idle_hint.
const ENTRY_TAIL: usize = 24;

/// What [`WriteOp::Remove`](super::step::WriteOp::Remove) leaves of the list
/// `current`: `None` when it is not a counted list (the removal is refused);
/// `Some(None)` when no entry is left (the key is deleted); else the list without
/// the entries of `sid`, its expiry kept. Stores that remove natively (the memory
/// store) call this; the Redis script does the same in Lua.
pub fn remove(current: &[u8], sid: &[u8]) -> Option<Option<Vec<u8>>> {
    let (_, expires_at) = header(current)?;
    let mut kept = Vec::with_capacity(current.len() - LIST_HEADER_LEN);
    let mut count = 0u32;
    let mut rest = &current[LIST_HEADER_LEN..];
    while let Some(&len) = rest.first() {
        // A cut last entry is kept as it is: removing never makes a list more malformed.
        let end = (1 + len as usize + ENTRY_TAIL).min(rest.len());
        let (one, tail) = rest.split_at(end);
        if one.get(1..1 + len as usize) != Some(sid) {
            kept.extend_from_slice(one);
            count += 1;
        }
        rest = tail;
    }
    Some((count > 0).then(|| with_header(count, expires_at, &kept, &[])))
}

fn with_header(count: u32, expires_at: u64, body: &[u8], entry: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LIST_HEADER_LEN + body.len() + entry.len());
    out.push(LIST_MARKER);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(entry);
    out
}

/// The index as a counted list: `entries` already encoded by [`entry`].
pub fn encode(entries: &[Vec<u8>], expires_at: u64) -> Vec<u8> {
    let body: Vec<u8> = entries.concat();
    let mut out = with_header(entries.len() as u32, expires_at, &body, &[]);
    out.shrink_to_fit();
    out
}

/// One index entry's bytes; `None` when the sid is longer than 255 bytes (never
/// for sids this crate mints: 22 characters).
pub fn entry(sid: &str, created_at: u64, absolute_expires_at: u64, idle_hint: u64) -> Option<Vec<u8>> {
    let len = u8::try_from(sid.len()).ok()?;
    let mut out = Vec::with_capacity(1 + sid.len() + 24);
    out.push(len);
    out.extend_from_slice(sid.as_bytes());
    for n in [created_at, absolute_expires_at, idle_hint] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    Some(out)
}

/// One decoded index entry: sid, created_at, absolute_expires_at, idle_hint.
pub type RawEntry = (String, u64, u64, u64);

/// Reads every entry of a list; `None` when it is malformed (a count that does
/// not match the entries, a cut entry, a sid that is not UTF-8).
pub fn entries(value: &[u8]) -> Option<Vec<RawEntry>> {
    let (count, _) = header(value)?;
    let mut rest = &value[LIST_HEADER_LEN..];
    let mut out = Vec::with_capacity((count as usize).min(rest.len() / 25 + 1));
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if tail.len() < len + ENTRY_TAIL {
            return None;
        }
        let sid = std::str::from_utf8(&tail[..len]).ok()?.to_owned();
        let n = |i: usize| u64::from_be_bytes(tail[len + 8 * i..len + 8 * i + 8].try_into().unwrap_or_default());
        out.push((sid, n(0), n(1), n(2)));
        rest = &tail[len + ENTRY_TAIL..];
    }
    (out.len() == count as usize).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_concatenate_and_stop_at_the_bound() {
        let a = entry("A", 1, 50, 20).unwrap();
        let b = entry("BB", 2, 40, 30).unwrap();
        let (one, e1) = append(None, &a, 2, 50).unwrap();
        assert_eq!((header(&one), e1), (Some((1, 50)), 50));
        let (two, e2) = append(Some(&one), &b, 2, 40).unwrap();
        assert_eq!(e2, 50, "the later expiry is kept");
        assert_eq!(two, encode(&[a.clone(), b.clone()], 50), "an append is the encoding of both");
        assert_eq!(entries(&two).unwrap(), vec![("A".into(), 1, 50, 20), ("BB".into(), 2, 40, 30)]);
        assert!(append(Some(&two), &a, 2, 60).is_none(), "full");
        assert!(append(Some(b"{\"v\":1,\"sessions\":[]}"), &a, 9, 60).is_none(), "a JSON index is not appended to");
        assert!(append(None, &a, 0, 60).is_none());
    }

    #[test]
    fn removals_drop_every_entry_of_the_sid_and_keep_the_rest_in_order() {
        let a = entry("A", 1, 50, 20).unwrap();
        let b = entry("BB", 2, 40, 30).unwrap();
        let c = entry("CCC", 3, 60, 40).unwrap();
        let list = encode(&[a.clone(), b.clone(), a.clone(), c.clone()], 70);
        let left = remove(&list, b"A").unwrap().unwrap();
        assert_eq!(left, encode(&[b.clone(), c.clone()], 70), "both entries of A gone, the expiry kept");
        assert_eq!(remove(&left, b"ZZ").unwrap().unwrap(), left, "a sid not listed changes nothing");
        assert_eq!(remove(&left, b"B").unwrap().unwrap(), left, "a prefix of a sid is not that sid");
        let only_c = remove(&left, b"BB").unwrap().unwrap();
        assert_eq!(entries(&only_c).unwrap(), vec![("CCC".into(), 3, 60, 40)]);
        assert_eq!(remove(&only_c, b"CCC").unwrap(), None, "the last entry removed: nothing left");
        assert!(remove(b"{\"v\":1,\"sessions\":[]}", b"A").is_none(), "a JSON index is refused");
        assert!(remove(&[LIST_MARKER, 0], b"A").is_none(), "a cut header is refused");
        // A cut last entry stays as it was, and a sid reaching past the end is not matched.
        let mut cut = encode(&[a.clone(), b.clone()], 70);
        cut.truncate(cut.len() - 3);
        let after = remove(&cut, b"A").unwrap().unwrap();
        assert_eq!(&after[LIST_HEADER_LEN..], &b[..b.len() - 3]);
        assert_eq!(remove(&[LIST_MARKER, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 200, b'A'], b"A").unwrap().unwrap().len(), 15);
    }

    #[test]
    fn malformed_lists_are_refused() {
        let a = entry("A", 1, 2, 3).unwrap();
        let two = encode(&[a.clone(), a.clone()], 2);
        assert!(entries(&two[..two.len() - 1]).is_none(), "cut");
        let mut wrong_count = two.clone();
        wrong_count[4] = 3;
        assert!(entries(&wrong_count).is_none());
        assert!(entries(&[LIST_MARKER, 0, 0]).is_none());
        assert_eq!(entries(&encode(&[], 0)).unwrap(), vec![]);
        assert!(entry(&"x".repeat(256), 0, 0, 0).is_none());
    }
}
