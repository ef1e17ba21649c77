//! The Redis store: one server, a Sentinel group, or a Cluster (feature `redis`).
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate::Error> {
//! use tollgate::store::redis::{RedisConfig, RedisStore};
//! let store = RedisStore::connect(RedisConfig::from_url("redis://:secret@127.0.0.1:6379/0")?.key_prefix("tg:")).await?;
//! let sentinel = RedisStore::connect(RedisConfig::sentinel(["10.0.0.1:26379", "10.0.0.2:26379"], "mymaster")?).await?;
//! let cluster = RedisStore::connect(RedisConfig::cluster(["10.0.0.1:7000", "10.0.0.2:7000"])?).await?;
//! # Ok(()) }
//! ```
//!
//! Needs Redis 6.2 or later (`SET .. PXAT`, RESP3).
//!
//! # Key layout
//!
//! Every key is `<prefix><core key>`; the prefix defaults to `tg:` and may not
//! contain `{` or `}`, so the core's hash tag stays the one Redis Cluster hashes:
//!
//! | key                     | holds                                              |
//! |-------------------------|----------------------------------------------------|
//! | `tg:s:{u:<user>}:<sid>` | a session record                                   |
//! | `tg:i:{u:<user>}`       | the user's session index                           |
//! | `tg:c:{u:<user>}`       | cached user info                                   |
//! | `tg:ver:{u:<user>}`     | the user's version counter (written by the script) |
//!
//! All keys of one user share a slot, so every read is one `MGET` and every
//! commit one script, on one node, in one round trip.
//!
//! # Values and versions
//!
//! A value is a Redis string: its version as 16 lowercase hex digits, then the
//! payload. Versions come from a per-user counter, `max(last + 1, server time
//! in µs)`, written by the same script as the values. The counter expires no
//! earlier than any value it versioned, and when it is gone, restarts from the
//! server clock, past every version it gave: a key deleted and created again
//! never gets a version seen before (no ABA). Expiry is Redis's own (`SET ..
//! PXAT <expires_at>`), so an expired value reads as nothing at once; a put
//! whose `expires_at` has passed (by the server's clock) is a delete.
//!
//! # Commits
//!
//! One Lua script (`commit.lua`, run by `EVALSHA`) checks every expectation,
//! then applies every write: all or nothing, and atomic because Redis runs a
//! script alone. When a server does not know the script (`NOSCRIPT`: after a
//! restart, a failover or `SCRIPT FLUSH`) the store sends it whole with `EVAL`,
//! which also caches it again: one more round trip, once per server.
//!
//! # Round trips per operation
//!
//! | operation     | round trips                                                    |
//! |---------------|----------------------------------------------------------------|
//! | strict verify | 1 (`MGET`); plus 1 at most once per touch interval             |
//! | issue         | 2 (`MGET` of the index, one commit)                            |
//! | refresh       | 2 (`MGET` of session and index, one commit)                    |
//! | revoke        | 2 (`MGET`, one commit)                                         |
//!
//! A conflict (another writer got there first) costs the operation's round
//! trips again. [`RedisStore::stats`] counts what was sent; the `redis_bench`
//! example prints it per operation.
//!
//! # Failures
//!
//! Every call has a deadline ([`RedisConfig::operation_timeout`], 3 s by
//! default; connecting is bounded by `connect_timeout` (500 ms), each reply by
//! `response_timeout` (2 s)). When Redis is down, calls answer `store_unavailable`
//! (connection refused answers at once) and nothing panics; connections come
//! back by themselves when the server does. A call is retried inside its
//! deadline only when it certainly did not run (connection refused, `MOVED`,
//! `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`, `LOADING`, `NOREPLICAS`, ...) or
//! when it only reads; a commit whose reply was lost is not sent twice.
//!
//! # Sentinel
//!
//! The store asks the sentinels for the master (`SENTINEL
//! get-master-addr-by-name`), subscribes on every sentinel to the failover's
//! announcements and moves at the first of them:
//! `+failover-state-send-slaveof-noone` (the replica is being promoted),
//! `+promoted-slave` (about a second later) or `+switch-master` (at the end).
//! Waiting for `+switch-master` alone left writes going to the old master for
//! about 1.2 s here. For 3 s after such an event, errors do not send the store
//! back to the master the sentinels still name until the failover ends;
//! otherwise it asks the sentinels again whenever the master errs (connection
//! lost, `READONLY` from a demoted master).
//!
//! A failover can still lose writes the old master acknowledged but had not
//! passed to the replica that was promoted, or took after the promotion. Two
//! settings close that window:
//!
//! - [`RedisConfig::replica_acks`] (on by default for Sentinel: one replica,
//!   500 ms): each commit is followed, in the same round trip, by `WAIT 1 500`,
//!   and is reported committed only once a replica holds it. A commit the
//!   replicas did not confirm answers `store_unavailable` (it may or may not
//!   survive). The cost: a commit waits for the replica, and `WAIT` holds its
//!   connection meanwhile, so commits use four connections in turn and reads
//!   one of their own; while the master has no replica in sync, each commit
//!   fails after the 500 ms.
//! - `min-replicas-to-write 1` and `min-replicas-max-lag 1` on the servers: a
//!   master cut off from its replicas refuses writes (`NOREPLICAS`) after about
//!   a second. It narrows the window on the server side for every client, but
//!   alone leaves that second open; `replica_acks` closes it.
//!
//! Measured on loopback (`tests/redis_faults.rs`, a forced `SENTINEL FAILOVER`
//! under four writer tasks per store): with `replica_acks`, 0 acknowledged
//! writes lost in every run, about 17 commits answered `store_unavailable`
//! during the failover. Without it, 4,526 of 21,729 acknowledged writes were
//! lost when following `+switch-master` only, 2,227 of 14,526 when moving at the first
//! event but letting errors send the store back, and 0 once the hold above was
//! added (a race the client wins on loopback, not a guarantee). With the
//! master killed instead, the sentinels replaced it after about 2.3 s, about
//! 150 calls per store answered `store_unavailable` meanwhile, and no
//! acknowledged write was lost with or without `replica_acks`.
//!
//! `caps().consistent` is false for Sentinel: between a promotion and the
//! moment a client hears of it, that client may still read the old master.
//!
//! # Cluster
//!
//! The cluster client follows `MOVED`/`ASK`, retries `TRYAGAIN`/`CLUSTERDOWN`
//! and refreshes its slot map on its own; the store retries, inside the call's
//! deadline, what reaches it anyway and certainly did not run. A manual
//! `CLUSTER FAILOVER` loses nothing (the replica catches up first) and no call
//! fails (measured: thousands of commits and session calls across it, none
//! failed); an automatic failover after a crash can lose the last writes, as in
//! Redis. One caveat from Redis itself: a manual failover asked of a replica
//! too soon after an earlier one stalls, and its master pauses writes for up
//! to 5 s, longer than the default 3 s deadline. `replica_acks` is not used on
//! a Cluster.
//!
//! # TLS
//!
//! With the `redis-tls` feature (rustls with ring), `rediss://` URLs and
//! `RedisConfig::tls(true)` connect over TLS to every node and sentinel,
//! checking certificates against the system's roots or a CA given with
//! `RedisConfig::tls_root_ca`. Without the feature, `rediss://` is refused
//! with a clear error. Tested here on one server (the conformance suite over
//! TLS, and an untrusted certificate refused); Sentinel and Cluster over TLS
//! use the same settings but were not run against TLS servers.

mod sentinel;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo, RedisError, ServerErrorKind,
    Value,
};
use tokio::time::Instant;

use super::{Caps, CommitResult, Store, StoreError};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::record::hash_tag;
use crate::engine::step::{Expect, Versioned, WriteOp};

const COMMIT_SCRIPT: &str = include_str!("redis/commit.lua");
/// Bytes of the version header in front of every stored value.
const HEADER: usize = 16;
/// Attempts of one call at most, all inside its deadline.
const MAX_ATTEMPTS: u32 = 6;

/// Where the servers are.
#[derive(Clone)]
enum Topology {
    Single(ConnectionAddr),
    Sentinel { sentinels: Vec<(String, u16)>, master: String },
    Cluster(Vec<(String, u16)>),
}

/// After each commit, wait until this many replicas hold it (`WAIT`), or answer
/// `store_unavailable`. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaAcks {
    pub replicas: u32,
    pub timeout: Duration,
}

/// TLS to every node (and sentinel): on with `rediss://` or
/// [`RedisConfig::tls`], feature `redis-tls`.
#[derive(Clone, Default)]
pub(crate) struct Tls {
    on: bool,
    /// A PEM CA bundle to trust instead of the system's roots.
    root_ca: Option<Vec<u8>>,
}

impl Tls {
    fn addr(&self, host: &str, port: u16) -> ConnectionAddr {
        if self.on {
            ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        }
    }

    /// A client for `info`, trusting the configured CA when there is one.
    fn client(&self, info: ConnectionInfo) -> Result<redis::Client, Error> {
        let bad = |e: RedisError| config_error(format!("bad Redis connection settings ({})", describe(&e)));
        #[cfg(feature = "redis-tls")]
        if self.on {
            // redis's rustls needs a process-wide crypto provider; an
            // application that installed one first keeps its own.
            let _ = rustls::crypto::ring::default_provider().install_default();
            if let Some(ca) = &self.root_ca {
                let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(ca.clone()) };
                return redis::Client::build_with_tls(info, certs).map_err(bad);
            }
        }
        redis::Client::open(info).map_err(bad)
    }
}

/// How to reach Redis and how long to wait for it.
///
/// `Debug` never shows passwords.
#[derive(Clone)]
pub struct RedisConfig {
    topology: Topology,
    username: Option<String>,
    password: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
    db: i64,
    key_prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
    replica_acks: Option<ReplicaAcks>,
    tls: Tls,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        let topology = match &self.topology {
            Topology::Single(addr) => format!("single {addr}"),
            Topology::Sentinel { sentinels, master } => format!("sentinel {master} via {sentinels:?}"),
            Topology::Cluster(nodes) => format!("cluster {nodes:?}"),
        };
        f.debug_struct("RedisConfig")
            .field("topology", &topology)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &redact(&self.sentinel_password))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("replica_acks", &self.replica_acks)
            .field("tls", &self.tls.on)
            .field("tls_root_ca", &self.tls.root_ca.is_some())
            .finish()
    }
}

fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorCode::ConfigInvalid, message)
}

/// Parses `host:port` (or `[v6]:port`).
fn parse_addr(s: &str) -> Result<(String, u16), Error> {
    let s = s.trim();
    let (host, port) = s.rsplit_once(':').ok_or_else(|| config_error(format!("`{s}` is not host:port")))?;
    let port = port.parse::<u16>().map_err(|_| config_error(format!("`{s}` has no valid port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(config_error(format!("`{s}` has no host")));
    }
    Ok((host.to_owned(), port))
}

fn parse_addrs<I, S>(addrs: I, what: &str) -> Result<Vec<(String, u16)>, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let list = addrs.into_iter().map(|a| parse_addr(a.as_ref())).collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err(config_error(format!("no {what} given")));
    }
    Ok(list)
}

impl RedisConfig {
    fn new(topology: Topology) -> Self {
        let replica_acks = match topology {
            Topology::Sentinel { .. } => Some(ReplicaAcks { replicas: 1, timeout: Duration::from_millis(500) }),
            _ => None,
        };
        RedisConfig {
            topology,
            username: None,
            password: None,
            sentinel_username: None,
            sentinel_password: None,
            db: 0,
            key_prefix: "tg:".into(),
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
            replica_acks,
            tls: Tls::default(),
        }
    }

    /// One server: `redis://[[user]:password@]host[:port][/db]`, or
    /// `rediss://..` for TLS (feature `redis-tls`).
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let tls = url.starts_with("rediss://");
        if tls && !cfg!(feature = "redis-tls") {
            return Err(config_error("rediss:// (TLS) needs tollgate's `redis-tls` feature; or use redis:// behind a TLS tunnel"));
        }
        let info = url.into_connection_info().map_err(|e| config_error(format!("the Redis URL does not parse ({})", describe(&e))))?;
        let settings = info.redis_settings();
        let mut config = RedisConfig::new(Topology::Single(info.addr().clone()));
        config.tls.on = tls;
        config.username = settings.username().map(str::to_owned);
        config.password = settings.password().map(str::to_owned);
        config.db = settings.db();
        Ok(config)
    }

    /// One server at `host:port`.
    pub fn server(host: impl Into<String>, port: u16) -> Self {
        RedisConfig::new(Topology::Single(ConnectionAddr::Tcp(host.into(), port)))
    }

    /// A Sentinel group: the sentinels' `host:port` and the master's name.
    pub fn sentinel<I, S>(sentinels: I, master_name: impl Into<String>) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let master = master_name.into();
        if master.is_empty() {
            return Err(config_error("the Sentinel master name is empty"));
        }
        Ok(RedisConfig::new(Topology::Sentinel { sentinels: parse_addrs(sentinels, "sentinel")?, master }))
    }

    /// A Cluster: some of its nodes' `host:port` (the rest are discovered).
    pub fn cluster<I, S>(nodes: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(RedisConfig::new(Topology::Cluster(parse_addrs(nodes, "cluster node")?)))
    }

    /// The password of the data nodes (`AUTH`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    /// The ACL user of the data nodes.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    /// The sentinels' own credentials, when they differ from the nodes'.
    pub fn sentinel_auth(mut self, username: Option<String>, password: Option<String>) -> Self {
        self.sentinel_username = username;
        self.sentinel_password = password;
        self
    }
    /// The database number (single server and Sentinel; a Cluster has only 0).
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }
    /// Prepended to every key; default `tg:`. May not contain `{` or `}`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }
    /// Longest wait to open one connection; default 500 ms.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Longest wait for one reply; default 2 s.
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d;
        self
    }
    /// Deadline of one store call, retries and re-resolving the master
    /// included; default 3 s.
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }
    /// TLS to every node and sentinel (feature `redis-tls`; `rediss://` URLs
    /// turn it on by themselves).
    #[cfg(feature = "redis-tls")]
    pub fn tls(mut self, on: bool) -> Self {
        self.tls.on = on;
        self
    }
    /// Trust this PEM CA bundle instead of the system's roots (and turn TLS on).
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.on = true;
        self.tls.root_ca = Some(pem.into());
        self
    }
    /// Replicas that must hold a commit before it is reported (Sentinel only;
    /// default one replica within 500 ms). `None` reports a commit once the
    /// master has applied it.
    pub fn replica_acks(mut self, acks: Option<ReplicaAcks>) -> Self {
        self.replica_acks = acks;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if self.key_prefix.contains(['{', '}']) {
            return Err(config_error("the Redis key prefix may not contain `{` or `}` (it would change the hash tag)"));
        }
        if matches!(self.topology, Topology::Cluster(_)) && self.db != 0 {
            return Err(config_error("a Redis Cluster has only database 0"));
        }
        if self.operation_timeout.is_zero() || self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(config_error("Redis timeouts must be longer than zero"));
        }
        if let Some(acks) = self.replica_acks {
            if acks.replicas == 0 || acks.timeout.is_zero() {
                return Err(config_error("replica_acks needs at least one replica and a timeout above zero"));
            }
        }
        Ok(())
    }

    /// Credentials, database and protocol of the data nodes.
    fn node_settings(&self) -> RedisConnectionInfo {
        let mut s = RedisConnectionInfo::default().set_db(self.db).set_protocol(ProtocolVersion::RESP3);
        if let Some(u) = &self.username {
            s = s.set_username(u);
        }
        if let Some(p) = &self.password {
            s = s.set_password(p);
        }
        s
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            // Reconnecting while the server is down must fail fast: the next call tries again.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200))
    }
}

/// The seed-style configuration of one server, e.g. from a config file.
/// `Debug` never shows the password.
#[derive(Clone, serde::Deserialize)]
#[serde(default)]
pub struct RedisServerConfig {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub db: i64,
    pub key_prefix: String,
}

impl Default for RedisServerConfig {
    fn default() -> Self {
        RedisServerConfig { host: "127.0.0.1".into(), port: 6379, password: None, db: 0, key_prefix: "tg:".into() }
    }
}

impl std::fmt::Debug for RedisServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl From<RedisServerConfig> for RedisConfig {
    fn from(c: RedisServerConfig) -> Self {
        let mut config = RedisConfig::server(c.host, c.port).db(c.db).key_prefix(c.key_prefix);
        config.password = c.password;
        config
    }
}

/// What the store has sent, for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Requests sent and answered or failed: one per `MGET`, commit, or `EVAL` reload.
    pub round_trips: u64,
    /// Times the commit script was sent whole after `NOSCRIPT`.
    pub script_loads: u64,
    /// Times a Sentinel store moved to another master.
    pub master_switches: u64,
}

#[derive(Default)]
struct Counters {
    round_trips: AtomicU64,
    script_loads: AtomicU64,
}

enum Backend {
    Single(ConnectionManager),
    Sentinel(Arc<sentinel::Sentinel>),
    Cluster(ClusterConnection),
}

struct Inner {
    backend: Backend,
    prefix: String,
    script_sha: String,
    operation_timeout: Duration,
    counters: Counters,
    caps: Caps,
    name: &'static str,
}

/// The Redis store. Cloning shares the connections; every clone multiplexes
/// its calls over them.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("topology", &self.inner.name)
            .field("key_prefix", &self.inner.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

fn unavailable(what: &str, e: &RedisError) -> StoreError {
    StoreError::unavailable(format!("redis {what}: {}", describe(e)))
}

/// A short description of a Redis error: its category and code, never the
/// command (whose arguments hold session data).
fn describe(e: &RedisError) -> String {
    match e.code() {
        Some(code) => format!("{} ({code})", e.category()),
        None if e.is_timeout() => "timed out".into(),
        None if e.is_connection_refusal() => "connection refused".into(),
        None if e.is_io_error() => "connection lost".into(),
        None => e.category().to_owned(),
    }
}

/// How a failed call may be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Failure {
    /// The server certainly did not run the call: sending it again is safe.
    not_run: bool,
    /// The topology may have changed (Sentinel asks again for the master).
    topology: bool,
}

fn classify(e: &RedisError) -> Failure {
    // A script's error carries the code of the command that failed inside it.
    let text = e.to_string();
    let refused_inside =
        ["READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING", "TRYAGAIN", "CLUSTERDOWN"].iter().any(|code| text.contains(code));
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly,
        ) => Failure { not_run: true, topology: true },
        _ if refused_inside => Failure { not_run: true, topology: true },
        _ if e.is_connection_refusal() => Failure { not_run: true, topology: true },
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => Failure { not_run: false, topology: true },
        _ => Failure { not_run: false, topology: false },
    }
}

/// One call's request, ready to send.
enum Request {
    Get(Cmd),
    Commit { keys: Vec<Vec<u8>>, args: Vec<Vec<u8>> },
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

fn script_cmd(name: &str, head: &str, keys: &[Vec<u8>], args: &[Vec<u8>]) -> Cmd {
    let mut c = redis::cmd(name);
    c.arg(head).arg(keys.len());
    for k in keys {
        c.arg(&k[..]);
    }
    for a in args {
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

fn parse_commit_reply(v: &Value) -> Result<CommitResult, CallError> {
    match v {
        Value::Int(1) => Ok(CommitResult::Committed),
        Value::Int(0) => Ok(CommitResult::Conflict),
        _ => Err(CallError::Corrupt("the commit script answered something other than 0 or 1")),
    }
}

impl Inner {
    fn full_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    fn get_request(&self, keys: &[String]) -> Request {
        let mut c = redis::cmd("MGET");
        for k in keys {
            c.arg(self.full_key(k));
        }
        Request::Get(c)
    }

    fn commit_request(&self, ops: &[WriteOp]) -> Request {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(ops.len() + 1);
        let mut counters: Vec<String> = Vec::with_capacity(1);
        let mut args: Vec<Vec<u8>> = Vec::with_capacity(1 + ops.len() * 6);
        args.push(ops.len().to_string().into_bytes());
        for op in ops {
            let key = self.full_key(op.key());
            let counter = format!("{}ver:{{{}}}", self.prefix, hash_tag(&key));
            let counter_index = match counters.iter().position(|c| *c == counter) {
                Some(i) => i + 1,
                None => {
                    counters.push(counter);
                    counters.len()
                }
            };
            keys.push(key.into_bytes());
            let (kind, expires_at, value) = match op {
                WriteOp::Put { value, expires_at, .. } => ("P", *expires_at, &value[..]),
                WriteOp::Delete { .. } => ("D", 0, &b""[..]),
            };
            let (expect, version) = match op.expect() {
                Expect::Absent => ("A", String::new()),
                Expect::Version(v) => ("V", format!("{v:016x}")),
                Expect::Any => ("*", String::new()),
            };
            args.push(kind.into());
            args.push(expect.into());
            args.push(version.into_bytes());
            args.push(expires_at.to_string().into_bytes());
            args.push(counter_index.to_string().into_bytes());
            args.push(value.to_vec());
        }
        keys.extend(counters.into_iter().map(String::into_bytes));
        Request::Commit { keys, args }
    }

    /// Sends a request once over `conn` (twice when the script must be loaded).
    async fn send<C: ConnectionLike + Send>(&self, conn: &mut C, req: &Request, acks: Option<ReplicaAcks>) -> Result<Value, CallError> {
        let trip = || self.counters.round_trips.fetch_add(1, Ordering::Relaxed);
        match req {
            Request::Get(cmd) => {
                trip();
                Ok(server_error(conn.req_packed_command(cmd).await?)?)
            }
            Request::Commit { keys, args } => {
                let evalsha = script_cmd("EVALSHA", &self.script_sha, keys, args);
                let reply = match acks {
                    None => {
                        trip();
                        match conn.req_packed_command(&evalsha).await.and_then(server_error) {
                            Err(e) if is_noscript(&e) => {
                                self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                                trip();
                                server_error(conn.req_packed_command(&script_cmd("EVAL", COMMIT_SCRIPT, keys, args)).await?)?
                            }
                            r => r?,
                        }
                    }
                    Some(acks) => match self.send_replicated(conn, evalsha, acks).await {
                        Err(CallError::Redis(e)) if is_noscript(&e) => {
                            self.counters.script_loads.fetch_add(1, Ordering::Relaxed);
                            self.send_replicated(conn, script_cmd("EVAL", COMMIT_SCRIPT, keys, args), acks).await?
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
        if parse_commit_reply(&script_reply)? == CommitResult::Committed {
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
    async fn call(&self, req: Request) -> Result<Value, StoreError> {
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
            if failure.topology {
                if let Backend::Sentinel(s) = &self.backend {
                    s.reresolve(epoch, deadline).await;
                }
            }
            let pause = Duration::from_millis(10u64 << attempt.min(5));
            // A refused connection is retried once: a server that is down should
            // fail its callers fast, not after a series of pauses.
            let budget = if e.is_connection_refusal() { 2 } else { MAX_ATTEMPTS };
            let retry = (failure.not_run || (read_only && failure.topology)) && attempt < budget && Instant::now() + pause < deadline;
            if !retry {
                tracing::debug!(target: "tollgate::redis", error = %describe(&e), attempt, "redis call failed");
                return Err(unavailable(what, &e));
            }
            tracing::debug!(target: "tollgate::redis", error = %describe(&e), attempt, "redis call retried");
            tokio::time::sleep(pause).await;
        }
    }
}

fn parse_values(v: Value, n: usize) -> Result<Vec<Option<Versioned>>, StoreError> {
    let Value::Array(items) = v else {
        return Err(StoreError::corrupt("MGET answered something other than an array"));
    };
    if items.len() != n {
        return Err(StoreError::corrupt("MGET answered the wrong number of values"));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => decode_value(bytes).map(Some),
            _ => Err(StoreError::corrupt("MGET answered a value that is not a string")),
        })
        .collect()
}

fn decode_value(bytes: Vec<u8>) -> Result<Versioned, StoreError> {
    let header = bytes.get(..HEADER).ok_or_else(|| StoreError::corrupt("a stored value has no version header"))?;
    let version = std::str::from_utf8(header)
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| StoreError::corrupt("a stored value has an unreadable version header"))?;
    Ok(Versioned { value: Bytes::from(bytes).slice(HEADER..), version })
}

impl RedisStore {
    /// Connects, and checks the server answers (`store_unavailable` if not,
    /// `config_invalid` for a bad configuration).
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        config.validate()?;
        let sha = redis::Script::new(COMMIT_SCRIPT).get_hash().to_owned();
        let (backend, caps, name) = match &config.topology {
            Topology::Single(addr) => {
                // `.tls(true)` on a host:port configuration.
                let addr = match addr {
                    ConnectionAddr::Tcp(host, port) if config.tls.on => config.tls.addr(host, *port),
                    other => other.clone(),
                };
                let client = config.tls.client(with_tcp_settings(addr, config.node_settings())?)?;
                let conn = ConnectionManager::new_lazy_with_config(client, config.manager_config())
                    .map_err(|e| config_error(format!("bad Redis settings ({})", describe(&e))))?;
                (Backend::Single(conn), Caps { atomic: true, consistent: true, min_ttl_ms: 1 }, "single")
            }
            Topology::Sentinel { sentinels, master } => {
                let s = sentinel::Sentinel::connect(&config, sentinels, master).await?;
                (Backend::Sentinel(s), Caps { atomic: true, consistent: false, min_ttl_ms: 1 }, "sentinel")
            }
            Topology::Cluster(nodes) => {
                let mut b = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.response_timeout)
                    .tcp_settings(tcp_settings())
                    .retries(8)
                    .min_retry_wait(10)
                    .max_retry_wait(300);
                if let Some(u) = &config.username {
                    b = b.username(u);
                }
                if let Some(p) = &config.password {
                    b = b.password(p);
                }
                #[cfg(feature = "redis-tls")]
                if config.tls.on {
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    b = b.tls(redis::TlsMode::Secure);
                    if let Some(ca) = &config.tls.root_ca {
                        b = b.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(ca.clone()) });
                    }
                }
                let client = b.build().map_err(|e| config_error(format!("bad Redis Cluster settings ({})", describe(&e))))?;
                let conn = tokio::time::timeout(config.operation_timeout, client.get_async_connection())
                    .await
                    .map_err(|_| StoreError::unavailable("redis cluster: no node answered in time"))?
                    .map_err(|e| unavailable("cluster connect", &e))?;
                (Backend::Cluster(conn), Caps { atomic: true, consistent: true, min_ttl_ms: 1 }, "cluster")
            }
        };
        let store = RedisStore {
            inner: Arc::new(Inner {
                backend,
                prefix: config.key_prefix.clone(),
                script_sha: sha,
                operation_timeout: config.operation_timeout,
                counters: Counters::default(),
                caps,
                name,
            }),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Shorthand for [`RedisStore::connect`] with [`RedisConfig::from_url`].
    pub async fn from_url(url: &str) -> Result<Self, Error> {
        Self::connect(RedisConfig::from_url(url)?).await
    }

    /// Checks the (master) server answers.
    pub async fn ping(&self) -> Result<(), Error> {
        // A read of a key no one writes: the same path as every read.
        self.inner.call(self.inner.get_request(&["ping".to_owned()])).await?;
        Ok(())
    }

    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// `single`, `sentinel` or `cluster`.
    pub fn topology(&self) -> &'static str {
        self.inner.name
    }

    pub fn stats(&self) -> RedisStats {
        RedisStats {
            round_trips: self.inner.counters.round_trips.load(Ordering::Relaxed),
            script_loads: self.inner.counters.script_loads.load(Ordering::Relaxed),
            master_switches: match &self.inner.backend {
                Backend::Sentinel(s) => s.switches(),
                _ => 0,
            },
        }
    }

    /// The address of the master in use (Sentinel), for tests and logs.
    pub fn current_master(&self) -> Option<String> {
        match &self.inner.backend {
            Backend::Sentinel(s) => {
                let link = s.current();
                Some(format!("{}:{}", link.addr.0, link.addr.1))
            }
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.inner.call(self.inner.get_request(&keys)).await?;
        parse_values(reply, keys.len())
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        if ops.is_empty() {
            return Ok(CommitResult::Committed);
        }
        let reply = self.inner.call(self.inner.commit_request(&ops)).await?;
        parse_commit_reply(&reply).map_err(|e| match e {
            CallError::Corrupt(m) => StoreError::corrupt(m),
            _ => StoreError::corrupt("unexpected commit reply"),
        })
    }

    fn caps(&self) -> Caps {
        self.inner.caps
    }
}

/// The connection settings of one sentinel or node.
fn node_info(addr: &(String, u16), settings: RedisConnectionInfo, tls: &Tls) -> Result<ConnectionInfo, Error> {
    with_tcp_settings(tls.addr(&addr.0, addr.1), settings)
}

/// No Nagle delay: many calls share a connection, and a request written while
/// the server holds the connection (`WAIT`) would otherwise sit in the kernel
/// until a delayed ACK, 40 ms later.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

fn with_tcp_settings(addr: ConnectionAddr, settings: RedisConnectionInfo) -> Result<ConnectionInfo, Error> {
    Ok(addr
        .into_connection_info()
        .map_err(|e| config_error(format!("bad Redis address ({})", describe(&e))))?
        .set_redis_settings(settings)
        .set_tcp_settings(tcp_settings()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(parse_addr("127.0.0.1:6379").unwrap(), ("127.0.0.1".into(), 6379));
        assert_eq!(parse_addr("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert!(parse_addr("nohost").is_err());
        assert!(parse_addr(":1").is_err());
        assert!(parse_addr("h:99999").is_err());
    }

    #[test]
    fn debug_hides_passwords() {
        let c = RedisConfig::from_url("redis://user:hunter2-secret@127.0.0.1:6380/3").unwrap();
        assert_eq!(c.db, 3);
        assert_eq!(c.password.as_deref(), Some("hunter2-secret"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let seed = RedisServerConfig { password: Some("hunter2-secret".into()), ..Default::default() };
        assert!(!format!("{seed:?}").contains("hunter2"));
        assert!(!format!("{:?}", RedisConfig::from(seed)).contains("hunter2"));
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(RedisConfig::server("h", 1).key_prefix("a{b").validate().is_err());
        assert!(RedisConfig::cluster(["h:1"]).unwrap().db(2).validate().is_err());
        assert_eq!(RedisConfig::from_url("rediss://h:1").is_ok(), cfg!(feature = "redis-tls"));
        assert!(RedisConfig::from_url("nonsense").is_err());
        assert!(RedisConfig::sentinel(Vec::<String>::new(), "m").is_err());
        assert!(RedisConfig::sentinel(["h:1"], "").is_err());
    }

    #[test]
    fn failures_are_classified_by_what_they_say_about_running() {
        // A server's error reply, parsed the way the connection parses it.
        let server = |code: &str, detail: &str| -> RedisError {
            let reply = format!("-{code} {detail}\r\n");
            match redis::parse_redis_value(reply.as_bytes()) {
                Ok(redis::Value::ServerError(e)) => e.into(),
                other => panic!("unexpected parse {other:?}"),
            }
        };
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&refused), Failure { not_run: true, topology: true });
        assert_eq!(classify(&reset), Failure { not_run: false, topology: true });
        assert_eq!(
            classify(&server("READONLY", "You can't write against a read only replica.")),
            Failure { not_run: true, topology: true }
        );
        assert_eq!(classify(&server("MOVED", "3999 127.0.0.1:6381")), Failure { not_run: true, topology: true });
        assert_eq!(
            classify(&server("TRYAGAIN", "Multiple keys request during rehashing of slot")),
            Failure { not_run: true, topology: true }
        );
        // A script's error names the refusal of the command inside it.
        let in_script = server("ERR", "Error running script: @user_script:52: NOREPLICAS Not enough good replicas to write.");
        assert_eq!(classify(&in_script), Failure { not_run: true, topology: true });
        assert_eq!(classify(&server("ERR", "wrong number of arguments")), Failure { not_run: false, topology: false });
    }

    #[test]
    fn values_decode() {
        let v = decode_value(b"00000000000000ffhello".to_vec()).unwrap();
        assert_eq!(v.version, 255);
        assert_eq!(&v.value[..], b"hello");
        assert!(decode_value(b"short".to_vec()).is_err());
        assert!(decode_value(b"zzzzzzzzzzzzzzzzhello".to_vec()).is_err());
    }
}
