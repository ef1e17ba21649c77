//! Review findings of issue 11 on the refresh path, stepped by hand with a clock
//! the test moves (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;

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
