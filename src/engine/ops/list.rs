//! List a user's live sessions, oldest first, pruning the index of dead ones.
//!
//! Round trips: two reads (the index, then the records); one commit only when
//! dead entries were found, and a conflict there is ignored (pruning is tidying).

use super::*;
use crate::engine::record::{index_key, session_key, UserIndex};
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::check_user_id;

enum Phase {
    ReadIndex,
    ReadRecords {
        index: UserIndex,
        index_version: Expect,
    },
    Pruning {
        live: Vec<SessionInfo>,
    },
    /// Finished: the result was handed to `pending`; a further reply is a driver bug.
    Done,
}

pub struct ListSessions<'c> {
    rules: &'c Rules,
    user: String,
    now: u64,
    phase: Phase,
    pending: Pending<Vec<SessionInfo>>,
}

impl<'c> ListSessions<'c> {
    pub fn new(rules: &'c Rules, user: &str, now: u64) -> Self {
        let mut op = ListSessions { rules, user: user.to_owned(), now, phase: Phase::ReadIndex, pending: Pending::Waiting };
        op.pending = match check_user_id(user) {
            Ok(()) => Pending::Store(StoreCmd::Get { keys: vec![index_key(user)] }),
            Err(e) => done(Err(e)),
        };
        op
    }

    fn on_index(&mut self, reply: Reply) -> Pending<Vec<SessionInfo>> {
        let Some(mut v) = values(reply, 1) else { return unexpected() };
        let slot = v.pop().flatten();
        let index = match UserIndex::decode(slot.as_ref().map(|s| &s.value[..])) {
            Ok(i) => i,
            Err(e) => return done(Err(e)),
        };
        if index.sessions.is_empty() {
            return done(Ok(Vec::new()));
        }
        let keys = index.sessions.iter().map(|e| session_key(&self.user, &e.sid)).collect();
        self.phase = Phase::ReadRecords { index, index_version: expect_of(&slot) };
        Pending::Store(StoreCmd::Get { keys })
    }

    fn on_records(&mut self, reply: Reply, mut index: UserIndex, index_version: Expect) -> Pending<Vec<SessionInfo>> {
        let Some(v) = values(reply, index.sessions.len()) else { return unexpected() };
        let mut live = Vec::with_capacity(v.len());
        let mut keep = Vec::with_capacity(v.len());
        for (slot, entry) in v.iter().zip(&index.sessions) {
            if let Some(slot) = slot {
                match decode_record(self.rules, slot, &self.user, &entry.sid) {
                    Ok(r) if r.check_live(self.now).is_ok() => {
                        live.push(SessionInfo::from(&r));
                        keep.push(true);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => return done(Err(e)),
                }
            }
            keep.push(false);
        }
        if keep.iter().all(|k| *k) {
            return done(Ok(live));
        }
        let mut i = 0;
        index.sessions.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.phase = Phase::Pruning { live };
        Pending::Store(StoreCmd::Commit { ops: vec![put_index(self.rules, &self.user, &index, index_version)] })
    }
}

impl Operation for ListSessions<'_> {
    type Output = Vec<SessionInfo>;

    fn poll(&mut self) -> Step<Vec<SessionInfo>> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::ReadIndex => self.on_index(reply),
            Phase::ReadRecords { index, index_version } => self.on_records(reply, index, index_version),
            Phase::Pruning { live } => match commit_outcome(&reply) {
                CommitOutcome::Committed | CommitOutcome::Conflict => done(Ok(live)),
                CommitOutcome::Unexpected => unexpected(),
            },
            Phase::Done => unexpected(),
        };
    }
}
