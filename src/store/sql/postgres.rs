//! The PostgreSQL dialect (feature `postgres`; tested on PostgreSQL 15).
//!
//! A commit is one `READ COMMITTED` transaction of four statements: lock each
//! tag's counter row (`SELECT .. FOR UPDATE`, creating it first when missing),
//! read the checked keys' versions, then write the rows and the counters in
//! one statement. Every writer of a tag holds its counter's row lock, and each
//! statement of a `READ COMMITTED` transaction sees everything committed
//! before it started, so the versions read after the lock are the latest and
//! no update is lost. The sweep skips rows a commit holds (`SKIP LOCKED`).

use super::schema::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tollgate_kv, tollgate_versions",
    statements: &[
        r#"CREATE TABLE IF NOT EXISTS tollgate_kv (key TEXT COLLATE "C" NOT NULL PRIMARY KEY, tag TEXT COLLATE "C" NOT NULL,
           version BIGINT NOT NULL, expires_at BIGINT NOT NULL, value BYTEA NOT NULL)"#,
        "CREATE INDEX IF NOT EXISTS tollgate_kv_expiry ON tollgate_kv (expires_at)",
        r#"CREATE TABLE IF NOT EXISTS tollgate_versions (tag TEXT COLLATE "C" NOT NULL PRIMARY KEY, version BIGINT NOT NULL,
           expires_at BIGINT NOT NULL)"#,
        "CREATE INDEX IF NOT EXISTS tollgate_versions_expiry ON tollgate_versions (expires_at)",
    ],
}];

const CREATE_SCHEMA_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS tollgate_schema (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
const SCHEMA_VERSION: &str = "SELECT coalesce(max(version), 0) FROM tollgate_schema";
const SCHEMA_EXISTS: &str = "SELECT to_regclass('tollgate_schema') IS NOT NULL";
const RECORD_MIGRATION: &str = "INSERT INTO tollgate_schema (version, name, applied_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const MIGRATE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
const GET: &str = "SELECT key, value, version FROM tollgate_kv WHERE key = ANY($1) AND expires_at > $2";
const LOCK_COUNTER: &str = "SELECT version, expires_at FROM tollgate_versions WHERE tag = $1 FOR UPDATE";
const CREATE_COUNTER: &str = "INSERT INTO tollgate_versions (tag, version, expires_at) VALUES ($1, 0, 0) ON CONFLICT (tag) DO NOTHING";
const LIVE_VERSIONS: &str = "SELECT key, version FROM tollgate_kv WHERE key = ANY($1) AND expires_at > $2";
const WRITE: &str = "WITH put AS (
      INSERT INTO tollgate_kv (key, tag, version, expires_at, value)
      SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::bytea[])
      ON CONFLICT (key) DO UPDATE SET tag = EXCLUDED.tag, version = EXCLUDED.version,
        expires_at = EXCLUDED.expires_at, value = EXCLUDED.value
    ), gone AS (
      DELETE FROM tollgate_kv WHERE key = ANY($6::text[])
    )
    UPDATE tollgate_versions AS c SET version = u.version, expires_at = GREATEST(c.expires_at, u.expires_at)
    FROM UNNEST($7::text[], $8::int8[], $9::int8[]) AS u(tag, version, expires_at) WHERE c.tag = u.tag";
const SWEEP_ROWS: &str = "DELETE FROM tollgate_kv WHERE expires_at <= $1 AND key IN
    (SELECT key FROM tollgate_kv WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";
const SWEEP_COUNTERS: &str = "DELETE FROM tollgate_versions WHERE expires_at <= $1 AND tag IN
    (SELECT tag FROM tollgate_versions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

pub(super) use native::PgBackend;

mod native {
    use std::time::Duration;

    use bytes::Bytes;
    use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
    use sqlx::{PgConnection, Row};

    use super::*;
    use crate::engine::step::{Versioned, WriteOp};
    use crate::store::sql::plan::{self, CounterRow, RowWrite};
    use crate::store::sql::{schema, to_int, version_of, SqlError};
    use crate::store::CommitResult;

    pub struct PgBackend {
        pool: PgPool,
    }

    fn counter(row: Option<PgRow>) -> Result<Option<CounterRow>, SqlError> {
        row.map(|r| Ok(CounterRow { version: version_of(r.try_get(0)?)?, expires_at: version_of(r.try_get(1)?)? })).transpose()
    }

    /// Locks `tag`'s counter row, creating it when missing; answers what it held.
    async fn lock_counter(conn: &mut PgConnection, tag: &str) -> Result<CounterRow, SqlError> {
        for _ in 0..3 {
            if let Some(c) = counter(sqlx::query(LOCK_COUNTER).bind(tag).fetch_optional(&mut *conn).await?)? {
                return Ok(c);
            }
            sqlx::query(CREATE_COUNTER).bind(tag).execute(&mut *conn).await?;
        }
        // Swept between our insert and our lock, three times over: let the commit run again.
        Err(SqlError::Retry)
    }

    impl PgBackend {
        pub async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, SqlError> {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .connect(url)
                .await?;
            Ok(PgBackend { pool })
        }

        pub fn from_pool(pool: PgPool) -> Self {
            PgBackend { pool }
        }

        pub async fn get(&self, keys: &[String], now: u64) -> Result<Vec<Option<Versioned>>, SqlError> {
            let rows = sqlx::query(GET).bind(keys).bind(to_int(now)).fetch_all(&self.pool).await?;
            let mut out = vec![None; keys.len()];
            for row in rows {
                let key: &str = row.try_get(0)?;
                let found = Versioned { value: Bytes::from(row.try_get::<Vec<u8>, _>(1)?), version: version_of(row.try_get(2)?)? };
                for (slot, k) in out.iter_mut().zip(keys) {
                    if k == key {
                        *slot = Some(found.clone());
                    }
                }
            }
            Ok(out)
        }

        pub async fn commit(&self, ops: &[WriteOp], now: u64) -> Result<CommitResult, SqlError> {
            let (tags, keys) = (plan::tags(ops), plan::checked_keys(ops));
            let mut tx = self.pool.begin_with(BEGIN).await?;
            let mut counters = Vec::with_capacity(tags.len());
            for tag in &tags {
                counters.push((tag.clone(), Some(lock_counter(&mut tx, tag).await?)));
            }
            let mut live: Vec<(String, u64)> = Vec::new();
            if !keys.is_empty() {
                for row in sqlx::query(LIVE_VERSIONS).bind(&keys).bind(to_int(now)).fetch_all(&mut *tx).await? {
                    live.push((row.try_get(0)?, version_of(row.try_get(1)?)?));
                }
            }
            let current = |key: &str| live.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let Some(plan) = plan::plan(ops, current, &counters, now) else {
                tx.rollback().await?;
                return Ok(CommitResult::Conflict);
            };
            let (mut put_keys, mut put_tags, mut put_versions, mut put_expiries, mut put_values) = (vec![], vec![], vec![], vec![], vec![]);
            let mut deleted: Vec<&str> = Vec::new();
            for w in &plan.rows {
                match w {
                    RowWrite::Put { key, tag, version, expires_at, value } => {
                        put_keys.push(key.as_str());
                        put_tags.push(tag.as_str());
                        put_versions.push(to_int(*version));
                        put_expiries.push(to_int(*expires_at));
                        put_values.push(value.as_ref());
                    }
                    RowWrite::Delete { key } => deleted.push(key),
                }
            }
            let counter_tags: Vec<&str> = plan.counters.iter().map(|c| c.tag.as_str()).collect();
            let counter_versions: Vec<i64> = plan.counters.iter().map(|c| to_int(c.version)).collect();
            let counter_expiries: Vec<i64> = plan.counters.iter().map(|c| to_int(c.expires_at)).collect();
            sqlx::query(WRITE)
                .bind(put_keys)
                .bind(put_tags)
                .bind(put_versions)
                .bind(put_expiries)
                .bind(put_values)
                .bind(deleted)
                .bind(counter_tags)
                .bind(counter_versions)
                .bind(counter_expiries)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CommitResult::Committed)
        }

        pub async fn sweep(&self, now: u64, counters_before: u64, batch: u32) -> Result<u64, SqlError> {
            let rows = sqlx::query(SWEEP_ROWS).bind(to_int(now)).bind(i64::from(batch)).execute(&self.pool).await?;
            let counters = sqlx::query(SWEEP_COUNTERS).bind(to_int(counters_before)).bind(i64::from(batch)).execute(&self.pool).await?;
            Ok(rows.rows_affected() + counters.rows_affected())
        }

        pub async fn migrate(&self, now: u64) -> Result<u32, SqlError> {
            let mut tx = self.pool.begin().await?;
            sqlx::query(MIGRATE_LOCK).bind(schema::LOCK_NAME).execute(&mut *tx).await?;
            sqlx::query(CREATE_SCHEMA_TABLE).execute(&mut *tx).await?;
            let found: i32 = sqlx::query_scalar(SCHEMA_VERSION).fetch_one(&mut *tx).await?;
            let found = u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))?;
            if found > schema::LATEST {
                return Err(SqlError::Schema(schema::refuse(found).unwrap_or_default()));
            }
            for m in schema::pending(MIGRATIONS, found) {
                for statement in m.statements {
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                sqlx::query(RECORD_MIGRATION).bind(m.version as i32).bind(m.name).bind(to_int(now)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(found)
        }

        pub async fn schema_version(&self) -> Result<u32, SqlError> {
            let exists: bool = sqlx::query_scalar(SCHEMA_EXISTS).fetch_one(&self.pool).await?;
            if !exists {
                return Ok(0);
            }
            let found: i32 = sqlx::query_scalar(SCHEMA_VERSION).fetch_one(&self.pool).await?;
            u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))
        }
    }
}
