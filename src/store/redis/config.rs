//! Where Redis is and how long to wait for it: [`RedisConfig`] and its parts
//! (topology, credentials, TLS, timeouts, replica acknowledgements).

use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use redis::io::tcp::TcpSettings;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo, RedisError};

use super::calls::describe;
use super::codec::{KeyPrefix, DEFAULT_PREFIX};
use super::eviction::EvictionPolicyCheck;
use crate::engine::error::{Error, ErrorCode};

/// Where the servers are.
#[derive(Clone)]
pub(super) enum Topology {
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
pub(super) struct Tls {
    pub(super) on: bool,
    /// A PEM CA bundle to trust instead of the system's roots.
    pub(super) root_ca: Option<Vec<u8>>,
}

impl Tls {
    pub(super) fn addr(&self, host: &str, port: u16) -> ConnectionAddr {
        if self.on {
            ConnectionAddr::TcpTls { host: host.to_owned(), port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        }
    }

    /// A client for `info`, trusting the configured CA when there is one.
    pub(super) fn client(&self, info: ConnectionInfo) -> Result<redis::Client, Error> {
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
    pub(super) topology: Topology,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) sentinel_username: Option<String>,
    pub(super) sentinel_password: Option<String>,
    pub(super) db: i64,
    pub(super) key_prefix: String,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) operation_timeout: Duration,
    pub(super) replica_acks: Option<ReplicaAcks>,
    pub(super) tls: Tls,
    pub(super) eviction_check: EvictionPolicyCheck,
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
            .field("eviction_check", &self.eviction_check)
            .finish()
    }
}

pub(super) fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
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
            key_prefix: DEFAULT_PREFIX.into(),
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
            replica_acks,
            tls: Tls::default(),
            eviction_check: EvictionPolicyCheck::default(),
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
    /// What to do at connect when a master's `maxmemory-policy` is not `noeviction` (and so
    /// may evict session indexes): refuse (the default) or warn. A server that does not
    /// answer `CONFIG GET` is warned about either way.
    pub fn eviction_policy_check(mut self, check: EvictionPolicyCheck) -> Self {
        self.eviction_check = check;
        self
    }

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

    pub(super) fn validate(&self) -> Result<KeyPrefix, Error> {
        let prefix = KeyPrefix::new(self.key_prefix.clone())?;
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
        Ok(prefix)
    }

    /// Credentials, database and protocol of the data nodes.
    pub(super) fn node_settings(&self) -> RedisConnectionInfo {
        let mut s = RedisConnectionInfo::default().set_db(self.db).set_protocol(ProtocolVersion::RESP3);
        if let Some(u) = &self.username {
            s = s.set_username(u);
        }
        if let Some(p) = &self.password {
            s = s.set_password(p);
        }
        s
    }

    pub(super) fn manager_config(&self) -> ConnectionManagerConfig {
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
        RedisServerConfig { host: "127.0.0.1".into(), port: 6379, password: None, db: 0, key_prefix: DEFAULT_PREFIX.into() }
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

/// The connection settings of one sentinel or node.
pub(super) fn node_info(addr: &(String, u16), settings: RedisConnectionInfo, tls: &Tls) -> Result<ConnectionInfo, Error> {
    with_tcp_settings(tls.addr(&addr.0, addr.1), settings)
}

/// No Nagle delay: many calls share a connection, and a request written while
/// the server holds the connection (`WAIT`) would otherwise sit in the kernel
/// until a delayed ACK, 40 ms later.
pub(super) fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

pub(super) fn with_tcp_settings(addr: ConnectionAddr, settings: RedisConnectionInfo) -> Result<ConnectionInfo, Error> {
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
}
