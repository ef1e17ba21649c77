//! OpenTelemetry traces of `tollgate serve` (feature `otel`), sent over OTLP/HTTP
//! in protobuf to `otlp_endpoint` + `/v1/traces`.
//!
//! Each request is one server span (`crate::server::observe`), a child of the
//! caller's span when the request carries a W3C `traceparent`; the operation's span
//! (`tollgate::manager`) is its child. Only tollgate's own spans are exported, never
//! its events: a span's attributes are its route, status and error code, the
//! operation's name and timings, so no token, secret or key can reach them.
//!
//! The SDK's batch processor runs on a thread of its own; its HTTP requests are
//! carried out by [`OtlpHttp`] on the service's tokio runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_http::{Bytes, HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::{Layer, Registry};

use crate::engine::error::{Error, ErrorCode};

/// Whether a trace pipeline runs: request spans are made only then.
static TRACING: AtomicBool = AtomicBool::new(false);

/// How long one export to the collector may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest collector answer read (an OTLP answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The running trace pipeline: flush it with [`Traces::shutdown`] before the runtime ends.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports to `endpoint` (`http://host:port`; spans go to `/v1/traces`), with
    /// HTTP requests carried out on `runtime`. The service name is `tollgate`
    /// unless `OTEL_SERVICE_NAME` says otherwise.
    pub fn start(endpoint: &str, runtime: tokio::runtime::Handle) -> Result<Traces, Error> {
        let refuse = |why: String| Error::new(ErrorCode::ConfigInvalid, format!("TOLLGATE_OTLP_ENDPOINT {why}"));
        if endpoint.starts_with("https://") {
            return Err(refuse("is https://; tollgate sends OTLP over plain http:// to a collector beside it".into()));
        }
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(OtlpHttp { runtime })
            .build()
            .map_err(|e| refuse(format!("cannot be exported to: {e}")))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("tollgate");
        }
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
        TRACING.store(true, Ordering::Relaxed);
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns tollgate's spans (not its events, nor other crates' spans) into OTLP spans.
    pub fn layer(&self) -> Box<dyn Layer<Registry> + Send + Sync> {
        let tracer = self.provider.tracer("tollgate");
        let ours = filter_fn(|meta| meta.is_span() && meta.target().starts_with("tollgate"));
        tracing_opentelemetry::layer().with_tracer(tracer).with_location(false).with_threads(false).with_filter(ours).boxed()
    }

    /// Sends the spans still waiting, then stops the exporter.
    pub fn shutdown(self) {
        TRACING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "the last spans could not be sent to the OTLP endpoint");
        }
    }
}

/// Whether request spans are wanted (a trace pipeline runs).
pub fn tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Makes `span` a child of the caller's span named by the request's `traceparent`, if any.
pub fn adopt_caller(span: &tracing::Span, headers: &hyper::HeaderMap) {
    let caller = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if caller.span().span_context().is_valid() {
        let _ = span.set_parent(caller);
    }
}

/// The trace id of `span` in hex, when it is traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let ids = context.span().span_context().clone();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// The HTTP client of the exporter: each export is one HTTP/1.1 request on a new
/// connection (a batch goes out every few seconds), run on the service's runtime.
#[derive(Debug)]
struct OtlpHttp {
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let sent = self.runtime.spawn(async move {
            tokio::time::timeout(EXPORT_TIMEOUT, post(request))
                .await
                .map_err(|_| HttpError::from("the OTLP endpoint did not answer in time"))?
        });
        sent.await?
    }
}

async fn post(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let (mut parts, body) = request.into_parts();
    let authority = parts.uri.authority().cloned().ok_or("the OTLP endpoint names no host")?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, authority.port_u16().unwrap_or(80))).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    // HTTP/1.1 sends the path alone, and the host in its own header.
    parts.uri = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").parse()?;
    parts.headers.insert(hyper::header::HOST, authority.as_str().parse()?);
    let answer = sender.send_request(hyper::Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = answer.into_parts();
    let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}
