//! `tollgate serve` on Redis, started as a real process: a session created
//! over HTTP lands in Redis under the configured prefix and verifies strictly,
//! and every user route works for user ids with reserved characters (braces
//! included: on a Cluster, all of a user's keys must share one slot).
//! Run by `scripts/redis.sh` (it needs the servers it starts).
#![cfg(all(feature = "redis", feature = "server"))]

#[path = "support/redis_env.rs"]
mod redis_env;

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use serde_json::{json, Value};
use serve_process::{call, API_KEY, JSON};

fn post(s: &serve_process::Server, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut headers = headers.to_vec();
    headers.push(JSON);
    call(s, "POST", path, &headers, body.to_string().as_bytes())
}

async fn sessions_work_through_http(store: String, raw_node: Option<String>) {
    let mut server = serve_process::start(&[("TOLLGATE_STORE", store), ("TOLLGATE_REDIS_PREFIX", "tgserve:".into())]);
    let run = format!("-{}-{}", std::process::id(), unique_suffix());
    user_routes::every_user_route_with_hostile_ids(&mut server, API_KEY, &run).await;
    let user = format!("serve{run}");
    let (status, tokens) = post(&server, "/v1/sessions", &[("X-Api-Key", API_KEY)], json!({ "user": user }));
    assert_eq!(status, 201, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, v) = post(&server, "/v1/verify", &[], json!({ "token": access, "mode": "strict" }));
    assert_eq!(status, 200, "{v}");
    if let Some(node) = raw_node {
        let mut c = redis_env::raw(&node).await;
        let exists: i64 = redis::cmd("EXISTS").arg(format!("tgserve:i:{{u:{user}}}")).query_async(&mut c).await.unwrap();
        assert_eq!(exists, 1, "the session index is in Redis under the prefix");
    }
}

/// Distinct per call, so the walk's user ids start empty on a Redis shared by runs.
#[allow(clippy::disallowed_methods)] // real time, only to tell runs apart
fn unique_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test]
#[ignore]
async fn serve_on_a_single_redis() {
    let url = redis_env::var("TG_TEST_REDIS_URL");
    sessions_work_through_http(url.clone(), Some(url)).await;
}

#[tokio::test]
#[ignore]
async fn serve_on_sentinel_and_cluster() {
    let sentinels = redis_env::var("TG_TEST_REDIS_SENTINELS");
    let master = redis_env::var("TG_TEST_REDIS_SENTINEL_MASTER");
    sessions_work_through_http(format!("redis-sentinel://{sentinels}/{master}"), None).await;
    sessions_work_through_http(format!("redis-cluster://{}", redis_env::var("TG_TEST_REDIS_CLUSTER")), None).await;
}
