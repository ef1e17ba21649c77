//! Review findings of issue 11 on the refresh path, stepped by hand with a clock
//! the test moves (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;
use tollgate::engine::record::{session_key, SessionRecord};
use tollgate::engine::refresh_key::RefreshKey;

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
    SessionRecord::open(&store.data[&key].0, &RefreshKey::derive(SECRET), &t.session.user, &t.session.sid).unwrap()
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
    assert!(record.retired.is_empty(), "a tagged secret needs no remembered hash: {:?}", record.retired);
    let n = store.round_trips();
    verify(&rules, &mut store, &crypto, &t1.access_token, VerifyMode::Strict, after + 1).unwrap();
    assert_eq!(store.round_trips() - n, 1, "and only that once");

    // Reuse is still detected from the old token's chain tag, and the current token still works.
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
    assert_eq!((record.recent.len(), record.retired.len()), (1, 0));
}

// ---- Finding 11: clock skew between servers -------------------------------------

#[test]
fn a_rotation_stamped_far_in_the_future_is_outside_the_grace_window() {
    let (rules, crypto) = hs_core(policy());
    let grace = rules.policy.refresh_grace_ms;
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "uri", T0, 50);
    // A server whose clock is an hour ahead rotates the token.
    let fast = T0 + 3_600_000;
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, fast, 51).unwrap();
    // On a correct clock the stamp is an hour ahead: the old token is reuse, not the successor.
    let err = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1_000, 52).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
    assert_eq!(refresh(&rules, &mut store, &crypto, &t1.refresh_token, T0 + 2_000, 53).unwrap_err().code(), ErrorCode::SessionRevoked);

    // Left alone, such a link does not wait in the store for its stamp to come near:
    // the next strict verify on a correct clock retires it, sealed successor and all.
    let t0 = issue(&rules, &mut store, &crypto, "uri", T0, 54);
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, fast, 55).unwrap();
    verify(&rules, &mut store, &crypto, &t1.access_token, VerifyMode::Strict, T0 + grace).unwrap();
    assert!(stored_record(&store, &t1).recent.is_empty());
    let err = refresh(&rules, &mut store, &crypto, &t0.refresh_token, fast, 56).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused, "even on the fast clock, once retired");
}

#[test]
fn a_small_skew_keeps_concurrent_refreshes_working_and_a_write_pulls_the_stamp_back() {
    let (rules, crypto) = hs_core(policy());
    let grace = rules.policy.refresh_grace_ms;
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "val", T0, 60);
    // Server A runs 5 s ahead; a concurrent refresh reaches server B (correct) 1 s later.
    let t1 = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 5_000, 61).unwrap();
    let again = refresh(&rules, &mut store, &crypto, &t0.refresh_token, T0 + 1_000, 62).unwrap();
    assert_eq!(again.refresh_token, t1.refresh_token, "within the window despite the skew");
    // B writes the record (a metadata update): the stamp comes back to B's clock, so the
    // window ends `grace` after B's time, not after A's.
    run(ops::UpdateMetadata::new(&rules, "val", &t1.session.sid, json!({"d": 3}), T0 + 1_000), &mut store, &crypto, T0 + 1_000).unwrap();
    assert_eq!(stored_record(&store, &t1).recent[0].at, T0 + 1_000);
    let late = T0 + 1_000 + grace + 1;
    let err = refresh(&rules, &mut store, &crypto, &t0.refresh_token, late, 63).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused, "A's fast stamp did not widen the window");
}

#[test]
fn an_evicted_session_tells_only_its_holder_that_it_was_revoked() {
    let mut p = policy();
    p.max_sessions_per_user = 1;
    let (rules, crypto) = hs_core(p);
    let mut store = FakeStore::default();
    let a = issue(&rules, &mut store, &crypto, "wyn", T0, 70);
    let live = issue(&rules, &mut store, &crypto, "wyn", T0 + 1, 71);
    assert_eq!(live.evicted, vec![a.session.sid.clone()]);
    let now = T0 + 2;
    let holder = refresh(&rules, &mut store, &crypto, &a.refresh_token, now, 72).unwrap_err();
    assert_eq!(holder.code(), ErrorCode::SessionRevoked);
    let evicted = seen(&refresh(&rules, &mut store, &crypto, &with_wrong_secret(&a.refresh_token), now, 73).unwrap_err());
    let alive = seen(&refresh(&rules, &mut store, &crypto, &with_wrong_secret(&live.refresh_token), now, 74).unwrap_err());
    assert_eq!(evicted, alive, "without the secret, evicted and live look the same");
}

// ---- Finding 1: a write from a stale view cannot undo a revocation -----------------

/// Another location of an eventually consistent store (Workers KV): it reads, and
/// checks commit expectations against, `view` (the store as it was a while ago,
/// plus its own writes), and its writes land in the shared store.
fn run_stale<O: Operation>(
    mut op: O,
    shared: &mut FakeStore,
    view: &mut FakeStore,
    crypto: &JwtCrypto,
    now: u64,
) -> Result<O::Output, Error> {
    for _ in 0..1000 {
        let reply = match op.poll() {
            Step::Done(r) => return r,
            Step::Store(read @ (StoreCmd::Get { .. } | StoreCmd::Recall { .. })) => Reply::Store(view.answer(read, now)),
            Step::Store(StoreCmd::Commit { ops }) => {
                let answer = view.answer(StoreCmd::Commit { ops: ops.clone() }, now);
                if answer == StoreReply::Committed {
                    let blind = ops.into_iter().map(|op| match op {
                        WriteOp::Put { key, value, expires_at, .. } => WriteOp::Put { key, value, expect: Expect::Any, expires_at },
                        WriteOp::Delete { key, .. } => WriteOp::Delete { key, expect: Expect::Any },
                        list_write @ (WriteOp::Append { .. } | WriteOp::Remove { .. }) => list_write,
                    });
                    assert_eq!(shared.answer(StoreCmd::Commit { ops: blind.collect() }, now), StoreReply::Committed);
                }
                Reply::Store(answer)
            }
            Step::Crypto(CryptoCmd::Sign { kid, message, .. }) => Reply::Signature(crypto.sign_now(&kid, &message)?),
            Step::Crypto(CryptoCmd::VerifySignature { kid, message, signature, .. }) => {
                Reply::Verified(crypto.verify_now(&kid, &message, &signature)?)
            }
        };
        op.handle(reply);
    }
    panic!("operation did not finish in 1000 steps");
}

#[test]
fn a_refresh_or_touch_from_a_stale_view_does_not_bring_a_revoked_session_back() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "yul", T0, 80);
    let other = issue(&rules, &mut store, &crypto, "yul", T0, 81);
    // Location B last read the store here; then location A revokes.
    let mut stale = store.clone();
    run(ops::Revoke::new(&rules, "yul", &t.session.sid, T0 + 1_000), &mut store, &crypto, T0 + 1_000).unwrap();

    // B, still seeing the live record, refreshes it: its write lands over the tombstone.
    let now = T0 + 2_000;
    let revived = run_stale(ops::Refresh::new(&rules, &t.refresh_token, now, entropy(82)), &mut store, &mut stale, &crypto, now).unwrap();
    // A touch from the stale view, too (a verify past the touch interval writes).
    let later = T0 + rules.policy.touch_interval_ms + 3_000;
    run_stale(ops::Verify::new(&rules, &revived.access_token, VerifyMode::Strict, later), &mut store, &mut stale, &crypto, later).unwrap();

    // Everywhere else (and at B once its view catches up), the session stays revoked.
    for token in [&t.access_token, &revived.access_token] {
        let err = verify(&rules, &mut store, &crypto, token, VerifyMode::Strict, later).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SessionRevoked);
    }
    let err = refresh(&rules, &mut store, &crypto, &revived.refresh_token, later, 83).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    verify(&rules, &mut store, &crypto, &other.access_token, VerifyMode::Strict, later).unwrap();
}

#[test]
fn a_refresh_from_a_stale_view_does_not_undo_a_revoke_all() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "zia", T0, 90);
    let kept = issue(&rules, &mut store, &crypto, "zia", T0, 91);
    let mut stale = store.clone();
    let at = T0 + 1_000;
    let n = run(ops::RevokeAll::new(&rules, "zia", Some(&kept.session.sid), at), &mut store, &crypto, at).unwrap();
    assert_eq!(n, 1);

    let now = T0 + 2_000;
    let revived = run_stale(ops::Refresh::new(&rules, &t.refresh_token, now, entropy(92)), &mut store, &mut stale, &crypto, now).unwrap();
    let err = verify(&rules, &mut store, &crypto, &revived.access_token, VerifyMode::Strict, now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    assert_eq!(refresh(&rules, &mut store, &crypto, &revived.refresh_token, now, 93).unwrap_err().code(), ErrorCode::SessionRevoked);
    // The kept session, and a session created after the revoke-all, live on.
    verify(&rules, &mut store, &crypto, &kept.access_token, VerifyMode::Strict, now).unwrap();
    let fresh = issue(&rules, &mut store, &crypto, "zia", now, 94);
    verify(&rules, &mut store, &crypto, &fresh.access_token, VerifyMode::Strict, now).unwrap();
    // A later revoke-all that keeps nothing covers the one kept before.
    run(ops::RevokeAll::new(&rules, "zia", None, now + 1), &mut store, &crypto, now + 1).unwrap();
    let err = verify(&rules, &mut store, &crypto, &kept.access_token, VerifyMode::Strict, now + 1).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
}
