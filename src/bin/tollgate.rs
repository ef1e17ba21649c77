//! The `tollgate` command: `serve` (the HTTP session service), `migrate`, `keygen`, `inspect`.
//! `serve`'s options are made from the settings table: one option per setting
//! it reads, each also read from its `TOLLGATE_*` variable or a `--config` file.

use std::io::IsTerminal;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use tollgate::engine::b64;
use tollgate::engine::keys::Alg;
#[cfg(feature = "otel")]
use tollgate::server::otel::Traces;
use tollgate::settings::{LogFormat, Settings, Source, SqlTarget, StoreSetting, Surface, SETTINGS};
use tollgate::ErrorCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// A request of `tollgate serve` makes a few dozen small allocations (hyper's read
/// buffer, headers, the JSON body, claims, keys, the answer). glibc's malloc spent
/// a sixth of serve's user time on them under `perf` (`malloc_consolidate` on
/// every request's 8 KiB buffer among them); mimalloc's thread-local free lists
/// do not. The library itself leaves the allocator to the application.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The settings `tollgate serve` reads, in table order.
fn serve_settings() -> impl Iterator<Item = &'static tollgate::settings::Setting> {
    SETTINGS.iter().filter(|s| Surface::Serve.reads(s.scope))
}

fn cli() -> Command {
    let mut serve = Command::new("serve")
        .about("Run the HTTP session service until SIGTERM or SIGINT")
        .long_about(
            "Run the HTTP session service until SIGTERM or SIGINT. Each setting is read from, highest first: \
             its option here, its TOLLGATE_* environment variable, the --config file (snake_case keys).",
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .help("a TOML file of settings by snake_case name, e.g. access_ttl = \"15m\""),
        );
    for s in serve_settings() {
        let default = s.default.text.replace('`', "");
        let secret = if s.secret { " Secret: prefer the environment or the config file to the command line." } else { "" };
        serve = serve.arg(
            Arg::new(s.name)
                .long(&s.flag()[2..])
                .value_name("VALUE")
                .env(s.env)
                .hide_env_values(true)
                .help(format!("{}.{secret} [default: {default}]", s.help.text.replace('`', ""))),
        );
    }
    let algs: Vec<&'static str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    Command::new("tollgate")
        .version(env!("CARGO_PKG_VERSION"))
        .about("JWT sessions: the HTTP session service and its key tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve)
        .subcommand(
            Command::new("migrate")
                .about("Apply the SQL store's schema migrations; exit 0 when the schema is (now) up to date")
                .arg(Arg::new("check").long("check").action(ArgAction::SetTrue).help("only report whether the schema is up to date"))
                .arg(Arg::new("url").value_name("URL").help(
                    "sqlite:<path>, postgres://... or mysql://...; by default the store serve would use \
                     (TOLLGATE_STORE, or sessions.db in TOLLGATE_DATA_DIR)",
                )),
        )
        .subcommand(
            Command::new("keygen")
                .about("Print a new signing key: a base64url secret for HS*, a PKCS#8 PEM private key otherwise")
                .arg(Arg::new("alg").long("alg").value_name("ALG").default_value("HS256").value_parser(algs)),
        )
        .subcommand(
            Command::new("inspect")
                .about("Print a JWT's header and claims WITHOUT verifying it (POST /v1/verify checks a token)")
                .arg(Arg::new("token").required(true).action(ArgAction::Set)),
        )
}

/// The settings of `tollgate serve`: options over the environment over the `--config` file.
fn settings(matches: &ArgMatches) -> Result<Settings, tollgate::Error> {
    let mut source = Source::process_env()?;
    if let Some(path) = matches.get_one::<String>("config") {
        source = source.over(config_file(Path::new(path))?);
    }
    let flags: Vec<(String, String)> = serve_settings()
        .filter(|s| matches.value_source(s.name) == Some(ValueSource::CommandLine))
        .filter_map(|s| matches.get_one::<String>(s.name).map(|v| (s.flag().to_owned(), v.clone())))
        .collect();
    if !flags.is_empty() {
        source = Source::flags(flags).over(source);
    }
    Settings::read(&source, Surface::Serve)
}

/// A TOML file of settings by snake_case name.
fn config_file(path: &Path) -> Result<Source, tollgate::Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| tollgate::Error::new(ErrorCode::ConfigInvalid, format!("--config {shown} cannot be read: {e}")))?;
    // toml's messages quote the offending line, which may hold a secret: only the place is passed on.
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| format!(" at byte {}", s.start)).unwrap_or_default();
        tollgate::Error::new(ErrorCode::ConfigInvalid, format!("--config {shown} is not valid TOML{at}"))
    })?;
    let entries = table.into_iter().map(|(k, v)| (k, serde_json::to_value(v).unwrap_or(serde_json::Value::Null)));
    Ok(Source::snake(entries))
}

fn serve(matches: &ArgMatches) {
    let fail = |e: tollgate::Error, status: i32| -> ! {
        eprintln!("tollgate: {e}");
        std::process::exit(status)
    };
    let settings = settings(matches).unwrap_or_else(|e| fail(e, 2));
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| fail(settings.refuse("log", "is not a log filter, e.g. info or info,tollgate=debug"), 2));
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let traces = traces(&settings, rt.handle()).unwrap_or_else(|e| fail(e, 2));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match settings.serve.log_format {
        LogFormat::Json => logs.json().with_current_span(true).with_filter(filter).boxed(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).with_filter(filter).boxed(),
    };
    let layers: Vec<_> = std::iter::once(logs).chain(traces.as_ref().map(Traces::layer)).collect();
    tracing_subscriber::registry().with(layers).init();
    let served = rt.block_on(tollgate::server::serve(settings));
    // The spans still waiting are sent while the runtime still runs.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    if let Err(e) = served {
        fail(e, 1);
    }
}

/// The OTLP trace pipeline `otlp_endpoint` asks for (feature `otel`).
#[cfg(feature = "otel")]
fn traces(settings: &Settings, runtime: &tokio::runtime::Handle) -> Result<Option<Traces>, tollgate::Error> {
    settings.serve.otlp_endpoint.as_deref().map(|endpoint| Traces::start(endpoint, runtime.clone())).transpose()
}

#[cfg(not(feature = "otel"))]
fn traces(settings: &Settings, _: &tokio::runtime::Handle) -> Result<Option<Traces>, tollgate::Error> {
    match settings.serve.otlp_endpoint {
        Some(_) => Err(settings.refuse("otlp_endpoint", "is set, but this tollgate was built without the `otel` feature")),
        None => Ok(None),
    }
}

/// Without the `otel` feature there is never a trace pipeline.
#[cfg(not(feature = "otel"))]
enum Traces {}

#[cfg(not(feature = "otel"))]
impl Traces {
    fn layer(&self) -> Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync> {
        match *self {}
    }
    fn shutdown(self) {}
}

/// A new key for `alg`, as TOLLGATE_SECRET (HS*) or TOLLGATE_SIGNING_KEY (PEM) takes it.
fn keygen(alg: Alg) -> Result<String, String> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    use rand_core::OsRng;
    fn pem(key: &impl EncodePrivateKey) -> Result<String, String> {
        key.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.to_string()).map_err(|e| format!("the key could not be written: {e}"))
    }
    let secret = |bytes: usize| {
        let mut secret = vec![0u8; bytes];
        #[allow(clippy::disallowed_methods)] // a key is made here, outside the engine
        getrandom::getrandom(&mut secret).map_err(|e| format!("the system RNG failed: {e}"))?;
        Ok(format!("{}\n", b64::encode(&secret)))
    };
    match alg {
        Alg::HS256 => secret(32),
        Alg::HS384 => secret(48),
        Alg::HS512 => secret(64),
        Alg::ES256 => pem(&p256::SecretKey::random(&mut OsRng)),
        // PKCS#8 v1 (no public key inside): the form jsonwebtoken reads.
        Alg::EdDSA => pem(&ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: ed25519_dalek::SigningKey::generate(&mut OsRng).to_bytes(),
            public_key: None,
        }),
        Alg::RS256 => pem(&rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(|e| format!("no RSA key: {e}"))?),
    }
}

fn inspect(token: &str) -> Result<(), String> {
    let mut parts = token.split('.');
    for name in ["header", "claims"] {
        let decoded = parts.next().and_then(|p| b64::decode(p).ok()).and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        match decoded {
            Some(v) => println!("{name}: {}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            None => return Err(format!("the token's {name} is not base64url JSON; a JWT is header.claims.signature")),
        }
    }
    println!("(not verified: use POST /v1/verify to check a token)");
    Ok(())
}

/// `tollgate migrate [--check] [URL]`: Ok when the schema is (now) up to date.
fn migrate(check: bool, url: Option<&str>) -> Result<(), String> {
    use tollgate::store::sql::{schema, SqlOptions, SqlStore};
    // What it applies is logged (the store's `info` events), to stderr.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new("info")).with_writer(std::io::stderr).init();
    let store = match url {
        Some(url) => StoreSetting::parse(url).map_err(|problem| format!("the URL {problem}"))?,
        // The store serve would use: TOLLGATE_STORE, or the SQLite file in TOLLGATE_DATA_DIR.
        None => Settings::serve_store(&Source::process_env().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?,
    };
    let StoreSetting::Sql(target) = store else {
        return Err("migrate works on a SQL store: sqlite:<path>, postgres://... or mysql://...".into());
    };
    if let SqlTarget::Sqlite(path) = &target {
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
    }
    let options = SqlOptions::default().migrate(!check).sweep_interval(None);
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("no tokio runtime: {e}"))?;
    let dialect = rt.block_on(SqlStore::connect_with(&target.url(), options)).map_err(|e| e.to_string())?.dialect();
    println!("tollgate: {} schema version {}: up to date", dialect.as_str(), schema::LATEST);
    Ok(())
}

fn main() {
    let matches = cli().get_matches();
    let done = match matches.subcommand() {
        Some(("serve", m)) => {
            serve(m);
            Ok(())
        }
        Some(("keygen", m)) => {
            let name = m.get_one::<String>("alg").map(String::as_str).unwrap_or("HS256");
            let alg = Alg::ALL.into_iter().find(|a| a.as_str() == name).expect("clap allows only these");
            keygen(alg).map(|key| {
                print!("{key}");
                let setting = if name.starts_with("HS") { "TOLLGATE_SECRET" } else { "TOLLGATE_SIGNING_KEY" };
                eprintln!("tollgate: a new {name} key; set it as {setting} with TOLLGATE_ALG={name}");
            })
        }
        Some(("migrate", m)) => migrate(m.get_flag("check"), m.get_one::<String>("url").map(String::as_str)),
        Some(("inspect", m)) => inspect(m.get_one::<String>("token").map(String::as_str).unwrap_or_default()),
        _ => unreachable!("clap requires a subcommand"),
    };
    if let Err(e) = done {
        eprintln!("tollgate: {e}");
        std::process::exit(2);
    }
}
