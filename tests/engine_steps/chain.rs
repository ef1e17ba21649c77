//! Reuse detection by chain tag (issue 12): every earlier refresh token of a session
//! is recognised as reuse, in a record whose size does not grow with rotations; forged
//! tags change nothing; records and tokens of the earlier format keep working
//! (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;
use tollgate::engine::b64;
use tollgate::engine::record::{retired_form, session_key, RecordFormat, Rotation, SessionRecord, COMPACT_RECORD, SEALED_RECORD};
use tollgate::engine::refresh_key::RefreshKey;
use tollgate::engine::token::{chain_generation, hash_secret, seal_successor, RefreshToken, SECRET_LEN};

fn refresh(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, token: &str, now: u64, seed: u8) -> Result<Tokens, Error> {
    run(ops::Refresh::new(rules, token, now, entropy(seed)), store, crypto, now)
}

fn stored<'a>(store: &'a FakeStore, t: &Tokens) -> &'a Bytes {
    &store.data[&session_key(&t.session.user, &t.session.sid)].0
}

fn open(store: &FakeStore, t: &Tokens) -> SessionRecord {
    SessionRecord::open(stored(store, t), &RefreshKey::derive(SECRET), &t.session.user, &t.session.sid).unwrap()
}

fn secret_of(token: &str) -> [u8; SECRET_LEN] {
    RefreshToken::parse(token, "tgr").unwrap().secret
}

fn with_secret(token: &str, secret: &[u8]) -> String {
    let (locator, _) = token.rsplit_once('.').unwrap();
    format!("{locator}.{}", b64::encode(secret))
}

/// Rotates `n` times, each past the grace window; answers every token of the chain.
fn chain(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, first: Tokens, n: u64, start: u64) -> Vec<Tokens> {
    let step = rules.policy.refresh_grace_ms + 1;
    let mut all = vec![first];
    for i in 0..n {
        let now = start + (i + 1) * step;
        let next = refresh(rules, store, crypto, &all.last().unwrap().refresh_token, now, (i % 200) as u8).unwrap();
        all.push(next);
    }
    all
}

#[test]
fn every_earlier_token_is_reuse_and_the_record_does_not_grow() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let first = issue(&rules, &mut store, &crypto, "wes", T0, 70);
    let tokens = chain(&rules, &mut store, &crypto, first, 100, T0);
    let last = tokens.last().unwrap();
    let record = open(&store, last);
    assert_eq!(record.generation, 100);
    assert!(record.retired.is_empty(), "nothing is remembered per rotation");
    assert_eq!(stored(&store, last)[0], COMPACT_RECORD);
    // A record after 10 rotations and one after 100 are the same size.
    let mut other = FakeStore::default();
    let t = issue(&rules, &mut other, &crypto, "wes", T0, 70);
    let ten = chain(&rules, &mut other, &crypto, t, 10, T0);
    assert_eq!(stored(&other, ten.last().unwrap()).len(), stored(&store, last).len());
    // Each token carries its generation under a valid tag.
    let key = RefreshKey::derive(SECRET);
    for (g, t) in tokens.iter().enumerate() {
        assert_eq!(chain_generation(&key, &t.session.user, &t.session.sid, &secret_of(&t.refresh_token)), Some(g as u64));
    }
    // The very first token, 100 rotations back (an earlier release remembered 64): reuse.
    let now = T0 + 200 * rules.policy.refresh_grace_ms;
    let err = refresh(&rules, &mut store, &crypto, &tokens[0].refresh_token, now, 1).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
    // The session is revoked: its current token is told so, and so is any earlier one.
    assert_eq!(refresh(&rules, &mut store, &crypto, &last.refresh_token, now, 2).unwrap_err().code(), ErrorCode::SessionRevoked);
    assert_eq!(refresh(&rules, &mut store, &crypto, &tokens[50].refresh_token, now, 3).unwrap_err().code(), ErrorCode::SessionRevoked);
}

#[test]
fn a_forged_or_misplaced_tag_is_token_invalid_and_changes_nothing() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let a = issue(&rules, &mut store, &crypto, "xia", T0, 80);
    let b = issue(&rules, &mut store, &crypto, "xia", T0, 81);
    let a_chain = chain(&rules, &mut store, &crypto, a, 3, T0);
    let now = T0 + 10 * rules.policy.refresh_grace_ms;
    let before = store.content();
    let old = secret_of(&a_chain[0].refresh_token);
    let mut forged = Vec::new();
    // Another generation under the old tag; a flipped tag bit; a tag made under another key.
    let mut g = old;
    g[19] ^= 1;
    forged.push(with_secret(&a_chain[0].refresh_token, &g));
    let mut t = old;
    t[31] ^= 0x80;
    forged.push(with_secret(&a_chain[0].refresh_token, &t));
    let other_key = RefreshKey::derive(b"a-key-that-is-not-the-services-own-32b");
    let made_up = tollgate::engine::token::chain_secret(&other_key, "xia", &a_chain[0].session.sid, 0, &[9; 16]);
    forged.push(with_secret(&a_chain[0].refresh_token, &made_up));
    // A genuine earlier secret of session A, presented for session B of the same user.
    forged.push(with_secret(&b.refresh_token, &old));
    for token in &forged {
        let err = refresh(&rules, &mut store, &crypto, token, now, 5).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TokenInvalid, "{token}");
    }
    assert_eq!(store.content(), before, "a forged token revokes nothing");
    assert!(refresh(&rules, &mut store, &crypto, &a_chain[3].refresh_token, now, 6).is_ok());
    assert!(refresh(&rules, &mut store, &crypto, &b.refresh_token, now, 7).is_ok());
}

#[test]
fn a_tagged_token_ahead_of_the_record_is_not_reuse() {
    // A store that lost its latest write (a failover before replication): the client
    // holds a token of a generation the record never reached.
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "yan", T0, 90);
    let lost = store.clone();
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1, 91).unwrap();
    let mut store = lost;
    let before = store.content();
    let err = refresh(&rules, &mut store, &crypto, &t1.refresh_token, T0 + 2, 92).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenInvalid);
    assert_eq!(store.content(), before);
    assert!(refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 3, 93).is_ok());
}

/// A session as a release before chain tags left it: format 2 (MAC and JSON), an untagged
/// current secret, a rotation inside the window and a retired hash.
struct Legacy {
    current: String,
    in_window: String,
    retired: String,
    never: String,
}

fn plant_legacy(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, now: u64) -> Legacy {
    let t = issue(rules, store, crypto, "zed", now, 100);
    let mut record = open(store, &t);
    let (old, prev, current) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    record.refresh_hash = hash_secret(&current);
    record.generation = 7;
    record.recent = vec![Rotation { hash: hash_secret(&prev), at: now, sealed_next: seal_successor(&prev, &current), tagged: false }];
    record.retired = vec![retired_form(&hash_secret(&old))];
    let bytes = record.seal(&RefreshKey::derive(SECRET), RecordFormat::Json);
    assert_eq!(bytes[0], SEALED_RECORD);
    // What an earlier release wrote: no field it did not know.
    let json: Value = serde_json::from_slice(&bytes[33..]).unwrap();
    assert!(json["recent"][0].get("tagged").is_none());
    let key = session_key(&t.session.user, &t.session.sid);
    let entry = store.data.get_mut(&key).unwrap();
    entry.0 = Bytes::from(bytes);
    Legacy {
        current: with_secret(&t.refresh_token, &current),
        in_window: with_secret(&t.refresh_token, &prev),
        retired: with_secret(&t.refresh_token, &old),
        never: with_secret(&t.refresh_token, &[4; 32]),
    }
}

#[test]
fn records_and_tokens_of_the_earlier_format_keep_working() {
    let (rules, crypto) = hs_core(policy());
    let grace = rules.policy.refresh_grace_ms;

    // The retired hash of an earlier release is still reuse.
    let mut store = FakeStore::default();
    let l = plant_legacy(&rules, &mut store, &crypto, T0);
    assert_eq!(refresh(&rules, &mut store, &crypto, &l.retired, T0 + 1, 1).unwrap_err().code(), ErrorCode::RefreshTokenReused);

    // An unknown secret is token_invalid; the one inside the window gets the head.
    let mut store = FakeStore::default();
    let l = plant_legacy(&rules, &mut store, &crypto, T0);
    assert_eq!(refresh(&rules, &mut store, &crypto, &l.never, T0 + 1, 2).unwrap_err().code(), ErrorCode::TokenInvalid);
    let head = refresh(&rules, &mut store, &crypto, &l.in_window, T0 + 1, 3).unwrap();
    assert_eq!(head.refresh_token, l.current, "the same successor as the earlier release made");

    // The untagged current secret rotates into a tagged one, written in format 3.
    let t1 = refresh(&rules, &mut store, &crypto, &l.current, T0 + 2, 4).unwrap();
    assert_eq!(stored(&store, &t1)[0], COMPACT_RECORD);
    let r = open(&store, &t1);
    assert_eq!((r.generation, r.retired.len()), (8, 1));
    assert!(!r.recent.last().unwrap().tagged);
    let key = RefreshKey::derive(SECRET);
    assert_eq!(chain_generation(&key, "zed", &t1.session.sid, &secret_of(&t1.refresh_token)), Some(8));
    // Past the window the untagged secrets join the retired hashes; both are reuse.
    let later = T0 + 3 * grace;
    let t2 = refresh(&rules, &mut store, &crypto, &t1.refresh_token, later, 5).unwrap();
    let r = open(&store, &t2);
    assert_eq!(r.retired.len(), 3, "the earlier release's, and the two untagged secrets that left the window");
    let mut a = store.clone();
    assert_eq!(refresh(&rules, &mut a, &crypto, &l.current, later + 1, 6).unwrap_err().code(), ErrorCode::RefreshTokenReused);
    let mut b = store.clone();
    assert_eq!(refresh(&rules, &mut b, &crypto, &l.in_window, later + 1, 7).unwrap_err().code(), ErrorCode::RefreshTokenReused);
    // The tagged one, once out of the window, is reuse by its tag alone.
    assert_eq!(
        refresh(&rules, &mut store, &crypto, &t1.refresh_token, later + grace + 1, 8).unwrap_err().code(),
        ErrorCode::RefreshTokenReused
    );
}

/// The record as a release before format 3 declared it (tollgate at de9762d), for the
/// rolling-upgrade check: what `record_format = json` writes must read there.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct EarlierRecord {
    v: u8,
    sid: String,
    user: String,
    created_at: u64,
    last_seen: u64,
    idle_expires_at: u64,
    absolute_expires_at: u64,
    generation: u64,
    refresh_hash: String,
    #[serde(default)]
    recent: Vec<EarlierRotation>,
    #[serde(default)]
    retired: Vec<String>,
    #[serde(default)]
    revoked_at: Option<u64>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    metadata: Value,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct EarlierRotation {
    hash: String,
    at: u64,
    sealed_next: String,
}

#[test]
fn the_json_record_format_is_what_an_earlier_release_reads() {
    let mut p = policy();
    p.record_format = RecordFormat::Json;
    let (rules, crypto) = hs_core(p);
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "amy", T0, 110);
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1, 111).unwrap();
    let bytes = stored(&store, &t1);
    assert_eq!(bytes[0], SEALED_RECORD);
    let earlier: EarlierRecord = serde_json::from_slice(&bytes[33..]).unwrap();
    assert_eq!((earlier.v, earlier.generation, earlier.recent.len()), (1, 1, 1));
    assert_eq!(earlier.refresh_hash, b64::encode(&hash_secret(&secret_of(&t1.refresh_token))), "the hash an earlier release compares");
    // The token's shape is the earlier one: a 32-byte secret after the locator.
    assert_eq!(b64::decode(t1.refresh_token.rsplit_once('.').unwrap().1).unwrap().len(), 32);
    // And the compact-writing release reads the JSON record.
    let (compact, _) = hs_core(policy());
    assert!(refresh(&compact, &mut store, &crypto, &t1.refresh_token, T0 + 2, 112).is_ok());
}
