//! The one-trip sign-in (`Issue::one_trip`): one commit that creates the record and
//! appends to the index, while the user is under the limit; the read path after the
//! store refuses the append (index full, or JSON), which prunes and evicts as before
//! (included by `tests/engine_steps.rs`; its helpers are `super::`).

use super::*;
use tollgate::engine::policy::LimitPolicy;
use tollgate::engine::record::{index_key, RecordFormat, UserIndex};

fn limited(max: u32, limit_policy: LimitPolicy) -> Rules {
    let mut p = policy();
    p.max_sessions_per_user = max;
    p.limit_policy = limit_policy;
    p.idle_ttl_ms = 10 * 60_000;
    hs_core(p).0
}

fn crypto() -> JwtCrypto {
    hs_core(policy()).1
}

fn sign_in(rules: &Rules, store: &mut FakeStore, user: &str, now: u64, seed: u8) -> Result<Tokens, Error> {
    let op = ops::Issue::new(rules, user, Map::new(), json!({}), now, entropy(seed)).one_trip(true);
    run(op, store, &crypto(), now)
}

fn index(store: &FakeStore, user: &str) -> (Bytes, UserIndex) {
    let value = store.data[&index_key(user)].0.clone();
    let index = UserIndex::decode(Some(&value)).unwrap();
    (value, index)
}

fn sids(store: &FakeStore, user: &str) -> Vec<String> {
    index(store, user).1.sessions.into_iter().map(|e| e.sid).collect()
}

#[test]
fn under_the_limit_a_sign_in_is_one_commit_and_the_index_a_counted_list() {
    let rules = limited(3, LimitPolicy::EvictOldest);
    let mut store = FakeStore::default();
    let mut made = Vec::new();
    for seed in 1..=3 {
        let n = store.round_trips();
        made.push(sign_in(&rules, &mut store, "amy", T0 + u64::from(seed), seed).unwrap().session.sid);
        assert_eq!(store.round_trips() - n, 1, "sign-in {seed}: one commit, no read");
        assert!(matches!(store.log.last(), Some(StoreCmd::Commit { ops }) if ops.iter().any(WriteOp::is_append)));
    }
    let (value, _) = index(&store, "amy");
    assert_eq!(list::header(&value).map(|h| h.0), Some(3));
    assert_eq!(sids(&store, "amy"), made);
    let listed = run(ops::ListSessions::new(&rules, "amy", T0 + 10), &mut store, &crypto(), T0 + 10).unwrap();
    assert_eq!(listed.len(), 3);
}

#[test]
fn at_the_limit_the_store_refuses_and_the_read_path_evicts_the_oldest() {
    let rules = limited(2, LimitPolicy::EvictOldest);
    let mut store = FakeStore::default();
    let first = sign_in(&rules, &mut store, "bo", T0, 1).unwrap().session.sid;
    let second = sign_in(&rules, &mut store, "bo", T0 + 1, 2).unwrap().session.sid;
    let n = store.round_trips();
    let third = sign_in(&rules, &mut store, "bo", T0 + 2, 3).unwrap();
    // The refused commit, the index, the evicted record, the commit.
    assert_eq!(store.round_trips() - n, 4);
    assert_eq!(third.evicted, vec![first.clone()]);
    assert_eq!(sids(&store, "bo"), vec![second, third.session.sid.clone()], "exactly the limit, oldest gone");
    let revoked = verify(&rules, &mut store, &crypto(), &third.access_token, VerifyMode::Strict, T0 + 3);
    assert!(revoked.is_ok());
    // What the read path wrote is a counted list again: the next one-trip try is refused (full) too.
    assert!(list::header(&index(&store, "bo").0).is_some());
}

#[test]
fn at_the_limit_with_refuse_the_sign_in_is_refused_and_nothing_changes() {
    let rules = limited(1, LimitPolicy::Refuse);
    let mut store = FakeStore::default();
    sign_in(&rules, &mut store, "cy", T0, 1).unwrap();
    let before = store.content();
    assert_eq!(sign_in(&rules, &mut store, "cy", T0 + 1, 2).unwrap_err().code(), ErrorCode::SessionLimit);
    assert_eq!(store.content(), before);
}

#[test]
fn sessions_that_idled_out_are_pruned_by_the_read_path_not_counted() {
    let rules = limited(2, LimitPolicy::Refuse);
    let mut store = FakeStore::default();
    sign_in(&rules, &mut store, "di", T0, 1).unwrap();
    sign_in(&rules, &mut store, "di", T0 + 1, 2).unwrap();
    // Both idle out (10 minutes) long before their absolute expiry: the clock moves past it.
    let later = T0 + 11 * 60_000;
    let t = sign_in(&rules, &mut store, "di", later, 3).unwrap();
    assert_eq!(sids(&store, "di"), vec![t.session.sid.clone()], "the idled-out entries pruned, not refused");
    let n = store.round_trips();
    sign_in(&rules, &mut store, "di", later + 1, 4).unwrap();
    assert_eq!(store.round_trips() - n, 1, "room again: one trip");
}

#[test]
fn an_index_of_the_earlier_json_format_is_read_then_rewritten_as_a_list() {
    let mut json_policy = policy();
    json_policy.record_format = RecordFormat::Json;
    let (json_rules, _) = hs_core(json_policy);
    let compact = limited(100, LimitPolicy::EvictOldest);
    let mut store = FakeStore::default();
    // `record_format = json`: no append is sent, the index stays JSON (what an earlier release reads).
    let old = sign_in(&json_rules, &mut store, "ed", T0, 1).unwrap().session.sid;
    assert_eq!(store.log.len(), 2, "read, then commit");
    assert!(!matches!(store.log.last(), Some(StoreCmd::Commit { ops }) if ops.iter().any(WriteOp::is_append)));
    assert_eq!(index(&store, "ed").0.first(), Some(&b'{'));
    // This release: the append to JSON is refused, the read path rewrites the index as a list.
    let n = store.round_trips();
    let new = sign_in(&compact, &mut store, "ed", T0 + 1, 2).unwrap().session.sid;
    assert_eq!(store.round_trips() - n, 3, "refused commit, read, commit");
    assert!(list::header(&index(&store, "ed").0).is_some());
    assert_eq!(sids(&store, "ed"), vec![old, new]);
    let n = store.round_trips();
    sign_in(&compact, &mut store, "ed", T0 + 2, 3).unwrap();
    assert_eq!(store.round_trips() - n, 1, "then one trip");
    // A JSON writer (the rolling-upgrade setting) still reads the list and writes JSON back.
    run(ops::Revoke::new(&json_rules, "ed", &sids(&store, "ed")[0], T0 + 3), &mut store, &crypto(), T0 + 3).unwrap();
    assert_eq!(index(&store, "ed").0.first(), Some(&b'{'));
    assert_eq!(sids(&store, "ed").len(), 2);
}

#[test]
fn an_append_between_a_read_and_its_commit_is_not_lost() {
    let rules = limited(5, LimitPolicy::EvictOldest);
    let mut store = FakeStore::default();
    let a = sign_in(&rules, &mut store, "flo", T0, 1).unwrap().session.sid;
    // A revoke reads the index at its current version...
    let mut revoke = ops::Revoke::new(&rules, "flo", &a, T0 + 1);
    let pending = loop {
        match revoke.poll() {
            Step::Store(StoreCmd::Get { keys }) => revoke.handle(Reply::Store(store.answer(StoreCmd::Get { keys }, T0 + 1))),
            Step::Store(commit @ StoreCmd::Commit { .. }) => break commit,
            other => panic!("unexpected {other:?}"),
        }
    };
    // ...a sign-in appends in between...
    let b = sign_in(&rules, &mut store, "flo", T0 + 2, 2).unwrap().session.sid;
    // ...so the revoke's commit conflicts, and its retry keeps the new entry.
    assert_eq!(store.answer(pending, T0 + 3), StoreReply::Conflict);
    revoke.handle(Reply::Store(StoreReply::Conflict));
    run(revoke, &mut store, &crypto(), T0 + 3).unwrap();
    assert_eq!(sids(&store, "flo"), vec![b]);
}
