//! The settings only `tollgate serve` reads about its connections, shutdown and
//! telemetry (the table's rows from `admin_listen` on; `crate::server` uses them).

use std::net::SocketAddr;
use std::time::Duration;

use super::Redacted;

/// How `tollgate serve` writes its logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`, `span`).
    Json,
}

/// Limits, timeouts and telemetry of `tollgate serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served without a key; `None`:
    /// `/metrics` moves to the service's port, behind the API key.
    pub admin_listen: Option<SocketAddr>,
    /// From a connection's first byte (or its opening) to a complete request head.
    pub header_timeout: Duration,
    /// From a request's head to the last byte of its body.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// After SIGTERM or SIGINT: how long requests in flight may take to finish.
    pub drain_timeout: Duration,
    /// Connections open at once (lowered to fit the open-files limit).
    pub max_connections: u32,
    /// Requests on one connection before it is closed (the client reconnects).
    pub max_requests_per_connection: u32,
    pub log_format: LogFormat,
    /// The OTLP/HTTP endpoint traces are sent to (feature `otel`); `None`: no traces.
    pub otlp_endpoint: Option<String>,
    /// Where audit events are POSTed; `None`: nowhere.
    pub audit_webhook: Option<String>,
    /// The key each webhook body is signed with.
    pub audit_webhook_secret: Option<Redacted>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_requests_per_connection: 1000,
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            audit_webhook: None,
            audit_webhook_secret: None,
        }
    }
}
