//! `tollgate serve`, started as a real process on a free loopback port and spoken to over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TOLLGATE_SECRET", "serve-test-secret-of-at-least-32-bytes!")
        .env("TOLLGATE_API_KEYS", "serve-test-api-key-123")
        .env("TOLLGATE_ISSUER", "tollgate-serve-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tollgate binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "unexpected banner {line:?}");
    Server { child, addr }
}

fn call(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
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
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn serve_speaks_the_http_api() {
    let s = start();
    assert_eq!(call(&s, "GET", "/healthz", &[], b"").0, 200);
    let body = json!({ "user": "zoe", "metadata": { "ua": "curl" } }).to_string();
    let (st, t) = call(&s, "POST", "/v1/sessions", &[JSON, ("X-Api-Key", "serve-test-api-key-123")], body.as_bytes());
    assert_eq!(st, 201, "{t}");
    let verify = json!({ "token": t["access_token"], "mode": "strict" }).to_string();
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], verify.as_bytes());
    assert_eq!((st, v["claims"]["iss"].as_str()), (200, Some("tollgate-serve-test")));
    let refresh = json!({ "refresh_token": t["refresh_token"] }).to_string();
    assert_eq!(call(&s, "POST", "/v1/refresh", &[JSON], refresh.as_bytes()).0, 200);
    // Over-limit bodies are cut off while reading.
    let huge = vec![b'x'; 200 * 1024];
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], &huge);
    assert_eq!((st, v["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (st, v) = call(&s, "POST", "/v1/sessions", &[JSON], body.as_bytes());
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    // Prometheus metrics, natively.
    let metrics = raw_get(&s, "/metrics");
    assert!(metrics.contains("tollgate_operations_total{op=\"issue\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("tollgate_operation_duration_seconds_count{op=\"refresh\"} 1"), "{metrics}");
    assert!(!metrics.contains("zoe"), "no user ids in metrics labels");
}

fn raw_get(s: &Server, path: &str) -> String {
    let mut stream = TcpStream::connect(&s.addr).unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw
}

#[test]
fn keygen_prints_a_usable_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate")).arg("keygen").output().unwrap();
    let secret = String::from_utf8(out.stdout).unwrap();
    assert_eq!(tollgate::core::b64::decode(secret.trim()).unwrap().len(), 32);
}
