//! Inputs the fuzz targets (fuzz/fuzz_targets) found, kept as ordinary tests.

use tollgate::engine::record::CachedUser;

/// record_decode: a number in cached user info changed between a decode and the next
/// (serde_json's default float parsing is not exact for long mantissas; a value the
/// application stored must come back as stored).
#[test]
fn cached_user_info_numbers_survive_a_store_round_trip() {
    // The fuzzer's input, as found (duplicate keys and all).
    let big = format!("1802{}59200000", "6".repeat(106));
    let stored = format!(
        r#"{{"v":1,"expires_at":1808,"info":{{"gent":180259200000,"generatio_at":18025920,"generatio_at":18840000084000000,"generatio_atrece":78784482,"genebatio_at":{big},"g/neratio_at":10529820,"geneeration":180000,"ab_at":180259200000 }}}}"#
    );
    let first = CachedUser::decode(stored.as_bytes()).unwrap();
    let again = CachedUser::decode(&first.encode()).unwrap();
    assert_eq!(again.encode(), first.encode());
    assert_eq!(again.info, first.info);
}
