//! The `store` setting: which store keeps the sessions, and where it is.
//!
//! One value for every backend: a word (`memory`, `durable`, `kv`) or a URL
//! whose scheme names the backend (`redis://`, `redis-sentinel://`, ...). A new
//! backend (`postgres://`, `mysql://`, `sqlite:<path>`, the Worker's `d1`) is
//! one more variant and one more arm of [`StoreSetting::parse`].

use super::parse::Problem;

/// Where sessions live. `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSetting {
    /// `memory`: in the process (`tollgate serve`'s default).
    Memory,
    /// `redis://`, `rediss://`, `redis-sentinel://` or `redis-cluster://` (`tollgate serve`).
    Redis(RedisTarget),
    /// `durable`: one Durable Object per user (the Worker's default).
    DurableObjects,
    /// `kv`: Workers KV.
    WorkersKv,
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

const CHOICES: &str = "memory, redis://, rediss://, redis-sentinel://, redis-cluster:// (tollgate serve), durable or kv (the Worker)";

impl StoreSetting {
    pub fn parse(text: &str) -> Result<StoreSetting, Problem> {
        let text = text.trim();
        Ok(match text.split_once("://") {
            None if text == "memory" => StoreSetting::Memory,
            None if text == "durable" => StoreSetting::DurableObjects,
            None if text == "kv" => StoreSetting::WorkersKv,
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
            other => f.write_str(other.kind()),
        }
    }
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The user information of a URL may hold a password: shown redacted.
            RedisTarget::Url(url) => match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1))) {
                Some((scheme, host)) => write!(f, "{scheme}://<redacted>@{host}"),
                None => f.write_str(url),
            },
            RedisTarget::Sentinel { sentinels, master } => write!(f, "Sentinel {master} via {sentinels:?}"),
            RedisTarget::Cluster { nodes } => write!(f, "Cluster {nodes:?}"),
        }
    }
}
