//! Verify an access token: signature and claims (`Stateless`), and in `Strict`
//! mode also the session record, so a revoked or expired session fails at once.
//!
//! Round trips (strict): one read; plus one commit at most once per touch
//! interval, when the sliding expiry is moved.

use super::*;
use crate::engine::jwt::AccessClaims;
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::check_sid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// Signature and claims only: no store access. Revocation shows once the token expires.
    Stateless,
    /// Also reads the session: revoked or expired sessions fail at once.
    Strict,
}

/// A verified access token, and in strict mode its session.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub claims: AccessClaims,
    pub session: Option<SessionInfo>,
}

enum Phase {
    CheckingSignature,
    /// The session of `claims` is being read.
    ReadSession,
    Touching {
        info: SessionInfo,
    },
    /// Finished: the result was handed to `pending`; a further reply is a driver bug.
    Done,
}

pub struct Verify<'c> {
    rules: &'c Rules,
    token: String,
    mode: VerifyMode,
    now: u64,
    attempts: Attempts,
    claims: Option<AccessClaims>,
    phase: Phase,
    pending: Pending<Verified>,
}

impl<'c> Verify<'c> {
    pub fn new(rules: &'c Rules, token: &str, mode: VerifyMode, now: u64) -> Self {
        let mut op = Self::waiting(rules, mode, now);
        // Refuse oversize input before copying it.
        if token.len() > rules.policy.claims.max_token_bytes {
            op.pending = done(Err(Error::token_invalid("the access token exceeds the size limit")));
            return op;
        }
        op.token = token.to_owned();
        op.pending = op.start();
        op
    }

    /// A strict verify of a token whose signature and claims the caller has checked
    /// already ([`jwt::verify_hmac`], the HMAC fast path): it starts at the session read.
    pub fn of_checked(rules: &'c Rules, claims: AccessClaims, now: u64) -> Self {
        let mut op = Self::waiting(rules, VerifyMode::Strict, now);
        op.pending = op.after_signature(Ok(claims));
        op
    }

    /// The operation before its first step: no token, no claims, nothing pending.
    fn waiting(rules: &'c Rules, mode: VerifyMode, now: u64) -> Self {
        Verify {
            rules,
            token: String::new(),
            mode,
            now,
            attempts: Attempts::new(rules),
            claims: None,
            phase: Phase::CheckingSignature,
            pending: Pending::Waiting,
        }
    }

    fn start(&mut self) -> Pending<Verified> {
        let parsed = match jwt::parse(&self.token, &self.rules.keys, &self.rules.policy.claims) {
            Ok(p) => p,
            Err(e) => return done(Err(e)),
        };
        match jwt::check_hmac(&parsed) {
            Some(Ok(())) => {
                let claims = jwt::check_claims(&parsed, &self.rules.policy.claims, self.now);
                self.after_signature(claims)
            }
            Some(Err(e)) => done(Err(e)),
            None => Pending::Crypto(CryptoCmd::VerifySignature {
                alg: parsed.key.alg(),
                kid: parsed.key.kid().to_owned(),
                message: parsed.signing_input.as_bytes().to_vec(),
                signature: parsed.signature.into_vec(),
            }),
        }
    }

    fn on_signature(&mut self, ok: bool) -> Pending<Verified> {
        if !ok {
            return done(Err(Error::token_invalid("the token signature does not verify")));
        }
        // Parsing again is cheaper than keeping borrowed parts across the await.
        let claims = jwt::parse(&self.token, &self.rules.keys, &self.rules.policy.claims)
            .and_then(|p| jwt::check_claims(&p, &self.rules.policy.claims, self.now));
        self.after_signature(claims)
    }

    fn after_signature(&mut self, claims: Result<AccessClaims, Error>) -> Pending<Verified> {
        let claims = match claims {
            Ok(c) => c,
            Err(e) => return done(Err(e)),
        };
        if self.mode == VerifyMode::Stateless {
            return done(Ok(Verified { claims, session: None }));
        }
        let Some(sid) = claims.sid() else {
            return done(Err(Error::token_invalid("strict verification needs a session id (sid) in the token")));
        };
        if let Err(e) = check_sid(sid) {
            return done(Err(e));
        }
        self.claims = Some(claims);
        self.read()
    }

    /// The user and session id of the claims being verified (checked by `after_signature`).
    fn user_and_sid(&self) -> Option<(&str, &str)> {
        let claims = self.claims.as_ref()?;
        Some((claims.sub(), claims.sid()?))
    }

    fn read(&mut self) -> Pending<Verified> {
        let Some((user, sid)) = self.user_and_sid() else { return unexpected() };
        let keys = session_and_markers(self.rules, user, sid);
        self.phase = Phase::ReadSession;
        Pending::Store(StoreCmd::Get { keys })
    }

    fn on_session(&mut self, reply: Reply) -> Pending<Verified> {
        let Some(SessionSlots { record: slot, marker, all }) = session_and_markers_reply(self.rules, reply) else { return unexpected() };
        let Some(slot) = slot else { return done(Err(Error::session_not_found())) };
        let Some((user, sid)) = self.user_and_sid() else { return unexpected() };
        let mut record = match decode_record(self.rules, &slot, user, sid) {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        if let Err(e) = check_markers(&record, marker.as_ref(), all.as_ref()).and_then(|()| record.check_live(self.now)) {
            return done(Err(e));
        }
        let policy = &self.rules.policy;
        let stale = record.has_stale_rotation(self.now, policy.refresh_grace_ms);
        if stale || self.now.saturating_sub(record.last_seen) >= policy.touch_interval_ms {
            // A touch is due, or a sealed successor outlived its window: it must not stay in the store.
            record.retire_rotations(self.now, policy.refresh_grace_ms, policy.reuse_memory);
            record.last_seen = self.now;
            record.idle_expires_at = (self.now + policy.idle_ttl_ms).min(record.absolute_expires_at);
            let info = SessionInfo::from(&record);
            self.phase = Phase::Touching { info };
            return Pending::Store(StoreCmd::Commit { ops: vec![put_record(self.rules, &record, Expect::Version(slot.version))] });
        }
        self.finish(SessionInfo::from(&record))
    }

    fn finish(&mut self, info: SessionInfo) -> Pending<Verified> {
        match self.claims.take() {
            Some(claims) => done(Ok(Verified { claims, session: Some(info) })),
            None => unexpected(),
        }
    }
}

impl Operation for Verify<'_> {
    type Output = Verified;

    fn poll(&mut self) -> Step<Verified> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::CheckingSignature => match reply {
                Reply::Verified(ok) => self.on_signature(ok),
                _ => unexpected(),
            },
            Phase::ReadSession => self.on_session(reply),
            Phase::Touching { info } => match commit_outcome(&reply) {
                CommitOutcome::Committed => self.finish(info),
                // Someone else wrote the session (a touch, a rotation, a revocation): read it again.
                CommitOutcome::Conflict if self.attempts.retry() => self.read(),
                CommitOutcome::Conflict => done(Err(Error::conflict())),
                CommitOutcome::Unexpected => unexpected(),
            },
            Phase::Done => unexpected(),
        };
    }
}
