//! Following a Sentinel group's master: ask the sentinels, listen for
//! `+switch-master` on each of them, and ask again when the master errs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisConnectionInfo};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::calls::describe;
use super::config::{config_error, node_info, RedisConfig, ReplicaAcks, Tls};
use crate::engine::error::Error;
use crate::store::StoreError;

/// How long a master announced by a sentinel event is kept despite errors.
const ANNOUNCED_HOLD: Duration = Duration::from_secs(3);

/// Connections for commits to one master (opened when first used).
const WRITE_CONNECTIONS: usize = 4;

/// The connections to one master. Replaced whole when the master changes.
pub(super) struct Link {
    /// Bumped on every replacement, so a failure seen on an old link does not
    /// make anyone replace the new one.
    pub epoch: u64,
    pub addr: (String, u16),
    /// Set when a sentinel event (not an error) led here: for a moment, errors
    /// do not send the store back to what the sentinels answered before.
    announced_at: Option<Instant>,
    pub reads: ConnectionManager,
    /// Commits go on connections of their own: `WAIT` holds a connection
    /// until replicas answer, so reads must not queue behind it, and several
    /// commits can wait at once, one per connection.
    writes: Vec<ConnectionManager>,
    next_write: AtomicUsize,
}

impl Link {
    /// The next commit connection, in turn.
    pub(super) fn writer(&self) -> ConnectionManager {
        let i = self.next_write.fetch_add(1, Ordering::Relaxed) % self.writes.len();
        self.writes[i].clone()
    }
}

pub(super) struct Sentinel {
    sentinels: Vec<redis::Client>,
    tls: Tls,
    master: String,
    node: RedisConnectionInfo,
    manager_config: ConnectionManagerConfig,
    query_config: AsyncConnectionConfig,
    connect_timeout: Duration,
    link: ArcSwap<Link>,
    /// One re-resolution at a time; the others wait for its result.
    resolving: tokio::sync::Mutex<()>,
    switches: AtomicU64,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    pub acks: Option<ReplicaAcks>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let listeners = self.listeners.get_mut().unwrap_or_else(|p| p.into_inner());
        for task in listeners.drain(..) {
            task.abort();
        }
    }
}

impl Sentinel {
    pub(super) async fn connect(config: &RedisConfig, sentinels: &[(String, u16)], master: &str) -> Result<Arc<Self>, Error> {
        let mut sentinel_settings = RedisConnectionInfo::default();
        if let Some(u) = &config.sentinel_username {
            sentinel_settings = sentinel_settings.set_username(u);
        }
        if let Some(p) = &config.sentinel_password {
            sentinel_settings = sentinel_settings.set_password(p);
        }
        let tls = config.tls.clone();
        let sentinel_clients =
            sentinels.iter().map(|a| tls.client(node_info(a, sentinel_settings.clone(), &tls)?)).collect::<Result<Vec<_>, _>>()?;
        let query_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout));
        let node = config.node_settings();
        let manager_config = config.manager_config();
        let deadline = Instant::now() + config.operation_timeout;
        let addr = match tokio::time::timeout_at(deadline, ask(&sentinel_clients, master, &query_config)).await {
            Ok(Some(addr)) => addr,
            _ => return Err(StoreError::unavailable(format!("redis sentinel: no sentinel named a master for `{master}`")).into()),
        };
        let link = open_link(0, addr, &node, &manager_config, &tls)?;
        let this = Arc::new(Sentinel {
            sentinels: sentinel_clients,
            tls,
            master: master.to_owned(),
            node,
            manager_config,
            query_config,
            connect_timeout: config.connect_timeout,
            link: ArcSwap::from_pointee(link),
            resolving: tokio::sync::Mutex::new(()),
            switches: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            acks: config.replica_acks,
        });
        let tasks = this.sentinels.iter().map(|client| tokio::spawn(listen(Arc::downgrade(&this), client.clone()))).collect();
        *this.listeners.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(this)
    }

    pub(super) fn current(&self) -> Arc<Link> {
        self.link.load_full()
    }

    pub(super) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// Moves to `addr` unless the link is already there or was replaced since
    /// `seen_epoch`. `seen_epoch` is `None` for a sentinel event.
    fn install(&self, addr: (String, u16), seen_epoch: Option<u64>, why: &'static str) {
        let current = self.link.load();
        if current.addr == addr || seen_epoch.is_some_and(|e| e != current.epoch) {
            return;
        }
        match open_link(current.epoch + 1, addr, &self.node, &self.manager_config, &self.tls) {
            Ok(mut link) => {
                if seen_epoch.is_none() {
                    link.announced_at = Some(Instant::now());
                }
                tracing::info!(
                    target: "tollgate::redis",
                    master = %self.master,
                    from = %format!("{}:{}", current.addr.0, current.addr.1),
                    to = %format!("{}:{}", link.addr.0, link.addr.1),
                    why,
                    "following the new Redis master"
                );
                self.link.store(Arc::new(link));
                self.switches.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(target: "tollgate::redis", error = %e, "could not open the new master's connections"),
        }
    }

    /// The master failed a call made on the link of `seen_epoch`: asks the
    /// sentinels where it is now, within `deadline`.
    pub(super) async fn reresolve(&self, seen_epoch: u64, deadline: Instant) {
        let Ok(_guard) = tokio::time::timeout_at(deadline, self.resolving.lock()).await else { return };
        let current = self.link.load();
        if current.epoch != seen_epoch {
            return; // someone moved already
        }
        // Just announced by an event: the sentinels still name the old master
        // until the failover ends, and going back there would write to a
        // master about to be demoted. Errors here (READONLY while the replica
        // turns master) are retried on this link instead.
        if current.announced_at.is_some_and(|at| at.elapsed() < ANNOUNCED_HOLD) {
            return;
        }
        if let Ok(Some(addr)) = tokio::time::timeout_at(deadline, ask(&self.sentinels, &self.master, &self.query_config)).await {
            self.install(addr, Some(seen_epoch), "asked after an error");
        }
    }

    /// Like [`Sentinel::reresolve`], in the background: for a caller that has
    /// no time left to wait.
    pub(super) fn suspect(self: &Arc<Self>, seen_epoch: u64) {
        let this = Arc::downgrade(self);
        let budget = self.connect_timeout * 4;
        tokio::spawn(async move {
            if let Some(this) = this.upgrade() {
                this.reresolve(seen_epoch, Instant::now() + budget).await;
            }
        });
    }
}

fn open_link(
    epoch: u64,
    addr: (String, u16),
    node: &RedisConnectionInfo,
    config: &ConnectionManagerConfig,
    tls: &Tls,
) -> Result<Link, Error> {
    let client = tls.client(node_info(&addr, node.clone(), tls)?)?;
    let open = || {
        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| config_error(format!("bad Redis settings ({})", describe(&e))))
    };
    let writes = (0..WRITE_CONNECTIONS).map(|_| open()).collect::<Result<Vec<_>, _>>()?;
    Ok(Link { epoch, reads: open()?, writes, next_write: AtomicUsize::new(0), addr, announced_at: None })
}

/// Asks the sentinels in turn; the first that names a master wins.
async fn ask(sentinels: &[redis::Client], master: &str, config: &AsyncConnectionConfig) -> Option<(String, u16)> {
    for client in sentinels {
        let conn: Result<MultiplexedConnection, _> = client.get_multiplexed_async_connection_with_config(config).await;
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "tollgate::redis", error = %describe(&e), "a sentinel did not answer");
                continue;
            }
        };
        let reply: Result<Option<(String, u16)>, _> =
            redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(master).query_async(&mut conn).await;
        match reply {
            Ok(Some(addr)) => return Some(addr),
            Ok(None) => tracing::warn!(target: "tollgate::redis", master, "a sentinel does not know this master"),
            Err(e) => tracing::debug!(target: "tollgate::redis", error = %describe(&e), "a sentinel refused"),
        }
    }
    None
}

/// Listens to one sentinel for `+switch-master` until the store is dropped,
/// connecting again (after a pause) whenever the sentinel goes away.
async fn listen(this: Weak<Sentinel>, sentinel: redis::Client) {
    let mut pause = Duration::from_millis(100);
    loop {
        let (master, connect_timeout) = match this.upgrade() {
            Some(s) => (s.master.clone(), s.connect_timeout),
            None => return,
        };
        let subscribed = async {
            let mut pubsub = sentinel.get_async_pubsub().await?;
            pubsub.subscribe(&["+switch-master", "+promoted-slave", "+failover-state-send-slaveof-noone"]).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(connect_timeout * 2, subscribed).await {
            Ok(Ok(pubsub)) => {
                pause = Duration::from_millis(100);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else { continue };
                    let Some((addr, why)) = new_master(msg.get_channel_name(), &payload, &master) else { continue };
                    let Some(s) = this.upgrade() else { return };
                    s.install(addr, None, why);
                }
            }
            Ok(Err(e)) => tracing::debug!(target: "tollgate::redis", error = %describe(&e), "cannot subscribe to a sentinel"),
            Err(_) => tracing::debug!(target: "tollgate::redis", "a sentinel did not answer the subscription in time"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// The new master a sentinel event announces for `master`, if any.
///
/// In the order a failover publishes them:
/// `+failover-state-send-slaveof-noone` once the leader has told the chosen
/// replica to become master, `+promoted-slave` once it saw the replica act as
/// one (both `slave <name> <ip> <port> @ <master> <old-ip> <old-port>`; about a
/// second apart), and `+switch-master` at the end (`<master> <old-ip>
/// <old-port> <new-ip> <new-port>`). Moving at the first shortens the time
/// writes still go to the old master; if that promotion failed, the replica
/// answers `READONLY` and the store asks the sentinels again.
fn new_master(channel: &str, payload: &str, master: &str) -> Option<((String, u16), &'static str)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match channel {
        "+switch-master" if parts.len() == 5 && parts[0] == master => {
            Some(((parts[3].to_owned(), parts[4].parse().ok()?), "+switch-master"))
        }
        "+promoted-slave" | "+failover-state-send-slaveof-noone"
            if parts.len() == 8 && parts[0] == "slave" && parts[4] == "@" && parts[5] == master =>
        {
            let why = if channel == "+promoted-slave" { "+promoted-slave" } else { "+failover-state-send-slaveof-noone" };
            Some(((parts[2].to_owned(), parts[3].parse().ok()?), why))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::new_master;

    #[test]
    fn sentinel_events_parse() {
        let to = |ip: &str, port| Some((ip.to_owned(), port));
        let got = new_master("+switch-master", "mymaster 127.0.0.1 16380 127.0.0.1 16381", "mymaster");
        assert_eq!(got.map(|g| g.0), to("127.0.0.1", 16381));
        let got = new_master("+promoted-slave", "slave 127.0.0.1:16381 127.0.0.1 16381 @ mymaster 127.0.0.1 16380", "mymaster");
        assert_eq!(got.map(|g| g.0), to("127.0.0.1", 16381));
        assert!(new_master("+switch-master", "other 127.0.0.1 1 127.0.0.1 2", "mymaster").is_none());
        assert!(new_master("+promoted-slave", "slave x 127.0.0.1 nope @ mymaster 127.0.0.1 1", "mymaster").is_none());
        assert!(new_master("+sdown", "master mymaster 127.0.0.1 16380", "mymaster").is_none());
    }
}
