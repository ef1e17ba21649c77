//! Review findings of issue 11 on the refresh path, stepped by hand with a clock
//! the test moves (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;
use tollgate::engine::record::{session_key, SessionRecord};

fn refresh(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, token: &str, now: u64, seed: u8) -> Result<Tokens, Error> {
    run(ops::Refresh::new(rules, token, now, entropy(seed)), store, crypto, now)
}

/// The same refresh token with another (well-formed) secret: what a non-holder who
/// knows the user and session id can send.
fn with_wrong_secret(refresh_token: &str) -> String {
    let (locator, _) = refresh_token.rsplit_once('.').unwrap();
    format!("{locator}.{}", tollgate::engine::b64::encode(&[0x5a; 32]))
}

/// (code, status, message): everything a client sees of an error.
fn seen(e: &Error) -> (ErrorCode, u16, String) {
    (e.code(), e.http_status(), e.message().to_owned())
}

#[test]
fn a_wrong_secret_gets_one_answer_for_live_revoked_and_expired_sessions() {
    let mut p = policy();
    p.idle_ttl_ms = 10 * 60_000;
    let (rules, crypto) = hs_core(p);
    let mut store = FakeStore::default();
    let live = issue(&rules, &mut store, &crypto, "quinn", T0, 30);
    let revoked = issue(&rules, &mut store, &crypto, "quinn", T0, 31);
    let expired = issue(&rules, &mut store, &crypto, "rae", T0 - 10 * 60_000, 32);
    run(ops::Revoke::new(&rules, "quinn", &revoked.session.sid, T0), &mut store, &crypto, T0).unwrap();
    let now = T0 + 1000;
    let before = store.content();

    let answers: Vec<_> = [&live, &revoked, &expired]
        .iter()
        .map(|t| seen(&refresh(&rules, &mut store, &crypto, &with_wrong_secret(&t.refresh_token), now, 33).unwrap_err()))
        .collect();
    assert_eq!(answers[0].0, ErrorCode::TokenInvalid, "{answers:?}");
    assert_eq!(answers[1], answers[0], "revoked and live look the same to a non-holder");
    assert_eq!(answers[2], answers[0], "expired and live look the same to a non-holder");
    assert_eq!(store.content(), before, "a wrong secret changes nothing");

    // The holder of the right secret still learns the session's state.
    let err = refresh(&rules, &mut store, &crypto, &revoked.refresh_token, now, 34).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    let err = refresh(&rules, &mut store, &crypto, &expired.refresh_token, now, 35).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionExpired);
    assert!(refresh(&rules, &mut store, &crypto, &live.refresh_token, now, 36).is_ok());
}

/// The session's record as the store holds it.
fn stored_record(store: &FakeStore, t: &Tokens) -> SessionRecord {
    let key = session_key(&t.session.user, &t.session.sid);
    SessionRecord::decode(&store.data[&key].0).unwrap()
}

#[test]
fn the_sealed_successor_is_dropped_at_the_first_write_after_the_grace_window() {
    let (rules, crypto) = hs_core(policy());
    let grace = rules.policy.refresh_grace_ms;
    assert!(grace < rules.policy.touch_interval_ms, "the case below needs a verify that is not due for a touch");
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "sol", T0, 40);
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1, 41).unwrap();
    assert_eq!(stored_record(&store, &t1).recent.len(), 1, "inside the window the successor is kept, sealed");

    // Inside the window a verify writes nothing.
    let n = store.round_trips();
    verify(&rules, &mut store, &crypto, &t1.access_token, VerifyMode::Strict, T0 + grace).unwrap();
    assert_eq!(store.round_trips() - n, 1);
    assert_eq!(stored_record(&store, &t1).recent.len(), 1);

    // The first verify after the window writes the record without it (no touch was due).
    let after = T0 + 1 + grace + 1;
    verify(&rules, &mut store, &crypto, &t1.access_token, VerifyMode::Strict, after).unwrap();
    let record = stored_record(&store, &t1);
    assert!(record.recent.is_empty(), "no sealed successor after the window: {:?}", record.recent);
    assert_eq!(record.retired.len(), 1, "the old secret is remembered as retired");
    let n = store.round_trips();
    verify(&rules, &mut store, &crypto, &t1.access_token, VerifyMode::Strict, after + 1).unwrap();
    assert_eq!(store.round_trips() - n, 1, "and only that once");

    // Reuse is still detected from the retired hash, and the current token still works.
    let err = refresh(&rules, &mut store, &crypto, &t0.refresh_token, after + 2, 42).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
}

#[test]
fn a_metadata_write_after_the_window_drops_the_sealed_successor() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "tao", T0, 43);
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1, 44).unwrap();
    let after = T0 + 1 + rules.policy.refresh_grace_ms + 1;
    run(ops::UpdateMetadata::new(&rules, "tao", &t1.session.sid, json!({"d": 2}), after), &mut store, &crypto, after).unwrap();
    assert!(stored_record(&store, &t1).recent.is_empty());
    // A later rotation keeps only its own link.
    let t2 = refresh(&rules, &mut store, &crypto, &t1.refresh_token, after + 1, 45).unwrap();
    let record = stored_record(&store, &t2);
    assert_eq!((record.recent.len(), record.retired.len()), (1, 1));
}
