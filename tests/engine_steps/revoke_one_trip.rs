//! The one-trip revoke (`Revoke::one_trip`): on a store that applies list writes the
//! revoke reads only the record and its commit removes the index entry
//! (`WriteOp::Remove`); from a remembered record it is that commit alone. Each case
//! runs the revoke three ways on copies of one store: remembering, reading only the
//! record, and as on a store without list writes (record and index read, index
//! rewritten), and compares the answers and what the store holds after (included by
//! `tests/engine_steps.rs`).

use super::recall::{commits, one_attempt_rules, remember, rules, run_remembering, Memory};
use super::*;
use tollgate::engine::record::{index_key, session_key, RecordFormat, UserIndex};

/// One way of revoking: its answer, and the store's commands and content after.
struct Outcome {
    answer: Result<(), ErrorCode>,
    content: BTreeMap<String, Bytes>,
    log: Vec<StoreCmd>,
}

/// The revoke of `sid` at `now`: remembering `memory`, reading the record only, and as
/// without list writes, each on a copy of `store`; the three answers and contents agree.
fn three_ways(rules: &Rules, crypto: &JwtCrypto, store: &FakeStore, memory: &Memory, user: &str, sid: &str, now: u64) -> [Outcome; 3] {
    let outcome = |lists: bool, recall: bool| {
        let mut s = store.clone();
        s.log.clear();
        let op = ops::Revoke::new(rules, user, sid, now).one_trip(lists, recall);
        let answer = if recall { run_remembering(op, &mut s, memory, crypto, now) } else { run(op, &mut s, crypto, now) };
        Outcome { answer: answer.map_err(|e| e.code()), content: s.content(), log: s.log }
    };
    let all = [outcome(true, true), outcome(true, false), outcome(false, false)];
    for other in &all[1..] {
        assert_eq!(all[0].answer, other.answer, "the ways answered differently");
        assert_eq!(all[0].content, other.content, "the ways left different content");
    }
    all
}

fn reads(log: &[StoreCmd]) -> Vec<usize> {
    log.iter()
        .filter_map(|c| match c {
            StoreCmd::Get { keys } | StoreCmd::Recall { keys } => Some(keys.len()),
            StoreCmd::Commit { .. } => None,
        })
        .collect()
}

/// Three sessions of `user` (the middle one is revoked in the cases), and the memory
/// their sign-ins left of the records.
fn three_sessions(rules: &Rules, crypto: &JwtCrypto, user: &str) -> (FakeStore, Memory, Vec<Tokens>) {
    let mut store = FakeStore::default();
    let tokens: Vec<Tokens> = (0..3).map(|i| issue(rules, &mut store, crypto, user, T0 + i, i as u8 + 1)).collect();
    let mut memory = Memory::new();
    let keys: Vec<String> = tokens.iter().map(|t| session_key(user, &t.session.sid)).collect();
    remember(&mut memory, &store, &keys);
    (store, memory, tokens)
}

fn listed(content: &BTreeMap<String, Bytes>, user: &str) -> Vec<String> {
    let index = content.get(&index_key(user)).map(|v| UserIndex::decode(Some(v)).unwrap());
    index.map(|i| i.sessions.into_iter().map(|e| e.sid).collect()).unwrap_or_default()
}

#[test]
fn a_remembered_record_is_revoked_in_one_commit_that_removes_its_entry() {
    let (rules, crypto) = rules();
    let (store, memory, t) = three_sessions(&rules, &crypto, "ada");
    let sid = &t[1].session.sid;
    let [remembering, record_only, classic] = three_ways(&rules, &crypto, &store, &memory, "ada", sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert_eq!(listed(&remembering.content, "ada"), vec![t[0].session.sid.clone(), t[2].session.sid.clone()], "the others stay, in order");
    assert_eq!(reads(&remembering.log), vec![1], "the recall, answered from memory: {:?}", remembering.log);
    let [ops] = commits(&remembering.log)[..] else { panic!("one commit: {:?}", remembering.log) };
    let record = session_key("ada", sid);
    assert!(matches!(&ops[0], WriteOp::Put { key, expect: Expect::Version(v), .. } if *key == record && *v == memory[&record].version));
    assert_eq!(ops[1..].to_vec(), vec![WriteOp::Remove { key: index_key("ada"), sid: sid.clone() }]);
    assert_eq!(reads(&record_only.log), vec![1], "the record alone is read");
    assert_eq!(commits(&record_only.log).len(), 1);
    assert_eq!(reads(&classic.log), vec![2], "without list writes: record and index");
    assert!(matches!(commits(&classic.log)[0][1], WriteOp::Put { .. }), "the index rewritten");
}

#[test]
fn the_last_session_revoked_leaves_no_index() {
    let (rules, crypto) = rules();
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "bo", T0, 1);
    let mut memory = Memory::new();
    remember(&mut memory, &store, &[session_key("bo", &t.session.sid)]);
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory, "bo", &t.session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert!(!remembering.content.contains_key(&index_key("bo")), "an emptied index is deleted");
}

#[test]
fn a_memory_another_process_overtook_conflicts_and_the_revoke_reads_without_spending_an_attempt() {
    let (rules, crypto) = one_attempt_rules();

    // Rotated by another process: the record's version moved on.
    let (mut store, memory, t) = three_sessions(&rules, &crypto, "cy");
    run(ops::Refresh::new(&rules, &t[1].refresh_token, T0 + 5, entropy(9)), &mut store, &crypto, T0 + 5).unwrap();
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory, "cy", &t[1].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()), "one attempt, and the stale memory did not spend it");
    assert_eq!(commits(&remembering.log).len(), 2, "the commit on memory conflicted, then the read's: {:?}", remembering.log);
    assert_eq!(reads(&remembering.log), vec![1, 1], "the recall from memory, then a read of the record");

    // Revoked by another process already: the read answers, nothing more is written.
    let (mut store, memory, t) = three_sessions(&rules, &crypto, "di");
    run(ops::Revoke::new(&rules, "di", &t[1].session.sid, T0 + 5), &mut store, &crypto, T0 + 5).unwrap();
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory, "di", &t[1].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert_eq!(commits(&remembering.log).len(), 1, "only the conflicting commit on memory: {:?}", remembering.log);
}

#[test]
fn what_the_memory_cannot_act_on_is_read() {
    let (rules, crypto) = rules();
    // The memory holds the tombstone this manager wrote: the read says revoked; nothing written.
    let (mut store, _, t) = three_sessions(&rules, &crypto, "ed");
    run(ops::Revoke::new(&rules, "ed", &t[0].session.sid, T0 + 5), &mut store, &crypto, T0 + 5).unwrap();
    let mut memory = Memory::new();
    remember(&mut memory, &store, &[session_key("ed", &t[0].session.sid)]);
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory, "ed", &t[0].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert!(commits(&remembering.log).is_empty(), "{:?}", remembering.log);
    assert_eq!(reads(&remembering.log), vec![1, 1], "memory, then the store");
    // A record that does not open under this key (another user's, copied in place).
    let (mut store, memory, t) = three_sessions(&rules, &crypto, "flo");
    let theirs = store.data[&session_key("flo", &t[0].session.sid)].clone();
    let mut memory_of_wrong = memory.clone();
    memory_of_wrong.insert(session_key("flo", &t[1].session.sid), Versioned { value: theirs.0.clone(), version: theirs.1 });
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory_of_wrong, "flo", &t[1].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()), "the read found the real record");
    assert_eq!(reads(&remembering.log), vec![1, 1]);
    // An unknown session: not found, whatever the memory.
    store.log.clear();
    let [remembering, ..] = three_ways(&rules, &crypto, &store, &memory, "flo", "AAAAAAAAAAAAAAAAAAAAAA", T0 + 10);
    assert_eq!(remembering.answer, Err(ErrorCode::SessionNotFound));
    assert!(commits(&remembering.log).is_empty());
}

#[test]
fn an_index_of_an_earlier_release_is_rewritten_after_the_store_refuses_the_removal() {
    let (mut json_rules, crypto) = rules();
    json_rules.policy.record_format = RecordFormat::Json;
    // One attempt: the refused removal does not spend it.
    let (rules, _) = one_attempt_rules();
    let (store, memory, t) = three_sessions(&json_rules, &crypto, "gil");
    assert_eq!(store.data[&index_key("gil")].0.first(), Some(&b'{'), "a JSON index");
    let [remembering, record_only, _] = three_ways(&rules, &crypto, &store, &memory, "gil", &t[1].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert_eq!(listed(&remembering.content, "gil"), vec![t[0].session.sid.clone(), t[2].session.sid.clone()]);
    // Refused removal, then the read of record and index, and the rewrite.
    assert_eq!(reads(&record_only.log), vec![1, 2], "{:?}", record_only.log);
    assert_eq!(commits(&record_only.log).len(), 2);
}

#[test]
fn with_the_json_record_format_the_index_is_read_and_rewritten_as_json() {
    let (mut json_rules, crypto) = rules();
    json_rules.policy.record_format = RecordFormat::Json;
    let (store, memory, t) = three_sessions(&json_rules, &crypto, "hal");
    let [remembering, ..] = three_ways(&json_rules, &crypto, &store, &memory, "hal", &t[1].session.sid, T0 + 10);
    assert_eq!(remembering.answer, Ok(()));
    assert_eq!(reads(&remembering.log), vec![2], "record and index read, no removal tried: {:?}", remembering.log);
    assert_eq!(remembering.content[&index_key("hal")].first(), Some(&b'{'), "the index stays JSON for earlier releases");
}
