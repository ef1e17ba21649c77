//! The MySQL / MariaDB dialect (feature `mysql`; tested on MariaDB 10.11, needs
//! MySQL 8.0 or MariaDB 10.6 for `SKIP LOCKED`).
//!
//! As on PostgreSQL, a commit locks each tag's counter row first (`SELECT ..
//! FOR UPDATE`) in a `READ COMMITTED` transaction, set by the store for each
//! commit, so the plain reads that follow see the latest committed versions
//! and no update is lost. Keys are `VARBINARY`: compared byte for byte, never
//! by a case- or accent-insensitive collation (where `u:Alice` would be `u:alice`).

use super::schema::Migration;

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tollgate_kv, tollgate_versions",
    statements: &[
        "CREATE TABLE IF NOT EXISTS tollgate_kv (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, tag VARBINARY(1024) NOT NULL,
           version BIGINT NOT NULL, expires_at BIGINT NOT NULL, value MEDIUMBLOB NOT NULL,
           INDEX tollgate_kv_expiry (expires_at)) ENGINE = InnoDB",
        "CREATE TABLE IF NOT EXISTS tollgate_versions (tag VARBINARY(1024) NOT NULL PRIMARY KEY, version BIGINT NOT NULL,
           expires_at BIGINT NOT NULL, INDEX tollgate_versions_expiry (expires_at)) ENGINE = InnoDB",
    ],
}];

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS tollgate_schema (version INT NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL, applied_at BIGINT NOT NULL) ENGINE = InnoDB";
const SCHEMA_VERSION: &str = "SELECT CAST(coalesce(max(version), 0) AS SIGNED) FROM tollgate_schema";
const SCHEMA_EXISTS: &str =
    "SELECT CAST(count(*) AS SIGNED) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tollgate_schema'";
const RECORD_MIGRATION: &str = "INSERT IGNORE INTO tollgate_schema (version, name, applied_at) VALUES (?, ?, ?)";
const MIGRATE_LOCK: &str = "SELECT GET_LOCK(?, 30)";
const MIGRATE_UNLOCK: &str = "SELECT RELEASE_LOCK(?)";

/// One round trip: the isolation level applies to the transaction this starts.
const BEGIN: &str = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION";
const LOCK_COUNTER: &str = "SELECT version, expires_at FROM tollgate_versions WHERE tag = ? FOR UPDATE";
// An exclusive lock even when the row exists (INSERT IGNORE would take a shared
// one, and two shared holders both asking for FOR UPDATE deadlock).
const CREATE_COUNTER: &str = "INSERT INTO tollgate_versions (tag, version, expires_at) VALUES (?, 0, 0) ON DUPLICATE KEY UPDATE tag = tag";
const SET_COUNTER: &str = "UPDATE tollgate_versions SET version = ?, expires_at = GREATEST(expires_at, ?) WHERE tag = ?";
const SWEEP_FIND_ROWS: &str = "SELECT `key` FROM tollgate_kv WHERE expires_at <= ? ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED";
const SWEEP_FIND_COUNTERS: &str =
    "SELECT tag FROM tollgate_versions WHERE expires_at <= ? ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED";

/// `SELECT .. WHERE key IN (?, ?, ..)` and the like: MySQL has no array parameters.
fn with_list(head: &str, n: usize, tail: &str) -> String {
    let marks = vec!["?"; n].join(", ");
    format!("{head}({marks}){tail}")
}

fn get_sql(n: usize) -> String {
    with_list("SELECT `key`, value, version FROM tollgate_kv WHERE `key` IN ", n, " AND expires_at > ?")
}

fn live_sql(n: usize) -> String {
    with_list("SELECT `key`, version FROM tollgate_kv WHERE `key` IN ", n, " AND expires_at > ?")
}

fn put_sql(n: usize) -> String {
    let rows = vec!["(?, ?, ?, ?, ?)"; n].join(", ");
    format!(
        "INSERT INTO tollgate_kv (`key`, tag, version, expires_at, value) VALUES {rows} ON DUPLICATE KEY UPDATE \
         tag = VALUES(tag), version = VALUES(version), expires_at = VALUES(expires_at), value = VALUES(value)"
    )
}

fn delete_sql(n: usize) -> String {
    with_list("DELETE FROM tollgate_kv WHERE `key` IN ", n, "")
}

pub(super) use native::MySqlBackend;

mod native {
    use std::time::Duration;

    use bytes::Bytes;
    use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
    use sqlx::{Connection, MySql, MySqlConnection, Row};

    use super::*;
    use crate::engine::step::{Versioned, WriteOp};
    use crate::store::sql::conns::Conns;
    use crate::store::sql::plan::{self, CounterRow, RowWrite};
    use crate::store::sql::{schema, to_int, version_of, SqlError};
    use crate::store::CommitResult;

    pub struct MySqlBackend {
        conns: Conns<MySql>,
    }

    fn key_of(row: &MySqlRow) -> Result<String, SqlError> {
        String::from_utf8(row.try_get::<Vec<u8>, _>(0)?).map_err(|_| SqlError::Corrupt("a key that is not UTF-8".into()))
    }

    async fn lock_counter(conn: &mut MySqlConnection, tag: &str) -> Result<CounterRow, SqlError> {
        for _ in 0..3 {
            if let Some(r) = sqlx::query(LOCK_COUNTER).bind(tag.as_bytes()).fetch_optional(&mut *conn).await? {
                return Ok(CounterRow { version: version_of(r.try_get(0)?)?, expires_at: version_of(r.try_get(1)?)? });
            }
            sqlx::query(CREATE_COUNTER).bind(tag.as_bytes()).execute(&mut *conn).await?;
        }
        Err(SqlError::Retry)
    }

    impl MySqlBackend {
        pub async fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<Self, SqlError> {
            let pool = MySqlPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(timeout)
                .test_before_acquire(false)
                .connect(url)
                .await?;
            Ok(MySqlBackend { conns: Conns::new(pool, max_connections as usize) })
        }

        pub fn from_pool(pool: MySqlPool) -> Self {
            MySqlBackend { conns: Conns::new(pool, 0) }
        }

        pub async fn get(&self, keys: &[String], now: u64) -> Result<Vec<Option<Versioned>>, SqlError> {
            let sql = get_sql(keys.len());
            let mut query = sqlx::query(&sql);
            for k in keys {
                query = query.bind(k.as_bytes());
            }
            let rows = self.conns.with(async |conn| Ok(query.bind(to_int(now)).fetch_all(conn).await?)).await?;
            let mut out = vec![None; keys.len()];
            for row in rows {
                let key = key_of(&row)?;
                let found = Versioned { value: Bytes::from(row.try_get::<Vec<u8>, _>(1)?), version: version_of(row.try_get(2)?)? };
                for (slot, k) in out.iter_mut().zip(keys) {
                    if *k == key {
                        *slot = Some(found.clone());
                    }
                }
            }
            Ok(out)
        }

        pub async fn commit(&self, ops: &[WriteOp], now: u64) -> Result<CommitResult, SqlError> {
            self.conns.with(async |conn| commit_on(conn, ops, now).await).await
        }

        /// Locks a batch of expired rows (skipping those a commit holds), then deletes them.
        pub async fn sweep(&self, now: u64, counters_before: u64, batch: u32) -> Result<u64, SqlError> {
            self.conns.with(async |conn| sweep_on(conn, now, counters_before, batch).await).await
        }

        /// MySQL commits each DDL statement on its own: `GET_LOCK` keeps two
        /// migrators apart, and every statement is idempotent.
        pub async fn migrate(&self, now: u64) -> Result<u32, SqlError> {
            self.conns.with(async |conn| migrate_on(conn, now).await).await
        }

        pub async fn schema_version(&self) -> Result<u32, SqlError> {
            self.conns
                .with(async |conn| {
                    let exists: i64 = sqlx::query_scalar(SCHEMA_EXISTS).fetch_one(&mut *conn).await?;
                    let found: i64 = if exists == 0 { 0 } else { sqlx::query_scalar(SCHEMA_VERSION).fetch_one(&mut *conn).await? };
                    u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))
                })
                .await
        }
    }

    async fn commit_on(conn: &mut MySqlConnection, ops: &[WriteOp], now: u64) -> Result<CommitResult, SqlError> {
        let (tags, keys) = (plan::tags(ops), plan::checked_keys(ops));
        let mut tx = conn.begin_with(BEGIN).await?;
        let mut counters = Vec::with_capacity(tags.len());
        for tag in &tags {
            counters.push((tag.clone(), Some(lock_counter(&mut tx, tag).await?)));
        }
        let mut live: Vec<(String, u64)> = Vec::new();
        if !keys.is_empty() {
            let sql = live_sql(keys.len());
            let mut query = sqlx::query(&sql);
            for k in &keys {
                query = query.bind(k.as_bytes());
            }
            for row in query.bind(to_int(now)).fetch_all(&mut *tx).await? {
                live.push((key_of(&row)?, version_of(row.try_get(1)?)?));
            }
        }
        let current = |key: &str| live.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let Some(plan) = plan::plan(ops, current, &counters, now) else {
            tx.rollback().await?;
            return Ok(CommitResult::Conflict);
        };
        let puts: Vec<&RowWrite> = plan.rows.iter().filter(|w| matches!(w, RowWrite::Put { .. })).collect();
        if !puts.is_empty() {
            let sql = put_sql(puts.len());
            let mut query = sqlx::query(&sql);
            for w in &puts {
                if let RowWrite::Put { key, tag, version, expires_at, value } = w {
                    query = query
                        .bind(key.as_bytes())
                        .bind(tag.as_bytes())
                        .bind(to_int(*version))
                        .bind(to_int(*expires_at))
                        .bind(value.as_ref());
                }
            }
            query.execute(&mut *tx).await?;
        }
        let deleted: Vec<&str> =
            plan.rows.iter().filter_map(|w| if let RowWrite::Delete { key } = w { Some(key.as_str()) } else { None }).collect();
        if !deleted.is_empty() {
            let sql = delete_sql(deleted.len());
            let mut query = sqlx::query(&sql);
            for k in &deleted {
                query = query.bind(k.as_bytes());
            }
            query.execute(&mut *tx).await?;
        }
        for c in &plan.counters {
            sqlx::query(SET_COUNTER).bind(to_int(c.version)).bind(to_int(c.expires_at)).bind(c.tag.as_bytes()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(CommitResult::Committed)
    }

    async fn sweep_on(conn: &mut MySqlConnection, now: u64, counters_before: u64, batch: u32) -> Result<u64, SqlError> {
        let mut removed = 0;
        for (find, table, column, before) in
            [(SWEEP_FIND_ROWS, "tollgate_kv", "`key`", now), (SWEEP_FIND_COUNTERS, "tollgate_versions", "tag", counters_before)]
        {
            let mut tx = conn.begin_with(BEGIN).await?;
            let found: Vec<Vec<u8>> = sqlx::query_scalar(find).bind(to_int(before)).bind(i64::from(batch)).fetch_all(&mut *tx).await?;
            if !found.is_empty() {
                let sql = with_list(&format!("DELETE FROM {table} WHERE expires_at <= ? AND {column} IN "), found.len(), "");
                let mut query = sqlx::query(&sql).bind(to_int(before));
                for k in &found {
                    query = query.bind(k.as_slice());
                }
                removed += query.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        }
        Ok(removed)
    }

    async fn migrate_on(conn: &mut MySqlConnection, now: u64) -> Result<u32, SqlError> {
        let locked: Option<i64> = sqlx::query_scalar(MIGRATE_LOCK).bind(schema::LOCK_NAME).fetch_one(&mut *conn).await?;
        if locked != Some(1) {
            return Err(SqlError::Schema("another tollgate holds the migration lock for more than 30 s; retry".into()));
        }
        let result = async {
            sqlx::query(CREATE_SCHEMA_TABLE).execute(&mut *conn).await?;
            let found: i64 = sqlx::query_scalar(SCHEMA_VERSION).fetch_one(&mut *conn).await?;
            let found = u32::try_from(found).map_err(|_| SqlError::Corrupt("a negative schema version".into()))?;
            if found > schema::LATEST {
                return Err(SqlError::Schema(schema::refuse(found).unwrap_or_default()));
            }
            for m in schema::pending(MIGRATIONS, found) {
                for statement in m.statements {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                sqlx::query(RECORD_MIGRATION).bind(m.version).bind(m.name).bind(to_int(now)).execute(&mut *conn).await?;
            }
            Ok(found)
        }
        .await;
        sqlx::query(MIGRATE_UNLOCK).bind(schema::LOCK_NAME).execute(&mut *conn).await?;
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_get_one_mark_per_item() {
        assert_eq!(super::delete_sql(2), "DELETE FROM tollgate_kv WHERE `key` IN (?, ?)");
        assert!(super::put_sql(2).contains("VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE"));
    }
}
