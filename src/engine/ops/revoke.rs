//! Revoke one session, or all of a user's sessions (optionally keeping one).
//!
//! A revoked session leaves a tombstone until its access tokens have expired, so
//! strict verification answers `session_revoked` rather than `session_not_found`.
//! Revoking an already revoked session succeeds (revocation is idempotent).
//!
//! Round trips: one read and one commit. On a store that applies list writes
//! ([`Revoke::one_trip`]) the read is of the record alone and the commit removes the
//! session's index entry itself; when the driver remembers the record (this manager
//! wrote it last) the read is skipped, and the revoke is one commit.

use super::*;
use crate::engine::record::{index_key, revoked_all_key, session_key, RecordFormat, RevokedAll, UserIndex};
use crate::engine::step::{Operation, Reply, Step, StoreCmd, StoreReply};
use crate::engine::token::{check_sid, check_user_id};

pub struct Revoke<'c> {
    rules: &'c Rules,
    user: String,
    sid: String,
    now: u64,
    attempts: Attempts,
    committing: bool,
    pending: Pending<()>,
    audit: Vec<AuditEvent>,
    /// The store applies list writes: the read skips the index, and the commit
    /// removes the session's entry with [`WriteOp::Remove`].
    removing: bool,
    /// Reads the record with [`StoreCmd::Recall`].
    recall: bool,
    /// The record being revoked came from the driver's memory ([`StoreReply::Remembered`]).
    remembered: bool,
}

impl<'c> Revoke<'c> {
    pub fn new(rules: &'c Rules, user: &str, sid: &str, now: u64) -> Self {
        let mut op = Revoke {
            rules,
            user: user.to_owned(),
            sid: sid.to_owned(),
            now,
            attempts: Attempts::new(rules),
            committing: false,
            pending: Pending::Waiting,
            audit: Vec::new(),
            removing: false,
            recall: false,
            remembered: false,
        };
        op.pending = match check_user_id(user).and_then(|()| check_sid(sid)) {
            Ok(()) => op.read(),
            Err(e) => done(Err(e)),
        };
        op
    }

    /// On a store whose [`Caps::lists`](crate::store::Caps) is true (`store_lists`):
    /// reads only the record, and commits its tombstone with the removal of its index
    /// entry, which the store applies without the index being read. With `recall`, the
    /// read is a [`StoreCmd::Recall`]: from a remembered record that is live and opens,
    /// the revoke is its commit alone, which expects the remembered version, so a stale
    /// memory conflicts and the revoke reads (spending no attempt). Anything else the
    /// memory answers (nothing, a tombstone, a record that does not open) is read first.
    /// After a conflict that was not a stale memory (a lost race, or an index the store
    /// cannot remove from: the JSON index of earlier releases), the revoke reads the
    /// index too and rewrites it, as without list writes; that first conflict spends no
    /// attempt, as the one-trip sign-in's refused append does not.
    /// With `record_format = json` the index stays JSON for earlier releases, which a
    /// store cannot remove from: the revoke reads it and rewrites it as before.
    pub fn one_trip(mut self, store_lists: bool, recall: bool) -> Self {
        let compact = self.rules.policy.record_format == RecordFormat::Compact;
        if store_lists && compact && matches!(self.pending, Pending::Store(_)) {
            self.removing = true;
            self.recall = recall;
            self.pending = self.read();
        }
        self
    }

    fn read(&mut self) -> Pending<()> {
        self.committing = false;
        let record = session_key(&self.user, &self.sid);
        Pending::Store(match (self.removing, self.recall) {
            (true, true) => StoreCmd::Recall { keys: vec![record] },
            (true, false) => StoreCmd::Get { keys: vec![record] },
            (false, _) => StoreCmd::Get { keys: vec![record, index_key(&self.user)] },
        })
    }

    /// What the memory answered is not acted on: read the record.
    fn read_instead(&mut self) -> Pending<()> {
        self.remembered = false;
        self.recall = false;
        self.read()
    }

    fn on_read(&mut self, reply: Reply) -> Pending<()> {
        let (reply, remembered) = match reply {
            Reply::Store(StoreReply::Remembered(v)) => (Reply::Store(StoreReply::Values(v)), true),
            other => (other, false),
        };
        self.remembered = remembered;
        let Some(mut v) = values(reply, if self.removing { 1 } else { 2 }) else { return unexpected() };
        let index_slot = if self.removing { None } else { v.pop().flatten() };
        let Some(record_slot) = v.pop().flatten() else {
            return if remembered { self.read_instead() } else { done(Err(Error::session_not_found())) };
        };
        let record = match decode_record(self.rules, &record_slot, &self.user, &self.sid) {
            Ok(r) => r,
            Err(_) if remembered => return self.read_instead(),
            Err(e) => return done(Err(e)),
        };
        if record.revoked_at.is_some() {
            return if remembered { self.read_instead() } else { done(Ok(())) };
        }
        let index_write = if self.removing {
            WriteOp::Remove { key: index_key(&self.user), sid: self.sid.clone() }
        } else {
            let mut index = match UserIndex::decode(index_slot.as_ref().map(|s| &s.value[..])) {
                Ok(i) => i,
                Err(e) => return done(Err(e)),
            };
            index.sessions.retain(|e| e.sid != self.sid);
            index.prune_certain(self.now);
            put_index(self.rules, &self.user, &index, expect_of(&index_slot))
        };
        let marker = put_revoked(self.rules, &self.user, &self.sid, record.absolute_expires_at, self.now);
        let dead = tombstone(record, self.now);
        self.committing = true;
        let mut ops = vec![put_record(self.rules, &dead, Expect::Version(record_slot.version)), index_write];
        ops.extend(marker);
        Pending::Store(StoreCmd::Commit { ops })
    }

    fn on_conflict(&mut self) -> Pending<()> {
        // A stale memory is not a lost race: read, without spending an attempt.
        if self.remembered {
            return self.read_instead();
        }
        // A list the store would not remove from (a JSON index), or a lost race: read and
        // rewrite the index. As for the one-trip sign-in's refused append, the first
        // such conflict spends no attempt: it may be the store saying "read first".
        if self.removing {
            self.removing = false;
            return self.read();
        }
        if self.attempts.retry() {
            self.read()
        } else {
            done(Err(Error::conflict()))
        }
    }
}

impl Operation for Revoke<'_> {
    type Output = ();

    fn poll(&mut self) -> Step<()> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = if !self.committing {
            self.on_read(reply)
        } else {
            match commit_outcome(&reply) {
                CommitOutcome::Committed => {
                    tracing::info!(target: "tollgate::security", event = "session_revoked", user = %self.user, sid = %self.sid, "session revoked");
                    self.audit.push(AuditEvent::new(AuditKind::Revoked, &self.user, Some(&self.sid), self.now, None));
                    done(Ok(()))
                }
                CommitOutcome::Conflict => self.on_conflict(),
                CommitOutcome::Unexpected => unexpected(),
            }
        };
    }

    fn take_audit(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit)
    }
}

/// Revokes every live session of a user, except `keep` when given. Answers how many were revoked.
///
/// Round trips: the index and the revoke-all marker, then the records of the sessions it
/// revokes (so each tombstone keeps its session's refresh hash: the holder of a revoked
/// session's token is told `session_revoked`, as after a single revoke, while anyone else
/// still gets `token_invalid`), then one commit.
pub struct RevokeAll<'c> {
    rules: &'c Rules,
    user: String,
    keep: Option<String>,
    now: u64,
    attempts: Attempts,
    revoked: usize,
    phase: Phase,
    pending: Pending<usize>,
    /// The session the marker keeps (as committed).
    kept: Option<String>,
    audit: Vec<AuditEvent>,
}

enum Phase {
    Index,
    /// The index and marker were read; the records of `gone` are being read.
    Records {
        index: UserIndex,
        slot: Option<Versioned>,
        marker: RevokedAll,
        gone: Vec<IndexEntry>,
    },
    Commit,
}

impl<'c> RevokeAll<'c> {
    pub fn new(rules: &'c Rules, user: &str, keep: Option<&str>, now: u64) -> Self {
        let mut op = RevokeAll {
            rules,
            user: user.to_owned(),
            keep: keep.map(str::to_owned),
            now,
            attempts: Attempts::new(rules),
            revoked: 0,
            phase: Phase::Index,
            pending: Pending::Waiting,
            kept: None,
            audit: Vec::new(),
        };
        op.pending = match check_user_id(user) {
            Ok(()) => op.read(),
            Err(e) => done(Err(e)),
        };
        op
    }

    fn read(&mut self) -> Pending<usize> {
        self.phase = Phase::Index;
        Pending::Store(StoreCmd::Get { keys: vec![index_key(&self.user), revoked_all_key(&self.user)] })
    }

    fn on_index(&mut self, reply: Reply) -> Pending<usize> {
        let Some(mut v) = values(reply, 2) else { return unexpected() };
        let earlier = match v.pop().flatten().map(|m| RevokedAll::decode(&m.value)).transpose() {
            Ok(m) => m,
            Err(e) => return done(Err(e)),
        };
        let slot = v.pop().flatten();
        let mut index = match UserIndex::decode(slot.as_ref().map(|s| &s.value[..])) {
            Ok(i) => i,
            Err(e) => return done(Err(e)),
        };
        index.prune_certain(self.now);
        let (kept, gone): (Vec<_>, Vec<_>) = index.sessions.drain(..).partition(|e| Some(&e.sid) == self.keep.as_ref());
        // The marker covers every session created until now, whether the index (perhaps a
        // stale view of it) lists it or not. It keeps a session only if one is kept and
        // no earlier revoke-all revoked it.
        let keep = kept.first().filter(|e| !earlier.as_ref().is_some_and(|m| m.revokes(&e.sid, e.created_at))).map(|e| e.sid.clone());
        let marker = RevokedAll::new(self.now, keep);
        index.sessions = kept;
        if gone.is_empty() {
            self.revoked = 0;
            return self.commit(index, slot, marker, Vec::new());
        }
        let keys = gone.iter().map(|e| session_key(&self.user, &e.sid)).collect();
        self.phase = Phase::Records { index, slot, marker, gone };
        Pending::Store(StoreCmd::Get { keys })
    }

    fn on_records(&mut self, reply: Reply) -> Pending<usize> {
        let Phase::Records { index, slot, marker, gone } = std::mem::replace(&mut self.phase, Phase::Index) else {
            return unexpected();
        };
        let Some(records) = values(reply, gone.len()) else { return unexpected() };
        let mut ops = Vec::with_capacity(gone.len() + 2);
        for (entry, record_slot) in gone.iter().zip(records) {
            // A record that reads back keeps its refresh hash in the tombstone; one that is
            // missing or does not open is known only from the index. Already revoked: as is.
            let dead = match record_slot.as_ref().map(|s| decode_record(self.rules, s, &self.user, &entry.sid)) {
                Some(Ok(record)) if record.revoked_at.is_some() => continue,
                Some(Ok(record)) => tombstone(record, self.now),
                _ => tombstone_for(&self.user, entry, self.now),
            };
            ops.push(put_record(self.rules, &dead, Expect::Any));
        }
        self.revoked = gone.len();
        self.commit(index, slot, marker, ops)
    }

    fn commit(&mut self, index: UserIndex, slot: Option<Versioned>, marker: RevokedAll, mut ops: Vec<WriteOp>) -> Pending<usize> {
        self.kept = marker.keep.clone();
        ops.push(put_revoked_all(self.rules, &self.user, &marker));
        ops.push(put_index(self.rules, &self.user, &index, expect_of(&slot)));
        self.phase = Phase::Commit;
        Pending::Store(StoreCmd::Commit { ops })
    }
}

impl Operation for RevokeAll<'_> {
    type Output = usize;

    fn poll(&mut self) -> Step<usize> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match self.phase {
            Phase::Index => self.on_index(reply),
            Phase::Records { .. } => self.on_records(reply),
            Phase::Commit => match commit_outcome(&reply) {
                CommitOutcome::Committed => {
                    tracing::info!(target: "tollgate::security", event = "sessions_revoked", user = %self.user, count = self.revoked, "user sessions revoked");
                    let mut event = AuditEvent::new(AuditKind::RevokedAll, &self.user, self.kept.as_deref(), self.now, None);
                    event.count = Some(self.revoked as u64);
                    self.audit.push(event);
                    done(Ok(self.revoked))
                }
                CommitOutcome::Conflict if self.attempts.retry() => self.read(),
                CommitOutcome::Conflict => done(Err(Error::conflict())),
                CommitOutcome::Unexpected => unexpected(),
            },
        };
    }

    fn take_audit(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit)
    }
}
