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
use tollgate::engine::b64;
use tollgate::http::{HttpApi, HttpRequest, HttpResponse, MAX_BODY_BYTES};
use tollgate::{Alg, Config, KeySpec, MemoryStore, SessionManager, Store};

const USAGE: &str = "usage:
  tollgate serve [--listen 127.0.0.1:8080]
      env: TOLLGATE_SECRET (HS256 signing secret, >= 32 bytes; or TOLLGATE_SIGNING_PEM + TOLLGATE_ALG),
           TOLLGATE_API_KEYS (comma-separated, >= 16 chars each), TOLLGATE_ISSUER, TOLLGATE_AUDIENCE,
           TOLLGATE_SWEEP_MS (memory store sweep interval; 0 or negative disables; default 60000)
      store: memory by default; Redis (a build with the `redis` feature) with one of
           TOLLGATE_REDIS_URL (redis://[:password@]host:port[/db]),
           TOLLGATE_REDIS_SENTINELS (host:port,...) + TOLLGATE_REDIS_MASTER,
           TOLLGATE_REDIS_CLUSTER (host:port,...);
           and TOLLGATE_REDIS_PASSWORD (Sentinel/Cluster nodes), TOLLGATE_REDIS_PREFIX (default tg:)
  tollgate migrate [--check] [URL]
                           apply the SQL store's schema migrations (a build with `sqlite`, `postgres`
                           or `mysql`): URL is sqlite:<path>, postgres://... or mysql://..., or
                           TOLLGATE_STORE; --check only reports whether the schema is up to date
  tollgate keygen          print a random 256-bit secret (base64url) for TOLLGATE_SECRET
  tollgate inspect TOKEN   print a JWT's header and claims WITHOUT verifying it";

fn fail(msg: &str) -> ! {
    eprintln!("tollgate: {msg}\n\n{USAGE}");
    std::process::exit(2)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn config_from_env() -> Result<Config, tollgate::Error> {
    let mut b = Config::builder();
    b = match (env("TOLLGATE_SECRET"), env("TOLLGATE_SIGNING_PEM")) {
        (Some(secret), _) => b.signing_key(KeySpec::secret("k1", Alg::HS256, secret.into_bytes())),
        (None, Some(pem)) => {
            let alg = env("TOLLGATE_ALG").and_then(|a| Alg::parse(&a)).unwrap_or(Alg::ES256);
            b.signing_key(KeySpec::pem(env("TOLLGATE_KID").unwrap_or_else(|| "k1".into()), alg, pem))
        }
        (None, None) => fail("set TOLLGATE_SECRET (see `tollgate keygen`) or TOLLGATE_SIGNING_PEM"),
    };
    if let Some(iss) = env("TOLLGATE_ISSUER") {
        b = b.issuer(iss);
    }
    if let Some(aud) = env("TOLLGATE_AUDIENCE") {
        b = b.audience(aud);
    }
    b.build()
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

/// The Redis store the environment asks for, if any.
#[cfg(feature = "redis")]
async fn redis_from_env() -> Result<Option<tollgate::store::redis::RedisStore>, tollgate::Error> {
    use tollgate::store::redis::{RedisConfig, RedisStore};
    let list = |v: String| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let mut config = match (env("TOLLGATE_REDIS_URL"), env("TOLLGATE_REDIS_SENTINELS"), env("TOLLGATE_REDIS_CLUSTER")) {
        (Some(url), None, None) => RedisConfig::from_url(&url)?,
        (None, Some(sentinels), None) => {
            let master = env("TOLLGATE_REDIS_MASTER").unwrap_or_else(|| fail("TOLLGATE_REDIS_SENTINELS needs TOLLGATE_REDIS_MASTER"));
            RedisConfig::sentinel(list(sentinels), master)?
        }
        (None, None, Some(nodes)) => RedisConfig::cluster(list(nodes))?,
        (None, None, None) => return Ok(None),
        _ => fail("set only one of TOLLGATE_REDIS_URL, TOLLGATE_REDIS_SENTINELS, TOLLGATE_REDIS_CLUSTER"),
    };
    if let Some(pw) = env("TOLLGATE_REDIS_PASSWORD") {
        config = config.password(pw);
    }
    if let Some(prefix) = env("TOLLGATE_REDIS_PREFIX") {
        config = config.key_prefix(prefix);
    }
    RedisStore::connect(config).await.map(Some)
}

async fn serve(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let config = config_from_env()?;
    let keys = env("TOLLGATE_API_KEYS").unwrap_or_else(|| fail("set TOLLGATE_API_KEYS (comma-separated)"));
    let keys: Vec<&str> = keys.split(',').map(str::trim).collect();
    #[cfg(feature = "redis")]
    if let Some(store) = redis_from_env().await? {
        let topology = store.topology();
        return run(listen, SessionManager::new(config, store)?, &keys, topology).await;
    }
    #[cfg(not(feature = "redis"))]
    if ["TOLLGATE_REDIS_URL", "TOLLGATE_REDIS_SENTINELS", "TOLLGATE_REDIS_CLUSTER"].iter().any(|v| env(v).is_some()) {
        fail("this tollgate was built without the `redis` feature");
    }
    let store = MemoryStore::new();
    let sweep_ms = env("TOLLGATE_SWEEP_MS").and_then(|v| v.parse::<i64>().ok()).unwrap_or(60_000);
    let _sweeper = store.spawn_sweeper(sweep_ms);
    run(listen, SessionManager::new(config, store)?, &keys, "memory").await
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
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn migrate(args: &[String]) {
    use tollgate::store::sql::{schema, SqlOptions, SqlStore};
    let check = args.iter().any(|a| a == "--check");
    let url = args.iter().find(|a| !a.starts_with("--")).cloned().or_else(|| env("TOLLGATE_STORE"));
    let url = url.unwrap_or_else(|| fail("migrate needs a database URL (or TOLLGATE_STORE)"));
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

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn migrate(_: &[String]) {
    fail("this tollgate was built without a SQL store (features sqlite, postgres, mysql)");
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

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let listen = match args.get(1).map(String::as_str) {
                Some("--listen") => args.get(2).unwrap_or_else(|| fail("--listen needs an address")).parse(),
                None => "127.0.0.1:8080".parse(),
                Some(other) => fail(&format!("unknown option {other}")),
            }
            .unwrap_or_else(|_| fail("--listen takes host:port, e.g. 127.0.0.1:8080"));
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            if let Err(e) = rt.block_on(serve(listen)) {
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
