//! The `tollgate` command: `serve` (the HTTP session service), `keygen`, `inspect`.

use std::net::SocketAddr;

use std::io::IsTerminal;
use tollgate::engine::b64;

use tollgate::settings::{LogFormat, Raw, Settings, Source, Surface};

const USAGE: &str = "usage:
  tollgate serve [--listen 127.0.0.1:8080]
      the HTTP session service. Settings come from TOLLGATE_* environment variables: at least
      TOLLGATE_SECRET (or TOLLGATE_SIGNING_KEY) and TOLLGATE_API_KEYS; TOLLGATE_STORE picks the store
      (memory by default; redis://, rediss://, redis-sentinel://, redis-cluster:// with the `redis` feature).
      Every setting: the settings table of the README (README.md#settings).
  tollgate keygen          print a random 256-bit secret (base64url) for TOLLGATE_SECRET
  tollgate inspect TOKEN   print a JWT's header and claims WITHOUT verifying it";

fn fail(msg: &str) -> ! {
    eprintln!("tollgate: {msg}\n\n{USAGE}");
    std::process::exit(2)
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
            let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
            match settings.serve.log_format {
                LogFormat::Json => logs.json().with_current_span(true).init(),
                LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
            }
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            if let Err(e) = rt.block_on(tollgate::server::serve(settings)) {
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
        _ => fail("unknown command"),
    }
}
