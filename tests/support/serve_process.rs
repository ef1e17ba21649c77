//! `tollgate serve` as a real process on a free loopback port, and a minimal
//! HTTP/1.1 client to speak to it (no client library: the request is written by hand).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// The data directory [`start`] made for it (removed after it).
    own_dir: Option<DataDir>,
}

impl Server {
    /// `kill -9`: the process ends at once, with no chance to flush or close anything.
    pub fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL reaches tollgate serve");
        self.child.wait().expect("tollgate serve is reaped");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

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
        drop(self.own_dir.take());
    }
}

/// A fresh directory for serve's `data_dir` (its default SQLite store), removed on drop.
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tollgate-serve-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DataDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tollgate serve` with a test secret and API key and its data in `dir`,
/// overridden by `vars` (an empty value unsets), on a free port. None of the
/// test's own `TOLLGATE_*` variables reach it: it gets exactly these settings.
fn command(dir: &DataDir, vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("TOLLGATE_")) {
            cmd.env_remove(name);
        }
    }
    cmd.env("TOLLGATE_SECRET", SECRET).env("TOLLGATE_API_KEYS", API_KEY).env("TOLLGATE_LISTEN", "127.0.0.1:0");
    cmd.env("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0").env("TOLLGATE_DATA_DIR", dir.path());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Starts `tollgate serve` (see [`command`]) on a data directory of its own and waits until it listens.
pub fn start(vars: &[(&str, String)]) -> Server {
    let dir = DataDir::new();
    let mut server = start_in(&dir, vars);
    server.own_dir = Some(dir);
    server
}

/// Starts `tollgate serve` on the data directory `dir` (which outlives it) and waits until it listens.
pub fn start_in(dir: &DataDir, vars: &[(&str, String)]) -> Server {
    started(command(dir, vars).stderr(Stdio::null()), vars)
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
    Server { child, addr, admin, own_dir: None }
}

/// [`start`] under an open-files limit of `files` (`ulimit -n`, soft and hard), stderr to `log`.
pub fn start_limited(vars: &[(&str, String)], files: u32, log: std::fs::File) -> Server {
    let dir = DataDir::new();
    let plain = command(&dir, vars);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {files} && exec \"$0\" serve")).arg(plain.get_program());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut server = started(cmd.stdout(Stdio::piped()).stderr(log), vars);
    server.own_dir = Some(dir);
    server
}

/// Sends SIGTERM (or another signal by name) to the server.
pub fn signal(s: &Server, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(s.child.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// The same command as [`start`] uses, for tests that start it their own way: on the memory
/// store unless `vars` name one (it has no data directory of its own).
pub fn serve_command(vars: &[(&str, String)]) -> Command {
    let dir = DataDir::new();
    let mut cmd = command(&dir, vars);
    cmd.env_remove("TOLLGATE_DATA_DIR");
    if !vars.iter().any(|(k, _)| *k == "TOLLGATE_STORE") {
        cmd.env("TOLLGATE_STORE", "memory");
    }
    cmd
}

/// Runs `tollgate serve` with settings it must refuse: answers what it wrote to stderr
/// (and checks it exited with an error, without listening).
pub fn refused(vars: &[(&str, String)]) -> String {
    let dir = DataDir::new();
    let out = command(&dir, vars).output().expect("the tollgate binary starts");
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

/// Sends one POST of JSON to `addr`; answers the status and the JSON body, or the
/// IO error of a server that is gone (a refused connection, a cut-off answer).
pub fn try_post(addr: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> std::io::Result<(u16, Value)> {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let cut = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the answer was cut off");
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(cut)?;
    let (_, body) = text.split_once("\r\n\r\n").ok_or_else(cut)?;
    Ok((status, serde_json::from_str(body).map_err(|_| cut())?))
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
