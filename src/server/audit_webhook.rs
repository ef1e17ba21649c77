//! `tollgate serve`'s audit webhook (settings `audit_webhook`, `audit_webhook_secret`).
//!
//! Each audit event is POSTed as JSON to the URL, one event per request:
//!
//! ```text
//! POST <audit_webhook path>
//! Content-Type: application/json
//! X-Tollgate-Event: issued
//! X-Tollgate-Signature: sha256=<hex HMAC-SHA-256 of the body under audit_webhook_secret>
//!
//! {"kind":"issued","user":"alice","sid":"…","at":1764000000000,"ip":"203.0.113.9","user_agent":"…"}
//! ```
//!
//! The manager's hook only puts the event on a bounded queue (never waiting): a
//! request never waits for the receiver. One task sends them in order; a send that
//! fails (no connection, a timeout, a status other than 2xx) is tried once more,
//! then logged (the event's kind, user and sid, never the URL, the secret or a body)
//! and dropped. A full queue drops the new event with a warning.
//!
//! When serve stops, the events already queued are still sent, within what is left
//! of the drain deadline ([`Sender::finish`]); events of requests that come after
//! that point are dropped with a warning, and any left when the deadline passes
//! are counted in one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::engine::audit::AuditEvent;
use crate::engine::error::Error;
use crate::manager::AuditHook;

/// Events waiting to be sent; past this, new ones are dropped (and logged).
pub const QUEUE_LEN: usize = 1024;
/// One attempt's deadline: connect, send, and read the answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The header that carries the body's signature.
pub const SIGNATURE_HEADER: &str = "x-tollgate-signature";

/// The `X-Tollgate-Signature` value of `body` under `secret`: `sha256=` and the HMAC in lowercase hex.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The task that sends the queued events; [`Sender::finish`] lets it empty its queue.
pub struct Sender {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// Events taken and not yet sent or dropped.
    unsent: Arc<AtomicUsize>,
}

impl Sender {
    /// Stops taking events and sends the ones queued, for at most `deadline`; answers
    /// how many were left unsent (and logs that count when it is not 0).
    pub async fn finish(self, deadline: std::time::Duration) -> usize {
        let _ = self.stop.send(());
        let left = match tokio::time::timeout(deadline, self.task).await {
            Ok(_) => 0,
            Err(_) => self.unsent.load(Ordering::Relaxed),
        };
        if left > 0 {
            tracing::warn!(target: "tollgate::audit", left, "the drain deadline passed before the audit webhook took every queued event; dropped");
        }
        left
    }
}

/// Starts the sender on the current tokio runtime; answers the hook to hand the
/// manager and the sender to finish when the service stops.
pub fn start(url: &str, secret: &str) -> Result<(AuditHook, Sender), Error> {
    let target = Target::parse(url)?;
    let (queue, mut events) = mpsc::channel::<AuditEvent>(QUEUE_LEN);
    let (stop, mut stopped) = oneshot::channel::<()>();
    let secret = secret.as_bytes().to_vec();
    let unsent = Arc::new(AtomicUsize::new(0));
    let done = unsent.clone();
    let task = tokio::spawn(async move {
        let mut stopping = false;
        loop {
            let event = tokio::select! {
                // Queued events first: a stop only closes the queue, it never skips one.
                biased;
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                _ = &mut stopped, if !stopping => {
                    stopping = true;
                    events.close();
                    continue;
                }
            };
            let body = serde_json::to_vec(&event).unwrap_or_default();
            let sig = signature(&secret, &body);
            let mut last = String::new();
            let mut sent = false;
            for _ in 0..2 {
                match tokio::time::timeout(SEND_TIMEOUT, target.post(event.kind.as_str(), &sig, body.clone())).await {
                    Ok(Ok(())) => {
                        sent = true;
                        break;
                    }
                    Ok(Err(e)) => last = e,
                    Err(_) => last = "no answer within 5 s".into(),
                }
            }
            if !sent {
                tracing::warn!(target: "tollgate::audit", kind = event.kind.as_str(), user = %event.user, sid = ?event.sid, problem = %last, "the audit webhook did not take an event; dropped");
            }
            done.fetch_sub(1, Ordering::Relaxed);
        }
    });
    let taken = unsent.clone();
    // Counted before the send, so the sender never takes an event not yet counted.
    let hook: AuditHook = Arc::new(move |event: &AuditEvent| {
        taken.fetch_add(1, Ordering::Relaxed);
        let refused = match queue.try_send(event.clone()) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => "the audit webhook's queue is full; event dropped",
            Err(mpsc::error::TrySendError::Closed(_)) => "serve is stopping and the audit webhook takes no more events; dropped",
        };
        taken.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(target: "tollgate::audit", kind = event.kind.as_str(), user = %event.user, "{refused}");
    });
    Ok((hook, Sender { stop, task, unsent }))
}

/// Where events go: `http://host[:port]/path`.
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let refuse = || Error::config("audit_webhook is not an http://host[:port]/path URL");
        let uri: hyper::Uri = url.parse().map_err(|_| refuse())?;
        if uri.scheme_str() != Some("http") {
            return Err(refuse());
        }
        let authority = uri.authority().ok_or_else(refuse)?.clone();
        if authority.as_str().contains('@') {
            return Err(Error::config("audit_webhook must not carry credentials; the signature authenticates each event"));
        }
        Ok(Target {
            host: authority.host().trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }

    /// One POST; the problem, in words that carry no secret, when it is not a 2xx.
    async fn post(&self, kind: &str, signature: &str, body: Vec<u8>) -> Result<(), String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| format!("connect: {}", e.kind()))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| "HTTP handshake failed".to_owned())?;
        tokio::spawn(connection);
        let request = hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-tollgate-event", kind)
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| "the request could not be built".to_owned())?;
        let answer = sender.send_request(request).await.map_err(|_| "the receiver closed the connection".to_owned())?;
        let status = answer.status();
        // Read (a little of) the answer so the connection ends cleanly; its text is not logged.
        let _ = Limited::new(answer.into_body(), 4096).collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_plain_http_urls_without_credentials() {
        assert!(Target::parse("http://127.0.0.1:9000/audit").is_ok());
        let t = Target::parse("http://[::1]:9000/a?b=c").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 9000, "/a?b=c"));
        for bad in ["https://x/audit", "ftp://x", "x/audit", "http://user:pw@x/audit", ""] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
