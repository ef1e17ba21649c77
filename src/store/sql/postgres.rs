//! The PostgreSQL dialect (feature `postgres`; tested on PostgreSQL 15).
//!
//! A commit is two statements, each its own transaction, two round trips:
//!
//! 1. [`READ`]: each tag's counter and the checked keys' live versions, in one
//!    snapshot; [`super::plan::plan`] decides.
//! 2. [`WRITE`]: moves each counter only if it still holds what step 1 read
//!    (`UPDATE .. WHERE version = <read>`, or an insert that yields to a
//!    racing one), and writes the rows only if every counter moved. A racing
//!    commit on the same tag either committed first (the `UPDATE` waits for it,
//!    then finds another version and matches nothing) or waits for this one;
//!    every writer of a tag moves its counter, so no update is lost, at `READ
//!    COMMITTED` (PostgreSQL's default) or above, where a race is a
//!    serialization failure and answers `Conflict` as well. The counter's row
//!    lock is held until the statement ends, so the row writes of two commits
//!    on one tag never interleave.
//!
//! With keys of several tags (tollgate never writes such a commit) a counter
//! that could move may move while another could not: nothing else is written
//! and the commit answers `Conflict`.
//!
//! The sweep skips rows a commit holds (`SKIP LOCKED`).

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

const GET: &str = "SELECT key, value, version FROM tollgate_kv WHERE key = ANY($1) AND expires_at > $2";
/// `$1` tags, `$2` keys, `$3` now: counters (kind 0) and live versions (kind 1), one snapshot.
const READ: &str = "SELECT 0 AS kind, tag, version, expires_at FROM tollgate_versions WHERE tag = ANY($1)
    UNION ALL
    SELECT 1, key, version, 0 FROM tollgate_kv WHERE key = ANY($2) AND expires_at > $3";
/// `$1..$4` counters (tag, version read or NULL, new version, expiry), `$5..$9` puts, `$10` deletes:
/// true when every counter moved and the rows were written.
const WRITE: &str = "WITH want AS (
      SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS w(tag, seen, version, expires_at)
    ), moved AS (
      UPDATE tollgate_versions AS c SET version = w.version, expires_at = GREATEST(c.expires_at, w.expires_at)
      FROM want AS w WHERE c.tag = w.tag AND c.version = w.seen
      RETURNING 1
    ), created AS (
      INSERT INTO tollgate_versions (tag, version, expires_at)
      SELECT tag, version, expires_at FROM want WHERE seen IS NULL
      ON CONFLICT (tag) DO NOTHING
      RETURNING 1
    ), ok AS (
      SELECT (SELECT count(*) FROM moved) + (SELECT count(*) FROM created) = cardinality($1::text[]) AS every_counter
    ), put AS (
      INSERT INTO tollgate_kv (key, tag, version, expires_at, value)
      SELECT u.key, u.tag, u.version, u.expires_at, u.value
      FROM UNNEST($5::text[], $6::text[], $7::int8[], $8::int8[], $9::bytea[]) AS u(key, tag, version, expires_at, value), ok
      WHERE ok.every_counter
      ON CONFLICT (key) DO UPDATE SET tag = EXCLUDED.tag, version = EXCLUDED.version,
        expires_at = EXCLUDED.expires_at, value = EXCLUDED.value
    ), gone AS (
      DELETE FROM tollgate_kv USING ok WHERE ok.every_counter AND key = ANY($10::text[])
    )
    SELECT every_counter FROM ok";
const SWEEP_ROWS: &str = "DELETE FROM tollgate_kv WHERE expires_at <= $1 AND key IN
    (SELECT key FROM tollgate_kv WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";
const SWEEP_COUNTERS: &str = "DELETE FROM tollgate_versions WHERE expires_at <= $1 AND tag IN
    (SELECT tag FROM tollgate_versions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

pub(super) use native::PgBackend;

mod native {
    use std::time::Duration;

    use bytes::Bytes;
    use sqlx::postgres::{PgPool, PgPoolOptions};
    use sqlx::{Postgres, Row};

    use super::*;
    use crate::engine::step::{Versioned, WriteOp};
    use crate::store::sql::conns::Conns;
    use crate::store::sql::plan::{self, CounterRow, RowWrite};
    use crate::store::sql::{schema, to_int, version_of, SqlError};
    use crate::store::CommitResult;

    pub struct PgBackend {
        conns: Conns<Postgres>,
    }

    impl PgBackend {
        pub async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, SqlError> {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .connect(url)
                .await?;
            Ok(PgBackend { conns: Conns::new(pool, max_connections as usize) })
        }

        pub fn from_pool(pool: PgPool) -> Self {
            PgBackend { conns: Conns::new(pool, 0) }
        }

        pub async fn get(&self, keys: &[String], now: u64) -> Result<Vec<Option<Versioned>>, SqlError> {
            let rows = self.conns.with(async |conn| Ok(sqlx::query(GET).bind(keys).bind(to_int(now)).fetch_all(conn).await?)).await?;
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
            let mut counters: Vec<(String, Option<CounterRow>)> = tags.iter().map(|t| (t.clone(), None)).collect();
            let mut live: Vec<(String, u64)> = Vec::new();
            let mut conn = self.conns.take().await?;
            for row in sqlx::query(READ).bind(&tags).bind(&keys).bind(to_int(now)).fetch_all(&mut *conn).await? {
                let (kind, name): (i32, String) = (row.try_get(0)?, row.try_get(1)?);
                let version = version_of(row.try_get(2)?)?;
                if kind == 0 {
                    let expires_at = version_of(row.try_get(3)?)?;
                    if let Some(slot) = counters.iter_mut().find(|(t, _)| *t == name) {
                        slot.1 = Some(CounterRow { version, expires_at });
                    }
                } else {
                    live.push((name, version));
                }
            }
            let current = |key: &str| live.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let Some(plan) = plan::plan(ops, current, &counters, now) else {
                self.conns.give_back(conn);
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
            let c = &plan.counters;
            let written: bool = sqlx::query_scalar(WRITE)
                .bind(c.iter().map(|c| c.tag.as_str()).collect::<Vec<_>>())
                .bind(c.iter().map(|c| c.seen.map(to_int)).collect::<Vec<_>>())
                .bind(c.iter().map(|c| to_int(c.version)).collect::<Vec<_>>())
                .bind(c.iter().map(|c| to_int(c.expires_at)).collect::<Vec<_>>())
                .bind(put_keys)
                .bind(put_tags)
                .bind(put_versions)
                .bind(put_expiries)
                .bind(put_values)
                .bind(deleted)
                .fetch_one(&mut *conn)
                .await?;
            self.conns.give_back(conn);
            Ok(if written { CommitResult::Committed } else { CommitResult::Conflict })
        }

        pub async fn sweep(&self, now: u64, counters_before: u64, batch: u32) -> Result<u64, SqlError> {
            let mut conn = self.conns.take().await?;
            let rows = sqlx::query(SWEEP_ROWS).bind(to_int(now)).bind(i64::from(batch)).execute(&mut *conn).await?;
            let counters = sqlx::query(SWEEP_COUNTERS).bind(to_int(counters_before)).bind(i64::from(batch)).execute(&mut *conn).await?;
            self.conns.give_back(conn);
            Ok(rows.rows_affected() + counters.rows_affected())
        }

        pub async fn migrate(&self, now: u64) -> Result<u32, SqlError> {
            let mut conn = self.conns.take().await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
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
            self.conns.give_back(conn);
            Ok(found)
        }

        pub async fn schema_version(&self) -> Result<u32, SqlError> {
            let mut conn = self.conns.take().await?;
            let exists: bool = sqlx::query_scalar(SCHEMA_EXISTS).fetch_one(&mut *conn).await?;
            let found: i32 = if exists { sqlx::query_scalar(SCHEMA_VERSION).fetch_one(&mut *conn).await? } else { 0 };
            self.conns.give_back(conn);
            u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))
        }
    }
}
