use std::time::Duration;

use serde_json::{json, Value};

use super::parse::{self, Raw};
use super::*;
use crate::cookies::AdapterOptions;
use crate::crypto::{KeyMaterial, KeySpec};
use crate::engine::keys::Alg;
use crate::engine::ops::VerifyMode;
use crate::engine::policy::LimitPolicy;

const SECRET: &str = "settings-test-secret-of-at-least-32-bytes";
const REFRESH_SECRET: &str = "settings-test-refresh-secret-of-32-bytes";
const API_KEY: &str = "settings-test-api-key-0123";
const ES256_PEM: &str = include_str!("../../tests/keys/es256.pem");

fn text(s: &str) -> Raw {
    Raw::Text(s.into())
}

fn env(pairs: &[(&str, &str)]) -> Source {
    Source::env(pairs.iter().map(|(k, v)| (k.to_string(), text(v))))
}

/// Everything a configuration holds, key material included (Debug would hide it).
fn fingerprint(c: &Config) -> String {
    let keys: Vec<String> = c
        .keys
        .iter()
        .map(|k| {
            let material = match &k.material {
                KeyMaterial::Secret(s) => format!("secret {}", String::from_utf8_lossy(s)),
                KeyMaterial::Pem(p) => format!("pem {p}"),
                KeyMaterial::Jwk(j) => format!("jwk {j}"),
            };
            format!("{} {} {material}", k.kid, k.alg.as_str())
        })
        .collect();
    let refresh_secret = c.policy.refresh_secret.as_ref().map(|s| String::from_utf8_lossy(&s.0).into_owned());
    format!("{keys:?} {:?} refresh secret {refresh_secret:?}", c.policy)
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_name_follows_from_the_snake_case_name() {
    let mut seen = std::collections::HashSet::new();
    for s in SETTINGS {
        assert!(seen.insert(s.name), "{} twice", s.name);
        assert_eq!(s.env, format!("TOLLGATE_{}", s.name.to_uppercase()));
        let engine = matches!(s.scope, Scope::Engine | Scope::Adapter | Scope::ServiceAndAdapter);
        assert_eq!(s.js.is_some(), engine, "{}: only engine and adapter settings are JS fields", s.name);
        assert_eq!(s.rust.is_some(), engine, "{}: only engine and adapter settings are builder methods", s.name);
        if let Some(js) = s.js {
            assert_eq!(js, camel(s.name));
        }
        if let Some(rust) = s.rust {
            assert!(rust == s.name || format!("{rust}s") == s.name, "{}: the method is the name (or its singular)", s.name);
        }
        assert_eq!(s.apply.is_none(), s.default.text == "binding", "{}: only bindings are not parsed", s.name);
    }
}

#[test]
fn the_rust_column_is_the_method_each_setting_calls() {
    let source = include_str!("table.rs");
    for s in SETTINGS.iter().filter(|s| s.rust.is_some()) {
        let start = source.find(&format!("name: \"{}\",", s.name)).unwrap();
        let row = &source[start..];
        let row = &row[..row.find("Setting {").unwrap_or(row.len())];
        assert!(row.contains(&format!("b.{}(", s.rust.unwrap())), "the row of {} calls ConfigBuilder::{}", s.name, s.rust.unwrap());
    }
}

/// Settings read from `source`, plus a signing secret so a configuration builds.
fn config_of(mut source: Source, surface: Surface) -> (Settings, Config) {
    if !source.entries.iter().any(|(_, raw)| matches!(raw, Raw::Text(t) if t == SECRET)) && source.naming == Naming::Env {
        source = source.with("TOLLGATE_SECRET", text(SECRET));
    }
    let settings = Settings::read(&source, surface).unwrap();
    let config = settings.config().unwrap();
    (settings, config)
}

#[test]
fn each_documented_default_is_the_default() {
    let base = || env(&[("TOLLGATE_API_KEYS", API_KEY)]);
    let summary = |(s, c): (Settings, Config)| {
        format!(
            "{} {:?} {:?} {:?} {} {:?} {} {:?} {} {:?} {}",
            fingerprint(&c),
            s.api_keys,
            s.store,
            s.data_dir,
            s.listen,
            s.redis_password,
            s.redis_prefix,
            s.sweep_interval,
            s.log,
            s.serve,
            s.trusted_proxy
        )
    };
    let default = summary(config_of(base(), Surface::Serve));
    let mut checked = 0;
    for s in SETTINGS.iter().filter(|s| s.scope != Scope::Adapter) {
        // The first `literal` of the default column; "none" and "binding" have none.
        let Some(literal) = s.default.text.split('`').nth(1) else { continue };
        let scope_surface = if s.scope == Scope::Worker { Surface::Worker } else { Surface::Serve };
        let with = summary(config_of(base().with(s.env, text(literal)), scope_surface));
        assert_eq!(with, default, "{}: the documented default {literal} is not what the code defaults to", s.name);
        checked += 1;
    }
    assert_eq!(checked, 34);

    let adapter = |source: Source| Settings::read(&source, Surface::Adapter).and_then(|s| s.adapter_options()).unwrap();
    let mut checked = 0;
    for s in SETTINGS.iter().filter(|s| matches!(s.scope, Scope::Adapter | Scope::ServiceAndAdapter)) {
        let Some(literal) = s.default.text.split('`').nth(1) else { continue };
        assert_eq!(adapter(env(&[(s.env, literal)])), AdapterOptions::default(), "{}: the documented default {literal}", s.name);
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn adapters_read_their_options_and_refuse_them_in_pkg_adapter_js_words() {
    let read = |pairs: &[(&str, &str)]| Settings::read(&env(pairs), Surface::Adapter).and_then(|s| s.adapter_options());
    let o = read(&[
        ("TOLLGATE_SECRET", SECRET),
        ("TOLLGATE_REFRESH_COOKIE", "__Secure-tg_refresh"),
        ("TOLLGATE_REFRESH_COOKIE_PATH", "/auth"),
        ("TOLLGATE_ACCESS_COOKIE", "__Host-tg_access"),
        ("TOLLGATE_SAME_SITE", "lax"),
        ("TOLLGATE_TRUSTED_PROXY", "x-forwarded-for:2"),
        ("TOLLGATE_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443"),
    ])
    .unwrap();
    let built = AdapterOptions::builder()
        .refresh_cookie("__Secure-tg_refresh")
        .refresh_cookie_path("/auth")
        .access_cookie("__Host-tg_access")
        .same_site("lax")
        .trusted_proxy("x-forwarded-for:2")
        .allowed_origins(["https://a.example", "https://b.example:8443"])
        .build()
        .unwrap();
    assert_eq!(o, built);
    // An app reads the engine's settings from the same source, with no API key.
    let app = Settings::read(&env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_SAME_SITE", "lax")]), Surface::Adapter).unwrap();
    assert!(app.config().is_ok());

    let refused = |pairs: &[(&str, &str)]| read(pairs).unwrap_err();
    let e = refused(&[("TOLLGATE_REFRESH_COOKIE_PATH", "/auth")]);
    assert_eq!(e.code(), crate::ErrorCode::ConfigInvalid);
    assert_eq!(
        e.message(),
        "TOLLGATE_REFRESH_COOKIE_PATH: a __Host- cookie must have Path=/: use a __Secure- name to scope the cookie to a path"
    );
    assert_eq!(refused(&[("TOLLGATE_SAME_SITE", "none")]).message(), "TOLLGATE_SAME_SITE: 'strict' or 'lax'");
    assert_eq!(
        refused(&[("TOLLGATE_ACCESS_COOKIE", "__Host-tg_refresh")]).message(),
        "TOLLGATE_ACCESS_COOKIE: the access and refresh cookies need two names"
    );
    let proxy = refused(&[("TOLLGATE_TRUSTED_PROXY", "x-forwarded-for:0")]);
    assert!(
        proxy.message().starts_with("TOLLGATE_TRUSTED_PROXY")
            && proxy.message().contains("'none', 'x-forwarded-for:N' (N from 1 to 255 proxies)"),
        "{proxy}"
    );
    assert!(refused(&[("TOLLGATE_ALLOWED_ORIGINS", "https://a.example/path")])
        .message()
        .starts_with("TOLLGATE_ALLOWED_ORIGINS: each origin"));
    let snake = Source::snake([("refresh_cookie".to_owned(), json!("tg_refresh"))]);
    let e = Settings::read(&snake, Surface::Adapter).unwrap().adapter_options().unwrap_err();
    assert!(e.message().starts_with("refresh_cookie: the cookie name must start with __Host- or __Secure-"), "{e}");
    // Each surface reads only its own.
    let serve = Settings::read(&env(&[("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_SAME_SITE", "lax")]), Surface::Serve).unwrap_err();
    assert_eq!(serve.message(), "TOLLGATE_SAME_SITE is a setting of the framework adapters only");
    let keys = Settings::read(&env(&[("TOLLGATE_API_KEYS", API_KEY)]), Surface::Adapter).unwrap_err();
    assert!(keys.message().starts_with("TOLLGATE_API_KEYS is a setting of the HTTP services"), "{keys}");
    let js = Settings::read(&Source::js(json!({ "secret": SECRET, "sameSite": "lax" })).unwrap(), Surface::Js).unwrap_err();
    assert!(js.message().starts_with("sameSite is a setting of the framework adapters only"), "{js}");
}

#[test]
fn durations_are_seconds_or_carry_a_unit() {
    let d = |raw: Raw| parse::duration(&raw);
    for (input, ms) in [("900", 900_000), ("15m", 900_000), ("500ms", 500), ("10s", 10_000), ("12h", 43_200_000), ("14d", 1_209_600_000)] {
        assert_eq!(d(text(input)), Ok(Duration::from_millis(ms)), "{input}");
        assert_eq!(d(Raw::Json(json!(input))), Ok(Duration::from_millis(ms)), "a JSON string reads as text: {input}");
    }
    assert_eq!(d(text(" 1.5h ")), Ok(Duration::from_secs(5400)));
    assert_eq!(d(text("0")), Ok(Duration::ZERO));
    assert_eq!(d(Raw::Json(json!(0.5))), Ok(Duration::from_millis(500)));
    assert_eq!(d(Raw::Json(json!(900))), Ok(Duration::from_secs(900)));
    for bad in ["-1", "1e3", "10 parsecs", "m", "1.", ".5", "NaN", "inf", "15 m", "1.2.3", "99999999999d", "0x10"] {
        assert!(d(text(bad)).is_err(), "{bad}");
    }
    for bad in [json!(true), json!(-1), json!([1]), json!({}), json!(1e300)] {
        assert!(d(Raw::Json(bad.clone())).is_err(), "{bad}");
    }
    assert_eq!(parse::duration_or_off(&text("off")), Ok(None));
    assert_eq!(parse::duration_or_off(&text("2m")), Ok(Some(Duration::from_secs(120))));
    assert!(parse::duration_or_off(&text("0")).is_err());
    assert!(parse::duration_or_off(&text("never")).is_err());
}

#[test]
fn counts_lists_text_and_choices() {
    assert_eq!(parse::count(&text(" 16 ")), Ok(16));
    assert_eq!(parse::count(&Raw::Json(json!(16))), Ok(16));
    assert_eq!(parse::count(&Raw::Json(json!(16.0))), Ok(16));
    assert_eq!(parse::count(&text("4294967295")), Ok(u32::MAX));
    for bad in ["-1", "1.5", "4294967296", "abc", "1 2", "+3", ""] {
        assert!(parse::count(&text(bad)).is_err(), "{bad}");
    }
    for bad in [json!(1.5), json!(-1), json!("x"), json!(true)] {
        assert!(parse::count(&Raw::Json(bad.clone())).is_err(), "{bad}");
    }
    assert_eq!(parse::list(&text("a, b,,c ")), Ok(vec!["a".into(), "b".into(), "c".into()]));
    assert_eq!(parse::list(&Raw::Json(json!(["a", " b "]))), Ok(vec!["a".into(), "b".into()]));
    assert_eq!(parse::list(&Raw::Json(json!("a,b"))), Ok(vec!["a".into(), "b".into()]), "a JSON string reads as text");
    assert!(parse::list(&Raw::Json(json!([1]))).is_err());
    assert!(parse::list(&Raw::Json(json!(5))).is_err());
    assert_eq!(parse::text(&text("  x ")), Ok("x".into()));
    assert!(parse::text(&Raw::Json(json!(1))).is_err());
    assert_eq!(parse::secret(&text(" s ")), Ok(b" s ".to_vec()), "secrets are used byte for byte");
    let limit = [("evict_oldest", LimitPolicy::EvictOldest), ("refuse", LimitPolicy::Refuse)];
    assert_eq!(parse::choice(&text("refuse"), &limit), Ok(LimitPolicy::Refuse));
    assert_eq!(parse::choice(&text("evict"), &limit), Err("must be one of evict_oldest, refuse".into()));
    for alg in Alg::ALL {
        assert_eq!(parse::alg(&text(alg.as_str())), Ok(alg));
    }
    assert!(parse::alg(&text("none")).is_err() && parse::alg(&text("hs256")).is_err());
    assert!(parse::listen_addr(&text("127.0.0.1:8080")).is_ok() && parse::listen_addr(&text("[::1]:0")).is_ok());
    assert!(parse::listen_addr(&text("localhost:8080")).is_err());
}

#[test]
fn keys_are_pem_or_jwk_and_verify_keys_a_json_array() {
    assert!(matches!(parse::key_material(&text(ES256_PEM)), Ok(KeyMaterial::Pem(_))));
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": "x", "d": "d" });
    assert!(matches!(parse::key_material(&text(&jwk.to_string())), Ok(KeyMaterial::Jwk(j)) if j == jwk));
    assert!(matches!(parse::key_material(&Raw::Json(jwk.clone())), Ok(KeyMaterial::Jwk(_))));
    for bad in [SECRET, "-----BEGIN PRIVATE KEY-----\nabc", "{not json", "[1]"] {
        let e = parse::key_material(&text(bad)).unwrap_err();
        assert!(!e.contains(SECRET) && !e.contains("abc"), "{e}");
    }
    let keys = json!([
        { "kid": "a", "secret": SECRET },
        { "kid": "b", "alg": "HS512", "secret": SECRET },
        { "kid": "c", "alg": "ES256", "pem": ES256_PEM },
        { "kid": "d", "jwk": jwk },
        { "kid": "e", "jwk": jwk.to_string() },
    ]);
    let from_text = parse::key_list(&text(&keys.to_string())).unwrap();
    let from_json = parse::key_list(&Raw::Json(keys)).unwrap();
    let algs: Vec<Alg> = from_text.iter().map(|k| k.alg).collect();
    assert_eq!(algs, [Alg::HS256, Alg::HS512, Alg::ES256, Alg::EdDSA, Alg::EdDSA]);
    assert_eq!(format!("{from_text:?}"), format!("{from_json:?}"));
    let bad = [
        (json!({}), "is not a JSON array"),
        (json!([{ "secret": SECRET }]), "key #1 needs a \"kid\""),
        (json!([{ "kid": "a", "secret": SECRET, "pem": ES256_PEM }]), "key #1 needs exactly one"),
        (json!([{ "kid": "a", "alg": "ES256", "pem": SECRET }]), "key #1 has a \"pem\" that is neither"),
        (json!([{ "kid": "a", "pem": ES256_PEM }]), "key #1 needs an \"alg\""),
        (json!([{ "kid": "a", "secret": SECRET }, { "kid": "b", "secret": SECRET, "use": "sig" }]), "key #2 has a field"),
        (json!([{ "kid": "a", "alg": "none", "secret": SECRET }]), "key #1 has an \"alg\" that must be one of"),
        (json!([{ "kid": 7, "secret": SECRET }]), "key #1 has a \"kid\" that is not a string"),
    ];
    for (value, expected) in bad {
        let e = parse::key_list(&Raw::Json(value.clone())).unwrap_err();
        assert!(e.starts_with(expected), "{value}: {e}");
        assert!(!e.contains(SECRET), "{e}");
    }
    assert!(parse::key_list(&text(SECRET)).unwrap_err().starts_with("is not a JSON array"));
}

#[test]
fn debug_output_shows_no_value() {
    let source = env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), ("TOLLGATE_REDIS_PASSWORD", "hunter2")])
        .with("TOLLGATE_STORE", text("redis://:hunter2@h:1"));
    let settings = Settings::read(&source, Surface::Serve).unwrap();
    for shown in [format!("{source:?}"), format!("{settings:?}"), format!("{:?}", settings.config().unwrap())] {
        assert!(!shown.contains(SECRET) && !shown.contains(API_KEY) && !shown.contains("hunter2"), "{shown}");
    }
    assert!(format!("{source:?}").contains("TOLLGATE_SECRET"), "names are shown");
}

#[test]
fn the_store_is_one_value_for_every_backend() {
    let redis = |t: RedisTarget| Ok(StoreSetting::Redis(t));
    assert_eq!(StoreSetting::parse("memory"), Ok(StoreSetting::Memory));
    assert_eq!(StoreSetting::parse(" durable "), Ok(StoreSetting::DurableObjects));
    assert_eq!(StoreSetting::parse("kv"), Ok(StoreSetting::WorkersKv));
    assert_eq!(StoreSetting::parse("redis://:pw@h:6379/2"), redis(RedisTarget::Url("redis://:pw@h:6379/2".into())));
    assert_eq!(StoreSetting::parse("rediss://h"), redis(RedisTarget::Url("rediss://h".into())));
    assert_eq!(
        StoreSetting::parse("redis-sentinel://a:26379, b:26380/mymaster"),
        redis(RedisTarget::Sentinel { sentinels: vec!["a:26379".into(), "b:26380".into()], master: "mymaster".into() })
    );
    assert_eq!(
        StoreSetting::parse("redis-cluster://a:7000,b:7001"),
        redis(RedisTarget::Cluster { nodes: vec!["a:7000".into(), "b:7001".into()] })
    );
    assert!(StoreSetting::parse("redis").unwrap_err().starts_with("is not a store"));
    for bad in [
        "redis",
        "memory://x",
        "kv://",
        "redis://",
        "redis://:pw@",
        "redis-sentinel://a:1",
        "redis-sentinel://a:1/",
        "redis-sentinel://a/m",
        "redis-cluster://",
        "redis-cluster://a:0",
        "redis-cluster://a:b",
        "postgres://",
        "mysql://:pw@/db",
        "sqlite:",
        "sqlite::memory:",
        "sqlite:x.db?mode=ro",
        "d1://x",
    ] {
        assert!(StoreSetting::parse(bad).is_err(), "{bad}");
    }
    let shown = format!("{:?}", StoreSetting::parse("redis://user:hunter2@h:6379/0").unwrap());
    assert!(!shown.contains("hunter2") && shown.contains("h:6379"), "{shown}");

    let sql = |t: SqlTarget| Ok(StoreSetting::Sql(t));
    assert_eq!(StoreSetting::parse("d1"), Ok(StoreSetting::D1));
    assert_eq!(StoreSetting::parse("sqlite:/var/lib/tg/s.db"), sql(SqlTarget::Sqlite("/var/lib/tg/s.db".into())));
    assert_eq!(StoreSetting::parse("sqlite://rel/s.db"), sql(SqlTarget::Sqlite("rel/s.db".into())));
    assert_eq!(StoreSetting::parse("postgresql://u:p@h/db"), sql(SqlTarget::Postgres("postgresql://u:p@h/db".into())));
    assert_eq!(StoreSetting::parse("mariadb://h:3306/db"), sql(SqlTarget::MySql("mariadb://h:3306/db".into())));
    assert_eq!(SqlTarget::Sqlite("a/s.db".into()).url(), "sqlite:a/s.db");
    for url in ["postgres://tg:hunter2@h:5432/db", "mysql://tg:hunter2@h/db", "postgres://h/db?password=hunter2"] {
        let shown = format!("{:?}", StoreSetting::parse(url).unwrap());
        assert!(!shown.contains("hunter2") && shown.contains("h"), "{shown}");
    }
}

#[test]
fn serve_keeps_sessions_in_sqlite_in_its_data_dir_unless_told_otherwise() {
    let read = |pairs: &[(&str, &str)], surface| {
        let mut all = vec![("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY)];
        all.extend_from_slice(pairs);
        Settings::read(&env(&all), surface)
    };
    let sqlite = |path: &str| StoreSetting::Sql(SqlTarget::Sqlite(path.into()));
    assert_eq!(read(&[], Surface::Serve).unwrap().store, sqlite("./tollgate-data/sessions.db"));
    assert_eq!(read(&[("TOLLGATE_DATA_DIR", "/srv/tg")], Surface::Serve).unwrap().store, sqlite("/srv/tg/sessions.db"));
    assert_eq!(read(&[("TOLLGATE_STORE", "memory")], Surface::Serve).unwrap().store, StoreSetting::Memory);
    let pg = read(&[("TOLLGATE_STORE", "postgres://h/db"), ("TOLLGATE_DATA_DIR", "/srv/tg")], Surface::Serve).unwrap();
    assert_eq!(pg.store, StoreSetting::Sql(SqlTarget::Postgres("postgres://h/db".into())));
    assert_eq!(read(&[("TOLLGATE_STORE", "d1")], Surface::Worker).unwrap().store, StoreSetting::D1);
    assert_eq!(read(&[], Surface::Worker).unwrap().store, StoreSetting::DurableObjects);
    let refused = |pairs: &[(&str, &str)], surface| read(pairs, surface).unwrap_err().message().to_owned();
    assert!(refused(&[("TOLLGATE_STORE", "d1")], Surface::Serve).starts_with("TOLLGATE_STORE names a store"));
    assert!(refused(&[("TOLLGATE_STORE", "sqlite:x.db")], Surface::Worker).starts_with("TOLLGATE_STORE names a store"));
    assert!(refused(&[("TOLLGATE_DATA_DIR", "/x")], Surface::Worker).contains("tollgate serve only"));
    assert!(refused(&[("TOLLGATE_DATA_DIR", "/srv/tg?mode=ro")], Surface::Serve).starts_with("TOLLGATE_DATA_DIR is not a directory"));
}

#[test]
fn unknown_and_misplaced_names_are_refused_on_each_surface() {
    let message = |source: Source, surface| Settings::read(&source, surface).and_then(|s| s.config()).unwrap_err().message().to_owned();
    let with_keys = |extra: (&str, &str)| env(&[("TOLLGATE_SECRET", SECRET), ("TOLLGATE_API_KEYS", API_KEY), extra]);
    assert!(message(with_keys(("TOLLGATE_SECRETS", "x")), Surface::Serve).starts_with("TOLLGATE_SECRETS is not a setting"));
    assert!(message(with_keys(("TOLLGATE_REDIS_URL", "redis://h")), Surface::Serve).contains("use TOLLGATE_STORE"));
    assert!(message(with_keys(("TOLLGATE_KV", "x")), Surface::Serve).starts_with("TOLLGATE_KV is a setting of the Worker only"));
    assert!(message(with_keys(("TOLLGATE_LISTEN", "127.0.0.1:1")), Surface::Worker)
        .starts_with("TOLLGATE_LISTEN is a setting of tollgate serve"));
    assert!(message(with_keys(("TOLLGATE_STORE", "kv")), Surface::Serve).starts_with("TOLLGATE_STORE names a store"));
    // Names that are not tollgate's are none of its business.
    assert!(Settings::read(&with_keys(("TG_TEST_PORT", "1")), Surface::Serve).is_ok());

    let js = |v: Value| message(Source::js(v).unwrap(), Surface::Js);
    assert!(js(json!({ "secret": SECRET, "accesTtl": 5 })).starts_with("accesTtl is not a setting"));
    assert!(js(json!({ "keys": { "kid": "k", "secret": SECRET } })).contains("use secret (or signingKey)"));
    assert!(js(json!({ "secret": SECRET, "apiKeys": API_KEY })).starts_with("apiKeys is not a setting"));
    assert!(js(json!({ "secret": SECRET, "access_ttl": 5 })).starts_with("access_ttl is not a setting"), "JS names only");
    assert!(Source::js(json!([1])).is_err());

    let snake = Source::snake([("access_ttl".to_owned(), json!("5m")), ("TOLLGATE_LOG".to_owned(), json!("debug"))]);
    assert!(message(snake, Surface::Serve).starts_with("TOLLGATE_LOG is not a setting"));
}

#[test]
fn malformed_values_are_refused_by_name_without_their_value() {
    let hidden = "hunter2-hunter2-hunter2-hunter2-hunter2";
    let cases = [
        ("TOLLGATE_ACCESS_TTL", "access_ttl", "accessTtl"),
        ("TOLLGATE_MAX_ATTEMPTS", "max_attempts", "maxAttempts"),
        ("TOLLGATE_ON_LIMIT", "on_limit", "onLimit"),
        ("TOLLGATE_VERIFY_MODE", "verify_mode", "verifyMode"),
        ("TOLLGATE_VERIFY_KEYS", "verify_keys", "verifyKeys"),
        ("TOLLGATE_SIGNING_KEY", "signing_key", "signingKey"),
        ("TOLLGATE_ALG", "alg", "alg"),
    ];
    for (env_name, snake, js_name) in cases {
        let e = Settings::read(&env(&[(env_name, hidden), ("TOLLGATE_API_KEYS", API_KEY)]), Surface::Serve).unwrap_err();
        assert!(e.message().starts_with(&format!("{env_name} ")) && !e.message().contains(hidden), "{e}");
        assert_eq!(e.code().as_str(), "config_invalid");
        let e = Settings::read(&Source::js(json!({ js_name: hidden })).unwrap(), Surface::Js).unwrap_err();
        assert!(e.message().starts_with(&format!("{js_name} ")) && !e.message().contains(hidden), "{e}");
        let e = Settings::read(&Source::snake([(snake.to_owned(), json!(hidden))]), Surface::Serve).unwrap_err();
        assert!(e.message().starts_with(&format!("{snake} ")) && !e.message().contains(hidden), "{e}");
    }
    let e = Settings::read(&env(&[("TOLLGATE_API_KEYS", "short")]), Surface::Serve).unwrap_err();
    assert!(e.message().starts_with("TOLLGATE_API_KEYS has a key shorter"), "{e}");
    let e = Settings::read(&env(&[("TOLLGATE_SECRET", SECRET)]), Surface::Worker).unwrap_err();
    assert!(e.message().starts_with("TOLLGATE_API_KEYS is not set"), "{e}");
}

#[test]
fn problems_found_while_building_name_the_settings_as_each_surface_spells_them() {
    let cases: [(Value, &str, &str); 9] = [
        (json!({}), "TOLLGATE_SECRET is not set: give it (`tollgate keygen` makes one), or TOLLGATE_SIGNING_KEY", "secret is not set"),
        (
            json!({ "secret": SECRET, "signing_key": ES256_PEM }),
            "TOLLGATE_SECRET and TOLLGATE_SIGNING_KEY are both set",
            "secret and signingKey",
        ),
        (
            json!({ "secret": SECRET, "alg": "ES256" }),
            "TOLLGATE_ALG is asymmetric: its key is given with TOLLGATE_SIGNING_KEY",
            "alg is asymmetric",
        ),
        (json!({ "secret": "short" }), "TOLLGATE_SECRET must be at least 32 bytes for HS256", "secret must be at least 32"),
        (
            json!({ "signing_key": ES256_PEM }),
            "TOLLGATE_REFRESH_SECRET is required when TOLLGATE_SIGNING_KEY is asymmetric",
            "refreshSecret is required when signingKey is asymmetric",
        ),
        (
            json!({ "secret": SECRET, "refresh_secret": "short" }),
            "TOLLGATE_REFRESH_SECRET must be at least 32 bytes",
            "refreshSecret must be at least 32",
        ),
        (json!({ "secret": SECRET, "alg": "HS512" }), "TOLLGATE_SECRET must be at least 64 bytes for HS512", "secret must be at least 64"),
        (
            json!({ "secret": SECRET, "idle_ttl": "31d" }),
            "TOLLGATE_IDLE_TTL cannot exceed TOLLGATE_ABSOLUTE_TTL",
            "idleTtl cannot exceed absoluteTtl",
        ),
        (
            json!({ "secret": SECRET, "verify_keys": [{ "kid": "k1", "secret": SECRET }] }),
            "TOLLGATE_VERIFY_KEYS key #1 has the kid of another key",
            "verifyKeys key #1 has the kid",
        ),
    ];
    for (settings, env_message, js_message) in cases {
        let Value::Object(map) = settings else { unreachable!() };
        let env_source = Source::env(map.iter().map(|(k, v)| (format!("TOLLGATE_{}", k.to_uppercase()), raw_text(v))));
        let e = Settings::read(&env_source.with("TOLLGATE_API_KEYS", text(API_KEY)), Surface::Serve).unwrap().config().unwrap_err();
        assert!(e.message().starts_with(env_message), "{e}");
        let js_source = Source::js(Value::Object(map.iter().map(|(k, v)| (camel(k), v.clone())).collect())).unwrap();
        let e = Settings::read(&js_source, Surface::Js).unwrap().config().unwrap_err();
        assert!(e.message().starts_with(js_message), "{e}");
        assert!(!e.message().contains(SECRET));
    }
    // Rust names the builder's methods.
    let e = Config::builder().secret(SECRET).idle_ttl(Duration::from_secs(100 * 86_400)).build().unwrap_err();
    assert_eq!(e.message(), "idle_ttl cannot exceed absolute_ttl");
    let e = Config::builder().secret(SECRET).verify_key(KeySpec::secret("k1", Alg::HS256, SECRET)).build().unwrap_err();
    assert!(e.message().starts_with("verify_key key #1 has the kid of another key"), "{e}");
}

/// A JSON value as an environment variable writes it.
fn raw_text(v: &Value) -> Raw {
    match v {
        Value::String(s) => text(s),
        other => text(&other.to_string()),
    }
}

/// Every engine setting, once as the environment writes it and once as the JS configuration does.
fn every_engine_setting() -> (Vec<(&'static str, &'static str)>, Value) {
    let verify_keys = r#"[{"kid":"old","secret":"an-older-secret-of-at-least-32-bytes"},{"kid":"ec","alg":"ES256","pem":"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----"}]"#;
    let env = vec![
        ("TOLLGATE_SECRET", "a-secret-of-sixty-four-bytes-for-hs512-0123456789012345678901234"),
        ("TOLLGATE_ALG", "HS512"),
        ("TOLLGATE_KID", "2026-11"),
        ("TOLLGATE_VERIFY_KEYS", verify_keys),
        ("TOLLGATE_REFRESH_SECRET", "a-refresh-secret-of-at-least-32-bytes"),
        ("TOLLGATE_ISSUER", "https://auth.example"),
        ("TOLLGATE_AUDIENCE", "api,web"),
        ("TOLLGATE_LEEWAY", "5s"),
        ("TOLLGATE_MAX_TOKEN_BYTES", "4096"),
        ("TOLLGATE_ACCESS_TTL", "300"),
        ("TOLLGATE_IDLE_TTL", "2d"),
        ("TOLLGATE_ABSOLUTE_TTL", "20d"),
        ("TOLLGATE_REFRESH_GRACE", "1500ms"),
        ("TOLLGATE_TOUCH_INTERVAL", "2m"),
        ("TOLLGATE_USER_CACHE_TTL", "1h"),
        ("TOLLGATE_MAX_SESSIONS_PER_USER", "3"),
        ("TOLLGATE_ON_LIMIT", "refuse"),
        ("TOLLGATE_REFRESH_PREFIX", "app"),
        ("TOLLGATE_MAX_METADATA_BYTES", "2048"),
        ("TOLLGATE_MAX_CLAIMS_BYTES", "1024"),
        ("TOLLGATE_MAX_ATTEMPTS", "4"),
        ("TOLLGATE_RECENT_WRITES", "500"),
        ("TOLLGATE_VERIFY_MODE", "stateless"),
        ("TOLLGATE_RECORD_FORMAT", "json"),
    ];
    let js = json!({
        "secret": "a-secret-of-sixty-four-bytes-for-hs512-0123456789012345678901234",
        "alg": "HS512",
        "kid": "2026-11",
        "verifyKeys": serde_json::from_str::<Value>(verify_keys).unwrap(),
        "refreshSecret": "a-refresh-secret-of-at-least-32-bytes",
        "issuer": "https://auth.example",
        "audience": ["api", "web"],
        "leeway": 5,
        "maxTokenBytes": 4096,
        "accessTtl": "5m",
        "idleTtl": 172800,
        "absoluteTtl": "20d",
        "refreshGrace": 1.5,
        "touchInterval": 120,
        "userCacheTtl": "60m",
        "maxSessionsPerUser": 3,
        "onLimit": "refuse",
        "refreshPrefix": "app",
        "maxMetadataBytes": 2048,
        "maxClaimsBytes": 1024,
        "maxAttempts": 4,
        "recentWrites": 500,
        "verifyMode": "stateless",
        "recordFormat": "json",
    });
    (env, js)
}

#[test]
fn the_same_settings_give_the_same_config_from_the_environment_and_from_js() {
    let (vars, js) = every_engine_setting();
    let engine_settings = SETTINGS.iter().filter(|s| s.scope == Scope::Engine).count();
    assert_eq!(vars.len() + 1, engine_settings, "every engine setting but signing_key (it excludes secret)");
    let from_env = Settings::read(&env(&vars).with("TOLLGATE_API_KEYS", text(API_KEY)), Surface::Serve).unwrap().config().unwrap();
    let from_js = Settings::read(&Source::js(js).unwrap(), Surface::Js).unwrap().config().unwrap();
    assert_eq!(fingerprint(&from_env), fingerprint(&from_js));
    let p = &from_env.policy;
    assert_eq!((p.refresh_grace_ms, p.user_cache_ttl_ms, p.verify_mode), (1500, 3_600_000, VerifyMode::Stateless));
    assert_eq!(from_env.keys.len(), 3);

    // Each of them changes the configuration: none is read and then dropped.
    let all = fingerprint(&from_env);
    for (name, _) in vars.iter().filter(|(name, _)| *name != "TOLLGATE_SECRET") {
        let without: Vec<_> = vars.iter().filter(|(n, _)| n != name).copied().collect();
        let config = Settings::read(&env(&without), Surface::Js).unwrap().config().unwrap_or_else(|e| panic!("without {name}: {e}"));
        assert_ne!(fingerprint(&config), all, "{name} changed nothing");
    }
    let signing = Settings::read(&env(&[("TOLLGATE_SIGNING_KEY", ES256_PEM), ("TOLLGATE_REFRESH_SECRET", REFRESH_SECRET)]), Surface::Js)
        .unwrap()
        .config()
        .unwrap();
    assert_eq!((signing.keys[0].alg, signing.keys[0].kid.as_str()), (Alg::ES256, "k1"));
}

#[test]
fn a_key_that_does_not_load_is_named_by_its_setting() {
    let settings =
        Settings::read(&env(&[("TOLLGATE_SIGNING_KEY", ES256_PEM), ("TOLLGATE_REFRESH_SECRET", REFRESH_SECRET)]), Surface::Js).unwrap();
    let config = settings.config().unwrap();
    let e = settings.key_refused(&config, crate::crypto::KeyError::at(0)(crate::Error::config("the key is not a valid ES256 key")));
    assert_eq!(e.message(), "TOLLGATE_SIGNING_KEY is not usable: the key is not a valid ES256 key");
    let settings = Settings::read(&Source::js(json!({ "secret": SECRET })).unwrap(), Surface::Js).unwrap();
    let e = settings.key_refused(&config, crate::crypto::KeyError::at(1)(crate::Error::config("bad")));
    assert_eq!(e.message(), "verifyKeys key #1 is not usable: bad");
}

#[test]
fn the_readmes_hold_the_tables_rendered_from_the_code() {
    let mut differ = Vec::new();
    if !include_str!("../../README.md").contains(&readme_table()) {
        differ.push(format!("README.md's settings table differs from settings::readme_table():\n{}", readme_table()));
    }
    if !include_str!("../../pkg/README.md").contains(&js_table()) {
        differ.push(format!("pkg/README.md's configuration table differs from settings::js_table():\n{}", js_table()));
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
