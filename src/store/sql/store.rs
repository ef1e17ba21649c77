//! [`SqlStore`]: the [`Store`] over one of the native dialects, its options,
//! its deadline, its error mapping and its sweeping task.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::engine::error::{Error, ErrorCode};
use crate::engine::step::{Versioned, WriteOp};
use crate::platform::{Clock, SystemClock};
use crate::store::{Caps, CommitResult, Store, StoreError};

#[cfg(feature = "mysql")]
use super::mysql::MySqlBackend;
#[cfg(feature = "postgres")]
use super::postgres::PgBackend;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteBackend;

/// Counters outlive the last value they versioned by this much.
const COUNTER_GRACE_MS: u64 = 60 * 60 * 1000;
/// Statements one sweep round runs at most.
const SWEEP_STATEMENTS_PER_ROUND: u32 = 10;

/// Which database a [`SqlStore`] speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// The dialect a URL names: `sqlite:`, `postgres://` (or `postgresql://`), `mysql://` (or `mariadb://`).
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            _ => None,
        }
    }
}

/// How a [`SqlStore`] behaves. `Debug` shows no secret (there is none here: the URL is not kept).
#[derive(Clone)]
pub struct SqlOptions {
    operation_timeout: Duration,
    max_connections: u32,
    sweep_interval: Option<Duration>,
    sweep_batch: u32,
    migrate: bool,
    clock: Arc<dyn Clock>,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            operation_timeout: Duration::from_secs(3),
            max_connections: 16,
            sweep_interval: Some(Duration::from_secs(60)),
            sweep_batch: 1000,
            migrate: true,
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for SqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlOptions")
            .field("operation_timeout", &self.operation_timeout)
            .field("max_connections", &self.max_connections)
            .field("sweep_interval", &self.sweep_interval)
            .field("sweep_batch", &self.sweep_batch)
            .field("migrate", &self.migrate)
            .finish_non_exhaustive()
    }
}

impl SqlOptions {
    /// Every call's deadline, waiting for a connection included (default 3 s).
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }
    /// Connections of a pool the store opens (default 16; SQLite: readers, beside one writer).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// How often the background task deletes expired rows (at least every
    /// second); `None` starts no task (call [`SqlStore::sweep`] yourself). Default: every 60 s.
    pub fn sweep_interval(mut self, every: Option<Duration>) -> Self {
        self.sweep_interval = every.map(|d| d.max(Duration::from_secs(1)));
        self
    }
    /// Rows one sweep statement deletes at most (default 1000).
    pub fn sweep_batch(mut self, rows: u32) -> Self {
        self.sweep_batch = rows.max(1);
        self
    }
    /// Apply pending migrations on connect (default), or only check the schema
    /// version and refuse a database `tollgate migrate` has not brought up to date.
    pub fn migrate(mut self, on_connect: bool) -> Self {
        self.migrate = on_connect;
        self
    }
    /// The clock that decides what has expired (tests move their own).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// A failure inside a dialect, before it becomes a [`StoreError`] or a conflict.
#[derive(Debug)]
pub(crate) enum SqlError {
    Db(sqlx::Error),
    /// A row tollgate did not write.
    Corrupt(String),
    /// The schema cannot be used; the message says what to do.
    Schema(String),
    /// A commit that must start again (nothing was written).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Retry,
}

impl From<sqlx::Error> for SqlError {
    fn from(e: sqlx::Error) -> Self {
        SqlError::Db(e)
    }
}

/// A stored version or time: never negative.
pub(crate) fn version_of(v: i64) -> Result<u64, SqlError> {
    u64::try_from(v).map_err(|_| SqlError::Corrupt("a negative version or expiry".into()))
}

/// Versions and unix-ms times as SQL integers (far below 2^63).
pub(crate) fn to_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteBackend),
    #[cfg(feature = "postgres")]
    Postgres(PgBackend),
    #[cfg(feature = "mysql")]
    MySql(MySqlBackend),
}

/// Calls the same method on whichever backend this is.
macro_rules! each_backend {
    ($backend:expr, $b:ident => $call:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($b) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($b) => $call,
            #[cfg(feature = "mysql")]
            Backend::MySql($b) => $call,
        }
    };
}

impl Backend {
    fn dialect(&self) -> Dialect {
        fn of<B: DialectOf>(_: &B) -> Dialect {
            B::DIALECT
        }
        each_backend!(self, b => of(b))
    }
}

trait DialectOf {
    const DIALECT: Dialect;
}
#[cfg(feature = "sqlite")]
impl DialectOf for SqliteBackend {
    const DIALECT: Dialect = Dialect::Sqlite;
}
#[cfg(feature = "postgres")]
impl DialectOf for PgBackend {
    const DIALECT: Dialect = Dialect::Postgres;
}
#[cfg(feature = "mysql")]
impl DialectOf for MySqlBackend {
    const DIALECT: Dialect = Dialect::MySql;
}

struct Inner {
    backend: Backend,
    options: SqlOptions,
}

/// A [`Store`] in a SQL database. Cloning shares the pool. See the module docs.
///
/// ```no_run
/// # async fn run() -> Result<(), tollgate::Error> {
/// use std::time::Duration;
/// use tollgate::store::sql::{SqlOptions, SqlStore};
/// let embedded = SqlStore::connect("sqlite:/var/lib/tollgate/sessions.db").await?;
/// let shared = SqlStore::connect_with(
///     "postgres://tollgate:secret@db.internal/app",
///     SqlOptions::default().max_connections(32).sweep_interval(Some(Duration::from_secs(300))),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("dialect", &self.dialect()).field("options", &self.inner.options).finish()
    }
}

fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::ConfigInvalid, message.into())
}

impl SqlStore {
    /// Connects to the database `url` names with the default options, applying
    /// pending migrations: `sqlite:<path>` (created when missing), `postgres://..`, `mysql://..`.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: SqlOptions) -> Result<Self, Error> {
        let dialect = Dialect::of_url(url)
            .ok_or_else(|| config("a SQL store URL starts with sqlite:, postgres://, postgresql://, mysql:// or mariadb://"))?;
        let (n, timeout) = (options.max_connections, options.operation_timeout);
        let connecting = async {
            let backend = match dialect {
                #[cfg(feature = "sqlite")]
                Dialect::Sqlite => Backend::Sqlite(SqliteBackend::open(url, n, timeout).await?),
                #[cfg(feature = "postgres")]
                Dialect::Postgres => Backend::Postgres(PgBackend::connect(url, n, timeout).await?),
                #[cfg(feature = "mysql")]
                Dialect::MySql => Backend::MySql(MySqlBackend::connect(url, n, timeout).await?),
                #[allow(unreachable_patterns)]
                other => {
                    return Ok(Err(config(format!(
                        "this tollgate was built without the `{}` feature; rebuild with it to use this store",
                        other.as_str()
                    ))))
                }
            };
            Ok(Ok(backend))
        };
        let backend = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(Ok(backend))) => backend,
            Ok(Ok(Err(refused))) => return Err(refused),
            Ok(Err(e)) => return Err(store_error(e, dialect).into()),
            Err(_) => return Err(StoreError::unavailable(format!("{} did not answer within {timeout:?}", dialect.as_str())).into()),
        };
        Self::start(backend, options).await
    }

    /// Uses an application's SQLite pool (for reads and writes).
    #[cfg(feature = "sqlite")]
    pub async fn from_sqlite_pool(pool: sqlx::SqlitePool, options: SqlOptions) -> Result<Self, Error> {
        Self::start(Backend::Sqlite(SqliteBackend::from_pool(pool)), options).await
    }

    /// Uses an application's PostgreSQL pool.
    #[cfg(feature = "postgres")]
    pub async fn from_pg_pool(pool: sqlx::PgPool, options: SqlOptions) -> Result<Self, Error> {
        Self::start(Backend::Postgres(PgBackend::from_pool(pool)), options).await
    }

    /// Uses an application's MySQL / MariaDB pool.
    #[cfg(feature = "mysql")]
    pub async fn from_mysql_pool(pool: sqlx::MySqlPool, options: SqlOptions) -> Result<Self, Error> {
        Self::start(Backend::MySql(MySqlBackend::from_pool(pool)), options).await
    }

    async fn start(backend: Backend, options: SqlOptions) -> Result<Self, Error> {
        let store = SqlStore { inner: Arc::new(Inner { backend, options }) };
        if store.inner.options.migrate {
            store.migrate().await?;
        } else {
            let found = store.schema_version().await?;
            if let Some(why) = super::schema::refuse(found) {
                return Err(config(why));
            }
        }
        if let Some(every) = store.inner.options.sweep_interval {
            tokio::spawn(sweep_forever(Arc::downgrade(&store.inner), every));
        }
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.backend.dialect()
    }

    /// Applies the migrations this build has and the database lacks (see
    /// [`super::schema`]); answers the schema version found before.
    pub async fn migrate(&self) -> Result<u32, Error> {
        let now = self.now();
        let migrated = self.deadline(async { each_backend!(&self.inner.backend, b => b.migrate(now).await) }).await;
        let found = migrated.map_err(|e| match e {
            SqlError::Schema(why) => config(why),
            other => store_error(other, self.dialect()).into(),
        })?;
        if found < super::schema::LATEST {
            tracing::info!(
                dialect = self.dialect().as_str(),
                from = found,
                to = super::schema::LATEST,
                "applied tollgate schema migrations"
            );
        }
        Ok(found)
    }

    /// The schema version the database holds (0: none yet).
    pub async fn schema_version(&self) -> Result<u32, Error> {
        let found = self.deadline(async { each_backend!(&self.inner.backend, b => b.schema_version().await) }).await;
        found.map_err(|e| store_error(e, self.dialect()).into())
    }

    /// One bounded sweep round: deletes expired rows (and counters past their
    /// grace) a batch at a time, at most ten statements; answers how many went.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let batch = self.inner.options.sweep_batch;
        let mut removed = 0;
        for _ in 0..SWEEP_STATEMENTS_PER_ROUND {
            let swept = self
                .deadline(async {
                    each_backend!(&self.inner.backend, b => b.sweep(now, now.saturating_sub(COUNTER_GRACE_MS), batch).await)
                })
                .await
                .map_err(|e| store_error(e, self.dialect()))?;
            removed += swept;
            if swept < u64::from(batch) {
                break;
            }
        }
        Ok(removed)
    }

    fn now(&self) -> u64 {
        self.inner.options.clock.now_ms()
    }

    async fn deadline<T>(&self, call: impl Future<Output = Result<T, SqlError>>) -> Result<T, SqlError> {
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(SqlError::Db(sqlx::Error::PoolTimedOut)),
        }
    }
}

async fn sweep_forever(store: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else { return };
        match (SqlStore { inner }).sweep().await {
            Ok(removed) => tracing::trace!(removed, "SQL store swept"),
            Err(e) => tracing::debug!(error = %e, "SQL store sweep failed; trying again next round"),
        }
    }
}

/// Whether a database error rolled the whole transaction back for a reason
/// another attempt may not meet: deadlock, serialization failure, lock wait
/// timeout, a unique key taken by a racing commit.
fn rolled_back_by_contention(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else { return false };
    if db.is_unique_violation() {
        return true;
    }
    if matches!(db.code().as_deref(), Some("40001" | "40P01")) {
        return true;
    }
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1205: lock wait timeout; 1213: deadlock.
        return matches!(my.number(), 1205 | 1213);
    }
    false
}

fn store_error(e: SqlError, dialect: Dialect) -> StoreError {
    let name = dialect.as_str();
    let e = match e {
        SqlError::Db(e) => e,
        SqlError::Corrupt(what) => return StoreError::corrupt(format!("{name}: {what}")),
        SqlError::Schema(why) => return StoreError::unavailable(why),
        SqlError::Retry => return StoreError::unavailable(format!("{name}: a commit kept losing its counter row; retry")),
    };
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // Data and constraint errors (SQLSTATE classes 22 and 23) may quote the values.
            if code.starts_with("22") || code.starts_with("23") || db.kind() != sqlx::error::ErrorKind::Other {
                StoreError::unavailable(format!("{name} refused a statement (code {code})"))
            } else {
                let message: String = db.message().chars().take(200).collect();
                StoreError::unavailable(format!("{name} error {code}: {message}"))
            }
        }
        sqlx::Error::PoolTimedOut => StoreError::unavailable(format!("{name} did not answer in time")),
        sqlx::Error::Io(io) => StoreError::unavailable(format!("cannot reach {name}: {io}")),
        sqlx::Error::Tls(tls) => StoreError::unavailable(format!("{name} TLS: {tls}")),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => StoreError::unavailable(format!("the {name} pool is closed")),
        sqlx::Error::Configuration(c) => StoreError::unavailable(format!("{name} options: {c}")),
        e @ (sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }) => StoreError::corrupt(format!("{name}: {e}")),
        other => StoreError::unavailable(format!("{name}: {other}")),
    }
}

#[async_trait::async_trait]
impl Store for SqlStore {
    async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let found = self.deadline(async { each_backend!(&self.inner.backend, b => b.get(&keys, now).await) }).await;
        found.map_err(|e| store_error(e, self.dialect()))
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
        crate::store::refuse_list_writes(&ops)?;
        if ops.is_empty() {
            return Ok(CommitResult::Committed);
        }
        let now = self.now();
        match self.deadline(async { each_backend!(&self.inner.backend, b => b.commit(&ops, now).await) }).await {
            Ok(result) => Ok(result),
            Err(SqlError::Retry) => Ok(CommitResult::Conflict),
            Err(SqlError::Db(e)) if rolled_back_by_contention(&e) => Ok(CommitResult::Conflict),
            Err(e) => Err(store_error(e, self.dialect())),
        }
    }

    fn caps(&self) -> Caps {
        Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_dialect() {
        assert_eq!(Dialect::of_url("sqlite:/var/lib/tollgate/s.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("PostgreSQL://u:p@h/db"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("mariadb://u:p@h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::of_url("redis://h"), None);
        assert_eq!(Dialect::of_url("/just/a/path"), None);
    }

    #[test]
    fn sweep_intervals_are_at_least_a_second() {
        assert_eq!(SqlOptions::default().sweep_interval(Some(Duration::ZERO)).sweep_interval, Some(Duration::from_secs(1)));
        assert_eq!(SqlOptions::default().sweep_interval(None).sweep_interval, None);
        assert_eq!(SqlOptions::default().sweep_interval, Some(Duration::from_secs(60)));
    }
}
