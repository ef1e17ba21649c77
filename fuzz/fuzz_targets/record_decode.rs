//! Stored-value decoding, every kind: session record (formats 2 and 3), user index, cached
//! user info. Byte 0 picks the kind. What decodes must encode to a value that decodes to the
//! same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::engine::record::{CachedUser, RecordFormat, SessionRecord, UserIndex, COMPACT_RECORD, SEALED_RECORD, SESSION_KIND};
use tollgate::engine::refresh_key::{RefreshKey, TAG_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else { return };
    match kind % 3 {
        0 => {
            let key = RefreshKey::derive(b"fuzz-refresh-secret");
            // As stored: bytes without this key's MAC are refused, whatever they hold.
            let _ = SessionRecord::open(bytes, &key, "user-1", "sid-1");
            // Behind a valid MAC: the same bytes (a seed's JSON, its header skipped) as the
            // record body, under the identity they name, so the decoder itself is fuzzed.
            let (format, body) = match bytes.split_first() {
                Some((&f @ (SEALED_RECORD | COMPACT_RECORD), rest)) if rest.len() > TAG_LEN => (f, &rest[TAG_LEN..]),
                Some((&COMPACT_RECORD, rest)) => (COMPACT_RECORD, rest),
                _ => (SEALED_RECORD, bytes),
            };
            let (user, sid) = if format == COMPACT_RECORD {
                ("user-1".to_owned(), "sid-1".to_owned())
            } else {
                let named = serde_json::from_slice::<serde_json::Value>(body).ok();
                let field = |name: &str| named.as_ref().and_then(|v| v[name].as_str()).unwrap_or("").to_owned();
                (field("user"), field("sid"))
            };
            let sealed = [&[format][..], &key.record_tag(SESSION_KIND, &user, &sid, body), body].concat();
            if let Ok(record) = SessionRecord::open(&sealed, &key, &user, &sid) {
                let reopen = |r: &SessionRecord, f: RecordFormat| SessionRecord::open(&r.seal(&key, f), &key, &user, &sid).expect("a re-sealed record opens");
                // Each format carries what it read; format 3, written once, reads back unchanged.
                let own = if format == COMPACT_RECORD { RecordFormat::Compact } else { RecordFormat::Json };
                assert_eq!(reopen(&record, own), record);
                let compact = reopen(&record, RecordFormat::Compact);
                assert_eq!(reopen(&compact, RecordFormat::Compact), compact);
            }
        }
        1 => {
            if let Ok(index) = UserIndex::decode(Some(bytes)) {
                // Either encoding (the counted list, JSON for an upgrade) reads back and
                // writes the same bytes again.
                for format in [RecordFormat::Compact, RecordFormat::Json] {
                    let again = UserIndex::decode(Some(&index.encode(format))).expect("a re-encoded index decodes");
                    assert_eq!(again.encode(format), index.encode(format));
                }
            }
        }
        _ => {
            if let Ok(user) = CachedUser::decode(bytes) {
                let again = CachedUser::decode(&user.encode()).expect("a re-encoded user decodes");
                assert_eq!(again.encode(), user.encode());
            }
        }
    }
});
