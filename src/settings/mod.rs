//! One definition of every setting, read the same way by every surface.
//!
//! [`SETTINGS`] lists each setting once: its snake_case name, its environment
//! name (`TOLLGATE_<NAME>`, read by `tollgate serve` and the Worker), its
//! JavaScript name (the npm package's config object), the [`ConfigBuilder`]
//! method that sets it in Rust, its default, a line of help, which surfaces read
//! it, and the code that parses it into [`Settings`]. Engine settings are
//! applied through the builder's methods as they are read, so the table's Rust
//! column is what runs. The README's settings table is rendered from it
//! ([`readme_table`]) and checked against README.md by a test.
//!
//! A [`Source`] hands over raw values ([`Raw`]) by name; the names it holds
//! that no setting has, or that belong to another surface, are refused. Values
//! are parsed in one place ([`parse`]): a duration is a number of seconds or a
//! string with a unit, a list is comma-separated text or a JSON array. Every
//! refusal is `config_invalid` naming the setting as its surface spells it,
//! never quoting the value (values may be secrets).

mod builder;
#[cfg(not(target_arch = "wasm32"))]
mod docs;
pub mod parse;
mod serve;
mod store;
mod table;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use builder::{Config, ConfigBuilder};
#[cfg(not(target_arch = "wasm32"))]
pub use docs::{js_table, readme_table};
pub use parse::Raw;
pub use serve::{LogFormat, ServeSettings};
pub use store::{RedisTarget, SqlTarget, StoreSetting};
pub use table::SETTINGS;

use crate::cookies::{AdapterOptions, AdapterOptionsBuilder};
use crate::crypto::{KeyError, KeyMaterial};
use crate::engine::client::TrustedProxy;
use crate::engine::error::Error;
use crate::engine::policy::InvalidSetting;

/// Which surfaces read a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every surface: the Rust builder, the npm package, `tollgate serve`, the Worker.
    Engine,
    /// The HTTP services: `tollgate serve` and the Worker.
    Service,
    /// `tollgate serve` only.
    Serve,
    /// The Worker only (its bindings).
    Worker,
    /// The framework adapters (the axum layer, `tollgate/hono`, `tollgate/express`): docs/cookies.md.
    Adapter,
    /// The HTTP services and the framework adapters: both see clients (`trusted_proxy`).
    ServiceAndAdapter,
}

/// How a surface spells setting names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `TOLLGATE_ACCESS_TTL`: the environment of `tollgate serve`, the Worker's vars and secrets.
    Env,
    /// `accessTtl`: the npm package's configuration object.
    Js,
    /// `access_ttl`: the snake_case name, as a configuration file would write it.
    Snake,
    /// `access_ttl`, or the builder method's name where it differs (`verify_key`).
    Rust,
    /// `--access-ttl`: a command-line option of `tollgate serve`.
    Flag,
}

/// Who reads the settings: it decides which scopes are accepted and the store's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Serve,
    Worker,
    Js,
    /// An application with a framework adapter (the axum layer), reading its environment.
    Adapter,
}

impl Surface {
    /// Whether this surface reads settings of `scope`.
    pub fn reads(self, scope: Scope) -> bool {
        match scope {
            Scope::Engine => true,
            Scope::Service => self == Surface::Serve || self == Surface::Worker,
            Scope::Serve => self == Surface::Serve,
            Scope::Worker => self == Surface::Worker,
            Scope::Adapter => self == Surface::Adapter,
            Scope::ServiceAndAdapter => self != Surface::Js,
        }
    }
}

type Apply = fn(&mut Settings, &Raw) -> Result<(), String>;

/// Documentation of a setting: kept natively, where the docs' tables are
/// rendered from it; WebAssembly modules never render docs and leave it out.
#[derive(Clone, Copy, Debug)]
pub struct Doc {
    #[cfg(not(target_arch = "wasm32"))]
    pub text: &'static str,
}

const fn doc(text: &'static str) -> Doc {
    #[cfg(not(target_arch = "wasm32"))]
    return Doc { text };
    #[cfg(target_arch = "wasm32")]
    {
        let _ = text;
        Doc {}
    }
}

/// One setting: its names, default, help and how it is read.
pub struct Setting {
    /// The snake_case name, e.g. `access_ttl`.
    pub name: &'static str,
    /// `TOLLGATE_` and the name in capitals.
    pub env: &'static str,
    /// The name in camelCase; `None` for settings the npm package does not read.
    pub js: Option<&'static str>,
    /// The [`ConfigBuilder`] method; `None` for settings of the HTTP services.
    pub rust: Option<&'static str>,
    pub scope: Scope,
    /// The value may be a secret: set it as one (`wrangler secret put`).
    pub secret: bool,
    /// The default, as the docs show it.
    pub default: Doc,
    /// What it does, in one line.
    pub help: Doc,
    /// Parses a value into [`Settings`]; `None` for the Worker's bindings
    /// (objects, not values) and in builds of surfaces that never read it.
    apply: Option<Apply>,
}

impl Setting {
    /// The name as `naming` spells it.
    pub fn named(&self, naming: Naming) -> &'static str {
        match naming {
            Naming::Env => self.env,
            Naming::Js => self.js.unwrap_or(self.name),
            Naming::Snake => self.name,
            Naming::Rust => self.rust.unwrap_or(self.name),
            Naming::Flag => flag_names()[self.index()].as_str(),
        }
    }

    /// The command-line option: `--` and the name with hyphens, e.g. `--access-ttl`.
    pub fn flag(&self) -> &'static str {
        self.named(Naming::Flag)
    }

    fn index(&self) -> usize {
        SETTINGS.iter().position(|s| s.name == self.name).unwrap_or(0)
    }
}

/// `--<name-with-hyphens>` of every setting, in table order; made once, kept for the process.
fn flag_names() -> &'static [String] {
    static FLAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| SETTINGS.iter().map(|s| format!("--{}", s.name.replace('_', "-"))).collect())
}

/// The setting with this snake_case name.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// How `naming` spells the setting `name` (the name itself if there is no such setting).
fn spelled(name: &'static str, naming: Naming) -> &'static str {
    setting(name).map_or(name, |s| s.named(naming))
}

/// `config_invalid` for `e`, its settings spelled by `naming`.
pub(crate) fn refusal(e: &InvalidSetting, naming: Naming) -> Error {
    Error::config(e.message(|name| spelled(name, naming)))
}

/// Settings by name, as one surface spells them, with their raw values;
/// perhaps laid over another source ([`Source::over`]).
#[derive(Clone, Debug)]
pub struct Source {
    naming: Naming,
    entries: Vec<(String, Raw)>,
    /// The source this one is laid over: what it sets, this one replaces.
    below: Option<Box<Source>>,
}

/// Environment names that used to be settings, and what replaced them.
const RENAMED: &[(&str, &str)] = &[
    ("TOLLGATE_SIGNING_PEM", "TOLLGATE_SIGNING_KEY"),
    ("TOLLGATE_ACCESS_TTL_S", "TOLLGATE_ACCESS_TTL (a duration: 900 or 15m)"),
    ("TOLLGATE_IDLE_TTL_S", "TOLLGATE_IDLE_TTL (a duration: 14d)"),
    ("TOLLGATE_ABSOLUTE_TTL_S", "TOLLGATE_ABSOLUTE_TTL (a duration: 30d)"),
    ("TOLLGATE_REFRESH_GRACE_MS", "TOLLGATE_REFRESH_GRACE (a duration: 10s or 500ms)"),
    ("TOLLGATE_TOUCH_INTERVAL_S", "TOLLGATE_TOUCH_INTERVAL (a duration: 60s)"),
    ("TOLLGATE_LEEWAY_S", "TOLLGATE_LEEWAY (a duration: 30s)"),
    ("TOLLGATE_MAX_SESSIONS", "TOLLGATE_MAX_SESSIONS_PER_USER"),
    ("TOLLGATE_SWEEP_MS", "TOLLGATE_SWEEP_INTERVAL (a duration, or off)"),
    ("TOLLGATE_REDIS_URL", "TOLLGATE_STORE (redis://...)"),
    ("TOLLGATE_REDIS_SENTINELS", "TOLLGATE_STORE (redis-sentinel://host:port,host:port/master)"),
    ("TOLLGATE_REDIS_MASTER", "TOLLGATE_STORE (redis-sentinel://host:port,host:port/master)"),
    ("TOLLGATE_REDIS_CLUSTER", "TOLLGATE_STORE (redis-cluster://host:port,host:port)"),
    ("keys", "secret (or signingKey), alg, kid and verifyKeys"),
];

impl Source {
    /// Environment variables (`TOLLGATE_*`; other names are not tollgate's and are skipped).
    pub fn env(vars: impl IntoIterator<Item = (String, Raw)>) -> Source {
        let entries = vars.into_iter().filter(|(name, _)| name.starts_with("TOLLGATE_")).collect();
        Source { naming: Naming::Env, entries, below: None }
    }

    /// This process's environment.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn process_env() -> Result<Source, Error> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with("TOLLGATE_")).map(str::to_owned) else { continue };
            let value = value.into_string().map_err(|_| Error::config(format!("{name} is not UTF-8 text")))?;
            vars.push((name, Raw::Text(value)));
        }
        Ok(Source::env(vars))
    }

    /// An object of settings by JavaScript name: the npm package's configuration.
    pub fn js(config: Value) -> Result<Source, Error> {
        match config {
            Value::Object(map) => {
                Ok(Source { naming: Naming::Js, entries: map.into_iter().map(|(k, v)| (k, Raw::Json(v))).collect(), below: None })
            }
            _ => Err(Error::config("the configuration is an object of settings")),
        }
    }

    /// Settings by snake_case name with values as JSON (a configuration file, once parsed).
    pub fn snake(entries: impl IntoIterator<Item = (String, Value)>) -> Source {
        Source { naming: Naming::Snake, entries: entries.into_iter().map(|(k, v)| (k, Raw::Json(v))).collect(), below: None }
    }

    /// Command-line options by their flag (`--access-ttl`), values as typed.
    pub fn flags(entries: impl IntoIterator<Item = (String, String)>) -> Source {
        Source { naming: Naming::Flag, entries: entries.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect(), below: None }
    }

    /// This source laid over `base`: a setting both hold is read from this one,
    /// whatever each calls it (flags over the environment over a file).
    pub fn over(mut self, base: Source) -> Source {
        self.below = Some(Box::new(match self.below.take() {
            Some(mine) => mine.over(base),
            None => base,
        }));
        self
    }

    /// The layers, lowest first.
    fn layers(&self) -> Vec<&Source> {
        let mut layers = vec![self];
        while let Some(below) = &layers[layers.len() - 1].below {
            layers.push(below);
        }
        layers.reverse();
        layers
    }

    fn find(&self, name: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| match self.naming {
            Naming::Env => s.env == name,
            Naming::Js => s.js == Some(name),
            Naming::Snake | Naming::Rust => s.name == name,
            Naming::Flag => s.flag() == name,
        })
    }

    /// Sets `name` to `raw` over what the source held (a command-line flag over the environment).
    pub fn with(mut self, name: &str, raw: Raw) -> Source {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_owned(), raw));
        self
    }

    /// The same layers holding only the settings `names` (by their table names).
    fn only(&self, names: &[&'static str]) -> Source {
        let keep = |name: &str| self.find(name).is_some_and(|s| names.contains(&s.name));
        Source {
            naming: self.naming,
            entries: self.entries.iter().filter(|(name, _)| keep(name)).cloned().collect(),
            below: self.below.as_ref().map(|b| Box::new(b.only(names))),
        }
    }

    fn unknown(&self, name: &str) -> Error {
        match RENAMED.iter().find(|(old, _)| *old == name) {
            Some((_, new)) => Error::config(format!("{name} is no longer a setting: use {new}")),
            None => Error::config(format!("{name} is not a setting; the README's settings table lists them all")),
        }
    }
}

/// Every setting's value, each with its default until a source sets it.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The engine settings, applied through the builder as they are read.
    pub engine: ConfigBuilder,
    /// The API keys that services present in `X-Api-Key`. `Debug` shows how many.
    pub api_keys: ApiKeys,
    /// Where sessions live; the reading surface's default when not set
    /// (serve: SQLite, [`Settings::default_sqlite`]; the Worker: Durable Objects).
    pub store: StoreSetting,
    /// `tollgate serve`'s own files: the default store's SQLite database.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub redis_password: Option<Redacted>,
    pub redis_prefix: String,
    /// `None`: no background sweep of the memory store.
    pub sweep_interval: Option<Duration>,
    /// `tracing` filter directives of `tollgate serve`.
    pub log: String,
    /// The settings of `tollgate serve`'s connections, shutdown and telemetry.
    pub serve: ServeSettings,
    /// The framework adapters' options, unchecked until [`Settings::adapter_options`].
    pub adapter: AdapterOptionsBuilder,
    /// Where the HTTP services read the client IP from.
    pub trusted_proxy: TrustedProxy,
    /// How the source that was read spells names, for refusals made after reading.
    naming: Naming,
    /// How the layer that set each setting spells it, where that differs from `naming`.
    spelling: Vec<(&'static str, Naming)>,
}

/// API keys; `Debug` shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(pub Vec<String>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys(<{} redacted>)", self.0.len())
    }
}

/// A secret text; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            engine: ConfigBuilder::default(),
            api_keys: ApiKeys::default(),
            store: StoreSetting::Memory,
            data_dir: PathBuf::from("./tollgate-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_password: None,
            redis_prefix: "tg:".into(),
            sweep_interval: Some(Duration::from_secs(60)),
            log: "info".into(),
            serve: ServeSettings::default(),
            adapter: AdapterOptionsBuilder::default(),
            trusted_proxy: TrustedProxy::None,
            naming: Naming::Rust,
            spelling: Vec::new(),
        }
    }
}

impl Settings {
    /// Reads every setting `source` holds for `surface`, refusing names that are not
    /// settings of this surface and values that do not parse.
    pub fn read(source: &Source, surface: Surface) -> Result<Settings, Error> {
        let settings = Self::values(source, surface)?;
        if surface == Surface::Serve || surface == Surface::Worker {
            if settings.api_keys.0.is_empty() {
                return Err(settings.refuse("api_keys", "is not set: give the API keys of the calling services, comma-separated"));
            }
            let fits = match settings.store {
                StoreSetting::Memory | StoreSetting::Redis(_) | StoreSetting::Sql(_) => surface == Surface::Serve,
                StoreSetting::DurableObjects | StoreSetting::WorkersKv | StoreSetting::D1 => surface == Surface::Worker,
            };
            if !fits {
                let choices = if surface == Surface::Serve { store::SERVE_CHOICES } else { store::WORKER_CHOICES };
                return Err(settings.refuse("store", format!("names a store this surface does not have; it takes {choices}")));
            }
        }
        Ok(settings)
    }

    /// The store `tollgate serve` uses, read from `source` alone (`store` and
    /// `data_dir`; the rest is not read): `tollgate migrate` migrates it.
    pub fn serve_store(source: &Source) -> Result<StoreSetting, Error> {
        Ok(Self::values(&source.only(&["store", "data_dir"]), Surface::Serve)?.store)
    }

    /// Every value `source` holds for `surface`, parsed, each unset one at its default.
    fn values(source: &Source, surface: Surface) -> Result<Settings, Error> {
        let naming = source.naming;
        let mut settings = Settings { naming, ..Settings::default() };
        if surface == Surface::Worker {
            settings.store = StoreSetting::DurableObjects;
        }
        // Each setting from the highest layer that holds it, in the order the layers hold them.
        let mut chosen: Vec<(&'static Setting, &str, &Raw, Naming)> = Vec::new();
        for layer in source.layers() {
            for (name, raw) in &layer.entries {
                let setting = layer.find(name).ok_or_else(|| layer.unknown(name))?;
                chosen.retain(|(s, ..)| !std::ptr::eq(*s, setting));
                chosen.push((setting, name, raw, layer.naming));
            }
        }
        let mut store_given = false;
        for (setting, name, raw, layer_naming) in chosen {
            if layer_naming != naming {
                settings.spelling.push((setting.name, layer_naming));
            }
            if !surface.reads(setting.scope) {
                let readers = match setting.scope {
                    Scope::Serve => "tollgate serve",
                    Scope::Worker => "the Worker",
                    Scope::Adapter => "the framework adapters",
                    Scope::ServiceAndAdapter => "the HTTP services and the framework adapters",
                    Scope::Engine | Scope::Service => "the HTTP services",
                };
                return Err(Error::config(format!("{name} is a setting of {readers} only")));
            }
            if raw.is_unset() {
                continue;
            }
            store_given |= setting.name == "store";
            match (setting.apply, raw) {
                (Some(apply), _) => apply(&mut settings, raw).map_err(|problem| Error::config(format!("{name} {problem}")))?,
                (None, Raw::Binding) => {}
                (None, _) if setting.scope == Scope::Worker => {
                    return Err(Error::config(format!("{name} is a binding in wrangler.toml, not a var or secret")))
                }
                (None, _) => return Err(Error::config(format!("{name} is not read by this build of tollgate"))),
            }
        }
        if surface == Surface::Serve && !store_given {
            settings.store = settings.default_sqlite();
        }
        Ok(settings)
    }

    /// `tollgate serve`'s default store: `sessions.db` in the data directory.
    pub fn default_sqlite(&self) -> StoreSetting {
        StoreSetting::Sql(SqlTarget::Sqlite(self.data_dir.join("sessions.db").to_string_lossy().into_owned()))
    }

    /// The configuration of a manager, or `config_invalid` naming the first unusable setting.
    pub fn config(&self) -> Result<Config, Error> {
        self.engine.clone().check().map_err(|e| self.refusal(&e))
    }

    /// The framework adapters' options (docs/cookies.md), or `config_invalid` naming
    /// the first unusable one as the source spelled it, in `pkg/adapter.js`'s words.
    pub fn adapter_options(&self) -> Result<AdapterOptions, Error> {
        self.adapter.check().map_err(|p| {
            let naming = self.spelling.iter().find(|(n, _)| *n == p.setting).map_or(self.naming, |(_, naming)| *naming);
            Error::config(format!("{}: {}", spelled(p.setting, naming), p.what))
        })
    }

    /// `config_invalid` naming `setting` as the source spelled it.
    pub fn refuse(&self, setting: &'static str, problem: impl Into<std::borrow::Cow<'static, str>>) -> Error {
        self.refusal(&InvalidSetting::new(setting, problem))
    }

    /// `config_invalid` for `e`, each setting spelled as the layer that set it spells it.
    fn refusal(&self, e: &InvalidSetting) -> Error {
        let naming_of = |name: &str| self.spelling.iter().find(|(n, _)| *n == name).map_or(self.naming, |(_, naming)| *naming);
        Error::config(e.message(|name| spelled(name, naming_of(name))))
    }

    /// A key of `config` that failed to load, named by the setting it came from.
    pub fn key_refused(&self, config: &Config, e: KeyError) -> Error {
        let problem = e.error.message();
        if e.index > 0 {
            return self.refuse("verify_keys", format!("key #{} is not usable: {problem}", e.index));
        }
        match config.keys.first().map(|spec| &spec.material) {
            Some(KeyMaterial::Secret(_)) => self.refuse("secret", format!("is not usable: {problem}")),
            _ => self.refuse("signing_key", format!("is not usable: {problem}")),
        }
    }
}
