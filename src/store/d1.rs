//! The D1 store (feature `worker`): sessions in a Cloudflare D1 database, with
//! the same SQL as the native SQLite store ([`crate::store::sql::sqlite`]).
//!
//! - **Atomic.** D1 has no interactive transactions, so a commit is two
//!   batches (each batch is a transaction): the reads (each tag's version
//!   counter and the checked keys), then the writes, led by one guard
//!   statement per tag that fails the whole batch unless the counter still
//!   holds what the reads saw. Every commit moves its tags' counters, so a
//!   commit that raced another on the same user changes nothing and answers
//!   `Conflict`; the operation starts again, as on every store.
//! - **Consistent.** Every query goes to the database's primary (the store
//!   does not use D1's read replicas), so a read sees every acknowledged write:
//!   revocation is seen on the next request, reuse is detected, the per-user
//!   limit holds. The primary lives in one location: requests far from it pay
//!   the distance, two round trips per write.
//! - **Versions** come from the per-tag counter, as natively, and never repeat.
//! - **Expiry.** Reads filter on the Worker's clock; expired rows are deleted by
//!   [`D1Store::sweep`], which the Worker's scheduled handler runs (a cron
//!   trigger in `wrangler.toml`), in bounded batches.
//! - **Schema.** The migrations are applied when an isolate first opens the
//!   store: idempotent statements and the versions they record, in one batch.

#[cfg(target_arch = "wasm32")]
pub use imp::D1Store;

/// The D1 database binding (`TOLLGATE_STORE = "d1"`).
pub const D1_BINDING: &str = "TOLLGATE_DB";

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::sync::Arc;

    use bytes::Bytes;
    use serde::Deserialize;
    use wasm_bindgen::JsValue;
    use worker::d1::{D1Database, D1PreparedStatement, D1Result};

    use crate::engine::step::{Versioned, WriteOp};
    use crate::platform::Clock;
    use crate::store::sql::plan::{self, CounterRow};
    use crate::store::sql::schema;
    use crate::store::sql::sqlite::{self, Param, Statement};
    use crate::store::{Caps, CommitResult, Store, StoreError};

    /// Rows one sweep statement deletes at most, and statements per sweep.
    const SWEEP_BATCH: i64 = 500;
    const SWEEP_STATEMENTS: u32 = 10;
    /// Counters outlive the last value they versioned by this much (as natively).
    const COUNTER_GRACE_MS: u64 = 60 * 60 * 1000;
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

    #[derive(Deserialize)]
    struct ValueRow {
        value: Vec<u8>,
        version: f64,
    }

    #[derive(Deserialize)]
    struct CounterJs {
        version: f64,
        expires_at: f64,
    }

    #[derive(Deserialize)]
    struct SchemaRow {
        version: f64,
    }

    fn whole(n: f64) -> Result<u64, StoreError> {
        if (0.0..=MAX_SAFE_INTEGER).contains(&n) && n.fract() == 0.0 {
            Ok(n as u64)
        } else {
            Err(StoreError::corrupt("a D1 row holds a version or expiry that is not a whole number"))
        }
    }

    fn message(e: &worker::Error) -> String {
        let text = match e {
            worker::Error::D1(d1) => d1.cause(),
            other => other.to_string(),
        };
        text.chars().take(200).collect()
    }

    fn unavailable(e: worker::Error) -> StoreError {
        StoreError::unavailable(format!("D1: {}", message(&e)))
    }

    fn corrupt(e: worker::Error) -> StoreError {
        StoreError::corrupt(format!("a D1 row of an unexpected shape: {}", message(&e)))
    }

    fn js(p: &Param) -> JsValue {
        match p {
            // Versions and unix-ms times stay below 2^53.
            Param::Int(i) => JsValue::from_f64(*i as f64),
            Param::Text(t) => JsValue::from_str(t),
            Param::Blob(b) => js_sys::Uint8Array::from(&b[..]).into(),
            Param::Null => JsValue::NULL,
        }
    }

    /// A [`Store`] over a D1 database. See the module docs for what it guarantees.
    pub struct D1Store {
        db: D1Database,
        clock: Arc<dyn Clock>,
    }

    impl D1Store {
        /// Opens the store, applying pending migrations.
        pub async fn open(db: D1Database, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
            let store = D1Store { db, clock };
            store.migrate().await?;
            Ok(store)
        }

        fn prepare(&self, s: &Statement) -> Result<D1PreparedStatement, StoreError> {
            let args: Vec<JsValue> = s.params.iter().map(js).collect();
            self.db.prepare(s.sql).bind(&args).map_err(unavailable)
        }

        async fn batch(&self, statements: &[Statement]) -> Result<Vec<D1Result>, worker::Error> {
            let prepared = statements.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>, _>>();
            let prepared = prepared.map_err(|e| worker::Error::RustError(e.message().to_owned()))?;
            self.db.batch(prepared).await
        }

        /// Applies the migrations this build has and the database lacks; answers the version found.
        pub async fn migrate(&self) -> Result<u32, StoreError> {
            let now = sqlite::int(self.clock.now_ms());
            let mut statements = vec![Statement { sql: sqlite::CREATE_SCHEMA_TABLE, params: vec![] }];
            statements.push(Statement { sql: sqlite::SCHEMA_VERSION, params: vec![] });
            let results = self.batch(&statements).await.map_err(unavailable)?;
            let found = match results.get(1).map(|r| r.results::<SchemaRow>()) {
                Some(Ok(rows)) => rows.first().map_or(Ok(0), |r| whole(r.version))? as u32,
                Some(Err(e)) => return Err(corrupt(e)),
                None => return Err(StoreError::corrupt("D1 answered a batch with too few results")),
            };
            if found > schema::LATEST {
                return Err(StoreError::unavailable(schema::refuse(found).unwrap_or_default()));
            }
            let mut pending = Vec::new();
            for m in schema::pending(sqlite::MIGRATIONS, found) {
                pending.extend(m.statements.iter().map(|sql| Statement { sql, params: vec![] }));
                pending.push(Statement {
                    sql: sqlite::RECORD_MIGRATION,
                    params: vec![Param::Int(i64::from(m.version)), Param::Text(m.name.to_owned()), now.clone()],
                });
            }
            if !pending.is_empty() {
                self.batch(&pending).await.map_err(unavailable)?;
            }
            Ok(found)
        }

        /// Deletes expired rows (and counters past their grace), a bounded batch
        /// at a time, at most ten statements; answers how many went.
        pub async fn sweep(&self) -> Result<u64, StoreError> {
            let now = self.clock.now_ms();
            let mut removed = 0;
            for _ in 0..SWEEP_STATEMENTS {
                let statements = [
                    Statement { sql: sqlite::SWEEP_ROWS, params: vec![sqlite::int(now), Param::Int(SWEEP_BATCH)] },
                    Statement {
                        sql: sqlite::SWEEP_COUNTERS,
                        params: vec![sqlite::int(now.saturating_sub(COUNTER_GRACE_MS)), Param::Int(SWEEP_BATCH)],
                    },
                ];
                let results = self.batch(&statements).await.map_err(unavailable)?;
                let changed: u64 = results.iter().map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64).sum();
                removed += changed;
                if changed < SWEEP_BATCH as u64 {
                    break;
                }
            }
            Ok(removed)
        }
    }

    fn live_version(result: &D1Result) -> Result<Option<Versioned>, StoreError> {
        let rows = result.results::<ValueRow>().map_err(corrupt)?;
        match rows.into_iter().next() {
            Some(r) => Ok(Some(Versioned { version: whole(r.version)?, value: Bytes::from(r.value) })),
            None => Ok(None),
        }
    }

    #[async_trait::async_trait(?Send)]
    impl Store for D1Store {
        async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let results = self.batch(&sqlite::reads(&[], &keys, self.clock.now_ms())).await.map_err(unavailable)?;
            if results.len() != keys.len() {
                return Err(StoreError::corrupt("D1 answered a batch with the wrong number of results"));
            }
            results.iter().map(live_version).collect()
        }

        async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
            crate::store::refuse_list_writes(&ops)?;
            if ops.is_empty() {
                return Ok(CommitResult::Committed);
            }
            let now = self.clock.now_ms();
            let (tags, keys) = (plan::tags(&ops), plan::checked_keys(&ops));
            let results = self.batch(&sqlite::reads(&tags, &keys, now)).await.map_err(unavailable)?;
            if results.len() != tags.len() + keys.len() {
                return Err(StoreError::corrupt("D1 answered a batch with the wrong number of results"));
            }
            let mut counters = Vec::with_capacity(tags.len());
            for (tag, result) in tags.iter().zip(&results) {
                let row = result.results::<CounterJs>().map_err(corrupt)?.into_iter().next();
                let row = row.map(|c| Ok::<_, StoreError>(CounterRow { version: whole(c.version)?, expires_at: whole(c.expires_at)? }));
                counters.push((tag.clone(), row.transpose()?));
            }
            let mut live = Vec::with_capacity(keys.len());
            for (key, result) in keys.iter().zip(&results[tags.len()..]) {
                if let Some(v) = live_version(result)? {
                    live.push((key.as_str(), v.version));
                }
            }
            let current = |key: &str| live.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            let Some(plan) = plan::plan(&ops, current, &counters, now) else {
                return Ok(CommitResult::Conflict);
            };
            match self.batch(&sqlite::writes(&plan)).await {
                Ok(_) => Ok(CommitResult::Committed),
                // The guard: another commit moved a counter since the reads; nothing was written.
                Err(e) if message(&e).contains(sqlite::GUARD_CONSTRAINT) => Ok(CommitResult::Conflict),
                Err(e) => Err(unavailable(e)),
            }
        }

        fn caps(&self) -> Caps {
            Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false }
        }
    }
}
