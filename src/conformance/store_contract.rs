//! The store contract itself: `get`, and `commit` with its expectations and expiries.

use bytes::Bytes;

use super::check::{ensure, ensure_eq, OrFail};
use super::{Checked, Failure, Subject};
use crate::engine::list;
use crate::engine::record::{index_key, session_key};
use crate::engine::step::{Expect, WriteOp};
use crate::store::{CommitResult, Store};

pub(super) const SID_A: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const SID_B: &str = "BBBBBBBBBBBBBBBBBBBBBB";
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn put(key: &str, value: &'static str, expect: Expect, expires_at: u64) -> WriteOp {
    WriteOp::Put { key: key.to_owned(), value: Bytes::from_static(value.as_bytes()), expect, expires_at }
}

/// The value and version under `key`, if any.
pub(super) async fn raw_get(store: &dyn Store, key: &str) -> Result<Option<(Bytes, u64)>, Failure> {
    let mut got = store.get(vec![key.to_owned()]).await.or_fail("get of one key")?;
    ensure_eq!(got.len(), 1, "entries answered for one key");
    Ok(got.pop().flatten().map(|v| (v.value, v.version)))
}

async fn commit(store: &dyn Store, ops: Vec<WriteOp>) -> Result<CommitResult, Failure> {
    store.commit(ops).await.or_fail("commit")
}

pub(super) async fn store_get_missing_is_none(s: &Subject) -> Checked {
    let got = s.store().get(vec![index_key(s.user()), session_key(s.user(), SID_A)]).await.or_fail("get of keys never written")?;
    ensure_eq!(got, vec![None, None], "get of keys never written");
    Ok(())
}

pub(super) async fn store_expectations(s: &Subject) -> Checked {
    let store = s.store();
    let (a, b) = (index_key(s.user()), session_key(s.user(), SID_A));
    let later = s.now() + DAY_MS;
    ensure_eq!(commit(store, vec![put(&a, "one", Expect::Absent, later)]).await?, CommitResult::Committed, "put expecting absent");
    let (v1, ver1) = raw_get(store, &a).await?.or_fail("the value just put")?;
    ensure_eq!(&v1[..], b"one", "the value just put");
    ensure_eq!(
        commit(store, vec![put(&a, "two", Expect::Absent, later)]).await?,
        CommitResult::Conflict,
        "put expecting absent on a present key"
    );
    ensure_eq!(raw_get(store, &a).await?, Some((v1.clone(), ver1)), "the value after a failed expectation");
    ensure_eq!(
        commit(store, vec![put(&a, "two", Expect::Version(ver1), later)]).await?,
        CommitResult::Committed,
        "put expecting the current version"
    );
    let (v2, ver2) = raw_get(store, &a).await?.or_fail("the value just replaced")?;
    ensure_eq!(&v2[..], b"two", "the value just replaced");
    ensure!(ver1 != ver2, "a write moves the version on (stayed {ver1})");
    ensure_eq!(
        commit(store, vec![put(&a, "three", Expect::Version(ver1), later)]).await?,
        CommitResult::Conflict,
        "put expecting a stale version"
    );
    ensure_eq!(
        commit(store, vec![put(&b, "x", Expect::Version(ver2), later)]).await?,
        CommitResult::Conflict,
        "put expecting a version on a missing key"
    );
    ensure_eq!(raw_get(store, &b).await?, None, "a missing key after a failed expectation");
    ensure_eq!(commit(store, vec![put(&b, "any", Expect::Any, later)]).await?, CommitResult::Committed, "put expecting anything");
    let (_, verb) = raw_get(store, &b).await?.or_fail("the value put expecting anything")?;
    let del = |expect| WriteOp::Delete { key: b.clone(), expect };
    ensure_eq!(
        commit(store, vec![del(Expect::Version(verb.wrapping_add(1000)))]).await?,
        CommitResult::Conflict,
        "delete expecting a wrong version"
    );
    ensure_eq!(commit(store, vec![del(Expect::Version(verb))]).await?, CommitResult::Committed, "delete expecting the version");
    ensure_eq!(raw_get(store, &b).await?, None, "a deleted key");
    ensure_eq!(commit(store, vec![put(&b, "again", Expect::Absent, later)]).await?, CommitResult::Committed, "recreating a key");
    let (_, verb2) = raw_get(store, &b).await?.or_fail("the recreated value")?;
    ensure!(verb != verb2, "a recreated key gets a version never seen before (no ABA): {verb} came back");
    Ok(())
}

pub(super) async fn store_commit_is_all_or_nothing(s: &Subject) -> Checked {
    let store = s.store();
    let (a, b, c) = (index_key(s.user()), session_key(s.user(), SID_A), session_key(s.user(), SID_B));
    let later = s.now() + DAY_MS;
    commit(store, vec![put(&a, "a0", Expect::Absent, later)]).await?;
    let (_, va) = raw_get(store, &a).await?.or_fail("the first value")?;
    // The last expectation fails: neither earlier write may land.
    let r = commit(
        store,
        vec![
            put(&b, "b1", Expect::Absent, later),
            put(&a, "a1", Expect::Version(va), later),
            put(&c, "c1", Expect::Version(va.wrapping_add(999)), later),
        ],
    )
    .await?;
    ensure_eq!(r, CommitResult::Conflict, "a commit whose last expectation fails");
    ensure_eq!(raw_get(store, &b).await?, None, "the first write of a failed commit");
    ensure_eq!(raw_get(store, &a).await?.map(|(v, _)| v), Some(Bytes::from_static(b"a0")), "the second write of a failed commit");
    ensure_eq!(raw_get(store, &c).await?, None, "the third write of a failed commit");
    let r = commit(
        store,
        vec![
            put(&b, "b1", Expect::Absent, later),
            put(&a, "a1", Expect::Version(va), later),
            WriteOp::Delete { key: c.clone(), expect: Expect::Any },
        ],
    )
    .await?;
    ensure_eq!(r, CommitResult::Committed, "a commit whose expectations all hold");
    ensure_eq!(raw_get(store, &b).await?.map(|(v, _)| v), Some(Bytes::from_static(b"b1")), "the first write of a commit");
    ensure_eq!(raw_get(store, &a).await?.map(|(v, _)| v), Some(Bytes::from_static(b"a1")), "the second write of a commit");
    Ok(())
}

pub(super) async fn store_past_expiry_is_invisible(s: &Subject) -> Checked {
    let store = s.store();
    let a = index_key(s.user());
    commit(store, vec![put(&a, "live", Expect::Absent, s.now() + DAY_MS)]).await?;
    let (_, v) = raw_get(store, &a).await?.or_fail("a live value")?;
    ensure_eq!(
        commit(store, vec![put(&a, "dead", Expect::Version(v), s.now().saturating_sub(1000))]).await?,
        CommitResult::Committed,
        "a put whose expiry has passed"
    );
    ensure_eq!(raw_get(store, &a).await?, None, "a value written with an expiry already past");
    ensure_eq!(
        commit(store, vec![put(&a, "new", Expect::Absent, s.now() + DAY_MS)]).await?,
        CommitResult::Committed,
        "put expecting absent where an expired value was"
    );
    Ok(())
}

fn append(key: &str, entry: &'static str, max_entries: u32, expires_at: u64) -> WriteOp {
    WriteOp::Append { key: key.to_owned(), entry: Bytes::from_static(entry.as_bytes()), max_entries, expires_at }
}

/// `WriteOp::Append` where the store's caps offer it: a counted list that grows by
/// concatenation, refused when full or not a list, whose version moves so a writer
/// expecting the old one conflicts, and whose expiry is the later one. Elsewhere: refused
/// as an error, nothing written.
pub(super) async fn store_appends(s: &Subject) -> Checked {
    let store = s.store();
    let (a, b) = (index_key(s.user()), session_key(s.user(), SID_A));
    let (later, latest) = (s.now() + DAY_MS, s.now() + 2 * DAY_MS);
    if !s.caps().lists {
        let refused = store.commit(vec![put(&b, "rec", Expect::Absent, later), append(&a, "e1", 2, later)]).await;
        ensure!(refused.is_err(), "a store without appends refuses one (answered {refused:?})");
        ensure_eq!(raw_get(store, &b).await?, None, "the put beside a refused append");
        return Ok(());
    }
    let r = commit(store, vec![put(&b, "rec", Expect::Absent, latest), append(&a, "e1", 2, latest)]).await?;
    ensure_eq!(r, CommitResult::Committed, "a put and an append creating the list");
    let (v1, ver1) = raw_get(store, &a).await?.or_fail("the list just created")?;
    ensure_eq!(&v1[..], &list::single(b"e1", latest)[..], "a list of one entry");
    ensure_eq!(commit(store, vec![append(&a, "e2", 2, later)]).await?, CommitResult::Committed, "an append with room");
    let (v2, ver2) = raw_get(store, &a).await?.or_fail("the list after an append")?;
    ensure_eq!(list::header(&v2), Some((2, latest)), "two entries, and the later expiry kept");
    ensure_eq!(&v2[list::LIST_HEADER_LEN..], b"e1e2", "entries concatenated in order");
    ensure!(ver1 != ver2, "an append moves the version on (stayed {ver1})");
    ensure_eq!(
        commit(store, vec![put(&a, "stale", Expect::Version(ver1), later)]).await?,
        CommitResult::Conflict,
        "a write expecting the version before the append"
    );
    // Full: the whole commit is refused, the put beside it included.
    let c = session_key(s.user(), "CCCCCCCCCCCCCCCCCCCCCC");
    let r = commit(store, vec![put(&c, "rec", Expect::Absent, later), append(&a, "e3", 2, later)]).await?;
    ensure_eq!(r, CommitResult::Conflict, "an append to a full list");
    ensure_eq!(raw_get(store, &c).await?, None, "the put beside a refused append");
    ensure_eq!(raw_get(store, &a).await?, Some((v2.clone(), ver2)), "a full list after a refused append");
    // A later expiry moves the list's.
    let far = s.now() + 3 * DAY_MS;
    ensure_eq!(commit(store, vec![append(&a, "e3", 3, far)]).await?, CommitResult::Committed, "an append with a later expiry");
    let (v3, _) = raw_get(store, &a).await?.or_fail("the list of three")?;
    ensure_eq!(list::header(&v3), Some((3, far)), "three entries, the latest expiry");
    // Not a counted list (the JSON index of earlier releases): refused.
    commit(store, vec![put(&a, "{\"v\":1,\"sessions\":[]}", Expect::Any, later)]).await?;
    ensure_eq!(commit(store, vec![append(&a, "e1", 9, later)]).await?, CommitResult::Conflict, "an append to a value that is not a list");
    Ok(())
}

fn remove(key: &str, sid: &str) -> WriteOp {
    WriteOp::Remove { key: key.to_owned(), sid: sid.to_owned() }
}

/// `WriteOp::Remove` where the store's caps offer it: every entry of the sid leaves the
/// counted list (an entry is its sid's length, the sid and 24 bytes), the others stay in
/// order, the version moves and the expiry stays; a list left empty is deleted; a key
/// holding nothing is left alone; a value that is not a list refuses the whole commit.
/// Elsewhere: refused as an error, nothing written.
pub(super) async fn store_removes(s: &Subject) -> Checked {
    let store = s.store();
    let (a, b) = (index_key(s.user()), session_key(s.user(), SID_A));
    let (later, latest) = (s.now() + DAY_MS, s.now() + 2 * DAY_MS);
    let entry = |sid: &str, n: u64| list::entry(sid, n, n + 1, n + 2).unwrap_or_default();
    if !s.caps().lists {
        let refused = store.commit(vec![put(&b, "rec", Expect::Any, later), remove(&a, SID_A)]).await;
        ensure!(refused.is_err(), "a store without list writes refuses a removal (answered {refused:?})");
        ensure_eq!(raw_get(store, &b).await?, None, "the put beside a refused removal");
        return Ok(());
    }
    // Nothing under the key: committed, nothing created.
    let r = commit(store, vec![put(&b, "rec", Expect::Absent, later), remove(&a, SID_A)]).await?;
    ensure_eq!(r, CommitResult::Committed, "a removal from a key holding nothing");
    ensure_eq!(raw_get(store, &a).await?, None, "a removal from nothing creates nothing");
    let (one, two, three) = (entry(SID_A, 1), entry("BBBBBBBBBBBBBBBBBBBBBB", 2), entry("C", 3));
    let full = list::encode(&[one.clone(), two.clone(), one.clone(), three.clone()], latest);
    commit(store, vec![WriteOp::Put { key: a.clone(), value: Bytes::from(full), expect: Expect::Any, expires_at: latest }]).await?;
    let (_, ver1) = raw_get(store, &a).await?.or_fail("the list of four")?;
    let r = commit(store, vec![put(&b, "dead", Expect::Any, later), remove(&a, SID_A)]).await?;
    ensure_eq!(r, CommitResult::Committed, "a put and a removal");
    let (v2, ver2) = raw_get(store, &a).await?.or_fail("the list after the removal")?;
    ensure_eq!(
        &v2[..],
        &list::encode(&[two.clone(), three.clone()], latest)[..],
        "both entries of the sid gone, the rest in order, the expiry kept"
    );
    ensure!(ver1 != ver2, "a removal moves the version on (stayed {ver1})");
    ensure_eq!(
        commit(store, vec![put(&a, "stale", Expect::Version(ver1), later)]).await?,
        CommitResult::Conflict,
        "a write expecting the version before the removal"
    );
    // A sid that is a prefix of a listed one removes nothing.
    ensure_eq!(commit(store, vec![remove(&a, "B")]).await?, CommitResult::Committed, "a removal of an unlisted sid");
    let (v3, _) = raw_get(store, &a).await?.or_fail("the list after removing an unlisted sid")?;
    ensure_eq!(&v3[..], &v2[..], "an unlisted sid removes nothing");
    // The last entries removed: the key is gone.
    commit(store, vec![remove(&a, "C")]).await?;
    commit(store, vec![remove(&a, "BBBBBBBBBBBBBBBBBBBBBB")]).await?;
    ensure_eq!(raw_get(store, &a).await?, None, "a list left empty");
    // Not a counted list (the JSON index of earlier releases): refused, nothing written.
    commit(store, vec![put(&a, "{\"v\":1,\"sessions\":[]}", Expect::Any, later)]).await?;
    let c = session_key(s.user(), "CCCCCCCCCCCCCCCCCCCCCC");
    let r = commit(store, vec![put(&c, "rec", Expect::Absent, later), remove(&a, SID_A)]).await?;
    ensure_eq!(r, CommitResult::Conflict, "a removal from a value that is not a list");
    ensure_eq!(raw_get(store, &c).await?, None, "the put beside a refused removal");
    Ok(())
}
