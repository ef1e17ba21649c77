//! [`RedisStore`]: connects the configured topology and answers the Store
//! contract with the codec's keys, values and commits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{ConnectionAddr, Value};

use super::calls::{self, describe, unavailable, Backend, Calls, Request};
use super::codec::{self, KeyPrefix};
use super::config::{config_error, tcp_settings, with_tcp_settings, RedisConfig, Topology};
use super::sentinel::Sentinel;
use crate::engine::error::Error;
use crate::engine::step::{Versioned, WriteOp};
use crate::store::{Caps, CommitResult, Store, StoreError};

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

struct Inner {
    calls: Calls,
    prefix: KeyPrefix,
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
            .field("key_prefix", &self.inner.prefix.as_str())
            .field("stats", &self.stats())
            .finish()
    }
}

/// A fresh commit version: 64 random bits, never zero.
fn commit_version() -> Result<u64, StoreError> {
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).map_err(|_| StoreError::unavailable("the system random number generator failed"))?;
    Ok(codec::commit_version(random))
}

impl RedisStore {
    /// Connects, and checks the server answers (`store_unavailable` if not,
    /// `config_invalid` for a bad configuration).
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let prefix = config.validate()?;
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
                (Backend::Single(conn), Caps { atomic: true, consistent: true, min_ttl_ms: 1, lists: true }, "single")
            }
            Topology::Sentinel { sentinels, master } => {
                let s = Sentinel::connect(&config, sentinels, master).await?;
                (Backend::Sentinel(s), Caps { atomic: true, consistent: false, min_ttl_ms: 1, lists: true }, "sentinel")
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
                (Backend::Cluster(conn), Caps { atomic: true, consistent: true, min_ttl_ms: 1, lists: true }, "cluster")
            }
        };
        let store = RedisStore { inner: Arc::new(Inner { calls: Calls::new(backend, config.operation_timeout), prefix, caps, name }) };
        store.ping().await?;
        super::eviction::check(&store.inner.calls.backend, config.eviction_check, config.operation_timeout).await?;
        super::eviction::warn_if_evicted(&store.inner.calls.backend, config.operation_timeout).await;
        Ok(store)
    }

    /// Shorthand for [`RedisStore::connect`] with [`RedisConfig::from_url`].
    pub async fn from_url(url: &str) -> Result<Self, Error> {
        Self::connect(RedisConfig::from_url(url)?).await
    }

    /// Checks the (master) server answers.
    pub async fn ping(&self) -> Result<(), Error> {
        // A read of a key no one writes: the same path as every read.
        self.inner.calls.call(Request::get(self.inner.prefix.as_str(), ["ping"].into_iter())).await?;
        Ok(())
    }

    /// The keys Redis has evicted since it started, summed over every master (INFO
    /// `evicted_keys`), or `None` when the server will not say. Above zero, tollgate's
    /// indexes or revocation markers may have been lost: poll it from monitoring; under
    /// `maxmemory-policy noeviction` it stays 0. Connect logs a warning when it is not.
    pub async fn evicted_keys(&self) -> Option<u64> {
        let calls = &self.inner.calls;
        super::eviction::evicted_keys(&calls.backend, calls.operation_timeout).await
    }

    pub fn key_prefix(&self) -> &str {
        self.inner.prefix.as_str()
    }

    /// `single`, `sentinel` or `cluster`.
    pub fn topology(&self) -> &'static str {
        self.inner.name
    }

    pub fn stats(&self) -> RedisStats {
        let calls = &self.inner.calls;
        RedisStats {
            round_trips: calls.counters.round_trips.load(Ordering::Relaxed),
            script_loads: calls.counters.script_loads.load(Ordering::Relaxed),
            master_switches: match &calls.backend {
                Backend::Sentinel(s) => s.switches(),
                _ => 0,
            },
        }
    }

    /// The address of the master in use (Sentinel), for tests and logs.
    pub fn current_master(&self) -> Option<String> {
        match &self.inner.calls.backend {
            Backend::Sentinel(s) => {
                let link = s.current();
                Some(format!("{}:{}", link.addr.0, link.addr.1))
            }
            _ => None,
        }
    }
}

/// An `MGET` answer as the codec takes it.
fn mget_items(reply: Value) -> Result<Vec<Option<Bytes>>, StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::corrupt("MGET answered something other than an array"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => Ok(Some(Bytes::from(bytes))),
            _ => Err(StoreError::corrupt("MGET answered a value that is not a string")),
        })
        .collect()
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let asked = keys.len();
        let reply = self.inner.calls.call(Request::get(self.inner.prefix.as_str(), keys.iter().map(String::as_str))).await?;
        codec::decode_values(mget_items(reply)?, asked)
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        Ok(self.commit_versioned(&ops).await?.0)
    }

    /// Every put of a commit carries the commit's version, chosen here.
    async fn commit_versioned(&self, ops: &[WriteOp]) -> Result<(CommitResult, Option<u64>), StoreError> {
        let version = commit_version()?;
        if ops.is_empty() {
            return Ok((CommitResult::Committed, Some(version)));
        }
        let call = codec::encode_commit(&self.inner.prefix, ops, version);
        let reply = self.inner.calls.call(Request::Commit(call)).await?;
        Ok((calls::commit_result(&reply)?, Some(version)))
    }

    fn caps(&self) -> Caps {
        self.inner.caps
    }
}
