//! A refresh answered from the driver's memory (`StoreCmd::Recall`,
//! `StoreReply::Remembered`): one commit when the memory is current, and otherwise the
//! answer a read gives, whatever the memory held. Each case runs the refresh twice on
//! copies of one store, once with a memory and once without, and compares the answer
//! and what the store holds after (included by `tests/engine_steps.rs`).

use super::*;
use tollgate::engine::record::{index_key, revoked_all_key, session_key};

/// A driver's memory: key -> what it last committed there.
pub(super) type Memory = BTreeMap<String, Versioned>;

/// Rules on an atomic store, as the drivers that remember run on.
pub(super) fn rules() -> (Rules, JwtCrypto) {
    atomic_rules(policy())
}

/// The same with one attempt: a conflict that spends none still gets its answer.
pub(super) fn one_attempt_rules() -> (Rules, JwtCrypto) {
    let mut p = policy();
    p.max_attempts = 1;
    atomic_rules(p)
}

fn atomic_rules(policy: Policy) -> (Rules, JwtCrypto) {
    let (mut rules, crypto) = hs_core(policy);
    rules.atomic_store = true;
    (rules, crypto)
}

/// Remembers the puts of `store`'s last commits, as the manager's driver does.
pub(super) fn remember(memory: &mut Memory, store: &FakeStore, keys: &[String]) {
    for key in keys {
        if let Some((value, version, _)) = store.data.get(key) {
            memory.insert(key.clone(), Versioned { value: value.clone(), version: *version });
        }
    }
}

/// Runs `op` as a remembering driver would: the first `Recall` answered from `memory`
/// when it holds the first key, every later one read from the store.
pub(super) fn run_remembering<O: Operation>(
    mut op: O,
    store: &mut FakeStore,
    memory: &Memory,
    crypto: &JwtCrypto,
    now: u64,
) -> Result<O::Output, Error> {
    let mut recalled = false;
    for _ in 0..1000 {
        let reply = match op.poll() {
            Step::Done(r) => return r,
            Step::Store(StoreCmd::Recall { keys }) if !recalled && memory.contains_key(&keys[0]) => {
                recalled = true;
                store.log.push(StoreCmd::Recall { keys: keys.clone() });
                Reply::Store(StoreReply::Remembered(keys.iter().map(|k| memory.get(k).cloned()).collect()))
            }
            Step::Store(cmd) => Reply::Store(store.answer(cmd, now)),
            Step::Crypto(CryptoCmd::Sign { kid, message, .. }) => Reply::Signature(crypto.sign_now(&kid, &message)?),
            Step::Crypto(CryptoCmd::VerifySignature { .. }) => panic!("HS256 verifies in the engine"),
        };
        op.handle(reply);
    }
    panic!("operation did not finish in 1000 steps");
}

/// What one refresh did: its answer, and the store commands it sent (reads of memory included).
struct Outcome {
    answer: Result<String, ErrorCode>,
    content: BTreeMap<String, Bytes>,
    log: Vec<StoreCmd>,
}

/// The refresh of `token` at `now`, with `memory` and without, on copies of `store`.
fn both(rules: &Rules, crypto: &JwtCrypto, store: &FakeStore, memory: &Memory, token: &str, now: u64) -> (Outcome, Outcome) {
    let outcome = |remembering: bool| {
        let mut s = store.clone();
        s.log.clear();
        let op = ops::Refresh::new(rules, token, now, entropy(77)).recalling();
        let answer = if remembering { run_remembering(op, &mut s, memory, crypto, now) } else { run(op, &mut s, crypto, now) };
        Outcome { answer: answer.map(|t| t.refresh_token).map_err(|e| e.code()), content: s.content(), log: s.log }
    };
    let (with, without) = (outcome(true), outcome(false));
    assert_eq!(with.answer, without.answer, "memory changed the answer");
    assert_eq!(with.content, without.content, "memory changed what the store holds");
    (with, without)
}

fn reads(log: &[StoreCmd]) -> usize {
    log.iter().filter(|c| matches!(c, StoreCmd::Get { .. } | StoreCmd::Recall { .. })).count()
}

pub(super) fn commits(log: &[StoreCmd]) -> Vec<&Vec<WriteOp>> {
    log.iter()
        .filter_map(|c| match c {
            StoreCmd::Commit { ops } => Some(ops),
            _ => None,
        })
        .collect()
}

/// A signed-in session and the memory its sign-in left.
fn signed_in(rules: &Rules, crypto: &JwtCrypto, user: &str) -> (FakeStore, Memory, Tokens) {
    let mut store = FakeStore::default();
    let t = issue(rules, &mut store, crypto, user, T0, 1);
    let mut memory = Memory::new();
    remember(&mut memory, &store, &[session_key(user, &t.session.sid)]);
    (store, memory, t)
}

#[test]
fn a_current_memory_rotates_in_one_commit_that_confirms_it() {
    let (rules, crypto) = rules();
    let (store, memory, t) = signed_in(&rules, &crypto, "rae");
    let (with, without) = both(&rules, &crypto, &store, &memory, &t.refresh_token, T0 + 10);
    assert!(with.answer.is_ok());
    assert_eq!(reads(&with.log), 1, "the recall, answered from memory: {:?}", with.log);
    assert_eq!(reads(&without.log), 1);
    let [ops] = commits(&with.log)[..] else { panic!("one commit: {:?}", with.log) };
    let record = session_key("rae", &t.session.sid);
    assert!(matches!(&ops[0], WriteOp::Put { key, expect: Expect::Version(v), .. } if *key == record && *v == memory[&record].version));
    assert_eq!(
        ops[1..].to_vec(),
        vec![WriteOp::Delete { key: revoked_all_key("rae"), expect: Expect::Absent }],
        "the unread marker is confirmed absent"
    );
    // Without memory the commit expects only the record read.
    assert_eq!(commits(&without.log)[0].len(), 1);
}

#[test]
fn a_memory_older_than_the_presented_secret_reads_without_trying_a_commit() {
    let (rules, crypto) = rules();
    let (mut store, memory, t) = signed_in(&rules, &crypto, "sol");
    // Another process rotated: the client holds the newer secret, this memory the first record.
    let newer = run(ops::Refresh::new(&rules, &t.refresh_token, T0 + 5, entropy(2)), &mut store, &crypto, T0 + 5).unwrap();
    let (with, _) = both(&rules, &crypto, &store, &memory, &newer.refresh_token, T0 + 10);
    assert!(with.answer.is_ok());
    assert!(matches!(with.log[1], StoreCmd::Recall { .. }), "a second recall, from the store: {:?}", with.log);
    assert_eq!(commits(&with.log).len(), 1, "no commit tried on the stale memory");
}

#[test]
fn every_answer_but_a_rotation_comes_from_a_read() {
    let (rules, crypto) = rules();
    let late = T0 + 120_000;
    // A reused token: the memory holds the rotated record, the client the first secret.
    let (mut store, _, t) = signed_in(&rules, &crypto, "uma");
    let next = run(ops::Refresh::new(&rules, &t.refresh_token, T0 + 5, entropy(2)), &mut store, &crypto, T0 + 5).unwrap();
    let mut memory = Memory::new();
    remember(&mut memory, &store, &[session_key("uma", &next.session.sid)]);
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, late);
    assert_eq!(with.answer, Err(ErrorCode::RefreshTokenReused));
    // Within the grace window: the head of the chain, no write.
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, T0 + 6);
    assert!(with.answer.is_ok());
    assert!(commits(&with.log).is_empty() && reads(&with.log) == 2, "{:?}", with.log);
    // Expired by the clock: read, then answered, with nothing written.
    let (store, memory, t) = signed_in(&rules, &crypto, "val");
    let past = T0 + rules.policy.absolute_ttl_ms + 1;
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, past);
    assert!(with.answer.is_err());
    assert!(commits(&with.log).is_empty() && reads(&with.log) == 2, "{:?}", with.log);
    // A forged secret for a remembered session.
    let forged = {
        let cut = t.refresh_token.len() - 4;
        format!("{}{}", &t.refresh_token[..cut], if &t.refresh_token[cut..] == "AAAA" { "BBBB" } else { "AAAA" })
    };
    let (with, _) = both(&rules, &crypto, &store, &memory, &forged, T0 + 10);
    assert!(with.answer.is_err());
    assert!(commits(&with.log).is_empty(), "{:?}", with.log);
}

#[test]
fn a_revocation_the_memory_missed_is_found_by_the_commit_without_spending_an_attempt() {
    let (rules, crypto) = one_attempt_rules();

    // Revoked by another process: the tombstone changed the record's version.
    let (mut store, memory, t) = signed_in(&rules, &crypto, "wes");
    run(ops::Revoke::new(&rules, "wes", &t.session.sid, T0 + 5), &mut store, &crypto, T0 + 5).unwrap();
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, T0 + 10);
    assert_eq!(with.answer, Err(ErrorCode::SessionRevoked));
    assert_eq!(commits(&with.log).len(), 1, "the commit on memory conflicted; the read answered: {:?}", with.log);

    // A revoke-all that did not reach the record (its index was lost, as after a Redis
    // eviction): only the marker tells, and the commit's expectation of its absence finds it.
    let (mut store, memory, t) = signed_in(&rules, &crypto, "xia");
    store.data.remove(&index_key("xia"));
    run(ops::RevokeAll::new(&rules, "xia", None, T0 + 5), &mut store, &crypto, T0 + 5).unwrap();
    assert_eq!(store.data[&session_key("xia", &t.session.sid)].1, memory[&session_key("xia", &t.session.sid)].version);
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, T0 + 10);
    assert_eq!(with.answer, Err(ErrorCode::SessionRevoked));
    assert_eq!(commits(&with.log).len(), 1, "{:?}", with.log);
}

#[test]
fn a_remembered_marker_sends_the_refresh_to_a_read() {
    let (rules, crypto) = rules();
    let (mut store, mut memory, t) = signed_in(&rules, &crypto, "yan");
    // A revoke-all before this session (keeping it): the marker is present and does not revoke it.
    run(ops::RevokeAll::new(&rules, "yan", Some(&t.session.sid), T0 + 1), &mut store, &crypto, T0 + 1).unwrap();
    remember(&mut memory, &store, &[session_key("yan", &t.session.sid), revoked_all_key("yan")]);
    let (with, _) = both(&rules, &crypto, &store, &memory, &t.refresh_token, T0 + 10);
    assert!(with.answer.is_ok());
    assert_eq!(reads(&with.log), 2, "memory, then the store: {:?}", with.log);
    assert_eq!(commits(&with.log)[0].len(), 1, "a read commit expects only the record");
}
