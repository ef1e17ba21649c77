//! `tollgate serve` against hostile clients and through its shutdown, as a
//! real process spoken to over real sockets: idle connections beyond the
//! open-files limit, slow header senders, huge and stalled bodies, long
//! keep-alive connections, and SIGTERM with a request in flight.
// The deadlines under test are the real server's: this test reads the real clock.
#![allow(clippy::disallowed_methods)]

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_process::{call, signal, start, start_limited, Server, API_KEY};

/// One response read from a kept-alive connection: status, head (lower-cased), body.
fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("the response head arrives"), 1, "closed before the head ended: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    (status, head, body)
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).map(|v| v["error"]["code"].as_str().unwrap_or("").to_owned()).unwrap_or_default()
}

/// Whether the server closed the connection, without blocking (bytes it sent are skipped).
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// `GET /healthz` on a new connection, with a deadline: answers whether it got 200.
fn healthy(addr: &str, within: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr.parse().unwrap(), within) else { return false };
    stream.set_read_timeout(Some(within)).unwrap();
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200")
}

/// Lets this test process hold more sockets than the server it tests.
fn raise_own_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
    let now = getrlimit(Resource::Nofile).current;
    assert!(now.is_none_or(|n| n >= 4200), "this test needs 4,200 open files; the hard limit is {now:?}");
}

#[test]
fn two_thousand_idle_connections_under_ulimit_1024_leave_healthz_answering() {
    raise_own_open_files_limit();
    let log_path = std::env::temp_dir().join(format!("tollgate-idle-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    // Long clocks: connections are closed by the cap here, not by a timeout.
    let vars = [("TOLLGATE_HEADER_TIMEOUT", "60s".into()), ("TOLLGATE_IDLE_TIMEOUT", "60s".into()), ("TOLLGATE_LOG", "info".into())];
    let mut server = start_limited(&vars, 1024, log);
    let started = Instant::now();
    let mut idle = Vec::new();
    for i in 0..2000 {
        match TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_secs(10)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} was not accepted: {e}"),
        }
    }
    let opened_in = started.elapsed();
    let answered = (0..20).any(|_| healthy(&server.addr, Duration::from_secs(2)));
    assert!(answered, "/healthz did not answer with 2,000 idle connections open");
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited");
    std::thread::sleep(Duration::from_millis(300));
    let closed = idle.iter().filter(|s| closed_by_server(s)).count();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    eprintln!("2,000 idle connections opened in {opened_in:?}; the server closed {closed} of them; /healthz answered");
    assert!(log.contains("max_connections=960"), "the cap was lowered to fit ulimit -n 1024: {log}");
    assert!(closed >= 2000 - 960, "the oldest idle connections made room: {closed} closed");
    // Every connection that is still open is served.
    let mut kept = idle.into_iter().rev().find_map(|s| (!closed_by_server(&s)).then_some(s)).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut kept).0, 200);
}

/// How many files `pid` has open now.
fn open_files_of(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0)
}

/// The connection cap leaves room under the open-files limit, so accept errors are
/// forced here: the limit of the running server is lowered below what its cap
/// assumed (`prlimit`), then more clients connect than it has files left. It logs
/// each failed accept (EMFILE), keeps running, and answers once the clients leave.
#[test]
fn out_of_files_accept_errors_are_logged_and_the_server_recovers() {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    raise_own_open_files_limit();
    let log_path = std::env::temp_dir().join(format!("tollgate-emfile-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let vars = [("TOLLGATE_HEADER_TIMEOUT", "60s".into()), ("TOLLGATE_IDLE_TIMEOUT", "60s".into()), ("TOLLGATE_LOG", "info".into())];
    let mut server = start_limited(&vars, 1024, log);
    assert!(healthy(&server.addr, Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(200));
    let pid = Pid::from_raw(server.pid() as i32).unwrap();
    let room = 8;
    let files = open_files_of(server.pid()) + room;
    prlimit(Some(pid), Resource::Nofile, Rlimit { current: Some(files), maximum: Some(1024) }).expect("prlimit lowers the server's limit");

    // The kernel completes these handshakes; the server can take only `room` of them.
    let clients: Vec<TcpStream> = (0..room * 4).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log_text = String::new();
    while Instant::now() < deadline && !log_text.contains("accept failed") {
        std::thread::sleep(Duration::from_millis(100));
        log_text = std::fs::read_to_string(&log_path).unwrap();
    }
    let failed = log_text.lines().filter(|l| l.contains("accept failed")).collect::<Vec<_>>();
    assert!(!failed.is_empty(), "no accept error was logged:\n{log_text}");
    assert!(
        failed[0].contains("Too many open files") && failed[0].contains("retry_in=100ms"),
        "EMFILE, retried after a pause: {}",
        failed[0]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited on EMFILE");
    let retries = std::fs::read_to_string(&log_path).unwrap().matches("accept failed").count();

    drop(clients);
    let recovered = Instant::now();
    let answered = (0..50).any(|_| {
        let up = healthy(&server.addr, Duration::from_secs(1));
        if !up {
            std::thread::sleep(Duration::from_millis(100));
        }
        up
    });
    assert!(answered, "/healthz did not answer after the clients left");
    eprintln!(
        "EMFILE: {retries} accept errors logged in ~0.5 s (one per pause), /healthz answered {:?} after the clients left",
        recovered.elapsed()
    );
    assert!(retries < 30, "accept errors are paced by the pause, not a busy loop: {retries}");
    let _ = std::fs::remove_file(&log_path);
    signal(&server, "TERM");
    exits_cleanly(&mut server, Duration::from_secs(5));
}

#[test]
fn five_hundred_slow_header_senders_are_closed_within_the_header_timeout() {
    raise_own_open_files_limit();
    let timeout = Duration::from_secs(2);
    let server = start(&[("TOLLGATE_HEADER_TIMEOUT", "2s".into())]);
    let head = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let mut slow: Vec<(TcpStream, Instant, Option<Duration>)> =
        (0..500).map(|_| (TcpStream::connect(&server.addr).unwrap(), Instant::now(), None)).collect();
    let normal = std::thread::spawn({
        let addr = server.addr.clone();
        move || {
            let mut answered = 0;
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                assert!(healthy(&addr, Duration::from_secs(2)), "a normal request failed while slow clients were connected");
                answered += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            answered
        }
    });
    let began = Instant::now();
    let mut sent = 0;
    while slow.iter().any(|(_, _, closed)| closed.is_none()) && began.elapsed() < timeout * 4 {
        for (stream, opened, closed) in slow.iter_mut().filter(|c| c.2.is_none()) {
            if closed_by_server(stream) || stream.write_all(&head[sent % head.len()..][..1]).is_err() {
                *closed = Some(opened.elapsed());
            }
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(if began.elapsed() < timeout - Duration::from_millis(300) { 1000 } else { 50 }));
    }
    let normal_answered = normal.join().unwrap();
    let open = slow.iter().filter(|c| c.2.is_none()).count();
    let times: Vec<Duration> = slow.iter().filter_map(|c| c.2).collect();
    let (first, last) = (times.iter().min().copied(), times.iter().max().copied());
    eprintln!("500 slow clients, header timeout {timeout:?}: {} closed between {first:?} and {last:?}, {open} open; {normal_answered} normal requests answered", times.len());
    assert_eq!(open, 0, "every slow client was closed");
    assert!(last.unwrap() <= timeout + Duration::from_millis(1500), "closed within the timeout: {last:?}");
    assert!(first.unwrap() >= timeout - Duration::from_millis(100), "not before it: {first:?}");
    assert!(normal_answered > 10);
}

#[test]
fn a_gigabyte_body_is_refused_at_64_kib_without_being_read() {
    let server = start(&[]);
    // Declared: refused from the head, before any of the body is read.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!((status, error_code(&body).as_str()), (413, "payload_too_large"));
    assert!(head.contains("connection: close"), "{head}");
    // Chunked: read until the limit, then refused; the client cannot send the rest.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = [b'x'; 1 << 20];
        let mut written: u64 = 0;
        while written < 1 << 30 {
            let framed = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).and_then(|_| stream.write_all(&chunk));
            if framed.and_then(|_| stream.write_all(b"\r\n")).is_err() {
                break;
            }
            written += chunk.len() as u64;
        }
        written
    });
    let (status, _, body) = read_response(&mut reader);
    let written = writer.join().unwrap();
    eprintln!("chunked 1 GiB body: answered {status} after the client could write {written} bytes");
    assert_eq!((status, error_code(&body).as_str()), (413, "payload_too_large"));
    assert!(written < 64 << 20, "the server stopped reading: the client wrote {written} bytes");
}

#[test]
fn a_stalled_body_is_answered_408_and_long_connections_are_closed() {
    let server = start(&[
        ("TOLLGATE_BODY_TIMEOUT", "1s".into()),
        ("TOLLGATE_IDLE_TIMEOUT", "1s".into()),
        ("TOLLGATE_MAX_REQUESTS_PER_CONNECTION", "3".into()),
    ]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tok")
        .unwrap();
    let asked = Instant::now();
    let (status, head, body) = read_response(&mut stream);
    assert_eq!((status, error_code(&body).as_str()), (408, "request_timeout"));
    assert!(head.contains("connection: close"));
    assert!(asked.elapsed() >= Duration::from_millis(900) && asked.elapsed() < Duration::from_secs(3), "{:?}", asked.elapsed());

    // Three requests on one connection, the third marked as the last.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    for n in 1..=3 {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, head, _) = read_response(&mut stream);
        assert_eq!(status, 200);
        assert_eq!(head.contains("connection: close"), n == 3, "request {n}: {head}");
    }
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0, "closed after the third");

    // A kept-alive connection with nothing to do is closed after the idle timeout.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut stream).0, 200);
    let idle_from = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 0);
    let idle = idle_from.elapsed();
    assert!(idle >= Duration::from_millis(900) && idle < Duration::from_secs(3), "idle for {idle:?}");
}

fn exits_cleanly(server: &mut Server, within: Duration) -> Duration {
    let from = Instant::now();
    while from.elapsed() < within {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "tollgate serve exited with {status}");
            return from.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("tollgate serve did not exit within {within:?}");
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_exits_0() {
    let mut server = start(&[("TOLLGATE_DRAIN_TIMEOUT", "10s".into())]);
    let idle = TcpStream::connect(&server.addr).unwrap();
    let body = format!("{{\"user\":\"{}\"}}", "ann");
    let mut in_flight = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nX-Api-Key: {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).unwrap();
    in_flight.write_all(&body.as_bytes()[..4]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal(&server, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.child.try_wait().unwrap().is_none(), "still draining the request in flight");
    let refused = TcpStream::connect(&server.addr).map(|mut s| healthy_on(&mut s)).unwrap_or(false);
    assert!(!refused, "no new connection is served while draining");
    in_flight.write_all(&body.as_bytes()[4..]).unwrap();
    let (status, head, body) = read_response(&mut in_flight);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("connection: close"), "{head}");
    let took = exits_cleanly(&mut server, Duration::from_secs(5));
    eprintln!("SIGTERM: the request in flight completed (201), the process exited 0 {took:?} after it");
    drop(idle);

    let mut server = start(&[]);
    let _idle = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(call(&server, "GET", "/healthz", &[], b"").0, 200);
    signal(&server, "INT");
    exits_cleanly(&mut server, Duration::from_secs(3));
}

fn healthy_on(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200")
}
