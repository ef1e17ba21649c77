//! `tollgate serve`: the HTTP API of [`crate::http`] on TCP, made to face the
//! open internet. Every connection has a header deadline, a body deadline, an
//! idle keep-alive timeout and a request cap ([`conn`]); connections are capped
//! to fit the open-files limit; an accept error is logged and retried; SIGTERM
//! and SIGINT stop accepting and let requests in flight finish.

pub mod audit_webhook;
pub mod conn;
mod observe;
#[cfg(feature = "otel")]
pub mod otel;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::crypto::native::load_keys;
use crate::crypto::CryptoDriver;
use crate::engine::error::{Error, ErrorCode};
use crate::engine::policy::Rules;
use crate::http::{HttpApi, HttpRequest, HttpResponse, MetricsAccess, Route, MAX_BODY_BYTES};
#[cfg(feature = "redis")]
use crate::settings::RedisTarget;
use crate::settings::{Settings, SqlTarget, StoreSetting};
use crate::{MemoryStore, SessionManager, Store, SystemClock};
use conn::{Connections, Limits, Watched};
use observe::RequestRecord;
use tracing::Instrument;

/// Runs `tollgate serve` until SIGTERM or SIGINT, then drains. Prints
/// `tollgate listening on http://ADDR` (and the admin listener's line) once bound.
pub async fn serve(settings: Settings) -> Result<(), Error> {
    let config = settings.config()?;
    let (keys, crypto) = load_keys(&config.keys).map_err(|e| settings.key_refused(&config, e))?;
    let rules = Rules::new(keys, config.policy)?;
    let crypto: Arc<dyn CryptoDriver> = Arc::new(crypto);
    match &settings.store {
        StoreSetting::Memory => {
            let store = MemoryStore::new();
            let _sweeper = settings.sweep_interval.and_then(|d| store.spawn_sweeper(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
            run(&settings, SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock)), "memory").await
        }
        #[cfg(feature = "redis")]
        StoreSetting::Redis(target) => {
            let store = redis_store(&settings, target).await?;
            let topology = store.topology();
            run(&settings, SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock)), topology).await
        }
        #[cfg(not(feature = "redis"))]
        StoreSetting::Redis(_) => Err(settings.refuse("store", "names Redis, but this tollgate was built without the `redis` feature")),
        StoreSetting::Sql(target) => {
            let store = sql_store(&settings, target).await?;
            let dialect = store.dialect().as_str();
            run(&settings, SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock)), dialect).await
        }
        // Settings::read refuses the Worker's stores for serve.
        _ => Err(settings.refuse("store", "is not a store of tollgate serve")),
    }
}

/// The SQL store `target` names, its schema brought up to date, sweeping expired
/// rows every `sweep_interval`. A SQLite file's directory is created when missing.
async fn sql_store(settings: &Settings, target: &SqlTarget) -> Result<crate::store::sql::SqlStore, Error> {
    use crate::store::sql::{SqlOptions, SqlStore};
    if let SqlTarget::Sqlite(path) = target {
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| settings.refuse("data_dir", format!("names a directory that cannot be created ({})", e.kind())))?;
        }
    }
    SqlStore::connect_with(&target.url(), SqlOptions::default().sweep_interval(settings.sweep_interval)).await
}

/// The Redis store `target` names.
#[cfg(feature = "redis")]
async fn redis_store(settings: &Settings, target: &RedisTarget) -> Result<crate::store::redis::RedisStore, Error> {
    use crate::store::redis::{RedisConfig, RedisStore};
    let unusable = |e: Error| settings.refuse("store", format!("is not a usable Redis address: {}", e.message()));
    let mut config = match target {
        RedisTarget::Url(url) if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") => {
            return Err(settings.refuse("store", "is a rediss:// URL, which needs a tollgate built with the `redis-tls` feature"))
        }
        // The URL may hold a password: its parse error is not passed on, lest it quote the URL.
        RedisTarget::Url(url) => RedisConfig::from_url(url).map_err(|_| settings.refuse("store", "is not a Redis URL that parses"))?,
        RedisTarget::Sentinel { sentinels, master } => RedisConfig::sentinel(sentinels, master.clone()).map_err(unusable)?,
        RedisTarget::Cluster { nodes } => RedisConfig::cluster(nodes).map_err(unusable)?,
    };
    if let Some(password) = &settings.redis_password {
        config = config.password(password.0.clone());
    }
    RedisStore::connect(config.key_prefix(settings.redis_prefix.clone())).await
}

/// Which face of the API a listener shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Face {
    Service,
    Admin,
}

fn bind_error(settings: &Settings, setting: &'static str, addr: SocketAddr, e: std::io::Error) -> Error {
    settings.refuse(setting, format!("{addr} cannot be listened on: {e}"))
}

async fn run<S: Store + 'static>(settings: &Settings, sessions: SessionManager<S>, store_name: &str) -> Result<(), Error> {
    let serve = &settings.serve;
    let api_keys: Vec<&str> = settings.api_keys.0.iter().map(String::as_str).collect();
    let access = if serve.admin_listen.is_some() { MetricsAccess::Hidden } else { MetricsAccess::ApiKey };
    let (sessions, webhook) = match (&serve.audit_webhook, &serve.audit_webhook_secret) {
        (Some(url), Some(secret)) => {
            let (hook, sender) = audit_webhook::start(url, &secret.0)?;
            (sessions.with_audit(hook), Some(sender))
        }
        (Some(_), None) => return Err(settings.refuse("audit_webhook_secret", "is not set: the audit webhook signs each event with it")),
        (None, _) => (sessions, None),
    };
    let api = Arc::new(HttpApi::new(sessions, &api_keys)?.with_metrics_access(access).with_trusted_proxy(settings.trusted_proxy));
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| bind_error(settings, "listen", settings.listen, e))?;
    let admin = match serve.admin_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| bind_error(settings, "admin_listen", addr, e))?),
        None => None,
    };
    let open_files = conn::open_files_limit();
    let connections = Connections::new(conn::connection_cap(serve.max_connections, open_files));
    let limits = Limits::of(serve);
    let local = listener.local_addr().map_err(|e| bind_error(settings, "listen", settings.listen, e))?;
    tracing::info!(addr = %local, store = store_name, max_connections = connections.cap(), open_files, "tollgate serving");
    println!("tollgate listening on http://{local}");
    let (stop, stopped) = watch::channel(false);
    let mut loops = vec![tokio::spawn(accept_loop(listener, Face::Service, api.clone(), connections.clone(), limits, stopped.clone()))];
    if let Some(admin) = admin {
        if let Ok(addr) = admin.local_addr() {
            tracing::info!(addr = %addr, "admin listener (/metrics, /healthz, /readyz)");
            println!("tollgate admin listening on http://{addr}");
        }
        loops.push(tokio::spawn(accept_loop(admin, Face::Admin, api, connections.clone(), limits, stopped)));
    }
    let signal = shutdown_signal().await;
    let drain_until = tokio::time::Instant::now() + serve.drain_timeout;
    tracing::info!(signal, drain_timeout = ?serve.drain_timeout, "stopping: no new connections; requests in flight may finish");
    let _ = stop.send(true);
    for accepting in loops {
        let _ = accepting.await;
    }
    match connections.drained(drain_until.saturating_duration_since(tokio::time::Instant::now())).await {
        0 => tracing::info!("drained: every connection closed"),
        left => tracing::warn!(left, "the drain deadline passed with connections still open; exiting"),
    }
    // The audit events of the requests just drained are sent in what is left of the deadline.
    if let Some(webhook) = webhook {
        webhook.finish(drain_until.saturating_duration_since(tokio::time::Instant::now())).await;
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT, naming it.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM cannot be caught; only SIGINT stops the service cleanly");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The pause after an accept error that is about the process (out of files,
/// out of memory) rather than about the one connection.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

async fn accept_loop<S: Store + 'static>(
    listener: TcpListener,
    face: Face,
    api: Arc<HttpApi<S>>,
    connections: Arc<Connections>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer.ip()),
            Err(e) => {
                use std::io::ErrorKind::{ConnectionAborted, ConnectionReset};
                // One connection failed: try the next at once. Anything else (EMFILE, ENOMEM): pause, then retry.
                let per_connection = matches!(e.kind(), ConnectionAborted | ConnectionReset);
                tracing::warn!(error = %e, retry_in = ?if per_connection { Duration::ZERO } else { ACCEPT_PAUSE }, "accept failed");
                if !per_connection {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
                continue;
            }
        };
        // At the cap this waits for a slot; a shutdown meanwhile ends the wait.
        let slot = tokio::select! {
            slot = connections.admit() => slot,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let activity = slot.activity.clone();
            let io = TokioIo::new(Watched::new(stream, activity.clone()));
            let handler = service_fn(move |req: Request<Incoming>| {
                let api = api.clone();
                let activity = activity.clone();
                async move {
                    let nth = activity.request_started();
                    let mut resp = answer(&api, face, req, peer, &limits).await;
                    if nth >= u64::from(limits.max_requests) {
                        resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                    }
                    activity.request_finished();
                    Ok::<_, Infallible>(resp)
                }
            });
            let mut builder = http1::Builder::new();
            // The header and idle clocks are the watchdog's (`conn::Activity`); hyper's would cut idle waits short.
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(None).keep_alive(true);
            let connection = builder.serve_connection(io, handler);
            tokio::pin!(connection);
            let mut stopping = stopped;
            let mut shutdown_asked = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = slot.activity.expired(&limits) => {
                        tracing::debug!("connection closed: header, idle or cap deadline");
                        break;
                    }
                    _ = stopping.wait_for(|s| *s), if !shutdown_asked => {
                        // Idle connections close now; one with a request in flight after its answer.
                        shutdown_asked = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(slot);
        });
    }
}

/// The response to one request: its body is read within the body deadline and the size
/// limit, inside the request's span; its log line is written once it is answered.
async fn answer<S: Store>(api: &HttpApi<S>, face: Face, req: Request<Incoming>, peer: IpAddr, limits: &Limits) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))).collect();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = HttpRequest::new(parts.method.as_str(), path_and_query, headers, Vec::new()).with_peer(Some(peer));
    let route = Route::of(&request);
    let record = RequestRecord::start(&request.method, route.as_ref().ok().map(Route::pattern), &parts.headers);
    let (resp, refused) = async {
        match read_body(&parts.headers, body, limits).await {
            Ok(body) => request.body = body,
            Err(refused) => return (refused, true),
        }
        let resp = match face {
            Face::Service => api.handle_route(route, request).await,
            Face::Admin => api.handle_admin(request).await,
        };
        (resp, false)
    }
    .instrument(record.span().clone())
    .await;
    record.finish(&resp);
    // A refused body is never read to its end: the connection closes after the answer.
    if refused {
        closing(from_http(resp))
    } else {
        from_http(resp)
    }
}

/// The response, and the connection closed after it (the rest of the body is never read).
fn closing(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    resp
}

async fn read_body(headers: &hyper::HeaderMap, body: Incoming, limits: &Limits) -> Result<Vec<u8>, HttpResponse> {
    let too_large = || HttpResponse::error(&Error::new(ErrorCode::PayloadTooLarge, "the request body exceeds 64 KiB; send a smaller body"));
    let declared = headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // Reading stops past the limit instead of buffering whatever a client sends.
    match tokio::time::timeout(limits.body_timeout, Limited::new(body, MAX_BODY_BYTES + 1).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes().to_vec()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(HttpResponse::error(&Error::new(ErrorCode::BadRequest, "the request body could not be read"))),
        Err(_) => {
            let e = Error::new(ErrorCode::RequestTimeout, "the request body did not arrive within the body timeout; send it at once");
            Err(HttpResponse::error(&e))
        }
    }
}

fn from_http(r: HttpResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
