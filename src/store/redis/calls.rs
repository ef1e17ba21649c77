//! Calls to Redis: one `MGET` or one commit, sent over the topology's
//! connections within a deadline, retried only when that is safe, and every
//! failure classified and described without its arguments.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};
use tokio::time::Instant;

use super::codec::{self, CommitCall, ErrorReply, COMMIT_SCRIPT};
use super::config::ReplicaAcks;
use super::sentinel::Sentinel;
use crate::store::{CommitResult, StoreError};

/// Attempts of one call at most, all inside its deadline.
const MAX_ATTEMPTS: u32 = 6;

/// The connections of one topology.
pub(super) enum Backend {
    Single(ConnectionManager),
    Sentinel(Arc<Sentinel>),
    Cluster(ClusterConnection),
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) round_trips: AtomicU64,
    pub(super) script_loads: AtomicU64,
}

/// One call's request, ready to send.
pub(super) enum Request {
    /// `MGET` of full keys.
    Get(Cmd),
    Commit(CommitCall),
}

impl Request {
    /// `MGET` of `prefix` + each key, written straight into the command: no string per key.
    pub(super) fn get<'k>(prefix: &str, keys: impl ExactSizeIterator<Item = &'k str>) -> Request {
        let mut c = Cmd::with_capacity(keys.len() + 1, 4 + keys.len() * (prefix.len() + 48));
        c.arg("MGET");
        let mut key = Vec::with_capacity(prefix.len() + 48);
        for k in keys {
            key.clear();
            key.extend_from_slice(prefix.as_bytes());
            key.extend_from_slice(k.as_bytes());
            c.arg(&key[..]);
        }
        Request::Get(c)
    }
}

/// Sends requests over a backend.
pub(super) struct Calls {
    pub(super) backend: Backend,
    pub(super) counters: Counters,
    script_sha: String,
    pub(super) operation_timeout: Duration,
}

pub(super) fn unavailable(what: &str, e: &RedisError) -> StoreError {
    StoreError::unavailable(format!("redis {what}: {}", describe(e)))
}

/// A short description of a Redis error: its category and code, never the
/// command (whose arguments hold session data).
pub(super) fn describe(e: &RedisError) -> String {
    match e.code() {
        Some(code) => format!("{} ({code})", e.category()),
        None if e.is_timeout() => "timed out".into(),
        None if e.is_connection_refusal() => "connection refused".into(),
        None if e.is_io_error() => "connection lost".into(),
        None => e.category().to_owned(),
    }
}

/// What a failed call says about sending it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The server certainly did not run it (refused it, or was never
    /// reached): safe to send again; the topology may have changed.
    Refused,
    /// The connection failed under it: it may have run; the topology may
    /// have changed (Sentinel asks again for the master).
    Lost,
    /// A key holds another Redis type: not tollgate's data.
    WrongType,
    /// Anything else: it may have run.
    Other,
}

fn classify(e: &RedisError) -> Failure {
    let text = format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""));
    match (e.kind(), codec::classify_error(text.trim())) {
        (_, ErrorReply::WrongType) => Failure::WrongType,
        (
            ErrorKind::Server(
                ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly,
            ),
            _,
        )
        | (_, ErrorReply::Refused) => Failure::Refused,
        _ if e.is_connection_refusal() => Failure::Refused,
        (ErrorKind::Io | ErrorKind::ClusterConnectionNotFound, _) => Failure::Lost,
        _ => Failure::Other,
    }
}

/// What a call can fail with besides Redis errors.
enum CallError {
    Redis(RedisError),
    /// The commit ran, but fewer replicas than asked confirmed it.
    NotReplicated {
        acked: i64,
        wanted: u32,
    },
    Corrupt(&'static str),
}

impl From<RedisError> for CallError {
    fn from(e: RedisError) -> Self {
        CallError::Redis(e)
    }
}

fn script_cmd(name: &str, head: &str, call: &CommitCall) -> Cmd {
    let bytes = call.keys.iter().map(String::len).sum::<usize>() + call.args.iter().map(Vec::len).sum::<usize>();
    let mut c = Cmd::with_capacity(3 + call.keys.len() + call.args.len(), name.len() + head.len() + 4 + bytes);
    c.arg(name).arg(head).arg(call.keys.len());
    for k in &call.keys {
        c.arg(k);
    }
    for a in &call.args {
        c.arg(&a[..]);
    }
    c
}

/// Connections hand a server's error back as a value; make it an error.
fn server_error(v: Value) -> Result<Value, RedisError> {
    match v {
        Value::ServerError(e) => Err(e.into()),
        v => Ok(v),
    }
}

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// The commit script's answer, 1 or 0.
pub(super) fn commit_result(v: &Value) -> Result<CommitResult, StoreError> {
    match v {
        Value::Int(n) => codec::commit_result(*n),
        _ => Err(StoreError::corrupt("the commit script answered something other than a number")),
    }
}

impl Calls {
    pub(super) fn new(backend: Backend, operation_timeout: Duration) -> Self {
        let script_sha = redis::Script::new(COMMIT_SCRIPT).get_hash().to_owned();
        Calls { backend, counters: Counters::default(), script_sha, operation_timeout }
    }

    /// Sends a request once over `conn` (twice when the script must be loaded).
    async fn send<C: ConnectionLike + Send>(&self, conn: &mut C, req: &Request, acks: Option<ReplicaAcks>) -> Result<Value, CallError> {
        let trip = || self.counters.round_trips.fetch_add(1, Ordering::Relaxed);
        match req {
            Request::Get(cmd) => {
                trip();
                Ok(server_error(conn.req_packed_command(cmd).await?)?)
            }
            Request::Commit(call) => {
                let evalsha = script_cmd("EVALSHA", &self.script_sha, call);
                let reply = match acks {
                    None => {
                        trip();
                        match conn.req_packed_command(&evalsha).await.and_then(server_error) {
                            Err(e) if is_noscript(&e) => {
                                self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                                trip();
                                server_error(conn.req_packed_command(&script_cmd("EVAL", COMMIT_SCRIPT, call)).await?)?
                            }
                            r => r?,
                        }
                    }
                    Some(acks) => match self.send_replicated(conn, evalsha, acks).await {
                        Err(CallError::Redis(e)) if is_noscript(&e) => {
                            self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                            self.send_replicated(conn, script_cmd("EVAL", COMMIT_SCRIPT, call), acks).await?
                        }
                        r => r?,
                    },
                };
                Ok(reply)
            }
        }
    }

    /// The script and `WAIT` in one pipeline: one round trip.
    async fn send_replicated<C: ConnectionLike + Send>(&self, conn: &mut C, script: Cmd, acks: ReplicaAcks) -> Result<Value, CallError> {
        self.counters.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.add_command(script).cmd("WAIT").arg(acks.replicas).arg(acks.timeout.as_millis() as u64);
        pipe.ignore_errors();
        let mut replies = conn.req_packed_commands(&pipe, 0, 2).await?.into_iter();
        let (Some(script_reply), Some(wait_reply)) = (replies.next(), replies.next()) else {
            return Err(CallError::Corrupt("the pipeline answered fewer replies than commands"));
        };
        if let Value::ServerError(e) = script_reply {
            return Err(CallError::Redis(e.into()));
        }
        // A conflict wrote nothing: there is nothing to wait for.
        if commit_result(&script_reply) == Ok(CommitResult::Committed) {
            match wait_reply {
                Value::Int(n) if n >= i64::from(acks.replicas) => {}
                Value::Int(n) => return Err(CallError::NotReplicated { acked: n, wanted: acks.replicas }),
                Value::ServerError(e) => return Err(CallError::Redis(e.into())),
                _ => return Err(CallError::Corrupt("WAIT answered something other than a number")),
            }
        }
        Ok(script_reply)
    }

    /// Runs a request against the backend until it succeeds, fails for good, or
    /// its deadline passes.
    pub(super) async fn call(&self, req: Request) -> Result<Value, StoreError> {
        let read_only = matches!(req, Request::Get(_));
        let what = if read_only { "read" } else { "commit" };
        let deadline = Instant::now() + self.operation_timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut epoch = 0;
            let sent = match &self.backend {
                Backend::Single(conn) => tokio::time::timeout_at(deadline, self.send(&mut conn.clone(), &req, None)).await,
                Backend::Cluster(conn) => tokio::time::timeout_at(deadline, self.send(&mut conn.clone(), &req, None)).await,
                Backend::Sentinel(s) => {
                    let link = s.current();
                    epoch = link.epoch;
                    let (mut conn, acks) = if read_only { (link.reads.clone(), None) } else { (link.writer(), s.acks) };
                    tokio::time::timeout_at(deadline, self.send(&mut conn, &req, acks)).await
                }
            };
            let e = match sent {
                Ok(Ok(v)) => return Ok(v),
                Err(_) => {
                    if let Backend::Sentinel(s) = &self.backend {
                        s.suspect(epoch);
                    }
                    return Err(StoreError::unavailable(format!(
                        "redis {what}: no answer within {} ms",
                        self.operation_timeout.as_millis()
                    )));
                }
                Ok(Err(CallError::Corrupt(m))) => return Err(StoreError::corrupt(m)),
                Ok(Err(CallError::NotReplicated { acked, wanted })) => {
                    if let Backend::Sentinel(s) = &self.backend {
                        s.suspect(epoch);
                    }
                    return Err(StoreError::unavailable(format!(
                        "redis commit: {acked} of {wanted} replicas confirmed it in time; it may or may not have been kept"
                    )));
                }
                Ok(Err(CallError::Redis(e))) => e,
            };
            let failure = classify(&e);
            if failure == Failure::WrongType {
                return Err(StoreError::corrupt(format!(
                    "redis {what}: a key holds another Redis type than tollgate writes ({})",
                    describe(&e)
                )));
            }
            let topology = matches!(failure, Failure::Refused | Failure::Lost);
            if topology {
                if let Backend::Sentinel(s) = &self.backend {
                    s.reresolve(epoch, deadline).await;
                }
            }
            let pause = Duration::from_millis(10u64 << attempt.min(5));
            // A refused connection is retried once: a server that is down should
            // fail its callers fast, not after a series of pauses.
            let budget = if e.is_connection_refusal() { 2 } else { MAX_ATTEMPTS };
            let retry = (failure == Failure::Refused || (read_only && topology)) && attempt < budget && Instant::now() + pause < deadline;
            if !retry {
                tracing::debug!(target: "tollgate::redis", error = %describe(&e), attempt, "redis call failed");
                return Err(unavailable(what, &e));
            }
            tracing::debug!(target: "tollgate::redis", error = %describe(&e), attempt, "redis call retried");
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_one_mget_of_the_prefixed_keys() {
        let Request::Get(cmd) = Request::get("tg:", ["s:{u:a}:x", "ra:{u:a}"].into_iter()) else { panic!("not a read") };
        assert_eq!(cmd.get_packed_command(), b"*3\r\n$4\r\nMGET\r\n$12\r\ntg:s:{u:a}:x\r\n$11\r\ntg:ra:{u:a}\r\n".to_vec());
        let call = CommitCall { keys: vec!["tg:i:{u:a}".into()], args: vec![b"*".to_vec(), vec![0xF1, 0]] };
        let packed = script_cmd("EVALSHA", "abc", &call).get_packed_command();
        assert_eq!(packed, b"*6\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$10\r\ntg:i:{u:a}\r\n$1\r\n*\r\n$2\r\n\xF1\x00\r\n".to_vec());
    }

    #[test]
    fn failures_are_classified_by_what_they_say_about_running() {
        // A server's error reply, parsed the way the connection parses it.
        let server = |line: &str| -> RedisError {
            let reply = format!("-{line}\r\n");
            match redis::parse_redis_value(reply.as_bytes()) {
                Ok(redis::Value::ServerError(e)) => e.into(),
                other => panic!("unexpected parse {other:?}"),
            }
        };
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&refused), Failure::Refused);
        assert_eq!(classify(&reset), Failure::Lost);
        assert_eq!(classify(&server("READONLY You can't write against a read only replica.")), Failure::Refused);
        assert_eq!(classify(&server("MOVED 3999 127.0.0.1:6381")), Failure::Refused);
        assert_eq!(classify(&server("TRYAGAIN Multiple keys request during rehashing of slot")), Failure::Refused);
        // A script's error names the refusal of the command inside it: Redis 6 wraps it, Redis 7 keeps its code.
        let wrapped = server("ERR Error running script: @user_script:52: NOREPLICAS Not enough good replicas to write.");
        assert_eq!(classify(&wrapped), Failure::Refused);
        let kept = server("NOREPLICAS Not enough good replicas to write. script: 0f3a, on @user_script:40.");
        assert_eq!(classify(&kept), Failure::Refused);
        let wrong_type = server("WRONGTYPE Operation against a key holding the wrong kind of value script: 0f3a, on @user_script:21.");
        assert_eq!(classify(&wrong_type), Failure::WrongType);
        assert_eq!(classify(&server("ERR wrong number of arguments")), Failure::Other);
    }
}
