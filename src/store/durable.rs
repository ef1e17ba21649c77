//! The Durable Object store: one object per user, atomic and consistent.
//!
//! The object class that holds it is [`crate::worker::UserSessions`].
//!
//! The Worker forwards each request that concerns a user to that user's object
//! (`idFromName(user)`, see [`crate::worker::route`]); the object runs the whole
//! request through [`crate::http::HttpApi`] against [`DurableStore`], a store over
//! the object's own SQLite storage. One request is one operation in one place:
//!
//! - **Atomic.** A commit checks its expectations and applies its writes inside
//!   one `transactionSync`: all or nothing, and nothing runs in between.
//! - **Consistent.** The object is the only reader and writer of its user's keys,
//!   so every read sees every acknowledged write: a revoked session fails strict
//!   verification on the very next request, reuse is always detected, and the
//!   per-user limit is exact.
//! - **Serialized.** Storage calls are synchronous, so an operation's reads and
//!   its commit run without another request in between, and with HMAC keys a
//!   whole operation does. Asymmetric signing awaits WebCrypto, which lets
//!   another request in; a commit that then finds its expectations stale answers
//!   `Conflict` and the operation starts again, as on every store.
//!
//! Expired rows are swept on each commit and by an alarm set at the earliest
//! expiry, so an object whose user never returns keeps only its version counter.
//!
//! Each key must carry its object's user: its hash tag must be the whole
//! [`user_tag`](crate::engine::record::user_tag) of the object's user (the user
//! id escaped as every key builder escapes it). A request routed to the wrong
//! object fails (`store_unavailable`) instead of splitting a user's keys.

#[cfg(target_arch = "wasm32")]
pub use imp::DurableStore;

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;

    use bytes::Bytes;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use worker::{SqlStorage, SqlStorageValue, State};

    use crate::engine::record::{hash_tag, user_tag};
    use crate::engine::step::{Expect, Versioned, WriteOp};
    use crate::platform::{Clock, SystemClock};
    use crate::store::{Caps, CommitResult, Store, StoreError};

    #[wasm_bindgen]
    extern "C" {
        /// `DurableObjectStorage`, for the one method workers-rs does not bind.
        type SyncStorage;
        /// Runs the callback in a transaction; a throw rolls it back and is rethrown.
        #[wasm_bindgen(method, catch, js_name = transactionSync)]
        fn transaction_sync(this: &SyncStorage, callback: &js_sys::Function) -> Result<JsValue, JsValue>;
    }

    const SCHEMA: [&str; 3] = [
        "CREATE TABLE IF NOT EXISTS tollgate_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, \
         version INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS tollgate_kv_expiry ON tollgate_kv (expires_at)",
        "CREATE TABLE IF NOT EXISTS tollgate_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    ];

    fn sql_error(e: impl std::fmt::Display) -> StoreError {
        StoreError::unavailable(format!("Durable Object storage: {}", e.to_string().chars().take(200).collect::<String>()))
    }

    fn int(v: u64) -> SqlStorageValue {
        // Versions and unix-ms times stay far below 2^53.
        SqlStorageValue::Integer(v as i64)
    }

    /// A [`Store`] over one Durable Object's SQLite storage, for one user's keys.
    pub struct DurableStore {
        sql: SqlStorage,
        storage: JsValue,
        /// The hash tag every key must carry: `u:<escaped user>`.
        owner_tag: String,
        clock: Arc<dyn Clock>,
    }

    impl DurableStore {
        /// Opens the store, creating its tables on first use.
        pub fn open(state: &State, owner: &str) -> Result<Self, StoreError> {
            let storage = state.storage();
            let sql = storage.sql();
            for statement in SCHEMA {
                sql.exec(statement, None).map_err(sql_error)?;
            }
            Ok(DurableStore {
                sql,
                storage: AsRef::<JsValue>::as_ref(storage.as_raw()).clone(),
                owner_tag: user_tag(owner),
                clock: Arc::new(SystemClock),
            })
        }

        fn check_owner(&self, key: &str) -> Result<(), StoreError> {
            if hash_tag(key) == self.owner_tag {
                Ok(())
            } else {
                Err(StoreError::unavailable("a request reached the Durable Object of another user; this is a routing bug"))
            }
        }

        /// The live entry under `key`: value, version.
        fn read(sql: &SqlStorage, key: &str, now: u64) -> Result<Option<Versioned>, StoreError> {
            let cursor = sql
                .exec("SELECT value, version FROM tollgate_kv WHERE key = ? AND expires_at > ?", vec![key.into(), int(now)])
                .map_err(sql_error)?;
            let Some(row) = cursor.raw().next() else { return Ok(None) };
            match row.map_err(sql_error)?.as_slice() {
                [SqlStorageValue::Blob(value), SqlStorageValue::Integer(version)] => {
                    Ok(Some(Versioned { value: Bytes::from(value.clone()), version: *version as u64 }))
                }
                _ => Err(StoreError::corrupt("a Durable Object row of an unexpected shape")),
            }
        }

        /// Checks every expectation, then applies every write; runs inside `transactionSync`.
        fn apply(sql: &SqlStorage, ops: &[WriteOp], now: u64) -> Result<CommitResult, StoreError> {
            for op in ops {
                let current = match op.expect() {
                    Expect::Any => continue,
                    _ => Self::read(sql, op.key(), now)?.map(|v| v.version),
                };
                if !op.expect().admits(current) {
                    return Ok(CommitResult::Conflict);
                }
            }
            for op in ops {
                match op {
                    WriteOp::Put { key, value, expires_at, .. } if *expires_at > now => {
                        let version: i64 = sql
                            .exec(
                                "INSERT INTO tollgate_meta (name, value) VALUES ('version', 1) \
                                 ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                                None,
                            )
                            .and_then(|c| c.raw().next().unwrap_or_else(|| Err("no version".into())))
                            .map_err(sql_error)
                            .and_then(|row| match row.as_slice() {
                                [SqlStorageValue::Integer(v)] => Ok(*v),
                                _ => Err(StoreError::corrupt("the version counter is not an integer")),
                            })?;
                        sql.exec(
                            "INSERT INTO tollgate_kv (key, value, version, expires_at) VALUES (?, ?, ?, ?) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, \
                             expires_at = excluded.expires_at",
                            vec![
                                key.as_str().into(),
                                SqlStorageValue::Blob(value.to_vec()),
                                SqlStorageValue::Integer(version),
                                int(*expires_at),
                            ],
                        )
                        .map_err(sql_error)?;
                    }
                    // A put that is already expired is a delete.
                    WriteOp::Put { key, .. } | WriteOp::Delete { key, .. } => {
                        sql.exec("DELETE FROM tollgate_kv WHERE key = ?", vec![key.as_str().into()]).map_err(sql_error)?;
                    }
                    WriteOp::Append { .. } | WriteOp::Remove { .. } => crate::store::refuse_list_writes(std::slice::from_ref(op))?,
                }
            }
            sql.exec("DELETE FROM tollgate_kv WHERE expires_at <= ?", vec![int(now)]).map_err(sql_error)?;
            Ok(CommitResult::Committed)
        }

        /// The earliest expiry of what is stored, for the sweeping alarm.
        pub fn next_expiry(&self) -> Result<Option<u64>, StoreError> {
            let cursor = self.sql.exec("SELECT min(expires_at) FROM tollgate_kv", None).map_err(sql_error)?;
            match cursor.raw().next().transpose().map_err(sql_error)?.as_deref() {
                Some([SqlStorageValue::Integer(t)]) => Ok(Some(*t as u64)),
                _ => Ok(None),
            }
        }

        /// Deletes every expired row; answers the next expiry, if anything is left.
        pub fn sweep(&self) -> Result<Option<u64>, StoreError> {
            let now = self.clock.now_ms();
            self.sql.exec("DELETE FROM tollgate_kv WHERE expires_at <= ?", vec![int(now)]).map_err(sql_error)?;
            self.next_expiry()
        }
    }

    #[async_trait::async_trait(?Send)]
    impl Store for DurableStore {
        async fn get(&self, keys: Vec<String>) -> Result<Vec<Option<Versioned>>, StoreError> {
            let now = self.clock.now_ms();
            keys.iter()
                .map(|k| {
                    self.check_owner(k)?;
                    Self::read(&self.sql, k, now)
                })
                .collect()
        }

        async fn commit(&self, ops: Vec<WriteOp>) -> Result<CommitResult, StoreError> {
            crate::store::refuse_list_writes(&ops)?;
            for op in &ops {
                self.check_owner(op.key())?;
            }
            let now = self.clock.now_ms();
            let outcome: Rc<RefCell<Option<Result<CommitResult, StoreError>>>> = Rc::new(RefCell::new(None));
            let (sql, slot) = (self.sql.clone(), outcome.clone());
            let callback = Closure::once(move || -> Result<(), JsValue> {
                let result = Self::apply(&sql, &ops, now);
                let failed = result.is_err();
                *slot.borrow_mut() = Some(result);
                // Throwing rolls the transaction back.
                if failed {
                    Err(JsValue::from_str("tollgate commit failed"))
                } else {
                    Ok(())
                }
            });
            let thrown = self.storage.unchecked_ref::<SyncStorage>().transaction_sync(callback.as_ref().unchecked_ref());
            let result = outcome.borrow_mut().take();
            match (result, thrown) {
                (Some(r), _) => r,
                (None, Err(e)) => Err(sql_error(e.as_string().unwrap_or_else(|| "transactionSync failed".into()))),
                (None, Ok(_)) => Err(StoreError::unavailable("transactionSync did not run the commit")),
            }
        }

        fn caps(&self) -> Caps {
            Caps { atomic: true, consistent: true, min_ttl_ms: 0, lists: false }
        }
    }
}
