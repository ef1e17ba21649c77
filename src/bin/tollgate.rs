//! The `tollgate` command: `serve` (the HTTP session service), `migrate`, `keygen`, `inspect`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tollgate::crypto::native::load_keys;
use tollgate::crypto::CryptoDriver;
use tollgate::engine::b64;
use tollgate::engine::policy::Rules;
use tollgate::http::{HttpApi, HttpRequest, HttpResponse, MAX_BODY_BYTES};
#[cfg(feature = "redis")]
use tollgate::settings::RedisTarget;
use tollgate::settings::{Raw, Settings, Source, SqlTarget, StoreSetting, Surface};
use tollgate::{MemoryStore, SessionManager, Store, SystemClock};

const USAGE: &str = "usage:
  tollgate serve [--listen 127.0.0.1:8080]
      the HTTP session service. Settings come from TOLLGATE_* environment variables: at least
      TOLLGATE_SECRET (or TOLLGATE_SIGNING_KEY) and TOLLGATE_API_KEYS; TOLLGATE_STORE picks the store
      (by default a SQLite file, sessions.db in TOLLGATE_DATA_DIR, ./tollgate-data; or sqlite:<path>, memory,
      postgres:// and mysql:// with those features, redis:// ... with the `redis` feature).
      Every setting: the settings table of the README (README.md#settings).
  tollgate migrate [--check] [URL]
                           apply the SQL store's schema migrations (a build with `sqlite`, `postgres`
                           or `mysql`): URL is sqlite:<path>, postgres://... or mysql://..., or
                           the store setting (TOLLGATE_STORE, or serve's default SQLite file);
                           --check only reports whether the schema is up to date
  tollgate keygen          print a random 256-bit secret (base64url) for TOLLGATE_SECRET
  tollgate inspect TOKEN   print a JWT's header and claims WITHOUT verifying it";

fn fail(msg: &str) -> ! {
    eprintln!("tollgate: {msg}\n\n{USAGE}");
    std::process::exit(2)
}

async fn to_http(req: Request<Incoming>) -> Result<HttpRequest, HttpResponse> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))).collect();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // Stop reading past the limit instead of buffering whatever a client sends.
    let body = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            let e = tollgate::Error::new(tollgate::ErrorCode::PayloadTooLarge, "the request body exceeds 64 KiB");
            return Err(HttpResponse::error(&e));
        }
    };
    Ok(HttpRequest::new(parts.method.as_str(), path_and_query, headers, body))
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

/// The SQL store `target` names, its schema brought up to date, sweeping expired
/// rows every `sweep_interval`. A SQLite file's directory is created when missing.
async fn sql_store(settings: &Settings, target: &SqlTarget) -> Result<tollgate::store::sql::SqlStore, tollgate::Error> {
    use tollgate::store::sql::{SqlOptions, SqlStore};
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
async fn redis_store(settings: &Settings, target: &RedisTarget) -> Result<tollgate::store::redis::RedisStore, tollgate::Error> {
    use tollgate::store::redis::{RedisConfig, RedisStore};
    let unusable = |e: tollgate::Error| settings.refuse("store", format!("is not a usable Redis address: {}", e.message()));
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

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let config = settings.config()?;
    let (keys, crypto) = load_keys(&config.keys).map_err(|e| settings.key_refused(&config, e))?;
    let rules = Rules::new(keys, config.policy)?;
    let crypto: Arc<dyn CryptoDriver> = Arc::new(crypto);
    let api_keys: Vec<&str> = settings.api_keys.0.iter().map(String::as_str).collect();
    match &settings.store {
        StoreSetting::Memory => {
            let store = MemoryStore::new();
            let _sweeper = settings.sweep_interval.and_then(|d| store.spawn_sweeper(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
            let sessions = SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock));
            run(settings.listen, sessions, &api_keys, "memory").await
        }
        #[cfg(feature = "redis")]
        StoreSetting::Redis(target) => {
            let store = redis_store(&settings, target).await?;
            let topology = store.topology();
            run(settings.listen, SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock)), &api_keys, topology).await
        }
        #[cfg(not(feature = "redis"))]
        StoreSetting::Redis(_) => {
            Err(settings.refuse("store", "names Redis, but this tollgate was built without the `redis` feature").into())
        }
        StoreSetting::Sql(target) => {
            let store = sql_store(&settings, target).await?;
            let dialect = store.dialect().as_str();
            run(settings.listen, SessionManager::from_parts(rules, store, crypto, Arc::new(SystemClock)), &api_keys, dialect).await
        }
        // Settings::read refuses the Worker's stores for serve.
        _ => Err(settings.refuse("store", "is not a store of tollgate serve").into()),
    }
}

async fn run<S: Store + 'static>(
    listen: SocketAddr,
    sessions: SessionManager<S>,
    keys: &[&str],
    store_name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let service = Arc::new(HttpApi::new(sessions, keys)?);
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, store = store_name, "tollgate serving");
    println!("tollgate listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => { println!("tollgate: shutting down"); return Ok(()); }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let handler = service_fn(move |req| {
                let service = service.clone();
                async move {
                    if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
                        let text = service.sessions().metrics().render();
                        let mut resp = Response::new(Full::new(Bytes::from(text)));
                        resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"));
                        return Ok::<_, Infallible>(resp);
                    }
                    let resp = match to_http(req).await {
                        Ok(r) => service.handle(r).await,
                        Err(too_big) => too_big,
                    };
                    Ok::<_, Infallible>(from_http(resp))
                }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), handler).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// `tollgate migrate [--check] [URL]`: exit status 0 when the schema is (now) up to date.
fn migrate(args: &[String]) {
    use tollgate::store::sql::{schema, SqlOptions, SqlStore};
    // What it applies is logged (the store's `info` events), to stderr.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("info")).with_writer(std::io::stderr).init();
    let check = args.iter().any(|a| a == "--check");
    let store = match args.iter().find(|a| !a.starts_with("--")) {
        Some(url) => StoreSetting::parse(url).unwrap_or_else(|problem| fail(&format!("the URL {problem}"))),
        None => {
            // The store serve would use: TOLLGATE_STORE, or the SQLite file in TOLLGATE_DATA_DIR.
            let source = Source::process_env().unwrap_or_else(|e| fail(e.message()));
            Settings::serve_store(&source).unwrap_or_else(|e| fail(e.message()))
        }
    };
    let StoreSetting::Sql(target) = store else { fail("migrate works on a SQL store: sqlite:<path>, postgres://... or mysql://...") };
    if let SqlTarget::Sqlite(path) = &target {
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let url = target.url();
    let options = SqlOptions::default().migrate(!check).sweep_interval(None);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let connected = rt.block_on(async { SqlStore::connect_with(&url, options).await.map(|store| store.dialect()) });
    match connected {
        Ok(dialect) => println!("tollgate: {} schema version {}: up to date", dialect.as_str(), schema::LATEST),
        Err(e) => {
            eprintln!("tollgate: {e}");
            std::process::exit(1);
        }
    }
}

fn inspect(token: &str) {
    let mut parts = token.split('.');
    for name in ["header", "claims"] {
        let decoded = parts.next().and_then(|p| b64::decode(p).ok()).and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        match decoded {
            Some(v) => println!("{name}: {}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            None => fail(&format!("the token's {name} is not base64url JSON")),
        }
    }
    println!("(not verified: use POST /v1/verify to check a token)");
}

/// The settings of `tollgate serve`: the environment, and `--listen` over `TOLLGATE_LISTEN`.
fn settings(args: &[String]) -> Result<Settings, tollgate::Error> {
    let mut source = Source::process_env()?;
    match args {
        [] => {}
        [flag, addr] if flag == "--listen" => {
            if addr.parse::<SocketAddr>().is_err() {
                fail("--listen takes an IP address and port, e.g. 127.0.0.1:8080");
            }
            source = source.with("TOLLGATE_LISTEN", Raw::Text(addr.clone()));
        }
        [flag] if flag == "--listen" => fail("--listen needs an address, e.g. 127.0.0.1:8080"),
        [other, ..] => fail(&format!("unknown option {other}")),
    }
    Settings::read(&source, Surface::Serve)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let settings = settings(&args[1..]).unwrap_or_else(|e| {
                eprintln!("tollgate: {e}");
                std::process::exit(2)
            });
            let filter = tracing_subscriber::EnvFilter::try_new(&settings.log).unwrap_or_else(|_| {
                eprintln!("tollgate: {}", settings.refuse("log", "is not a log filter, e.g. info or info,tollgate=debug"));
                std::process::exit(2)
            });
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            if let Err(e) = rt.block_on(serve(settings)) {
                eprintln!("tollgate: {e}");
                std::process::exit(1);
            }
        }
        Some("keygen") => {
            let mut secret = [0u8; 32];
            #[allow(clippy::disallowed_methods)] // a key is made here, outside the engine
            getrandom::getrandom(&mut secret).expect("system RNG");
            println!("{}", b64::encode(&secret));
        }
        Some("inspect") => inspect(args.get(1).unwrap_or_else(|| fail("inspect needs a token"))),
        Some("migrate") => migrate(&args[1..]),
        _ => fail("unknown command"),
    }
}
