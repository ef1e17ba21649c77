//! Where the SQL test databases are, and fresh databases for tests that sweep
//! or rewrite the schema. PostgreSQL and MariaDB come from `scripts/sql.sh`
//! (variables `TG_TEST_PG_URL`, `TG_TEST_MYSQL_URL`; a missing one fails the
//! test); SQLite files live under cargo's per-target test directory.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test reads real randomness

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use tollgate::store::sql::{Dialect, SqlOptions, SqlStore};
use tollgate::Clock;

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the SQL tests through scripts/sql.sh, which starts the servers"))
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The conformance suite checks answers, not speed: patient deadlines for a
/// loaded CI machine, no background sweep (tests share one database and each
/// moves its own clock), the test's clock.
pub fn options(clock: Arc<dyn Clock>) -> SqlOptions {
    SqlOptions::default().operation_timeout(Duration::from_secs(20)).max_connections(8).sweep_interval(None).clock(clock)
}

/// A database of one dialect: the shared one, or a fresh one dropped by [`Db::drop_now`].
pub struct Db {
    pub dialect: Dialect,
    pub url: String,
    name: Option<String>,
}

impl Db {
    /// The database every conformance test shares (SQLite: a new file each time).
    pub fn shared(dialect: Dialect) -> Db {
        match dialect {
            Dialect::Postgres => Db { dialect, url: var("TG_TEST_PG_URL"), name: None },
            Dialect::MySql => Db { dialect, url: var("TG_TEST_MYSQL_URL"), name: None },
            Dialect::Sqlite => sqlite_file(),
        }
    }

    /// A new empty database (PostgreSQL, MariaDB: `CREATE DATABASE` on the test server).
    pub async fn fresh(dialect: Dialect) -> Db {
        if dialect == Dialect::Sqlite {
            return sqlite_file();
        }
        let shared = Db::shared(dialect);
        let name = format!("tollgate_t{}", random_suffix());
        shared.execute(&format!("CREATE DATABASE {name}")).await;
        let (base, _) = shared.url.rsplit_once('/').unwrap();
        Db { dialect, url: format!("{base}/{name}"), name: Some(name) }
    }

    pub async fn store(&self, clock: Arc<dyn Clock>) -> SqlStore {
        self.store_with(options(clock)).await
    }

    pub async fn store_with(&self, options: SqlOptions) -> SqlStore {
        SqlStore::connect_with(&self.url, options).await.unwrap_or_else(|e| panic!("cannot open the {:?} test database: {e}", self.dialect))
    }

    /// Runs one statement on a connection of its own.
    pub async fn execute(&self, sql: &str) {
        match self.dialect {
            Dialect::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Dialect::MySql => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Dialect::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// Drops a fresh database (the shared ones stay).
    pub async fn drop_now(self) {
        if let Some(name) = &self.name {
            let shared = Db::shared(self.dialect);
            let force = if self.dialect == Dialect::Postgres { " WITH (FORCE)" } else { "" };
            shared.execute(&format!("DROP DATABASE IF EXISTS {name}{force}")).await;
        }
    }
}

fn sqlite_file() -> Db {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sql-store");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", random_suffix()));
    Db { dialect: Dialect::Sqlite, url: format!("sqlite:{}", path.display()), name: None }
}
