//! Revocation on an atomic store (`Rules::atomic_store`): the tombstone alone revokes a
//! session, so no per-session marker is written or read. Every answer must be the one
//! the marker path gives: the same scenario runs under both rules and is compared step
//! by step (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;
use tollgate::engine::record::revoked_key;

/// The scenario's answers, one per step: `Ok` or the error's code.
type Answers = Vec<(&'static str, Result<(), ErrorCode>)>;

fn rules(atomic: bool) -> (Rules, JwtCrypto) {
    let mut p = policy();
    p.max_sessions_per_user = 2;
    let (mut rules, crypto) = hs_core(p);
    rules.atomic_store = atomic;
    (rules, crypto)
}

/// Sign-ins, refreshes, a reuse, revokes, a revoke-all and an eviction at the limit, each
/// followed by the strict verifies and refreshes that observe it, then the same once the
/// tombstones' retention has passed.
fn scenario(atomic: bool) -> (Answers, FakeStore) {
    let (rules, crypto) = rules(atomic);
    let mut store = FakeStore::default();
    let mut out = Answers::new();
    let s = &mut store;
    let strict = |s: &mut FakeStore, t: &Tokens, now: u64| verify(&rules, s, &crypto, &t.access_token, VerifyMode::Strict, now).map(drop);
    let refresh = |s: &mut FakeStore, t: &Tokens, now: u64, seed: u8| {
        run(ops::Refresh::new(&rules, &t.refresh_token, now, entropy(seed)), s, &crypto, now)
    };
    let revoke =
        |s: &mut FakeStore, t: &Tokens, now: u64| run(ops::Revoke::new(&rules, &t.session.user, &t.session.sid, now), s, &crypto, now);
    let code = |r: Result<(), Error>| r.map_err(|e| e.code());

    let a1 = issue(&rules, s, &crypto, "ann", T0, 1);
    let a2 = issue(&rules, s, &crypto, "ann", T0 + 1, 2);
    let b1 = issue(&rules, s, &crypto, "ben", T0 + 2, 3);
    out.push(("a live session verifies", code(strict(s, &a1, T0 + 10))));
    let a1b = refresh(s, &a1, T0 + 20, 4).unwrap();
    out.push(("the rotated session verifies", code(strict(s, &a1b, T0 + 30))));
    // The first token again, after the grace: reuse, which revokes the session.
    let late = T0 + 120_000;
    out.push(("a reused refresh token", code(refresh(s, &a1, late, 5).map(drop))));
    out.push(("the session of a reuse, verified", code(strict(s, &a1b, late + 1))));
    out.push(("the session of a reuse, refreshed", code(refresh(s, &a1b, late + 2, 6).map(drop))));
    out.push(("a revoke", code(revoke(s, &a2, late + 3))));
    out.push(("a revoke again", code(revoke(s, &a2, late + 4))));
    out.push(("a revoked session, verified", code(strict(s, &a2, late + 5))));
    out.push(("a revoked session, refreshed", code(refresh(s, &a2, late + 6, 7).map(drop))));
    let kept = run(ops::RevokeAll::new(&rules, "ben", None, late + 7), s, &crypto, late + 7).map(drop);
    out.push(("a revoke-all", code(kept)));
    out.push(("a session of a revoke-all, verified", code(strict(s, &b1, late + 8))));
    out.push(("a session of a revoke-all, refreshed", code(refresh(s, &b1, late + 9, 8).map(drop))));
    // The limit is two: the third sign-in evicts the oldest.
    let c1 = issue(&rules, s, &crypto, "cid", late + 10, 9);
    let c2 = issue(&rules, s, &crypto, "cid", late + 11, 10);
    let c3 = issue(&rules, s, &crypto, "cid", late + 12, 11);
    assert_eq!(c3.evicted, std::slice::from_ref(&c1.session.sid), "the third sign-in evicts the first");
    out.push(("an evicted session, verified", code(strict(s, &c1, late + 13))));
    out.push(("an evicted session, refreshed", code(refresh(s, &c1, late + 14, 12).map(drop))));
    out.push(("its neighbour, verified", code(strict(s, &c2, late + 15))));
    // Past every tombstone's retention (access TTL and leeway): the records are gone.
    let after = late + rules.policy.access_ttl_ms + rules.policy.claims.leeway_ms + 1000;
    out.push(("a revoked session's refresh, after retention", code(refresh(s, &a2, after, 13).map(drop))));
    out.push(("an evicted session's refresh, after retention", code(refresh(s, &c1, after, 14).map(drop))));
    (out, store)
}

#[test]
fn the_tombstone_alone_gives_every_answer_the_markers_give() {
    let (with_markers, marked) = scenario(false);
    let (atomic, tombstones) = scenario(true);
    for (m, a) in with_markers.iter().zip(&atomic) {
        assert_eq!(m, a, "the two paths differ");
    }
    // The scenario revokes through each path that used to write a marker.
    let revoked = with_markers.iter().filter(|(_, r)| *r == Err(ErrorCode::SessionRevoked)).count();
    assert!(revoked >= 5, "{with_markers:?}");
    let markers = |s: &FakeStore| s.log.iter().flat_map(cmd_keys).filter(|k| k.starts_with("r:")).count();
    assert!(markers(&marked) > 0, "the marker path wrote and read markers");
    assert_eq!(markers(&tombstones), 0, "an atomic store is never sent a session marker: {:?}", tombstones.log);
}

fn cmd_keys(cmd: &StoreCmd) -> Vec<String> {
    match cmd {
        StoreCmd::Get { keys } | StoreCmd::Recall { keys } => keys.clone(),
        StoreCmd::Commit { ops } => ops.iter().map(|op| op.key().to_owned()).collect(),
    }
}

#[test]
fn on_an_atomic_store_a_verify_reads_two_keys_and_a_revoke_writes_two() {
    let (rules, crypto) = rules(true);
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "dee", T0, 1);
    let n = store.log.len();
    verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, T0 + 1).unwrap();
    let StoreCmd::Get { keys } = &store.log[n] else { panic!("{:?}", store.log[n]) };
    assert_eq!(keys.len(), 2, "the record and the revoke-all marker: {keys:?}");
    let n = store.log.len();
    run(ops::Revoke::new(&rules, "dee", &t.session.sid, T0 + 2), &mut store, &crypto, T0 + 2).unwrap();
    let StoreCmd::Commit { ops } = &store.log[n + 1] else { panic!("{:?}", store.log[n + 1]) };
    assert_eq!(ops.len(), 2, "the tombstone and the index: {ops:?}");
    assert!(!store.data.contains_key(&revoked_key("dee", &t.session.sid)));
    assert_eq!(
        verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, T0 + 3).unwrap_err().code(),
        ErrorCode::SessionRevoked
    );
}

/// A rolling deploy mixes the two paths on one store: a session revoked by either is
/// `session_revoked` on the other (the tombstone is written with every revocation).
#[test]
fn a_session_revoked_on_one_path_is_revoked_on_the_other() {
    let ((atomic, crypto), (marked, _)) = (rules(true), rules(false));
    for (revoker, reader) in [(&atomic, &marked), (&marked, &atomic)] {
        let mut store = FakeStore::default();
        let t = issue(revoker, &mut store, &crypto, "eve", T0, 1);
        run(ops::Revoke::new(revoker, "eve", &t.session.sid, T0 + 1), &mut store, &crypto, T0 + 1).unwrap();
        let verified = verify(reader, &mut store, &crypto, &t.access_token, VerifyMode::Strict, T0 + 2);
        assert_eq!(verified.unwrap_err().code(), ErrorCode::SessionRevoked);
        let refreshed = run(ops::Refresh::new(reader, &t.refresh_token, T0 + 3, entropy(2)), &mut store, &crypto, T0 + 3);
        assert_eq!(refreshed.unwrap_err().code(), ErrorCode::SessionRevoked);
    }
}
