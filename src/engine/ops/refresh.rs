//! Rotate a refresh token.
//!
//! - The current secret: rotate. The successor is sealed under the presented
//!   secret and kept for the grace window, so a concurrent or repeated refresh
//!   of the same token gets the *same* successor: the session stays one chain.
//! - A secret rotated within the grace window: answer the head of the chain
//!   (opened link by link from the presented secret); nothing is written.
//! - A secret rotated before the grace window: reuse. The session is revoked and
//!   the answer is `refresh_token_reused`. Any earlier link of the chain is known
//!   as one by its chain tag and generation (see [`crate::engine::token`]); an
//!   untagged secret of an earlier release, by its remembered hash.
//! - Anything else: `token_invalid`, and nothing changes, so a forged token
//!   with a valid locator cannot revoke someone else's session. The secret is
//!   checked before liveness: without it, a live, revoked or expired session
//!   gets the same answer (only the holder learns `session_revoked` or `session_expired`).
//!
//! Round trips: one read and one commit (reuse adds one read of the index). A
//! recalling refresh ([`Refresh::recalling`]) whose driver remembers the record
//! skips the read: it rotates only from the current secret, and its commit expects
//! the remembered version and the absence of the revocation markers, so a stale
//! memory conflicts and the refresh reads as usual. Every other answer (reuse, a
//! secret within the grace window, revoked, expired, unknown) comes from a read.

use super::*;
use crate::engine::error::ErrorCode;
use crate::engine::record::{index_key, retired_form, Rotation, SessionRecord, UserIndex};
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::{chain_generation, hash_secret, hashes_equal, seal_successor, RefreshToken};

enum Phase {
    ReadSession,
    Signing {
        ops: Vec<WriteOp>,
        record: SessionRecord,
        successor: Secret,
    },
    Committing {
        record: SessionRecord,
        successor: Secret,
    },
    /// Reuse detected: revoking the session before answering.
    ReadIndexForRevoke {
        record: SessionRecord,
        record_version: u64,
    },
    CommittingRevoke,
    /// Finished: the result was handed to `pending`; a further reply is a driver bug.
    Done,
}

pub struct Refresh<'c> {
    rules: &'c Rules,
    /// A placeholder when parsing failed (the operation is then already done).
    token: RefreshToken,
    now: u64,
    entropy: Entropy,
    attempts: Attempts,
    access: AccessToken,
    phase: Phase,
    pending: Pending<Tokens>,
    /// The client of the refresh: kept in the record when it rotates (`None`: the record's is kept).
    client: Option<ClientInfo>,
    audit: Vec<AuditEvent>,
    /// Reads the session with [`StoreCmd::Recall`].
    recall: bool,
    /// The session being rotated came from the driver's memory ([`StoreReply::Remembered`]).
    remembered: bool,
}

enum Match {
    Current,
    /// Within the grace window; the head of the chain.
    Recent(Secret),
    Reused,
    Unknown,
}

impl<'c> Refresh<'c> {
    pub fn new(rules: &'c Rules, refresh_token: &str, now: u64, entropy: Entropy) -> Self {
        let parsed = RefreshToken::parse(refresh_token, &rules.policy.refresh_prefix);
        let mut op = Refresh {
            rules,
            token: RefreshToken { user: String::new(), sid: String::new(), secret: [0; 32] },
            now,
            entropy,
            attempts: Attempts::new(rules),
            access: AccessToken::None,
            phase: Phase::ReadSession,
            pending: Pending::Waiting,
            client: None,
            audit: Vec::new(),
            recall: false,
            remembered: false,
        };
        op.pending = match parsed {
            Ok(t) => {
                op.token = t;
                op.read()
            }
            Err(e) => done(Err(e)),
        };
        op
    }

    /// Records `client` (IP and user agent) in the session when it rotates.
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = Some(client);
        self
    }

    /// Reads the session with [`StoreCmd::Recall`]: a driver that remembers the record
    /// may answer from memory, and the commit confirms it (see the module docs).
    pub fn recalling(mut self) -> Self {
        self.recall = true;
        if matches!(self.pending, Pending::Store(StoreCmd::Get { .. })) {
            self.pending = self.read();
        }
        self
    }

    fn token(&self) -> &RefreshToken {
        &self.token
    }

    fn read(&mut self) -> Pending<Tokens> {
        self.phase = Phase::ReadSession;
        let t = self.token();
        let keys = session_and_markers(self.rules, &t.user, &t.sid);
        Pending::Store(if self.recall { StoreCmd::Recall { keys } } else { StoreCmd::Get { keys } })
    }

    fn classify(&self, record: &SessionRecord) -> Match {
        let t = self.token();
        let hash = hash_secret(&t.secret);
        if hashes_equal(&hash, &record.refresh_hash) {
            return Match::Current;
        }
        if let Some(i) = record.recent.iter().position(|r| hashes_equal(&r.hash, &hash)) {
            if !record.recent[i].within_grace(self.now, self.rules.policy.refresh_grace_ms) {
                return Match::Reused;
            }
            // Open the chain link by link; each opened secret must hash to the next link.
            let mut s = t.secret;
            for j in i..record.recent.len() {
                s = seal_successor(&s, &record.recent[j].sealed_next);
                let want = record.recent.get(j + 1).map(|r| &r.hash).unwrap_or(&record.refresh_hash);
                if !hashes_equal(&hash_secret(&s), want) {
                    return Match::Unknown;
                }
            }
            return Match::Recent(s);
        }
        // A tag this service made, for an earlier link of this session's chain.
        if chain_generation(&self.rules.refresh_key, &t.user, &t.sid, &t.secret).is_some_and(|g| g < record.generation) {
            return Match::Reused;
        }
        // An untagged secret (minted before chain tags) retired past the window.
        let short = retired_form(&hash);
        if record.retired.iter().any(|r| hashes_equal(r.as_bytes(), short.as_bytes())) {
            return Match::Reused;
        }
        Match::Unknown
    }

    fn on_session(&mut self, reply: Reply) -> Pending<Tokens> {
        let reply = match reply {
            Reply::Store(StoreReply::Remembered(v)) => {
                self.remembered = true;
                Reply::Store(StoreReply::Values(v))
            }
            other => {
                self.remembered = false;
                other
            }
        };
        let Some(SessionSlots { record: slot, marker, all }) = session_and_markers_reply(self.rules, reply) else { return unexpected() };
        // From memory, only a rotation from the current secret goes on (to a commit that
        // confirms the memory); every other answer is given from a read.
        let remembered = self.remembered;
        let Some(slot) = slot else {
            return if remembered { self.read() } else { done(Err(Error::session_not_found())) };
        };
        let t = self.token();
        let mut record = match decode_record(self.rules, &slot, &t.user, &t.sid) {
            Ok(r) => r,
            Err(_) if remembered => return self.read(),
            Err(e) => return done(Err(e)),
        };
        // The secret first: without it, live, revoked and expired sessions get one answer.
        let matched = self.classify(&record);
        if remembered && (!matches!(matched, Match::Current) || marker.is_some() || all.is_some()) {
            return self.read();
        }
        if matches!(matched, Match::Unknown) {
            return done(Err(Error::token_invalid("the refresh token does not belong to this session; sign in again")));
        }
        if let Err(e) = check_markers(&record, marker.as_ref(), all.as_ref()).and_then(|()| record.check_live(self.now)) {
            return if remembered { self.read() } else { done(Err(e)) };
        }
        let (rules, now) = (self.rules, self.now);
        match matched {
            Match::Unknown => unexpected(),
            Match::Reused => {
                tracing::warn!(target: "tollgate::security", event = "reuse_detected", user = %record.user, sid = %record.sid, "refresh token reused after rotation; revoking the session");
                let keys = vec![index_key(&record.user)];
                self.phase = Phase::ReadIndexForRevoke { record, record_version: slot.version };
                Pending::Store(StoreCmd::Get { keys })
            }
            Match::Recent(head) => {
                // No write: the chain already moved; hand back its head with a fresh access token.
                match self.mint(&record) {
                    Some(cmd) => {
                        self.phase = Phase::Signing { ops: Vec::new(), record, successor: head };
                        Pending::Crypto(cmd)
                    }
                    None => self.finish(record, head),
                }
            }
            Match::Current => {
                let t = self.token();
                let presented = t.secret;
                let tagged = chain_generation(&rules.refresh_key, &t.user, &t.sid, &presented).is_some();
                let generation = record.generation + 1;
                let successor = self.entropy.secret(rules, &record.user, &record.sid, generation);
                // Rotations older than the grace window leave the record.
                record.retire_rotations(now, rules.policy.refresh_grace_ms, rules.policy.reuse_memory);
                record.recent.push(Rotation {
                    hash: record.refresh_hash,
                    at: now,
                    sealed_next: seal_successor(&presented, &successor),
                    tagged,
                });
                // A burst of rotations inside one window: the oldest links retire early.
                let burst = record.recent.len().saturating_sub(8);
                record.retire_oldest(burst, rules.policy.reuse_memory);
                record.refresh_hash = hash_secret(&successor);
                record.generation = generation;
                record.last_seen = now;
                record.idle_expires_at = (now + rules.policy.idle_ttl_ms).min(record.absolute_expires_at);
                if let Some(client) = &self.client {
                    record.set_client(client);
                }
                let mut ops = vec![put_record(self.rules, &record, Expect::Version(slot.version))];
                if remembered {
                    // The markers were not read: the commit confirms they are absent
                    // (deleting an absent key writes nothing).
                    let t = self.token();
                    ops.extend(marker_keys(rules, &t.user, &t.sid).map(|key| WriteOp::Delete { key, expect: Expect::Absent }));
                }
                match self.mint(&record) {
                    Some(cmd) => {
                        self.phase = Phase::Signing { ops, record, successor };
                        Pending::Crypto(cmd)
                    }
                    None => {
                        self.phase = Phase::Committing { record, successor };
                        Pending::Store(StoreCmd::Commit { ops })
                    }
                }
            }
        }
    }

    /// Mints the access token; answers the crypto step when the driver must sign.
    fn mint(&mut self, record: &SessionRecord) -> Option<CryptoCmd> {
        let jti = self.entropy.jti();
        let mint = jwt::Mint {
            sub: &record.user,
            sid: &record.sid,
            jti: &jti,
            now_ms: self.now,
            ttl_ms: self.rules.policy.access_ttl_ms,
            extra: &record.claims,
        };
        self.access.begin(self.rules, &mint)
    }

    fn finish(&mut self, record: SessionRecord, secret: Secret) -> Pending<Tokens> {
        let Some(access) = self.access.token() else { return unexpected() };
        done(Ok(Tokens {
            access_token: access.to_owned(),
            access_expires_at: (self.now + self.rules.policy.access_ttl_ms) / 1000 * 1000,
            refresh_token: RefreshToken::format(&self.rules.policy.refresh_prefix, &record.user, &record.sid, &secret),
            session: SessionInfo::from(&record),
            evicted: Vec::new(),
        }))
    }

    fn on_index_for_revoke(&mut self, reply: Reply, record: SessionRecord, record_version: u64) -> Pending<Tokens> {
        let Some(mut v) = values(reply, 1) else { return unexpected() };
        let slot = v.pop().flatten();
        let mut index = match UserIndex::decode(slot.as_ref().map(|s| &s.value[..])) {
            Ok(i) => i,
            Err(e) => return done(Err(e)),
        };
        index.sessions.retain(|e| e.sid != record.sid);
        index.prune_certain(self.now);
        let user = record.user.clone();
        let marker = put_revoked(self.rules, &user, &record.sid, record.absolute_expires_at, self.now);
        let dead = tombstone(record, self.now);
        self.phase = Phase::CommittingRevoke;
        let mut ops =
            vec![put_record(self.rules, &dead, Expect::Version(record_version)), put_index(self.rules, &user, &index, expect_of(&slot))];
        ops.extend(marker);
        Pending::Store(StoreCmd::Commit { ops })
    }

    fn on_conflict(&mut self) -> Pending<Tokens> {
        // A stale memory is not a lost race: read, without spending an attempt.
        if std::mem::take(&mut self.remembered) {
            return self.read();
        }
        if self.attempts.retry() {
            self.read()
        } else {
            done(Err(Error::conflict()))
        }
    }
}

impl Operation for Refresh<'_> {
    type Output = Tokens;

    fn poll(&mut self) -> Step<Tokens> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::ReadSession => self.on_session(reply),
            Phase::Signing { ops, record, successor } => {
                if !self.access.accept(reply) {
                    unexpected()
                } else if ops.is_empty() {
                    self.finish(record, successor)
                } else {
                    self.phase = Phase::Committing { record, successor };
                    Pending::Store(StoreCmd::Commit { ops })
                }
            }
            Phase::Committing { record, successor } => match commit_outcome(&reply) {
                CommitOutcome::Committed => {
                    self.audit.push(AuditEvent::new(AuditKind::Refreshed, &record.user, Some(&record.sid), self.now, self.client.as_ref()));
                    self.finish(record, successor)
                }
                CommitOutcome::Conflict => self.on_conflict(),
                CommitOutcome::Unexpected => unexpected(),
            },
            Phase::ReadIndexForRevoke { record, record_version } => self.on_index_for_revoke(reply, record, record_version),
            Phase::CommittingRevoke => match commit_outcome(&reply) {
                CommitOutcome::Committed => {
                    let t = &self.token;
                    self.audit.push(AuditEvent::new(AuditKind::ReuseDetected, &t.user, Some(&t.sid), self.now, self.client.as_ref()));
                    done(Err(Error::new(
                        ErrorCode::RefreshTokenReused,
                        "this refresh token was already used; the session has been revoked, sign in again",
                    )))
                }
                CommitOutcome::Conflict => self.on_conflict(),
                CommitOutcome::Unexpected => unexpected(),
            },
            Phase::Done => unexpected(),
        };
    }

    fn take_audit(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit)
    }
}
