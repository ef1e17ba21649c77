//! What `tollgate serve` records of each request: one log line (target
//! `tollgate::request`, level info) and, when traces are sent (feature `otel`),
//! one server span that the operation's span is a child of.
//!
//! Both carry the method, the route's pattern (`/v1/users/{user}/sessions`: never
//! a user id, a session id or a query), the status and the error code; never a
//! header, a cookie or a body, so no token, API key or secret.

use crate::platform::Stopwatch;

use crate::http::HttpResponse;

/// One request between its head and its answer.
pub struct RequestRecord {
    started: Stopwatch,
    method: String,
    /// The route's pattern, or `unmatched` for a path no route takes.
    route: &'static str,
    span: tracing::Span,
}

impl RequestRecord {
    /// Starts the record of a request whose head has arrived; `route` is its pattern when a route took it.
    pub fn start(method: &str, route: Option<&'static str>, headers: &hyper::HeaderMap) -> RequestRecord {
        let route = route.unwrap_or("unmatched");
        RequestRecord { started: Stopwatch::start(), span: request_span(method, route, headers), method: method.to_owned(), route }
    }

    /// The request's span (disabled when no traces are sent): the request is handled inside it.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records the answer on the span and writes the request's log line.
    pub fn finish(self, resp: &HttpResponse) {
        let code = (resp.status >= 400).then(|| error_code(&resp.body)).flatten();
        // Milliseconds to the microsecond.
        let duration_ms = self.started.elapsed().as_micros() as f64 / 1000.0;
        #[cfg(feature = "otel")]
        let trace_id = (!self.span.is_disabled()).then(|| super::otel::trace_id(&self.span)).flatten();
        #[cfg(not(feature = "otel"))]
        let trace_id: Option<String> = None;
        if !self.span.is_disabled() {
            self.span.record("http.response.status_code", resp.status);
            if let Some(code) = code.as_deref() {
                self.span.record("error.type", code);
            }
            if resp.status >= 500 {
                self.span.record("otel.status_code", "error");
            }
        }
        tracing::info!(
            target: "tollgate::request",
            method = %self.method,
            route = self.route,
            status = resp.status,
            code = code.as_deref(),
            duration_ms,
            trace_id = trace_id.as_deref(),
            "request"
        );
    }
}

/// The `code` of an error body `{"error": {"code", "message"}}`.
fn error_code(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body.get("error")?.get("code")?.as_str().map(str::to_owned)
}

#[cfg(feature = "otel")]
fn request_span(method: &str, route: &'static str, headers: &hyper::HeaderMap) -> tracing::Span {
    if !super::otel::tracing() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: "tollgate::request",
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    super::otel::adopt_caller(&span, headers);
    span
}

#[cfg(not(feature = "otel"))]
fn request_span(_: &str, _: &'static str, _: &hyper::HeaderMap) -> tracing::Span {
    tracing::Span::none()
}
