//! `tollgate serve` built with `otel` sends its traces to a real OTLP/HTTP receiver
//! this test runs (hyper, decoding with the OpenTelemetry protobuf types): one server
//! span per request, the operation's span its child, a W3C `traceparent` honoured,
//! no token, secret or key in any attribute or in the exported bytes. The JSON
//! log line of each request is checked on the same run.

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use serve_process::{call, serve_command, signal, started, API_KEY, JSON, SECRET};

/// What the receiver got: one entry per export (path, content type, body).
type Exports = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// An OTLP/HTTP receiver on a free loopback port; answers each export with an empty (successful) response.
async fn receiver(exports: Exports) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let exports = exports.clone();
            let export = hyper::service::service_fn(move |req: Request<Incoming>| {
                let exports = exports.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    let kind = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    exports.lock().unwrap().push((path, kind, body));
                    let mut answer = Response::new(Full::new(Bytes::new()));
                    answer.headers_mut().insert("content-type", "application/x-protobuf".parse().unwrap());
                    Ok::<_, Infallible>(answer)
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), export));
        }
    });
    addr
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn text(value: &any_value::Value) -> String {
    match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The caller's trace and span, as a W3C `traceparent` carries them.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn serve_exports_one_span_per_request_with_the_operation_as_its_child_and_no_secret() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let exports = Exports::default();
    let collector = runtime.block_on(receiver(exports.clone()));
    let log_path = std::env::temp_dir().join(format!("tollgate-otel-{}.log", std::process::id()));
    let vars = [
        ("TOLLGATE_OTLP_ENDPOINT", format!("http://{collector}")),
        ("TOLLGATE_LOG_FORMAT", "json".into()),
        ("TOLLGATE_LOG", "info".into()),
    ];
    let mut cmd = serve_command(&vars);
    let mut server = started(cmd.stderr(std::fs::File::create(&log_path).unwrap()), &vars);

    let key = ("X-Api-Key", API_KEY);
    let (status, tokens) = call(&server, "POST", "/v1/sessions", &[key, JSON], json!({"user": "otel-user"}).to_string().as_bytes());
    assert_eq!(status, 201, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let verify = |token: &str, mode: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![JSON];
        headers.extend_from_slice(extra);
        call(&server, "POST", "/v1/verify", &headers, json!({"token": token, "mode": mode}).to_string().as_bytes()).0
    };
    assert_eq!(verify(&access, "strict", &[("traceparent", &traceparent)]), 200);
    assert_eq!(verify(&access, "stateless", &[]), 200);
    assert_eq!(verify(&format!("{access}x"), "strict", &[]), 401);
    let (status, rotated) = call(&server, "POST", "/v1/refresh", &[JSON], json!({"refresh_token": refresh}).to_string().as_bytes());
    assert_eq!(status, 200, "{rotated}");
    let bearer = format!("Bearer {access}");
    assert_eq!(call(&server, "GET", "/v1/users/otel-user/sessions", &[("Authorization", &bearer)], b"").0, 200);
    assert_eq!(call(&server, "GET", "/no-such-route", &[], b"").0, 404);
    let requests = 7;

    // SIGTERM: serve drains, then sends the spans still waiting before it exits.
    signal(&server, "TERM");
    let mut exited = None;
    for _ in 0..150 {
        exited = server.child.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(exited.is_some_and(|s| s.success()), "serve exits 0 after SIGTERM: {exited:?}");

    let exports = exports.lock().unwrap().clone();
    assert!(!exports.is_empty(), "the receiver got no export");
    let mut spans: Vec<Span> = Vec::new();
    let mut resource_attributes = Vec::new();
    for (path, kind, body) in &exports {
        assert_eq!(path, "/v1/traces");
        assert_eq!(kind, "application/x-protobuf", "OTLP/HTTP in protobuf");
        let export = ExportTraceServiceRequest::decode(body.clone()).expect("an OTLP ExportTraceServiceRequest");
        for resource_spans in export.resource_spans {
            resource_attributes.extend(resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
            spans.extend(resource_spans.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let service = resource_attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.as_ref());
    assert_eq!(service.and_then(|v| v.value.as_ref()).map(text).as_deref(), Some("tollgate"));

    let server_spans: Vec<&Span> = spans.iter().filter(|s| s.kind == SpanKind::Server as i32).collect();
    let names: Vec<&str> = server_spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(server_spans.len(), requests, "one server span per request: {names:?}");
    let children = |parent: &Span| -> Vec<String> {
        let mut names: Vec<String> =
            spans.iter().filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id).map(|s| s.name.clone()).collect();
        names.sort();
        names
    };
    // Each request's operations, by the request's name and status.
    let mut seen: BTreeMap<(String, String), Vec<Vec<String>>> = BTreeMap::new();
    for span in &server_spans {
        let status = attribute(&span.attributes, "http.response.status_code").map(text).unwrap_or_default();
        seen.entry((span.name.clone(), status)).or_default().push(children(span));
    }
    let expected: BTreeMap<(String, String), Vec<Vec<String>>> = [
        (("POST /v1/sessions", "201"), vec![vec!["issue"]]),
        (("POST /v1/verify", "200"), vec![vec!["verify_stateless"], vec!["verify_strict"]]),
        (("POST /v1/verify", "401"), vec![vec!["verify_strict"]]),
        (("POST /v1/refresh", "200"), vec![vec!["refresh"]]),
        (("GET /v1/users/{user}/sessions", "200"), vec![vec!["list", "verify_strict"]]),
        (("GET unmatched", "404"), vec![vec![]]),
    ]
    .into_iter()
    .map(|((name, status), mut ops)| {
        ops.sort();
        ((name.to_owned(), status.to_owned()), ops.into_iter().map(|o| o.into_iter().map(str::to_owned).collect()).collect())
    })
    .collect();
    let mut seen_sorted = seen.clone();
    seen_sorted.values_mut().for_each(|v| v.sort());
    assert_eq!(seen_sorted, expected, "request spans and their operation spans");

    // The request with a traceparent is the caller's span's child, in the caller's trace.
    let adopted: Vec<&&Span> = server_spans.iter().filter(|s| hex(&s.trace_id) == CALLER_TRACE).collect();
    assert_eq!(adopted.len(), 1, "exactly the request with the traceparent is in the caller's trace");
    assert_eq!(hex(&adopted[0].parent_span_id), CALLER_SPAN, "its parent is the caller's span");
    assert_eq!(adopted[0].name, "POST /v1/verify");
    assert_eq!(children(adopted[0]), ["verify_strict"]);
    for other in server_spans.iter().filter(|s| hex(&s.trace_id) != CALLER_TRACE) {
        assert!(other.parent_span_id.is_empty(), "a request without traceparent starts its own trace: {}", other.name);
    }
    let refused = server_spans.iter().find(|s| attribute(&s.attributes, "http.response.status_code").map(text).as_deref() == Some("401"));
    assert_eq!(attribute(&refused.unwrap().attributes, "error.type").map(text).as_deref(), Some("token_invalid"));

    // No token, secret or key: not in an attribute, not anywhere in the bytes sent.
    let rotated_access = rotated["access_token"].as_str().unwrap();
    let rotated_refresh = rotated["refresh_token"].as_str().unwrap();
    let secrets = [
        ("access token", access.as_str()),
        ("its signature", access.rsplit_once('.').unwrap().1),
        ("refresh token", refresh.as_str()),
        ("refresh secret", refresh.rsplit_once('.').unwrap().1),
        ("rotated access token", rotated_access),
        ("rotated refresh secret", rotated_refresh.rsplit_once('.').unwrap().1),
        ("API key", API_KEY),
        ("signing secret", SECRET),
    ];
    let all_attributes: Vec<String> = spans
        .iter()
        .flat_map(|s| s.attributes.iter().chain(s.events.iter().flat_map(|e| e.attributes.iter())))
        .chain(resource_attributes.iter())
        .map(|kv| format!("{}={}", kv.key, kv.value.as_ref().and_then(|v| v.value.as_ref()).map(text).unwrap_or_default()))
        .collect();
    for (name, secret) in secrets {
        assert!(!all_attributes.iter().any(|a| a.contains(secret)), "an attribute holds the {name}");
        for (_, _, body) in &exports {
            assert!(!body.windows(secret.len()).any(|w| w == secret.as_bytes()), "the exported bytes hold the {name}");
        }
    }

    // The log: one JSON line per request, with its route, status, error code and trace id.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("every log line is JSON")).collect();
    let request_lines: Vec<&Value> = lines.iter().filter(|l| l["target"] == "tollgate::request").map(|l| &l["fields"]).collect();
    assert_eq!(request_lines.len(), requests, "one log line per request:\n{log}");
    let adopted_line = request_lines.iter().find(|l| l["trace_id"] == CALLER_TRACE).expect("the traced request's line has its trace id");
    assert_eq!((adopted_line["method"].as_str(), adopted_line["route"].as_str()), (Some("POST"), Some("/v1/verify")));
    assert_eq!(adopted_line["status"], 200);
    assert!(adopted_line["duration_ms"].as_f64().is_some_and(|d| d > 0.0));
    let list_line = request_lines.iter().find(|l| l["route"] == "/v1/users/{user}/sessions").unwrap();
    assert_eq!(list_line["method"], "GET", "the route's pattern, not the path with the user id");
    let refused_line = request_lines.iter().find(|l| l["status"] == 401).unwrap();
    assert_eq!(refused_line["code"], "token_invalid");
    for line in &request_lines {
        let trace = line["trace_id"].as_str().expect("every line has a trace id when traces are sent");
        assert!(server_spans.iter().any(|s| hex(&s.trace_id) == trace), "the line's trace id is a request span's");
    }
    assert!(!log.contains("otel-user"), "no user id in the log lines of these requests");
    for (name, secret) in secrets {
        assert!(!log.contains(secret), "the log holds the {name}");
    }
}
