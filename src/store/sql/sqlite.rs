//! The SQLite dialect: the one copy of the SQL that both the native SQLite
//! store (sqlx, feature `sqlite`) and the D1 store ([`crate::store::d1`]) run.
//!
//! A commit is two steps over the same statements:
//!
//! 1. read each tag's counter ([`COUNTER`]) and each checked key ([`GET`]);
//!    [`super::plan::plan`] decides;
//! 2. write: one [`GUARD`] per tag, then the rows ([`PUT`], [`DELETE`]) and the
//!    counters ([`COUNTER_SET`]).
//!
//! Natively both steps run in one `BEGIN IMMEDIATE` transaction (SQLite's
//! write lock: nothing else writes in between). D1 has no interactive
//! transactions: step 1 is one batch, step 2 another (a batch is a transaction),
//! and the guard is what makes it safe: it rewrites the guard row with "this
//! tag's counter still holds what step 1 read", and the row's check constraint
//! fails the whole batch when it does not. Every commit moves its tags'
//! counters, so an unchanged counter means no commit touched the tag between
//! the two steps.

use bytes::Bytes;

use super::plan::{CounterWrite, Plan, RowWrite};
use super::schema::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tollgate_kv, tollgate_versions, tollgate_guard",
    statements: &[
        "CREATE TABLE IF NOT EXISTS tollgate_kv (key TEXT NOT NULL PRIMARY KEY, tag TEXT NOT NULL, \
         version INTEGER NOT NULL, expires_at INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS tollgate_kv_expiry ON tollgate_kv (expires_at)",
        "CREATE TABLE IF NOT EXISTS tollgate_versions (tag TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, \
         expires_at INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS tollgate_versions_expiry ON tollgate_versions (expires_at)",
        "CREATE TABLE IF NOT EXISTS tollgate_guard (id INTEGER NOT NULL PRIMARY KEY, \
         ok INTEGER NOT NULL CONSTRAINT tollgate_counter_unchanged CHECK (ok = 1))",
    ],
}];

pub const CREATE_SCHEMA_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS tollgate_schema (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";
pub const SCHEMA_VERSION: &str = "SELECT coalesce(max(version), 0) AS version FROM tollgate_schema";
pub const RECORD_MIGRATION: &str = "INSERT OR IGNORE INTO tollgate_schema (version, name, applied_at) VALUES (?1, ?2, ?3)";

/// `?1` key, `?2` now: the live value and version.
pub const GET: &str = "SELECT value, version FROM tollgate_kv WHERE key = ?1 AND expires_at > ?2";
/// `?1` tag: its counter's version and expiry.
pub const COUNTER: &str = "SELECT version, expires_at FROM tollgate_versions WHERE tag = ?1";
/// `?1` tag, `?2` the counter version read (NULL: no counter): fails the batch
/// with [`GUARD_CONSTRAINT`] unless the counter still holds it.
pub const GUARD: &str =
    "INSERT OR REPLACE INTO tollgate_guard (id, ok) VALUES (1, (SELECT version FROM tollgate_versions WHERE tag = ?1) IS ?2)";
/// The constraint [`GUARD`] fails, as named in SQLite's error message.
pub const GUARD_CONSTRAINT: &str = "tollgate_counter_unchanged";
/// `?1` key, `?2` tag, `?3` version, `?4` expires_at, `?5` value.
pub const PUT: &str = "INSERT INTO tollgate_kv (key, tag, version, expires_at, value) VALUES (?1, ?2, ?3, ?4, ?5) \
                       ON CONFLICT (key) DO UPDATE SET tag = excluded.tag, version = excluded.version, \
                       expires_at = excluded.expires_at, value = excluded.value";
/// `?1` key.
pub const DELETE: &str = "DELETE FROM tollgate_kv WHERE key = ?1";
/// `?1` tag, `?2` version, `?3` expires_at (never lowered).
pub const COUNTER_SET: &str = "INSERT INTO tollgate_versions (tag, version, expires_at) VALUES (?1, ?2, ?3) \
                               ON CONFLICT (tag) DO UPDATE SET version = excluded.version, \
                               expires_at = max(tollgate_versions.expires_at, excluded.expires_at)";
/// `?1` now, `?2` batch size: deletes up to a batch of expired rows.
pub const SWEEP_ROWS: &str =
    "DELETE FROM tollgate_kv WHERE key IN (SELECT key FROM tollgate_kv WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
/// `?1` the cut-off (now minus the counters' grace), `?2` batch size.
pub const SWEEP_COUNTERS: &str =
    "DELETE FROM tollgate_versions WHERE tag IN (SELECT tag FROM tollgate_versions WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";

/// A value bound to one `?N` of a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Text(String),
    Blob(Bytes),
    Null,
}

/// Times and versions as SQLite integers (they stay far below 2^53, as D1 needs).
pub fn int(v: u64) -> Param {
    Param::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// One statement with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

/// Step 1's reads: each tag's counter, then each checked key.
pub fn reads(tags: &[String], keys: &[String], now_ms: u64) -> Vec<Statement> {
    let counters = tags.iter().map(|t| Statement { sql: COUNTER, params: vec![Param::Text(t.clone())] });
    let rows = keys.iter().map(|k| Statement { sql: GET, params: vec![Param::Text(k.clone()), int(now_ms)] });
    counters.chain(rows).collect()
}

/// Step 2: the guards, the row writes and the counters of a plan.
pub fn writes(plan: &Plan) -> Vec<Statement> {
    let guards = plan
        .counters
        .iter()
        .map(|c: &CounterWrite| Statement { sql: GUARD, params: vec![Param::Text(c.tag.clone()), c.seen.map_or(Param::Null, int)] });
    let rows = plan.rows.iter().map(|w| match w {
        RowWrite::Put { key, tag, version, expires_at, value } => Statement {
            sql: PUT,
            params: vec![Param::Text(key.clone()), Param::Text(tag.clone()), int(*version), int(*expires_at), Param::Blob(value.clone())],
        },
        RowWrite::Delete { key } => Statement { sql: DELETE, params: vec![Param::Text(key.clone())] },
    });
    let counters = plan
        .counters
        .iter()
        .map(|c| Statement { sql: COUNTER_SET, params: vec![Param::Text(c.tag.clone()), int(c.version), int(c.expires_at)] });
    guards.chain(rows).chain(counters).collect()
}

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub(super) use native::SqliteBackend;

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod native {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
    use sqlx::{Arguments, Connection, Row, Sqlite, SqliteConnection};

    use super::{Param, Statement};
    use crate::engine::step::{Versioned, WriteOp};
    use crate::store::sql::conns::Conns;
    use crate::store::sql::plan::{self, CounterRow};
    use crate::store::sql::{schema, to_int, version_of, SqlError};
    use crate::store::CommitResult;

    /// SQLite through sqlx: one writer connection (commits queue in-process
    /// instead of spinning on the file lock) and a pool of readers (WAL).
    /// In memory, or on an application's pool, both are the same.
    pub struct SqliteBackend {
        writer: Arc<Conns<Sqlite>>,
        readers: Arc<Conns<Sqlite>>,
    }

    fn bind(statement: &Statement) -> Result<SqliteArguments<'static>, SqlError> {
        let mut args = SqliteArguments::default();
        for p in &statement.params {
            let added = match p {
                Param::Int(i) => args.add(*i),
                Param::Text(t) => args.add(t.clone()),
                Param::Blob(b) => args.add(b.to_vec()),
                Param::Null => args.add(Option::<i64>::None),
            };
            added.map_err(|e| SqlError::Db(sqlx::Error::Encode(e)))?;
        }
        Ok(args)
    }

    async fn run(conn: &mut SqliteConnection, statement: &Statement) -> Result<(), SqlError> {
        sqlx::query_with(statement.sql, bind(statement)?).execute(conn).await?;
        Ok(())
    }

    async fn fetch_optional(conn: &mut SqliteConnection, statement: &Statement) -> Result<Option<sqlx::sqlite::SqliteRow>, SqlError> {
        Ok(sqlx::query_with(statement.sql, bind(statement)?).fetch_optional(conn).await?)
    }

    fn schema_version_of(found: i64) -> Result<u32, SqlError> {
        u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))
    }

    impl SqliteBackend {
        /// Opens (creating it when missing) the database `url` names
        /// (`sqlite:<path>`, `sqlite://<path>`, `sqlite::memory:`): WAL, full sync,
        /// a busy timeout for other processes on the same file.
        pub async fn open(url: &str, readers: u32, timeout: Duration) -> Result<Self, SqlError> {
            let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true).busy_timeout(timeout);
            if options.get_filename().as_os_str() == ":memory:" {
                // Each connection would open a database of its own: one connection, kept for good.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(timeout)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(options)
                    .await?;
                let only = Arc::new(Conns::new(pool, 1));
                return Ok(SqliteBackend { writer: only.clone(), readers: only });
            }
            // The writer connects first: it creates the file and switches it to WAL.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .connect_with(options.clone().journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Full))
                .await?;
            let n = readers.max(1);
            let readers = SqlitePoolOptions::new()
                .max_connections(n)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await?;
            Ok(SqliteBackend { writer: Arc::new(Conns::new(writer, 1)), readers: Arc::new(Conns::new(readers, n as usize)) })
        }

        /// Reuses an application's pool for reads and writes.
        pub fn from_pool(pool: SqlitePool) -> Self {
            let shared = Arc::new(Conns::new(pool, 0));
            SqliteBackend { writer: shared.clone(), readers: shared }
        }

        pub async fn get(&self, keys: &[String], now: u64) -> Result<Vec<Option<Versioned>>, SqlError> {
            self.readers
                .with(async |conn| {
                    let mut out = Vec::with_capacity(keys.len());
                    for statement in super::reads(&[], keys, now) {
                        out.push(match fetch_optional(conn, &statement).await? {
                            Some(row) => {
                                Some(Versioned { value: Bytes::from(row.try_get::<Vec<u8>, _>(0)?), version: version_of(row.try_get(1)?)? })
                            }
                            None => None,
                        });
                    }
                    Ok(out)
                })
                .await
        }

        pub async fn commit(&self, ops: &[WriteOp], now: u64) -> Result<CommitResult, SqlError> {
            self.writer.with(async |conn| commit_on(conn, ops, now).await).await
        }

        /// Deletes up to `batch` expired rows, and up to `batch` counters expired before `counters_before`.
        pub async fn sweep(&self, now: u64, counters_before: u64, batch: u32) -> Result<u64, SqlError> {
            self.writer
                .with(async |conn| {
                    let rows = sqlx::query(super::SWEEP_ROWS).bind(to_int(now)).bind(i64::from(batch)).execute(&mut *conn).await?;
                    let counters =
                        sqlx::query(super::SWEEP_COUNTERS).bind(to_int(counters_before)).bind(i64::from(batch)).execute(&mut *conn).await?;
                    Ok(rows.rows_affected() + counters.rows_affected())
                })
                .await
        }

        /// Applies pending migrations under the write lock; answers the version before.
        pub async fn migrate(&self, now: u64) -> Result<u32, SqlError> {
            self.writer.with(async |conn| migrate_on(conn, now).await).await
        }

        pub async fn schema_version(&self) -> Result<u32, SqlError> {
            self.readers
                .with(async |conn| {
                    let exists: Option<i64> =
                        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tollgate_schema'")
                            .fetch_optional(&mut *conn)
                            .await?;
                    if exists.is_none() {
                        return Ok(0);
                    }
                    schema_version_of(sqlx::query_scalar(super::SCHEMA_VERSION).fetch_one(&mut *conn).await?)
                })
                .await
        }
    }

    async fn commit_on(conn: &mut SqliteConnection, ops: &[WriteOp], now: u64) -> Result<CommitResult, SqlError> {
        let (tags, keys) = (plan::tags(ops), plan::checked_keys(ops));
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut counters = Vec::with_capacity(tags.len());
        let mut live = Vec::with_capacity(keys.len());
        for (i, statement) in super::reads(&tags, &keys, now).iter().enumerate() {
            let row = fetch_optional(&mut tx, statement).await?;
            if i < tags.len() {
                let counter = match row {
                    Some(r) => Some(CounterRow { version: version_of(r.try_get(0)?)?, expires_at: version_of(r.try_get(1)?)? }),
                    None => None,
                };
                counters.push((tags[i].clone(), counter));
            } else if let Some(r) = row {
                live.push((keys[i - tags.len()].clone(), version_of(r.try_get(1)?)?));
            }
        }
        let current = |key: &str| live.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let Some(plan) = plan::plan(ops, current, &counters, now) else {
            tx.rollback().await?;
            return Ok(CommitResult::Conflict);
        };
        for statement in super::writes(&plan) {
            run(&mut tx, &statement).await?;
        }
        tx.commit().await?;
        Ok(CommitResult::Committed)
    }

    async fn migrate_on(conn: &mut SqliteConnection, now: u64) -> Result<u32, SqlError> {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(super::CREATE_SCHEMA_TABLE).execute(&mut *tx).await?;
        let found = schema_version_of(sqlx::query_scalar(super::SCHEMA_VERSION).fetch_one(&mut *tx).await?)?;
        if found > schema::LATEST {
            return Err(SqlError::Schema(schema::refuse(found).unwrap_or_default()));
        }
        for m in schema::pending(super::MIGRATIONS, found) {
            for statement in m.statements {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            sqlx::query(super::RECORD_MIGRATION).bind(m.version).bind(m.name).bind(to_int(now)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::{Expect, WriteOp};
    use crate::store::sql::plan::{self, CounterRow};

    #[test]
    fn a_plan_becomes_guards_then_rows_then_counters() {
        let ops = [
            WriteOp::Put { key: "i:{u:a}".into(), value: Bytes::from_static(b"x"), expect: Expect::Absent, expires_at: 2_000 },
            WriteOp::Delete { key: "s:{u:a}:1".into(), expect: Expect::Any },
        ];
        let counters = vec![("u:a".to_owned(), Some(CounterRow { version: 7, expires_at: 1_500 }))];
        let p = plan::plan(&ops, |_| None, &counters, 1).unwrap();
        let sql: Vec<&str> = writes(&p).iter().map(|s| s.sql).collect();
        assert_eq!(sql, vec![GUARD, PUT, DELETE, COUNTER_SET]);
        assert_eq!(writes(&p)[0].params, vec![Param::Text("u:a".into()), Param::Int(7)]);
        assert_eq!(writes(&p)[3].params, vec![Param::Text("u:a".into()), Param::Int(1_000), Param::Int(2_000)]);
        let no_counter = plan::plan(&ops, |_| None, &[("u:a".to_owned(), None)], 1).unwrap();
        assert_eq!(writes(&no_counter)[0].params[1], Param::Null);
        assert_eq!(reads(&["u:a".into()], &["i:{u:a}".into()], 5).iter().map(|s| s.sql).collect::<Vec<_>>(), vec![COUNTER, GET]);
    }
}
