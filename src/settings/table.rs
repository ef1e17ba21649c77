//! The settings table: every setting once, in the order the README lists them.
//! Engine settings go into [`Settings::engine`] through the builder method of
//! their Rust column; the others into their own field of [`Settings`].

use super::parse::{self, Problem, Raw};
use super::{doc, ApiKeys, Apply, ConfigBuilder, LogFormat, Redacted, Scope, Setting, Settings, StoreSetting};
use crate::cookies::{AdapterOptionsBuilder, BAD_PROXY};
use crate::engine::ops::VerifyMode;
use crate::engine::policy::LimitPolicy;
use crate::engine::record::RecordFormat;

/// Applies a builder method to the engine settings.
fn engine(s: &mut Settings, set: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Result<(), Problem> {
    s.engine = set(take_engine(s));
    Ok(())
}

/// Sets one of the framework adapters' options (checked together by [`Settings::adapter_options`]).
fn options(s: &mut Settings, set: impl FnOnce(AdapterOptionsBuilder) -> AdapterOptionsBuilder) -> Result<(), Problem> {
    s.adapter = set(std::mem::take(&mut s.adapter));
    Ok(())
}

/// Out of line, so each setting's parser does not carry its own copy of the builder's default.
#[inline(never)]
fn take_engine(s: &mut Settings) -> ConfigBuilder {
    std::mem::take(&mut s.engine)
}

/// The parser of a setting only the HTTP services read: the npm package's module leaves it out.
const fn service(apply: Apply) -> Option<Apply> {
    if cfg!(all(target_arch = "wasm32", not(feature = "worker"))) {
        None
    } else {
        Some(apply)
    }
}

/// The parser of a setting only `tollgate serve` reads: WebAssembly modules leave it out.
const fn serve(apply: Apply) -> Option<Apply> {
    if cfg!(target_arch = "wasm32") {
        None
    } else {
        Some(apply)
    }
}

/// The parser of a framework adapter's option: the WebAssembly modules leave it out
/// (the npm package's adapters take their options in JavaScript).
const fn adapter(apply: Apply) -> Option<Apply> {
    if cfg!(target_arch = "wasm32") {
        None
    } else {
        Some(apply)
    }
}

/// A count of bytes or tries.
fn size(raw: &Raw) -> Result<usize, Problem> {
    parse::count(raw).map(|n| n as usize)
}

/// A duration longer than zero.
fn positive(raw: &Raw) -> Result<std::time::Duration, Problem> {
    match parse::duration(raw)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A count of one or more.
fn at_least_one(raw: &Raw) -> Result<u32, Problem> {
    match parse::count(raw)? {
        0 => Err("must be 1 or more".into()),
        n => Ok(n),
    }
}

pub static SETTINGS: &[Setting] = &[
    Setting {
        name: "secret",
        env: "TOLLGATE_SECRET",
        js: Some("secret"),
        rust: Some("secret"),
        scope: Scope::Engine,
        secret: true,
        default: doc("none"),
        help: doc("HMAC signing secret, 32 bytes or more (48 for HS384, 64 for HS512); `tollgate keygen` makes one. This or a signing key is required"),
        apply: Some(|s, raw| {
            let secret = parse::secret(raw)?;
            engine(s, |b| b.secret(secret))
        }),
    },
    Setting {
        name: "signing_key",
        env: "TOLLGATE_SIGNING_KEY",
        js: Some("signingKey"),
        rust: Some("signing_key"),
        scope: Scope::Engine,
        secret: true,
        default: doc("none"),
        help: doc("instead of a secret: the private key that signs, a PKCS#8 PEM or a JWK (ES256, EdDSA, RS256)"),
        apply: Some(|s, raw| {
            let key = parse::key_material(raw)?;
            engine(s, |b| b.signing_key(key))
        }),
    },
    Setting {
        name: "alg",
        env: "TOLLGATE_ALG",
        js: Some("alg"),
        rust: Some("alg"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`HS256`; `ES256` with a signing key"),
        help: doc("signing algorithm: HS256, HS384, HS512, ES256, EdDSA or RS256 (a JWK signing key's own by default)"),
        apply: Some(|s, raw| {
            let alg = parse::alg(raw)?;
            engine(s, |b| b.alg(alg))
        }),
    },
    Setting {
        name: "kid",
        env: "TOLLGATE_KID",
        js: Some("kid"),
        rust: Some("kid"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`k1`"),
        help: doc("id of the signing key, written as each token's `kid` header"),
        apply: Some(|s, raw| {
            let kid = parse::text(raw)?;
            engine(s, |b| b.kid(kid))
        }),
    },
    Setting {
        name: "verify_keys",
        env: "TOLLGATE_VERIFY_KEYS",
        js: Some("verifyKeys"),
        rust: Some("verify_key"),
        scope: Scope::Engine,
        secret: true,
        default: doc("none"),
        help: doc("keys accepted for verification only (rotation), a list of `{\"kid\", \"alg\", and one of \"secret\", \"pem\", \"jwk\"}` (in the environment, a JSON array)"),
        apply: Some(|s, raw| {
            let keys = parse::key_list(raw)?;
            engine(s, |b| keys.into_iter().fold(b, |b, key| b.verify_key(key)))
        }),
    },
    Setting {
        name: "refresh_secret",
        env: "TOLLGATE_REFRESH_SECRET",
        js: Some("refreshSecret"),
        rust: Some("refresh_secret"),
        scope: Scope::Engine,
        secret: true,
        default: doc("derived from the signing secret"),
        help: doc("32 bytes or more that stored sessions are authenticated with (a store writer cannot mint tokens). Required with a signing key; when rotating `secret`, set it to the old secret so sessions survive"),
        apply: Some(|s, raw| {
            let secret = parse::secret(raw)?;
            engine(s, |b| b.refresh_secret(secret))
        }),
    },
    Setting {
        name: "issuer",
        env: "TOLLGATE_ISSUER",
        js: Some("issuer"),
        rust: Some("issuer"),
        scope: Scope::Engine,
        secret: false,
        default: doc("none"),
        help: doc("written as `iss`, and required on verify"),
        apply: Some(|s, raw| {
            let issuer = parse::text(raw)?;
            engine(s, |b| b.issuer(issuer))
        }),
    },
    Setting {
        name: "audience",
        env: "TOLLGATE_AUDIENCE",
        js: Some("audience"),
        rust: Some("audience"),
        scope: Scope::Engine,
        secret: false,
        default: doc("none"),
        help: doc("accepted `aud` values, a list; the first is written into tokens"),
        apply: Some(|s, raw| {
            let audience = parse::list(raw)?;
            engine(s, |b| audience.into_iter().fold(b, |b, aud| b.audience(aud)))
        }),
    },
    Setting {
        name: "leeway",
        env: "TOLLGATE_LEEWAY",
        js: Some("leeway"),
        rust: Some("leeway"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`30s`"),
        help: doc("clock slack allowed on `exp` and `nbf`"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.leeway(d))
        }),
    },
    Setting {
        name: "max_token_bytes",
        env: "TOLLGATE_MAX_TOKEN_BYTES",
        js: Some("maxTokenBytes"),
        rust: Some("max_token_bytes"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`8192`"),
        help: doc("longer access tokens are refused before any parsing"),
        apply: Some(|s, raw| {
            let n = size(raw)?;
            engine(s, |b| b.max_token_bytes(n))
        }),
    },
    Setting {
        name: "access_ttl",
        env: "TOLLGATE_ACCESS_TTL",
        js: Some("accessTtl"),
        rust: Some("access_ttl"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`15m`"),
        help: doc("lifetime of an access token"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.access_ttl(d))
        }),
    },
    Setting {
        name: "idle_ttl",
        env: "TOLLGATE_IDLE_TTL",
        js: Some("idleTtl"),
        rust: Some("idle_ttl"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`14d`"),
        help: doc("a session unused this long ends (sliding expiry)"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.idle_ttl(d))
        }),
    },
    Setting {
        name: "absolute_ttl",
        env: "TOLLGATE_ABSOLUTE_TTL",
        js: Some("absoluteTtl"),
        rust: Some("absolute_ttl"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`30d`"),
        help: doc("a session ends this long after sign-in, whatever happens"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.absolute_ttl(d))
        }),
    },
    Setting {
        name: "refresh_grace",
        env: "TOLLGATE_REFRESH_GRACE",
        js: Some("refreshGrace"),
        rust: Some("refresh_grace"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`30s`"),
        help: doc("a rotated refresh token presented again this soon gets the same successor (so a retry after a lost reply works); later it is reuse and revokes the session. Clients send every retry of one refresh within it"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.refresh_grace(d))
        }),
    },
    Setting {
        name: "touch_interval",
        env: "TOLLGATE_TOUCH_INTERVAL",
        js: Some("touchInterval"),
        rust: Some("touch_interval"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`60s`"),
        help: doc("the sliding expiry is written at most this often"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.touch_interval(d))
        }),
    },
    Setting {
        name: "user_cache_ttl",
        env: "TOLLGATE_USER_CACHE_TTL",
        js: Some("userCacheTtl"),
        rust: Some("user_cache_ttl"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`5m`"),
        help: doc("lifetime of cached user info"),
        apply: Some(|s, raw| {
            let d = parse::duration(raw)?;
            engine(s, |b| b.user_cache_ttl(d))
        }),
    },
    Setting {
        name: "max_sessions_per_user",
        env: "TOLLGATE_MAX_SESSIONS_PER_USER",
        js: Some("maxSessionsPerUser"),
        rust: Some("max_sessions_per_user"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`100`"),
        help: doc("at most this many live sessions per user (each sign-in rewrites the user's index, so it is bounded; there is no unlimited); 1 is single-session mode"),
        apply: Some(|s, raw| {
            let n = parse::count(raw)?;
            engine(s, |b| b.max_sessions_per_user(n))
        }),
    },
    Setting {
        name: "on_limit",
        env: "TOLLGATE_ON_LIMIT",
        js: Some("onLimit"),
        rust: Some("on_limit"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`evict_oldest`"),
        help: doc("at the limit: `evict_oldest` revokes the oldest session, `refuse` answers `session_limit`"),
        apply: Some(|s, raw| {
            let policy = parse::choice(raw, &[("evict_oldest", LimitPolicy::EvictOldest), ("refuse", LimitPolicy::Refuse)])?;
            engine(s, |b| b.on_limit(policy))
        }),
    },
    Setting {
        name: "refresh_prefix",
        env: "TOLLGATE_REFRESH_PREFIX",
        js: Some("refreshPrefix"),
        rust: Some("refresh_prefix"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`tgr`"),
        help: doc("refresh tokens read `<prefix>_<locator>.<secret>`; 1 to 16 of a-z and 0-9"),
        apply: Some(|s, raw| {
            let prefix = parse::text(raw)?;
            engine(s, |b| b.refresh_prefix(prefix))
        }),
    },
    Setting {
        name: "max_metadata_bytes",
        env: "TOLLGATE_MAX_METADATA_BYTES",
        js: Some("maxMetadataBytes"),
        rust: Some("max_metadata_bytes"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`16384`"),
        help: doc("largest session metadata, as JSON"),
        apply: Some(|s, raw| {
            let n = size(raw)?;
            engine(s, |b| b.max_metadata_bytes(n))
        }),
    },
    Setting {
        name: "max_claims_bytes",
        env: "TOLLGATE_MAX_CLAIMS_BYTES",
        js: Some("maxClaimsBytes"),
        rust: Some("max_claims_bytes"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`4096`"),
        help: doc("largest set of custom claims, as JSON"),
        apply: Some(|s, raw| {
            let n = size(raw)?;
            engine(s, |b| b.max_claims_bytes(n))
        }),
    },
    Setting {
        name: "max_attempts",
        env: "TOLLGATE_MAX_ATTEMPTS",
        js: Some("maxAttempts"),
        rust: Some("max_attempts"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`16`"),
        help: doc("attempts of one operation while concurrent writers collide"),
        apply: Some(|s, raw| {
            let n = parse::count(raw)?;
            engine(s, |b| b.max_attempts(n))
        }),
    },
    Setting {
        name: "recent_writes",
        env: "TOLLGATE_RECENT_WRITES",
        js: Some("recentWrites"),
        rust: Some("recent_writes"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`16384`"),
        help: doc("keys a manager remembers of its own commits, so a refresh of a session it wrote last commits without reading first, on a store that answers commit versions (Redis); `0` remembers none"),
        apply: Some(|s, raw| {
            let n = size(raw)?;
            engine(s, |b| b.recent_writes(n))
        }),
    },
    Setting {
        name: "verify_mode",
        env: "TOLLGATE_VERIFY_MODE",
        js: Some("verifyMode"),
        rust: Some("verify_mode"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`strict`"),
        help: doc("mode of a verify that names none (`POST /v1/verify` without `mode`, JS `verify(token)`): `strict` also reads the session, `stateless` checks signature and claims only"),
        apply: Some(|s, raw| {
            let mode = parse::choice(raw, &[("strict", VerifyMode::Strict), ("stateless", VerifyMode::Stateless)])?;
            engine(s, |b| b.verify_mode(mode))
        }),
    },
    Setting {
        name: "record_format",
        env: "TOLLGATE_RECORD_FORMAT",
        js: Some("recordFormat"),
        rust: Some("record_format"),
        scope: Scope::Engine,
        secret: false,
        default: doc("`compact`"),
        help: doc("how session records are written (both are always read): `compact` (format 3), or `json` (format 2, what releases before format 3 read) while a rolling upgrade from such a release runs"),
        apply: Some(|s, raw| {
            let format = parse::choice(raw, &[("compact", RecordFormat::Compact), ("json", RecordFormat::Json)])?;
            engine(s, |b| b.record_format(format))
        }),
    },
    Setting {
        name: "api_keys",
        env: "TOLLGATE_API_KEYS",
        js: None,
        rust: None,
        scope: Scope::Service,
        secret: true,
        default: doc("none"),
        help: doc("API keys of the calling services (`X-Api-Key`), a list, 16 characters or more each; several allow rotation. Required"),
        apply: service(|s, raw| {
            let keys = parse::list(raw)?;
            if keys.iter().any(|k| k.chars().count() < 16) {
                return Err("has a key shorter than 16 characters".into());
            }
            s.api_keys = ApiKeys(keys);
            Ok(())
        }),
    },
    Setting {
        name: "trusted_proxy",
        env: "TOLLGATE_TRUSTED_PROXY",
        js: Some("trustedProxy"),
        rust: Some("trusted_proxy"),
        scope: Scope::ServiceAndAdapter,
        secret: false,
        default: doc("`none`"),
        help: doc("where the client IP of sign-ins and refreshes comes from: `none` (the connection's peer; the Worker: `CF-Connecting-IP`), `x-forwarded-for:N` (N proxies in front, the N-th entry from the right), `cf-connecting-ip` (docs/cookies.md, \"Client IP\"); the npm adapters take it as their `trustedProxy` option"),
        apply: service(|s, raw| {
            let value = parse::text(raw)?;
            s.trusted_proxy = value.parse().map_err(|_| Problem::from(BAD_PROXY))?;
            options(s, |b| b.trusted_proxy(value))
        }),
    },
    Setting {
        name: "store",
        env: "TOLLGATE_STORE",
        js: None,
        rust: None,
        scope: Scope::Service,
        secret: false,
        default: doc("`sqlite:./tollgate-data/sessions.db` (serve: `sessions.db` in `data_dir`), `durable` (Worker)"),
        help: doc("where sessions live. serve: `sqlite:<path>`, `postgres://...`, `mysql://...` (or `mariadb://`), `memory` (lost on exit), `redis://...`, `rediss://...`, `redis-sentinel://host:port,.../<master>`, `redis-cluster://host:port,...` (a URL's password is never logged); the Worker: `durable`, `kv` or `d1`"),
        apply: service(|s, raw| {
            s.store = StoreSetting::parse(&parse::text(raw)?)?;
            Ok(())
        }),
    },
    Setting {
        name: "data_dir",
        env: "TOLLGATE_DATA_DIR",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`./tollgate-data`"),
        help: doc("directory of serve's own files, created when missing: the default store keeps sessions in `sessions.db` there (SQLite, WAL)"),
        apply: serve(|s, raw| {
            let dir = parse::text(raw)?;
            if dir.trim().is_empty() || dir.contains('?') {
                return Err("is not a directory path (a path without `?`)".into());
            }
            s.data_dir = dir.into();
            Ok(())
        }),
    },
    Setting {
        name: "listen",
        env: "TOLLGATE_LISTEN",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`127.0.0.1:8080`"),
        help: doc("address to listen on (`serve --listen` overrides it)"),
        apply: serve(|s, raw| {
            s.listen = parse::listen_addr(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "redis_password",
        env: "TOLLGATE_REDIS_PASSWORD",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: true,
        default: doc("none"),
        help: doc("password of the Redis servers (a `redis://` URL may carry its own)"),
        apply: serve(|s, raw| {
            s.redis_password = Some(Redacted(String::from_utf8_lossy(&parse::secret(raw)?).into_owned()));
            Ok(())
        }),
    },
    Setting {
        name: "redis_prefix",
        env: "TOLLGATE_REDIS_PREFIX",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`tg:`"),
        help: doc("prefix of every Redis key"),
        apply: serve(|s, raw| {
            s.redis_prefix = parse::text(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "sweep_interval",
        env: "TOLLGATE_SWEEP_INTERVAL",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`60s`"),
        help: doc("how often the memory and SQL stores delete expired sessions in the background, or `off`"),
        apply: serve(|s, raw| {
            s.sweep_interval = parse::duration_or_off(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "log",
        env: "TOLLGATE_LOG",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`info`"),
        help: doc("log filter, `tracing` directives such as `info,tollgate=debug`; logs go to stderr"),
        apply: serve(|s, raw| {
            s.log = parse::text(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "admin_listen",
        env: "TOLLGATE_ADMIN_LISTEN",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`127.0.0.1:9464`"),
        help: doc("address of the admin listener, which serves `/metrics`, `/healthz` and `/readyz` without a key (keep it private), or `off`: `/metrics` is then served on the service's port to callers with the API key"),
        apply: serve(|s, raw| {
            s.serve.admin_listen = if parse::text(raw)? == "off" { None } else { Some(parse::listen_addr(raw).map_err(|p| format!("{p}, or off"))?) };
            Ok(())
        }),
    },
    Setting {
        name: "header_timeout",
        env: "TOLLGATE_HEADER_TIMEOUT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`10s`"),
        help: doc("a connection is closed when a request's head has not arrived this long after its first byte (or after the connection opened)"),
        apply: serve(|s, raw| {
            s.serve.header_timeout = positive(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "body_timeout",
        env: "TOLLGATE_BODY_TIMEOUT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`10s`"),
        help: doc("a request whose body has not arrived this long after its head is answered `request_timeout` (408) and its connection closed"),
        apply: serve(|s, raw| {
            s.serve.body_timeout = positive(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "idle_timeout",
        env: "TOLLGATE_IDLE_TIMEOUT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`60s`"),
        help: doc("a kept-alive connection with no request this long is closed"),
        apply: serve(|s, raw| {
            s.serve.idle_timeout = positive(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "drain_timeout",
        env: "TOLLGATE_DRAIN_TIMEOUT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`30s`"),
        help: doc("on SIGTERM or SIGINT, new connections are refused and requests in flight get this long to finish before the process exits"),
        apply: serve(|s, raw| {
            s.serve.drain_timeout = parse::duration(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "max_connections",
        env: "TOLLGATE_MAX_CONNECTIONS",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`4096`"),
        help: doc("connections open at once, lowered to fit the open-files limit (`ulimit -n`); at the cap the longest-open connection with no request in flight is closed to make room"),
        apply: serve(|s, raw| {
            s.serve.max_connections = at_least_one(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "max_requests_per_connection",
        env: "TOLLGATE_MAX_REQUESTS_PER_CONNECTION",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`1000`"),
        help: doc("requests served on one connection; the last is answered with `Connection: close`"),
        apply: serve(|s, raw| {
            s.serve.max_requests_per_connection = at_least_one(raw)?;
            Ok(())
        }),
    },
    Setting {
        name: "log_format",
        env: "TOLLGATE_LOG_FORMAT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("`text`"),
        help: doc("`text`, or `json`: one JSON object per line (timestamp, level, target, fields, span)"),
        apply: serve(|s, raw| {
            s.serve.log_format = parse::choice(raw, &[("text", LogFormat::Text), ("json", LogFormat::Json)])?;
            Ok(())
        }),
    },
    Setting {
        name: "otlp_endpoint",
        env: "TOLLGATE_OTLP_ENDPOINT",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("none"),
        help: doc("OTLP/HTTP endpoint that receives traces, e.g. `http://127.0.0.1:4318` (spans go to `/v1/traces`); needs a tollgate built with the `otel` feature"),
        apply: serve(|s, raw| {
            let url = parse::text(raw)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) {
                return Err("is not an http:// or https:// URL".into());
            }
            s.serve.otlp_endpoint = Some(url);
            Ok(())
        }),
    },
    Setting {
        name: "audit_webhook",
        env: "TOLLGATE_AUDIT_WEBHOOK",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: false,
        default: doc("none"),
        help: doc("an `http://` URL that receives each audit event as a JSON POST, signed in `X-Tollgate-Signature` (README, \"Devices and audit\"); needs `audit_webhook_secret`"),
        apply: serve(|s, raw| {
            let url = parse::text(raw)?;
            if !url.starts_with("http://") || url.contains(char::is_whitespace) {
                return Err("is not an http:// URL (put a TLS relay in front of an https:// receiver)".into());
            }
            s.serve.audit_webhook = Some(url);
            Ok(())
        }),
    },
    Setting {
        name: "audit_webhook_secret",
        env: "TOLLGATE_AUDIT_WEBHOOK_SECRET",
        js: None,
        rust: None,
        scope: Scope::Serve,
        secret: true,
        default: doc("none"),
        help: doc("32 bytes or more: the HMAC-SHA-256 key of the audit webhook's signature"),
        apply: serve(|s, raw| {
            let secret = parse::secret(raw)?;
            if secret.len() < 32 {
                return Err("is shorter than 32 bytes".into());
            }
            s.serve.audit_webhook_secret = Some(Redacted(String::from_utf8_lossy(&secret).into_owned()));
            Ok(())
        }),
    },
    Setting {
        name: "kv",
        env: "TOLLGATE_KV",
        js: None,
        rust: None,
        scope: Scope::Worker,
        secret: false,
        default: doc("binding"),
        help: doc("the Workers KV namespace binding, for store `kv`"),
        apply: None,
    },
    Setting {
        name: "users",
        env: "TOLLGATE_USERS",
        js: None,
        rust: None,
        scope: Scope::Worker,
        secret: false,
        default: doc("binding"),
        help: doc("the Durable Object namespace binding of class `UserSessions`, for store `durable`"),
        apply: None,
    },
    Setting {
        name: "db",
        env: "TOLLGATE_DB",
        js: None,
        rust: None,
        scope: Scope::Worker,
        secret: false,
        default: doc("binding"),
        help: doc("the D1 database binding, for store `d1`"),
        apply: None,
    },
    Setting {
        name: "refresh_cookie",
        env: "TOLLGATE_REFRESH_COOKIE",
        js: Some("refreshCookie"),
        rust: Some("refresh_cookie"),
        scope: Scope::Adapter,
        secret: false,
        default: doc("`__Host-tg_refresh`"),
        help: doc("name of the refresh-token cookie; must start with `__Host-` or `__Secure-`"),
        apply: adapter(|s, raw| {
            let value = parse::text(raw)?;
            options(s, |b| b.refresh_cookie(value))
        }),
    },
    Setting {
        name: "refresh_cookie_path",
        env: "TOLLGATE_REFRESH_COOKIE_PATH",
        js: Some("refreshCookiePath"),
        rust: Some("refresh_cookie_path"),
        scope: Scope::Adapter,
        secret: false,
        default: doc("`/`"),
        help: doc("`Path` of the refresh cookie; a `__Host-` cookie must have `/` (docs/cookies.md, \"Scope\")"),
        apply: adapter(|s, raw| {
            let value = parse::text(raw)?;
            options(s, |b| b.refresh_cookie_path(value))
        }),
    },
    Setting {
        name: "access_cookie",
        env: "TOLLGATE_ACCESS_COOKIE",
        js: Some("accessCookie"),
        rust: Some("access_cookie"),
        scope: Scope::Adapter,
        secret: false,
        default: doc("`off`"),
        help: doc("`off`: the access token is answered in the body, for a page to send as `Authorization: Bearer`; a cookie name (`__Host-tg_access`): it is set in that cookie instead"),
        apply: adapter(|s, raw| {
            let value = parse::text(raw)?;
            options(s, |b| b.access_cookie(value))
        }),
    },
    Setting {
        name: "same_site",
        env: "TOLLGATE_SAME_SITE",
        js: Some("sameSite"),
        rust: Some("same_site"),
        scope: Scope::Adapter,
        secret: false,
        default: doc("`strict`"),
        help: doc("`SameSite` of both cookies: `strict` or `lax`"),
        apply: adapter(|s, raw| {
            let value = parse::text(raw)?;
            options(s, |b| b.same_site(value))
        }),
    },
    Setting {
        name: "allowed_origins",
        env: "TOLLGATE_ALLOWED_ORIGINS",
        js: Some("allowedOrigins"),
        rust: Some("allowed_origins"),
        scope: Scope::Adapter,
        secret: false,
        default: doc("none"),
        help: doc("other origins (`https://app.example`) whose pages may send state-changing requests with cookies, a list"),
        apply: adapter(|s, raw| {
            let value = parse::list(raw)?;
            options(s, |b| b.allowed_origins(value))
        }),
    },
];
