//! `tollgate serve`, started as a real process on a free loopback port and spoken to over TCP.

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/user_routes.rs"]
mod user_routes;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use serve_process::{call, raw, raw_at, refused, start, Server, API_KEY, JSON, SECRET};

fn post(s: &Server, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut headers = headers.to_vec();
    headers.push(JSON);
    call(s, "POST", path, &headers, body.to_string().as_bytes())
}

fn create(s: &Server, user: &str) -> Value {
    let (status, t) = post(s, "/v1/sessions", &[("X-Api-Key", API_KEY)], json!({ "user": user }));
    assert_eq!(status, 201, "{t}");
    t
}

#[test]
fn serve_speaks_the_http_api() {
    let s = start(&[("TOLLGATE_ISSUER", "tollgate-serve-test".into())]);
    assert_eq!(call(&s, "GET", "/healthz", &[], b"").0, 200);
    let body = json!({ "user": "zoe", "metadata": { "ua": "curl" } }).to_string();
    let (st, t) = call(&s, "POST", "/v1/sessions", &[JSON, ("X-Api-Key", API_KEY)], body.as_bytes());
    assert_eq!(st, 201, "{t}");
    let verify = json!({ "token": t["access_token"], "mode": "strict" }).to_string();
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], verify.as_bytes());
    assert_eq!((st, v["claims"]["iss"].as_str()), (200, Some("tollgate-serve-test")));
    let refresh = json!({ "refresh_token": t["refresh_token"] }).to_string();
    assert_eq!(call(&s, "POST", "/v1/refresh", &[JSON], refresh.as_bytes()).0, 200);
    // Over-limit bodies are cut off while reading.
    let huge = vec![b'x'; 200 * 1024];
    let (st, v) = call(&s, "POST", "/v1/verify", &[JSON], &huge);
    assert_eq!((st, v["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (st, v) = call(&s, "POST", "/v1/sessions", &[JSON], body.as_bytes());
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (st, doc) = call(&s, "GET", "/openapi.json", &[], b"");
    assert_eq!((st, doc), (200, serde_json::from_str::<Value>(include_str!("../docs/openapi.json")).unwrap()));
    // Prometheus metrics, natively, on the admin listener only.
    assert_eq!(call(&s, "GET", "/metrics", &[("X-Api-Key", API_KEY)], b"").0, 404, "not on the service port");
    let (_, metrics) = raw_at(s.admin.as_deref().unwrap(), "GET", "/metrics", &[], b"");
    assert!(metrics.contains("tollgate_operations_total{op=\"issue\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("tollgate_operation_duration_seconds_count{op=\"refresh\"} 1"), "{metrics}");
    assert!(!metrics.contains("zoe"), "no user ids in metrics labels");
}

#[tokio::test]
async fn user_ids_with_reserved_characters_over_real_sockets() {
    let mut s = start(&[]);
    user_routes::every_user_route_with_hostile_ids(&mut s, API_KEY, "").await;
}

#[test]
fn a_verify_without_a_mode_is_strict_unless_the_settings_say_stateless() {
    let strict = start(&[]);
    let t = create(&strict, "uma");
    let (st, v) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, v["session"]["user"].as_str()), (200, Some("uma")), "strict reads the session: {v}");
    let sid = t["session"]["sid"].as_str().unwrap();
    let (st, _) = call(&strict, "DELETE", &format!("/v1/sessions/{sid}?user=uma"), &[("X-Api-Key", API_KEY)], b"");
    assert_eq!(st, 200);
    let (st, v) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("session_revoked")));
    let (st, _) = post(&strict, "/v1/verify", &[], json!({ "token": t["access_token"], "mode": "stateless" }));
    assert_eq!(st, 200, "stateless is asked for by name");

    let stateless = start(&[("TOLLGATE_VERIFY_MODE", "stateless".into())]);
    let t = create(&stateless, "uma");
    let (st, v) = post(&stateless, "/v1/verify", &[], json!({ "token": t["access_token"] }));
    assert_eq!((st, &v["session"]), (200, &Value::Null), "{v}");
}

/// The refresh secret of services with an asymmetric signing key (which has no secret to derive one from).
const REFRESH_SECRET: &str = "serve-test-refresh-secret-of-32-bytes-or-more";

#[test]
fn several_keys_every_algorithm_and_audience_lists() {
    const OLD_SECRET: &str = "the-previous-hs512-secret-of-sixty-four-bytes-0123456789abcdefgh";
    // The service as it was: HS512, its own kid, one audience.
    let old = start(&[
        ("TOLLGATE_SECRET", OLD_SECRET.into()),
        ("TOLLGATE_ALG", "HS512".into()),
        ("TOLLGATE_KID", "2026-old".into()),
        ("TOLLGATE_AUDIENCE", "web".into()),
    ]);
    // After rotation: an ES256 signing key, the old key kept for verification, two audiences,
    // and the refresh secret set to the old secret (the stored sessions' MACs derive from it).
    let verify_keys = json!([{ "kid": "2026-old", "alg": "HS512", "secret": OLD_SECRET }]).to_string();
    let new = start(&[
        ("TOLLGATE_SECRET", String::new()),
        ("TOLLGATE_SIGNING_KEY", include_str!("keys/es256.pem").into()),
        ("TOLLGATE_REFRESH_SECRET", OLD_SECRET.into()),
        ("TOLLGATE_KID", "2026-new".into()),
        ("TOLLGATE_VERIFY_KEYS", verify_keys),
        ("TOLLGATE_AUDIENCE", "api, web".into()),
    ]);
    let old_token = create(&old, "ann")["access_token"].clone();
    let new_token = create(&new, "ann")["access_token"].clone();

    let (st, v) = post(&new, "/v1/verify", &[], json!({ "token": new_token }));
    assert_eq!((st, v["claims"]["aud"].as_str()), (200, Some("api")), "the first audience is written: {v}");
    let (st, v) = post(&new, "/v1/verify", &[], json!({ "token": old_token, "mode": "stateless" }));
    assert_eq!((st, v["claims"]["aud"].as_str()), (200, Some("web")), "the old key verifies, audience web is accepted: {v}");
    let (st, v) = post(&old, "/v1/verify", &[], json!({ "token": new_token, "mode": "stateless" }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("token_invalid")), "the old service knows no new key");

    let (_, jwks) = call(&new, "GET", "/.well-known/jwks.json", &[], b"");
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["2026-new"], "the ES256 public key is published, the HMAC key never");

    // The same key with only the api audience refuses the web token.
    let api_only = start(&[
        ("TOLLGATE_SECRET", OLD_SECRET.into()),
        ("TOLLGATE_ALG", "HS512".into()),
        ("TOLLGATE_KID", "2026-old".into()),
        ("TOLLGATE_AUDIENCE", "api".into()),
    ]);
    let (st, v) = post(&api_only, "/v1/verify", &[], json!({ "token": old_token, "mode": "stateless" }));
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("token_invalid")), "{v}");

    for (alg, pem) in [("EdDSA", include_str!("keys/ed25519.pem")), ("RS256", include_str!("keys/rs256.pem"))] {
        let s = start(&[
            ("TOLLGATE_SECRET", String::new()),
            ("TOLLGATE_SIGNING_KEY", pem.into()),
            ("TOLLGATE_ALG", alg.into()),
            ("TOLLGATE_REFRESH_SECRET", REFRESH_SECRET.into()),
        ]);
        let t = create(&s, "ann");
        let header = tollgate::engine::b64::decode(t["access_token"].as_str().unwrap().split('.').next().unwrap()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&header).unwrap()["alg"], alg);
        assert_eq!(post(&s, "/v1/verify", &[], json!({ "token": t["access_token"] })).0, 200, "{alg}");
    }
}

#[test]
fn unknown_and_malformed_settings_stop_the_start_naming_them() {
    let hidden = "hunter2-hunter2-hunter2-hunter2-hunter2";
    let garbage_pem = format!("-----BEGIN PRIVATE KEY-----\n{hidden}\n-----END PRIVATE KEY-----");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("TOLLGATE_SECRETS", hidden.into())], "TOLLGATE_SECRETS is not a setting"),
        (vec![("TOLLGATE_REDIS_URL", format!("redis://:{hidden}@h:1"))], "TOLLGATE_REDIS_URL is no longer a setting: use TOLLGATE_STORE"),
        (vec![("TOLLGATE_ACCESS_TTL_S", "60".into())], "use TOLLGATE_ACCESS_TTL"),
        (vec![("TOLLGATE_ACCESS_TTL", hidden.into())], "TOLLGATE_ACCESS_TTL is not a duration"),
        (vec![("TOLLGATE_ON_LIMIT", "evict".into())], "TOLLGATE_ON_LIMIT must be one of evict_oldest, refuse"),
        (vec![("TOLLGATE_VERIFY_KEYS", hidden.into())], "TOLLGATE_VERIFY_KEYS is not a JSON array"),
        (vec![("TOLLGATE_STORE", "kv".into())], "TOLLGATE_STORE names a store this surface does not have"),
        (vec![("TOLLGATE_STORE", format!("redis-sentinel://{hidden}"))], "TOLLGATE_STORE needs the master's name"),
        (vec![("TOLLGATE_KV", "x".into())], "TOLLGATE_KV is a setting of the Worker only"),
        (vec![("TOLLGATE_API_KEYS", String::new())], "TOLLGATE_API_KEYS is not set"),
        (vec![("TOLLGATE_API_KEYS", "short".into())], "TOLLGATE_API_KEYS has a key shorter than 16 characters"),
        (vec![("TOLLGATE_SECRET", "short".into())], "TOLLGATE_SECRET must be at least 32 bytes for HS256"),
        (vec![("TOLLGATE_SECRET", String::new())], "TOLLGATE_SECRET is not set"),
        (vec![("TOLLGATE_IDLE_TTL", "40d".into())], "TOLLGATE_IDLE_TTL cannot exceed TOLLGATE_ABSOLUTE_TTL"),
        (
            vec![
                ("TOLLGATE_SECRET", String::new()),
                ("TOLLGATE_SIGNING_KEY", garbage_pem),
                ("TOLLGATE_REFRESH_SECRET", REFRESH_SECRET.into()),
            ],
            "TOLLGATE_SIGNING_KEY is not usable",
        ),
        (
            vec![("TOLLGATE_SECRET", String::new()), ("TOLLGATE_SIGNING_KEY", include_str!("keys/es256.pem").into())],
            "TOLLGATE_REFRESH_SECRET is required when TOLLGATE_SIGNING_KEY is asymmetric",
        ),
        (vec![("TOLLGATE_REFRESH_SECRET", hidden[..20].into())], "TOLLGATE_REFRESH_SECRET must be at least 32 bytes"),
        (vec![("TOLLGATE_LOG", "[[[".into())], "TOLLGATE_LOG is not a log filter"),
        (vec![("TOLLGATE_LISTEN", "localhost".into())], "TOLLGATE_LISTEN is not an IP address and port"),
        (vec![("TOLLGATE_STORE", "d1".into())], "TOLLGATE_STORE names a store this surface does not have"),
        (vec![("TOLLGATE_STORE", format!("postgres://tg:{hidden}@"))], "TOLLGATE_STORE is a database URL without a host"),
    ];
    for (vars, expected) in cases {
        let stderr = refused(&vars);
        assert!(stderr.contains("config_invalid") && stderr.contains(expected), "{vars:?}: {stderr}");
        assert!(!stderr.contains(hidden) && !stderr.contains(SECRET), "{stderr}");
    }
}

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate")).args(args).env_remove("TOLLGATE_SECRET").output().unwrap()
}

#[test]
fn the_listen_flag_wins_over_the_setting() {
    let serve = |listen: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--listen", listen]).env("TOLLGATE_LISTEN", "not-an-address").env("TOLLGATE_ADMIN_LISTEN", "off");
        cmd.env("TOLLGATE_STORE", "memory");
        cmd.env("TOLLGATE_SECRET", SECRET).env("TOLLGATE_API_KEYS", API_KEY).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    };
    let out = serve("not-an-address-either").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config_invalid") && stderr.contains("--listen is not an IP address and port"), "{stderr}");
    let mut child = serve("127.0.0.1:0").spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening on http://127.0.0.1:"), "the flag replaced the bad TOLLGATE_LISTEN: {line}");
}

#[test]
fn help_lists_every_setting_of_serve_with_its_variable_and_default() {
    let out = tollgate(&["serve", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut listed = 0;
    for s in tollgate::settings::SETTINGS.iter().filter(|s| tollgate::settings::Surface::Serve.reads(s.scope)) {
        let option =
            help.split(&format!("{} <VALUE>", s.flag())).nth(1).unwrap_or_else(|| panic!("{} is not in --help:\n{help}", s.flag()));
        let text: String = option.split("\n  -").next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&format!("[env: {}]", s.env)), "{}: {text}", s.name);
        assert!(text.contains(&format!("[default: {}]", s.default.text.replace('`', ""))), "{}: {text}", s.name);
        listed += 1;
    }
    assert!(listed >= 25, "{listed}");
    assert!(help.contains("--config <FILE>"));
    let top = String::from_utf8(tollgate(&["--help"]).stdout).unwrap();
    assert!(["serve", "keygen", "inspect"].iter().all(|c| top.contains(c)), "{top}");
    let version = String::from_utf8(tollgate(&["--version"]).stdout).unwrap();
    assert_eq!(version.trim(), format!("tollgate {}", env!("CARGO_PKG_VERSION")));
    let no_command = tollgate(&[]);
    assert!(!no_command.status.success());
}

#[test]
fn a_config_file_holds_settings_under_the_environment_and_the_options() {
    let dir = std::env::temp_dir().join(format!("tollgate-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tollgate.toml");
    let toml = format!(
        "secret = \"{SECRET}\"\napi_keys = [\"{API_KEY}\"]\nissuer = \"from-the-file\"\naudience = \"file-aud\"\naccess_ttl = \"5m\"\nverify_mode = \"stateless\"\n"
    );
    std::fs::write(&file, toml).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let run = |extra: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--config", &path, "--listen", "127.0.0.1:0", "--admin-listen", "off"]).args(extra);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("TOLLGATE_")) {
                cmd.env_remove(name);
            }
        }
        cmd.env("TOLLGATE_STORE", "memory").envs(vars.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
        serve_process::started(&mut cmd, &[("TOLLGATE_ADMIN_LISTEN", "off".into())])
    };
    // The file alone; then the environment over it; then an option over both.
    for (extra, vars, issuer) in [
        (&[][..], &[][..], "from-the-file"),
        (&[][..], &[("TOLLGATE_ISSUER", "from-the-env")][..], "from-the-env"),
        (&["--issuer", "from-the-option"][..], &[("TOLLGATE_ISSUER", "from-the-env")][..], "from-the-option"),
    ] {
        let s = run(extra, vars);
        let t = create(&s, "fay");
        let (st, v) = post(&s, "/v1/verify", &[], json!({ "token": t["access_token"] }));
        assert_eq!((st, v["claims"]["iss"].as_str(), v["claims"]["aud"].as_str()), (200, Some(issuer), Some("file-aud")), "{v}");
        assert_eq!(v["session"], Value::Null, "verify_mode from the file");
        let ttl = v["claims"]["exp"].as_i64().unwrap() - v["claims"]["iat"].as_i64().unwrap();
        assert_eq!(ttl, 300);
    }
    // Unknown keys, and settings of other surfaces, are refused by name; values are never echoed.
    for (bad, expected) in [
        ("acces_ttl = \"5m\"", "acces_ttl is not a setting"),
        ("kv = \"x\"", "kv is a setting of the Worker only"),
        ("access_ttl = \"hunter2-hunter2\"", "access_ttl is not a duration"),
        ("secret = [[[", "is not valid TOML"),
    ] {
        std::fs::write(&file, format!("secret = \"{SECRET}\"\napi_keys = [\"{API_KEY}\"]\n{bad}\n")).unwrap();
        let out =
            Command::new(env!("CARGO_BIN_EXE_tollgate")).args(["serve", "--config", &path]).env_remove("TOLLGATE_SECRET").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("config_invalid") && stderr.contains(expected), "{bad}: {stderr}");
        assert!(!stderr.contains("hunter2") && !stderr.contains(SECRET), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keygen_makes_a_key_of_every_algorithm_that_serve_signs_with() {
    for alg in tollgate::engine::keys::Alg::ALL {
        let out = tollgate(&["keygen", "--alg", alg.as_str()]);
        assert!(out.status.success(), "{alg:?}: {}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout).unwrap();
        let vars: Vec<(&str, String)> = if alg.as_str().starts_with("HS") {
            let bytes = tollgate::engine::b64::decode(key.trim()).unwrap().len();
            assert!(bytes >= 32, "{alg:?}: {bytes} bytes");
            vec![("TOLLGATE_SECRET", key.trim().to_owned()), ("TOLLGATE_ALG", alg.as_str().into())]
        } else {
            assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
            vec![
                ("TOLLGATE_SECRET", String::new()),
                ("TOLLGATE_SIGNING_KEY", key.clone()),
                ("TOLLGATE_ALG", alg.as_str().into()),
                ("TOLLGATE_REFRESH_SECRET", REFRESH_SECRET.into()),
            ]
        };
        let s = start(&vars);
        let t = create(&s, "kim");
        let (st, v) = post(&s, "/v1/verify", &[], json!({ "token": t["access_token"] }));
        assert_eq!(st, 200, "{alg:?}: {v}");
        let twice = tollgate(&["keygen", "--alg", alg.as_str()]);
        assert_ne!(twice.stdout, key.as_bytes(), "a new key each time");
    }
    let bad = tollgate(&["keygen", "--alg", "none"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

#[test]
fn inspect_decodes_without_verifying() {
    let s = start(&[]);
    let t = create(&s, "ida");
    let out = tollgate(&["inspect", t["access_token"].as_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success() && text.contains("\"sub\": \"ida\"") && text.contains("not verified"), "{text}");
    let out = tollgate(&["inspect", "not.a.jwt"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not base64url JSON"));
}

#[test]
fn without_an_admin_listener_metrics_need_the_api_key() {
    let s = start(&[("TOLLGATE_ADMIN_LISTEN", "off".into())]);
    let (st, v) = call(&s, "GET", "/metrics", &[], b"");
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("unauthorized")), "{v}");
    let (st, text) = raw(&s, "GET", "/metrics", &[("X-Api-Key", API_KEY)], b"");
    assert_eq!(st, 200);
    assert!(text.contains("tollgate_operations_total"), "{text}");
    assert_eq!(call(&s, "GET", "/readyz", &[], b""), (200, json!({ "status": "ready" })));
}

#[test]
fn json_logs_are_one_object_per_line_without_secrets() {
    let log_path = std::env::temp_dir().join(format!("tollgate-json-log-{}.log", std::process::id()));
    let vars = [("TOLLGATE_LOG_FORMAT", "json".into()), ("TOLLGATE_LOG", "info".into())];
    let mut cmd = serve_process::serve_command(&vars);
    cmd.stderr(std::fs::File::create(&log_path).unwrap());
    let mut s = serve_process::started(&mut cmd, &vars);
    let t = create(&s, "jay");
    let sid = t["session"]["sid"].as_str().unwrap().to_owned();
    assert_eq!(call(&s, "DELETE", &format!("/v1/sessions/{sid}?user=jay"), &[("X-Api-Key", API_KEY)], b"").0, 200);
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    assert_eq!(call(&s, "GET", "/v1/users/jay/sessions", &[("Authorization", &bearer), ("Cookie", "sid=cookie-secret")], b"").0, 401);
    serve_process::signal(&s, "TERM");
    assert!(s.child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string() && l["fields"].is_object()), "{log}");
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["fields"]["message"].as_str()).collect();
    assert!(messages.contains(&"tollgate serving") && messages.contains(&"drained: every connection closed"), "{messages:?}");
    assert!(lines.iter().any(|l| l["fields"]["event"] == "session_revoked"), "{log}");
    // One line per request: method, route pattern, status, error code, duration; no trace id without traces.
    let requests: Vec<&Value> = lines.iter().filter(|l| l["target"] == "tollgate::request").map(|l| &l["fields"]).collect();
    let seen: Vec<(&str, &str, u64, Option<&str>)> = requests
        .iter()
        .map(|r| (r["method"].as_str().unwrap(), r["route"].as_str().unwrap(), r["status"].as_u64().unwrap(), r["code"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v1/sessions", 201, None),
            ("DELETE", "/v1/sessions/{sid}", 200, None),
            ("GET", "/v1/users/{user}/sessions", 401, Some("session_revoked")),
        ],
        "{log}"
    );
    assert!(requests.iter().all(|r| r["duration_ms"].as_f64().is_some() && r.get("trace_id").is_none()), "{log}");
    for secret in [SECRET, API_KEY, t["access_token"].as_str().unwrap(), t["refresh_token"].as_str().unwrap(), "cookie-secret"] {
        assert!(!log.contains(secret), "a secret in the log: {log}");
    }
}
