//! `tollgate serve` as a real process on a free loopback port, and a minimal
//! HTTP/1.1 client to speak to it (no client library: the request is written by hand).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const API_KEY: &str = "serve-test-api-key-123";
pub const SECRET: &str = "serve-test-secret-of-at-least-32-bytes!";
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// The running server; killed and reaped on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The admin listener (`/metrics`), unless `TOLLGATE_ADMIN_LISTEN` was `off`.
    pub admin: Option<String>,
}

impl Server {
    /// A handle to speak to a server at `addr` (started elsewhere): it owns no process.
    pub fn at(addr: String) -> ServerAt {
        ServerAt { addr }
    }
}

/// The address of a server, to call without owning it.
pub struct ServerAt {
    pub addr: String,
}

/// Whatever [`call`] and [`raw`] can send a request to.
pub trait HasAddr {
    fn addr(&self) -> &str;
}

impl HasAddr for Server {
    fn addr(&self) -> &str {
        &self.addr
    }
}

impl HasAddr for ServerAt {
    fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tollgate serve` with a test secret and API key, overridden by `vars` (an
/// empty value unsets), on a free port. None of the test's own `TOLLGATE_*`
/// variables reach it: it gets exactly these settings.
fn command(vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("TOLLGATE_")) {
            cmd.env_remove(name);
        }
    }
    cmd.env("TOLLGATE_SECRET", SECRET).env("TOLLGATE_API_KEYS", API_KEY).env("TOLLGATE_LISTEN", "127.0.0.1:0");
    cmd.env("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Starts `tollgate serve` (see [`command`]) and waits until it listens.
pub fn start(vars: &[(&str, String)]) -> Server {
    started(command(vars).stderr(Stdio::null()), vars)
}

/// Spawns `cmd` (a `tollgate serve`) and waits until it listens; `vars` tell whether it has an admin listener.
pub fn started(cmd: &mut Command, vars: &[(&str, String)]) -> Server {
    let mut child = cmd.spawn().expect("the tollgate binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut listens = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "tollgate serve did not start: {line:?}");
        addr
    };
    let addr = listens();
    let admin = (!vars.iter().any(|(k, v)| *k == "TOLLGATE_ADMIN_LISTEN" && v == "off")).then(&mut listens);
    Server { child, addr, admin }
}

/// [`start`] under an open-files limit of `files` (`ulimit -n`, soft and hard), stderr to `log`.
pub fn start_limited(vars: &[(&str, String)], files: u32, log: std::fs::File) -> Server {
    let plain = command(vars);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {files} && exec \"$0\" serve")).arg(plain.get_program());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    started(cmd.stdout(Stdio::piped()).stderr(log), vars)
}

/// Sends SIGTERM (or another signal by name) to the server.
pub fn signal(s: &Server, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(s.child.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// The same command as [`start`] uses, for tests that start it their own way.
pub fn serve_command(vars: &[(&str, String)]) -> Command {
    command(vars)
}

/// Runs `tollgate serve` with settings it must refuse: answers what it wrote to stderr
/// (and checks it exited with an error, without listening).
pub fn refused(vars: &[(&str, String)]) -> String {
    let out = command(vars).output().expect("the tollgate binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && !stdout.contains("listening"), "tollgate serve started: {stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sends one request; answers the status and the raw response (headers and body).
pub fn raw(s: &impl HasAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    raw_at(s.addr(), method, path, headers, body)
}

/// [`raw`] to any address (the admin listener's).
pub fn raw_at(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
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
pub fn call(s: &impl HasAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
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
