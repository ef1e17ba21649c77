//! Issue a session: read the user's index, apply the per-user limit, mint the
//! tokens, and commit the record and the index together.
//!
//! Round trips: one read and one commit; one more read when the user is at the
//! limit (the records of the sessions it may evict, and of any that may have idled out).
//!
//! On a store that appends ([`Caps::lists`](crate::store::Caps)), see
//! [`Issue::one_trip`]: one commit, the record created and its entry appended to
//! the index, refused by the store when the index already holds the limit's
//! worth of entries; then the path above (which prunes and evicts) runs.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::*;
use crate::engine::error::ErrorCode;
use crate::engine::policy::LimitPolicy;
use crate::engine::record::{index_key, session_key, IndexEntry, RecordFormat, SessionRecord, UserIndex};
use crate::engine::step::{Operation, Reply, Step, StoreCmd};
use crate::engine::token::{check_user_id, hash_secret, RefreshToken};

enum Phase {
    ReadIndex,
    /// Reading the records of index entries: those past their idle hint, and
    /// those the limit may evict (their tombstones keep the refresh hash).
    CheckRecords {
        index: UserIndex,
        index_version: Expect,
        read: Vec<usize>,
    },
    Signing {
        ops: Vec<WriteOp>,
    },
    Committing,
    /// Finished: the result was handed to `pending`; a further reply is a driver bug.
    Done,
}

/// Whether the next commit is the one-trip sign-in (no read before it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The store appends and nothing has been tried: try one commit first.
    OneTrip,
    /// Read the index, prune, evict, commit with the index's version expected.
    ReadFirst,
}

pub struct Issue<'c> {
    rules: &'c Rules,
    user: String,
    claims: Map<String, Value>,
    metadata: Value,
    now: u64,
    entropy: Entropy,
    attempts: Attempts,
    access: AccessToken,
    phase: Phase,
    pending: Pending<Tokens>,
    record: Option<SessionRecord>,
    evicted: Vec<String>,
    /// Live records read for eviction candidates, with their versions.
    candidates: Vec<(SessionRecord, u64)>,
    /// The client of the sign-in, kept in the record.
    client: Option<ClientInfo>,
    audit: Vec<AuditEvent>,
    path: Path,
}

impl<'c> Issue<'c> {
    /// `claims` go into every access token of the session; `metadata` is stored with it.
    pub fn new(rules: &'c Rules, user: &str, claims: Map<String, Value>, metadata: Value, now: u64, entropy: Entropy) -> Self {
        let mut op = Issue {
            rules,
            user: user.to_owned(),
            claims,
            metadata,
            now,
            entropy,
            attempts: Attempts::new(rules),
            access: AccessToken::None,
            phase: Phase::ReadIndex,
            pending: Pending::Waiting,
            record: None,
            evicted: Vec::new(),
            candidates: Vec::new(),
            client: None,
            audit: Vec::new(),
            path: Path::ReadFirst,
        };
        op.pending = match op.validate() {
            Ok(()) => op.read_index(),
            Err(e) => done(Err(e)),
        };
        op
    }

    /// Records `client` (IP and user agent) with the new session.
    pub fn with_client(mut self, client: ClientInfo) -> Self {
        self.client = Some(client);
        if self.path == Path::OneTrip {
            // The one-trip commit was built already: build it again with the client.
            self.pending = self.append_commit();
        }
        self
    }

    /// Signs in with one round trip when `store_appends` (the store's
    /// [`Caps::lists`](crate::store::Caps)) and records are written compact:
    /// one commit creates the record and appends its entry to the index. The
    /// store refuses the append when the index already holds
    /// `max_sessions_per_user` entries (live or not), so the limit stays exact;
    /// the operation then reads the index and goes on as without appends (the
    /// read prunes, the limit evicts or refuses). With `record_format = json`
    /// the index stays JSON for earlier releases, which cannot be appended to.
    pub fn one_trip(mut self, store_appends: bool) -> Self {
        let compact = self.rules.policy.record_format == RecordFormat::Compact;
        if store_appends && compact && matches!(self.phase, Phase::ReadIndex) && matches!(self.pending, Pending::Store(_)) {
            self.path = Path::OneTrip;
            self.pending = self.append_commit();
        }
        self
    }

    fn append_commit(&mut self) -> Pending<Tokens> {
        self.evicted.clear();
        let record = self.new_record();
        let Some(bytes) = IndexEntry::of(&record).encode() else { return self.read_index() };
        let ops = vec![
            put_record(self.rules, &record, Expect::Absent),
            WriteOp::Append {
                key: index_key(&self.user),
                entry: Bytes::from(bytes),
                max_entries: self.rules.policy.max_sessions_per_user,
                expires_at: record.absolute_expires_at,
            },
        ];
        self.sign_then_commit(record, ops)
    }

    fn validate(&self) -> Result<(), Error> {
        check_user_id(&self.user)?;
        if let Some(name) = self.claims.keys().find(|k| jwt::RESERVED_CLAIMS.contains(&k.as_str())) {
            return Err(Error::bad_request(format!("the claim {name:?} is set by tollgate; choose another name")));
        }
        let claims_len = serde_json::to_vec(&self.claims).map(|v| v.len()).unwrap_or(usize::MAX);
        if claims_len > self.rules.policy.max_claims_bytes {
            return Err(Error::bad_request(format!(
                "custom claims are {claims_len} bytes as JSON; the limit is {} bytes",
                self.rules.policy.max_claims_bytes
            )));
        }
        check_metadata(self.rules, &self.metadata)
    }

    fn read_index(&mut self) -> Pending<Tokens> {
        self.phase = Phase::ReadIndex;
        Pending::Store(StoreCmd::Get { keys: vec![index_key(&self.user)] })
    }

    fn on_index(&mut self, reply: Reply) -> Pending<Tokens> {
        let Some(mut v) = values(reply, 1) else { return unexpected() };
        let slot = v.pop().flatten();
        let index_version = expect_of(&slot);
        let mut index = match UserIndex::decode(slot.as_ref().map(|s| &s.value[..])) {
            Ok(i) => i,
            Err(e) => return done(Err(e)),
        };
        index.prune_certain(self.now);
        self.candidates.clear();
        let limit = self.rules.policy.max_sessions_per_user as usize;
        if index.sessions.len() >= limit {
            // Entries past their idle hint may have idled out, or been touched since: ask their records.
            // When evicting, also the oldest that may go: whatever dies among the others, the
            // evicted are among these, and their tombstones keep the holder's refresh hash.
            let evictable = if self.rules.policy.limit_policy == LimitPolicy::EvictOldest { index.sessions.len() + 1 - limit } else { 0 };
            let read: Vec<usize> =
                (0..index.sessions.len()).filter(|&i| i < evictable || index.sessions[i].idle_hint <= self.now).collect();
            if !read.is_empty() {
                let keys = read.iter().map(|&i| session_key(&self.user, &index.sessions[i].sid)).collect();
                self.phase = Phase::CheckRecords { index, index_version, read };
                return Pending::Store(StoreCmd::Get { keys });
            }
        }
        self.decide(index, index_version)
    }

    fn on_records(&mut self, reply: Reply, mut index: UserIndex, index_version: Expect, read: Vec<usize>) -> Pending<Tokens> {
        let Some(v) = values(reply, read.len()) else { return unexpected() };
        let mut dead = vec![false; index.sessions.len()];
        for (slot, &i) in v.into_iter().zip(&read) {
            let entry = &mut index.sessions[i];
            match slot.as_ref().map(|s| (decode_record(self.rules, s, &self.user, &entry.sid), s.version)) {
                Some((Ok(r), version)) if r.check_live(self.now).is_ok() => {
                    entry.idle_hint = r.idle_expires_at;
                    self.candidates.push((r, version));
                }
                Some((Err(e), _)) => return done(Err(e)),
                _ => dead[i] = true,
            }
        }
        let mut i = 0;
        index.sessions.retain(|_| {
            i += 1;
            !dead[i - 1]
        });
        self.decide(index, index_version)
    }

    fn decide(&mut self, mut index: UserIndex, index_version: Expect) -> Pending<Tokens> {
        let (rules, now) = (self.rules, self.now);
        let mut ops = Vec::new();
        self.evicted.clear();
        let over = (index.sessions.len() + 1).saturating_sub(rules.policy.max_sessions_per_user as usize);
        if over > 0 {
            if rules.policy.limit_policy == LimitPolicy::Refuse {
                tracing::info!(target: "tollgate::security", event = "limit_hit", user = %self.user, "session limit refused a new session");
                return done(Err(Error::new(
                    ErrorCode::SessionLimit,
                    format!("the user already has {} sessions, the limit; revoke one first", index.sessions.len()),
                )));
            }
            for entry in index.sessions.drain(..over) {
                tracing::info!(target: "tollgate::security", event = "limit_evicted", user = %self.user, "session limit evicted the oldest session");
                // The record as read keeps its refresh hash, so its holder is told `session_revoked`.
                let op = match self.candidates.iter().position(|(r, _)| r.sid == entry.sid) {
                    Some(i) => {
                        let (record, version) = self.candidates.swap_remove(i);
                        put_record(rules, &tombstone(record, now), Expect::Version(version))
                    }
                    None => put_record(rules, &tombstone_for(&self.user, &entry, now), Expect::Any),
                };
                ops.push(op);
                ops.extend(put_revoked(rules, &self.user, &entry.sid, entry.absolute_expires_at, now));
                self.evicted.push(entry.sid);
            }
        }
        let record = self.new_record();
        index.sessions.push(IndexEntry::of(&record));
        ops.push(put_record(self.rules, &record, Expect::Absent));
        ops.push(put_index(self.rules, &self.user, &index, index_version));
        self.sign_then_commit(record, ops)
    }

    /// The new session's record (its sid and secret come from the entropy, so a retry makes the same one).
    fn new_record(&self) -> SessionRecord {
        let (rules, now) = (self.rules, self.now);
        let sid = self.entropy.sid();
        let secret = self.entropy.secret(rules, &self.user, &sid, 0);
        let mut record = SessionRecord {
            v: SessionRecord::new_format(),
            sid: sid.clone(),
            user: self.user.clone(),
            created_at: now,
            last_seen: now,
            idle_expires_at: (now + rules.policy.idle_ttl_ms).min(now + rules.policy.absolute_ttl_ms),
            absolute_expires_at: now + rules.policy.absolute_ttl_ms,
            generation: 0,
            refresh_hash: hash_secret(&secret),
            recent: Vec::new(),
            retired: Vec::new(),
            revoked_at: None,
            claims: self.claims.clone(),
            metadata: self.metadata.clone(),
            ip: None,
            user_agent: None,
        };
        if let Some(client) = &self.client {
            record.set_client(client);
        }
        record
    }

    fn sign_then_commit(&mut self, record: SessionRecord, ops: Vec<WriteOp>) -> Pending<Tokens> {
        let rules = self.rules;
        let jti = self.entropy.jti();
        let mint = jwt::Mint {
            sub: &self.user,
            sid: &record.sid,
            jti: &jti,
            now_ms: self.now,
            ttl_ms: rules.policy.access_ttl_ms,
            extra: &self.claims,
        };
        let begun = self.access.begin(rules, &mint);
        self.record = Some(record);
        match begun {
            Some(cmd) => {
                self.phase = Phase::Signing { ops };
                Pending::Crypto(cmd)
            }
            None => self.commit(ops),
        }
    }

    fn commit(&mut self, ops: Vec<WriteOp>) -> Pending<Tokens> {
        self.phase = Phase::Committing;
        Pending::Store(StoreCmd::Commit { ops })
    }

    fn finish(&mut self) -> Pending<Tokens> {
        let (Some(record), Some(access)) = (self.record.take(), self.access.token()) else { return unexpected() };
        let secret = self.entropy.secret(self.rules, &self.user, &record.sid, 0);
        let client = self.client.as_ref();
        for sid in &self.evicted {
            self.audit.push(AuditEvent::new(AuditKind::LimitEvicted, &self.user, Some(sid), self.now, client));
        }
        self.audit.push(AuditEvent::new(AuditKind::Issued, &self.user, Some(&record.sid), self.now, client));
        done(Ok(Tokens {
            access_token: access.to_owned(),
            access_expires_at: (self.now + self.rules.policy.access_ttl_ms) / 1000 * 1000,
            refresh_token: RefreshToken::format(&self.rules.policy.refresh_prefix, &self.user, &record.sid, &secret),
            session: SessionInfo::from(&record),
            evicted: std::mem::take(&mut self.evicted),
        }))
    }
}

impl Operation for Issue<'_> {
    type Output = Tokens;

    fn poll(&mut self) -> Step<Tokens> {
        self.pending.take()
    }

    fn handle(&mut self, reply: Reply) {
        self.pending = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::ReadIndex => self.on_index(reply),
            Phase::CheckRecords { index, index_version, read } => self.on_records(reply, index, index_version, read),
            Phase::Signing { ops } => {
                if self.access.accept(reply) {
                    self.commit(ops)
                } else {
                    unexpected()
                }
            }
            Phase::Committing => match commit_outcome(&reply) {
                CommitOutcome::Committed => self.finish(),
                // The store refused the append (the index is full, or JSON) or the record
                // exists: not a lost race, so no attempt is spent; the read path decides.
                CommitOutcome::Conflict if self.path == Path::OneTrip => {
                    self.path = Path::ReadFirst;
                    self.read_index()
                }
                CommitOutcome::Conflict if self.attempts.retry() => self.read_index(),
                CommitOutcome::Conflict => done(Err(Error::conflict())),
                CommitOutcome::Unexpected => unexpected(),
            },
            Phase::Done => unexpected(),
        };
    }

    fn take_audit(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit)
    }
}
