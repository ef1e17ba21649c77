//! Stored-value decoding, every kind: session record, user index, cached user info. Byte 0
//! picks the kind. What decodes must encode to a value that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::engine::record::{CachedUser, SessionRecord, UserIndex};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else { return };
    match kind % 3 {
        0 => {
            if let Ok(record) = SessionRecord::decode(bytes) {
                let again = SessionRecord::decode(&record.encode()).expect("a re-encoded record decodes");
                assert_eq!(again.encode(), record.encode());
            }
        }
        1 => {
            if let Ok(index) = UserIndex::decode(Some(bytes)) {
                let again = UserIndex::decode(Some(&index.encode())).expect("a re-encoded index decodes");
                assert_eq!(again.encode(), index.encode());
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
