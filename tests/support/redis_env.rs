//! Where the Redis test servers are: environment variables set by
//! `scripts/redis.sh`. A missing variable fails the test that needs it.
#![allow(dead_code)]

use std::time::Duration;

use tollgate::store::redis::{RedisConfig, RedisStore};

pub fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the Redis tests through scripts/redis.sh, which starts the servers"))
}

pub fn list(name: &str) -> Vec<String> {
    var(name).split(',').map(str::to_owned).collect()
}

/// The conformance suite checks what a store answers, not how fast: on a
/// loaded two-core CI machine, with a thousand racing tasks, a reply can take
/// longer than the production defaults allow. The conformance factories use
/// this; the fault tests keep the defaults, whose timeouts they check.
pub fn patient(config: RedisConfig) -> RedisConfig {
    config.response_timeout(Duration::from_secs(8)).operation_timeout(Duration::from_secs(10))
}

pub fn single_config() -> RedisConfig {
    RedisConfig::from_url(&var("TG_TEST_REDIS_URL")).unwrap()
}

pub fn sentinel_config() -> RedisConfig {
    RedisConfig::sentinel(list("TG_TEST_REDIS_SENTINELS"), var("TG_TEST_REDIS_SENTINEL_MASTER")).unwrap()
}

pub fn cluster_config() -> RedisConfig {
    RedisConfig::cluster(list("TG_TEST_REDIS_CLUSTER")).unwrap()
}

pub async fn connect(config: RedisConfig) -> RedisStore {
    RedisStore::connect(config).await.unwrap_or_else(|e| panic!("cannot reach the Redis test servers: {e}"))
}

/// A plain connection to one node, for the test's own commands.
pub async fn raw(addr: &str) -> redis::aio::MultiplexedConnection {
    let url = if addr.starts_with("redis://") { addr.to_owned() } else { format!("redis://{addr}") };
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}
