//! Replace a live session's metadata. Round trips: one read and one commit.

use serde_json::Value;

use super::*;
use crate::engine::record::session_key;
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::{check_sid, check_user_id};

pub struct UpdateMetadata<'c> {
    rules: &'c Rules,
    user: String,
    sid: String,
    metadata: Value,
    now: u64,
    attempts: Attempts,
    committing: Option<SessionInfo>,
    pending: Pending<SessionInfo>,
}

impl<'c> UpdateMetadata<'c> {
    pub fn new(rules: &'c Rules, user: &str, sid: &str, metadata: Value, now: u64) -> Self {
        let mut op = UpdateMetadata {
            rules,
            user: user.to_owned(),
            sid: sid.to_owned(),
            metadata,
            now,
            attempts: Attempts::new(rules),
            committing: None,
            pending: Pending::Waiting,
        };
        op.pending = match check_user_id(user).and_then(|()| check_sid(sid)).and_then(|()| check_metadata(rules, &op.metadata)) {
            Ok(()) => op.read(),
            Err(e) => done(Err(e)),
        };
        op
    }

    fn read(&mut self) -> Pending<SessionInfo> {
        self.committing = None;
        Pending::Store(StoreCmd::Get { keys: vec![session_key(&self.user, &self.sid)] })
    }

    fn on_read(&mut self, reply: Reply) -> Pending<SessionInfo> {
        let Some(mut v) = values(reply, 1) else { return unexpected() };
        let Some(slot) = v.pop().flatten() else { return done(Err(Error::session_not_found())) };
        let mut record = match decode_record(self.rules, &slot, &self.user, &self.sid) {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        if let Err(e) = record.check_live(self.now) {
            return done(Err(e));
        }
        record.metadata = self.metadata.clone();
        let policy = &self.rules.policy;
        record.retire_rotations(self.now, policy.refresh_grace_ms, policy.reuse_memory);
        self.committing = Some(SessionInfo::from(&record));
        Pending::Store(StoreCmd::Commit { ops: vec![put_record(self.rules, &record, Expect::Version(slot.version))] })
    }
}

impl Operation for UpdateMetadata<'_> {
    type Output = SessionInfo;

    fn poll(&mut self) -> Step<SessionInfo> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match self.committing.take() {
            None => self.on_read(reply),
            Some(info) => match commit_outcome(&reply) {
                CommitOutcome::Committed => done(Ok(info)),
                CommitOutcome::Conflict if self.attempts.retry() => self.read(),
                CommitOutcome::Conflict => done(Err(Error::conflict())),
                CommitOutcome::Unexpected => unexpected(),
            },
        };
    }
}
