//! The `store` setting: which store keeps the sessions, and where it is.
//!
//! One value for every backend: a word (`memory`, `durable`, `kv`, `d1`) or a
//! URL whose scheme names the backend (`redis://`, `redis-sentinel://`,
//! `sqlite:<path>`, `postgres://`, `mysql://`, ...). A new backend is one more
//! variant and one more arm of [`StoreSetting::parse`].

use super::parse::Problem;

/// Where sessions live. `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSetting {
    /// `memory`: in the process, lost when it ends.
    Memory,
    /// `redis://`, `rediss://`, `redis-sentinel://` or `redis-cluster://` (`tollgate serve`).
    Redis(RedisTarget),
    /// `durable`: one Durable Object per user (the Worker's default).
    DurableObjects,
    /// `kv`: Workers KV.
    WorkersKv,
    /// `sqlite:<path>`, `postgres://...`, `mysql://...` (`tollgate serve`; its
    /// default is SQLite, `sessions.db` in the `data_dir` setting's directory).
    Sql(SqlTarget),
    /// `d1`: a Cloudflare D1 database (the Worker's binding `TOLLGATE_DB`).
    D1,
}

/// Which SQL database, and where.
#[derive(Clone, PartialEq, Eq)]
pub enum SqlTarget {
    /// A SQLite file: `sqlite:<path>` (created when missing, with its directory).
    Sqlite(String),
    /// `postgres://` or `postgresql://[user[:password]@]host[:port]/database[?options]`.
    Postgres(String),
    /// `mysql://` or `mariadb://[user[:password]@]host[:port]/database[?options]`.
    MySql(String),
}

impl SqlTarget {
    /// The URL `SqlStore::connect` takes.
    pub fn url(&self) -> String {
        match self {
            SqlTarget::Sqlite(path) => format!("sqlite:{path}"),
            SqlTarget::Postgres(url) | SqlTarget::MySql(url) => url.clone(),
        }
    }
}

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
    Url(String),
    /// A Sentinel group: `redis-sentinel://host:port,host:port/<master name>`.
    Sentinel { sentinels: Vec<String>, master: String },
    /// A Cluster: `redis-cluster://host:port,host:port` (some of its nodes; the rest are discovered).
    Cluster { nodes: Vec<String> },
}

/// The stores `tollgate serve` takes, for messages.
pub const SERVE_CHOICES: &str = "memory, sqlite:<path>, postgres://, mysql://, redis://, rediss://, redis-sentinel:// or redis-cluster://";
/// The stores the Worker takes, for messages.
pub const WORKER_CHOICES: &str = "durable, kv or d1";
const CHOICES: &str = "memory, sqlite:<path>, postgres://, mysql://, redis://, rediss://, redis-sentinel://, redis-cluster:// (tollgate serve), durable, kv or d1 (the Worker)";

impl StoreSetting {
    pub fn parse(text: &str) -> Result<StoreSetting, Problem> {
        let text = text.trim();
        Ok(match text.split_once("://") {
            None if text == "memory" => StoreSetting::Memory,
            None if text == "durable" => StoreSetting::DurableObjects,
            None if text == "kv" => StoreSetting::WorkersKv,
            None if text == "d1" => StoreSetting::D1,
            None if text.starts_with("sqlite:") => {
                let path = &text["sqlite:".len()..];
                if path.is_empty() || path.contains('?') || path.starts_with(':') {
                    return Err("is a SQLite store without a file: sqlite:<path>, e.g. sqlite:/var/lib/tollgate/sessions.db".into());
                }
                StoreSetting::Sql(SqlTarget::Sqlite(path.to_owned()))
            }
            Some(("sqlite", path)) if !path.is_empty() && !path.contains('?') => StoreSetting::Sql(SqlTarget::Sqlite(path.to_owned())),
            Some((scheme @ ("postgres" | "postgresql" | "mysql" | "mariadb"), rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
                    return Err("is a database URL without a host".into());
                }
                match scheme {
                    "postgres" | "postgresql" => StoreSetting::Sql(SqlTarget::Postgres(text.to_owned())),
                    _ => StoreSetting::Sql(SqlTarget::MySql(text.to_owned())),
                }
            }
            Some(("redis" | "rediss", rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
                    return Err("is a Redis URL without a host".into());
                }
                StoreSetting::Redis(RedisTarget::Url(text.to_owned()))
            }
            Some(("redis-sentinel", rest)) => {
                let needs_master = "needs the master's name: redis-sentinel://host:port,host:port/<master>";
                let (nodes, master) = rest.split_once('/').ok_or(needs_master)?;
                if master.is_empty() || master.contains('/') {
                    return Err(needs_master.into());
                }
                StoreSetting::Redis(RedisTarget::Sentinel { sentinels: nodes_of(nodes)?, master: master.to_owned() })
            }
            Some(("redis-cluster", rest)) => StoreSetting::Redis(RedisTarget::Cluster { nodes: nodes_of(rest.trim_end_matches('/'))? }),
            _ => return Err(format!("is not a store: give one of {CHOICES}")),
        })
    }

    /// The word or URL scheme that names this store, for messages and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreSetting::Memory => "memory",
            StoreSetting::Redis(RedisTarget::Url(url)) if url.starts_with("rediss://") => "rediss",
            StoreSetting::Redis(RedisTarget::Url(_)) => "redis",
            StoreSetting::Redis(RedisTarget::Sentinel { .. }) => "redis-sentinel",
            StoreSetting::Redis(RedisTarget::Cluster { .. }) => "redis-cluster",
            StoreSetting::DurableObjects => "durable",
            StoreSetting::WorkersKv => "kv",
            StoreSetting::Sql(SqlTarget::Sqlite(_)) => "sqlite",
            StoreSetting::Sql(SqlTarget::Postgres(_)) => "postgres",
            StoreSetting::Sql(SqlTarget::MySql(_)) => "mysql",
            StoreSetting::D1 => "d1",
        }
    }
}

/// `host:port,host:port`: each with a host and a port number.
fn nodes_of(list: &str) -> Result<Vec<String>, Problem> {
    let nodes: Vec<String> = list.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    if nodes.is_empty() {
        return Err("names no host:port".into());
    }
    for node in &nodes {
        let ok = node.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err("has an address that is not host:port".into());
        }
    }
    Ok(nodes)
}

impl std::fmt::Debug for StoreSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSetting::Redis(target) => write!(f, "Redis({target:?})"),
            StoreSetting::Sql(SqlTarget::Sqlite(path)) => write!(f, "sqlite:{path}"),
            StoreSetting::Sql(SqlTarget::Postgres(url) | SqlTarget::MySql(url)) => f.write_str(&without_password(url)),
            other => f.write_str(other.kind()),
        }
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Url(url) => f.write_str(&without_password(url)),
            RedisTarget::Sentinel { sentinels, master } => write!(f, "Sentinel {master} via {sentinels:?}"),
            RedisTarget::Cluster { nodes } => write!(f, "Cluster {nodes:?}"),
        }
    }
}

/// A URL with its user information (which may hold a password) redacted. Query
/// options are left out too: some drivers take a password there.
fn without_password(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(u, _)| u);
    match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1))) {
        Some((scheme, host)) => format!("{scheme}://<redacted>@{host}"),
        None => url.to_owned(),
    }
}
