//! `tollgate serve` as a real process on a free loopback port, and a minimal
//! HTTP/1.1 client to speak to it (no client library: the request is written by hand).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const API_KEY: &str = "serve-test-api-key-123";
pub const JSON: (&str, &str) = ("Content-Type", "application/json");
/// The variables that point `tollgate serve` at Redis.
pub const REDIS_VARS: &[&str] = &["TOLLGATE_REDIS_URL", "TOLLGATE_REDIS_SENTINELS", "TOLLGATE_REDIS_MASTER", "TOLLGATE_REDIS_CLUSTER"];

/// The running server; killed and reaped on drop.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tollgate serve` with a test secret and API key plus `vars`, minus `removed`.
pub fn start(vars: &[(&str, String)], removed: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOLLGATE_SECRET", "serve-test-secret-of-at-least-32-bytes!")
        .env("TOLLGATE_API_KEYS", API_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for k in removed {
        cmd.env_remove(k);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the tollgate binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "tollgate serve did not start: {line:?}");
    Server { child, addr }
}

/// Sends one request; answers the status and the raw response (headers and body).
pub fn raw(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// Sends one request; answers the status and the JSON body (`Null` if none).
pub fn call(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, text) = raw(s, method, path, headers, body);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The server as a client of the user-route walk (`user_routes.rs`); requests go over real sockets.
impl crate::user_routes::Client for Server {
    async fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = headers.to_vec();
        if !body.is_empty() {
            headers.push(JSON);
        }
        call(self, method, path, &headers, body.as_bytes())
    }
}
