//! Issue 11, finding 3: a Redis that may evict keys (any `maxmemory-policy` but `noeviction`)
//! can drop a user's session index. The store reads the policy at connect and refuses such a
//! server by default. Real servers from `scripts/redis.sh` (one runs `volatile-lru`).
#![cfg(feature = "redis")]

#[path = "support/redis_env.rs"]
mod redis_env;

use serde_json::{json, Map};
use tollgate::store::redis::{EvictionPolicyCheck, RedisConfig, RedisStore};
use tollgate::{ErrorCode, SessionManager};

fn evicting() -> RedisConfig {
    RedisConfig::from_url(&redis_env::var("TG_TEST_REDIS_EVICTING_URL")).unwrap()
}

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn a_server_that_may_evict_is_refused_by_default_naming_its_policy() {
    let e = RedisStore::connect(evicting()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{e}");
    assert!(e.message().contains("volatile-lru") && e.message().contains("noeviction"), "{e}");
}

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn warn_connects_to_a_server_that_may_evict() {
    let _only_me = EVICTING_SERVER.lock().await;
    let store = RedisStore::connect(evicting().eviction_policy_check(EvictionPolicyCheck::Warn)).await.unwrap();
    let config = tollgate::Config::builder().secret(b"eviction-test-secret-of-32-bytes-or-more".to_vec()).build().unwrap();
    let sessions = SessionManager::new(config, store).unwrap();
    let t = sessions.issue("eve", Map::new(), json!(null)).await.unwrap();
    sessions.refresh(&t.refresh_token).await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn a_server_that_will_not_tell_its_policy_is_warned_about_not_refused() {
    // A user whose ACL forbids CONFIG (as on managed Redis services), on the evicting server.
    let config = RedisConfig::from_url(&redis_env::var("TG_TEST_REDIS_NOCONFIG_URL")).unwrap();
    RedisStore::connect(config).await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn the_default_noeviction_servers_connect_on_every_topology() {
    redis_env::connect(redis_env::single_config()).await;
    redis_env::connect(redis_env::sentinel_config()).await;
    redis_env::connect(redis_env::cluster_config()).await;
}

async fn set_policy(conn: &mut redis::aio::MultiplexedConnection, policy: &str) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query_async(conn).await.unwrap();
}

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn one_evicting_master_of_a_cluster_is_enough_to_refuse() {
    // Find a master (replicas answer `role:slave`); maxmemory is 0 there, so nothing is evicted meanwhile.
    let mut master = None;
    for addr in redis_env::list("TG_TEST_REDIS_CLUSTER") {
        let mut c = redis_env::raw(&addr).await;
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap();
        if info.contains("role:master") {
            master = Some(c);
            break;
        }
    }
    let mut conn = master.expect("a cluster master");
    set_policy(&mut conn, "allkeys-lfu").await;
    let refused = RedisStore::connect(redis_env::cluster_config()).await;
    set_policy(&mut conn, "noeviction").await; // before any assertion can fail
    let e = refused.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{e}");
    assert!(e.message().contains("allkeys-lfu"), "{e}");
    redis_env::connect(redis_env::cluster_config()).await;
}

/// The tests that change the evicting server's memory limit run one at a time.
static EVICTING_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
#[ignore = "needs the Redis servers of scripts/redis.sh"]
async fn evictions_are_detectable_through_the_store() {
    let _only_me = EVICTING_SERVER.lock().await;
    // A server that never evicts says 0.
    let single = redis_env::connect(redis_env::single_config()).await;
    assert_eq!(single.evicted_keys().await, Some(0));

    // Make the evicting server evict: keys with a TTL, then a memory limit below what they use.
    let url = redis_env::var("TG_TEST_REDIS_EVICTING_URL");
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::connect(evicting().eviction_policy_check(EvictionPolicyCheck::Warn)).await.unwrap();
    let before = store.evicted_keys().await.expect("the server reports evicted_keys");
    let filler = "x".repeat(1024);
    for i in 0..2000 {
        let _: () =
            redis::cmd("SET").arg(format!("eviction-filler:{i}")).arg(&filler).arg("EX").arg(600).query_async(&mut conn).await.unwrap();
    }
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap();
    let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    let limit: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used - 512 * 1024).query_async(&mut conn).await.unwrap();
    let written = redis::cmd("SET").arg("eviction-filler:last").arg(&filler).arg("EX").arg(600).query_async::<()>(&mut conn).await;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(&limit[1]).query_async(&mut conn).await.unwrap();
    written.unwrap();
    let after = store.evicted_keys().await.unwrap();
    for i in 0..2000 {
        let _: () = redis::cmd("DEL").arg(format!("eviction-filler:{i}")).query_async(&mut conn).await.unwrap();
    }
    assert!(after > before, "Redis evicted keys ({before} before, {after} after) and the store reports it");
}
