//! `tollgate serve` on Redis, started as a real process: a session created
//! over HTTP lands in Redis under the configured prefix and verifies strictly.
//! Run by `scripts/redis.sh` (it needs the servers it starts).
#![cfg(all(feature = "redis", feature = "server"))]

#[path = "support/redis_env.rs"]
mod redis_env;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(redis_env_vars: &[(&str, String)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOLLGATE_SECRET", "serve-test-secret-of-at-least-32-bytes!")
        .env("TOLLGATE_API_KEYS", "serve-test-api-key-123")
        .env("TOLLGATE_REDIS_PREFIX", "tgserve:")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // The test's own environment names every topology; the server gets one.
    for k in ["TOLLGATE_REDIS_URL", "TOLLGATE_REDIS_SENTINELS", "TOLLGATE_REDIS_MASTER", "TOLLGATE_REDIS_CLUSTER"] {
        cmd.env_remove(k);
    }
    for (k, v) in redis_env_vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the tollgate binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "tollgate serve did not start on Redis: {line:?}");
    Server(child, addr)
}

fn post(s: &Server, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(&s.1).unwrap();
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn sessions_work_through_http(vars: &[(&str, String)], raw_node: Option<String>) {
    let server = start(vars);
    let user = format!("serve-{}", std::process::id());
    let (status, tokens) = post(&server, "/v1/sessions", &[("X-Api-Key", "serve-test-api-key-123")], json!({ "user": user }));
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

#[tokio::test]
#[ignore]
async fn serve_on_a_single_redis() {
    let url = redis_env::var("TOLLGATE_REDIS_URL");
    sessions_work_through_http(&[("TOLLGATE_REDIS_URL", url.clone())], Some(url)).await;
}

#[tokio::test]
#[ignore]
async fn serve_on_sentinel_and_cluster() {
    let sentinels = redis_env::var("TOLLGATE_REDIS_SENTINELS");
    let master = redis_env::var("TOLLGATE_REDIS_SENTINEL_MASTER");
    sessions_work_through_http(&[("TOLLGATE_REDIS_SENTINELS", sentinels), ("TOLLGATE_REDIS_MASTER", master)], None).await;
    sessions_work_through_http(&[("TOLLGATE_REDIS_CLUSTER", redis_env::var("TOLLGATE_REDIS_CLUSTER"))], None).await;
}
