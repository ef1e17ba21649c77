//! The conformance suite and the SQL store's own checks on SQLite (a file),
//! PostgreSQL and MariaDB. SQLite runs anywhere; the server tests are
//! `#[ignore]` and run by `scripts/sql.sh`, which starts the servers (a test
//! whose server is missing fails, it never skips).
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#![allow(clippy::disallowed_methods)] // a test reads real time

mod conformance;
#[path = "support/sql_env.rs"]
mod sql_env;

use std::sync::Arc;

use bytes::Bytes;
use sql_env::Db;
use tollgate::engine::record::index_key;
use tollgate::engine::step::{Expect, WriteOp};
use tollgate::store::sql::{schema, Dialect, SqlOptions, SqlStore};
use tollgate::store::CommitResult;
use tollgate::{ErrorCode, ManualClock, Store, StoreErrorKind};

macro_rules! factory {
    ($name:ident, $label:literal, $dialect:expr) => {
        #[derive(Default)]
        struct $name;
        impl conformance::Factory for $name {
            const LABEL: &'static str = $label;
            /// The store and a second one on the same database, with a pool of its own.
            async fn make(&self, clock: Arc<ManualClock>) -> (Arc<dyn Store>, Arc<dyn Store>) {
                let db = Db::shared($dialect);
                (Arc::new(db.store(clock.clone()).await), Arc::new(db.store(clock).await))
            }
        }
    };
}
factory!(SqliteFile, "sqlite", Dialect::Sqlite);
factory!(Postgres, "postgres", Dialect::Postgres);
factory!(MariaDb, "mariadb", Dialect::MySql);

const DAY: u64 = 86_400_000;

fn put(key: &str, value: &str, expect: Expect, expires_at: u64) -> WriteOp {
    WriteOp::Put { key: key.to_owned(), value: Bytes::from(value.to_owned()), expect, expires_at }
}

async fn version(s: &SqlStore, key: &str) -> Option<u64> {
    s.get(vec![key.to_owned()]).await.unwrap().pop().unwrap().map(|v| v.version)
}

/// Read-modify-write from many tasks: every acknowledged increment is in the final value.
async fn no_lost_update(dialect: Dialect) {
    let store = Db::shared(dialect).store(Arc::new(tollgate::SystemClock)).await;
    let key = index_key(&conformance::unique_user("lost"));
    let later = conformance::real_now() + DAY;
    store.commit(vec![put(&key, "0", Expect::Absent, later)]).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let mut conflicts = 0u32;
                for _ in 0..25 {
                    loop {
                        let cur = store.get(vec![key.clone()]).await.unwrap().pop().unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                        let next = put(&key, &(n + 1).to_string(), Expect::Version(cur.version), later);
                        match store.commit(vec![next]).await.unwrap() {
                            CommitResult::Committed => break,
                            CommitResult::Conflict => conflicts += 1,
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let end = store.get(vec![key]).await.unwrap().pop().unwrap().unwrap();
    assert_eq!(&end.value[..], b"400", "every acknowledged increment counts ({conflicts} conflicts were retried)");
}

/// A commit over two users' keys (tollgate never writes one, the contract allows it): all or nothing.
async fn commit_across_tags(dialect: Dialect) {
    let store = Db::shared(dialect).store(Arc::new(tollgate::SystemClock)).await;
    let (a, b) = (index_key(&conformance::unique_user("ta")), index_key(&conformance::unique_user("tb")));
    let later = conformance::real_now() + DAY;
    store.commit(vec![put(&a, "a0", Expect::Absent, later)]).await.unwrap();
    let va = version(&store, &a).await.unwrap();
    let failing = vec![put(&b, "b1", Expect::Absent, later), put(&a, "a1", Expect::Version(va + 1), later)];
    assert_eq!(store.commit(failing).await.unwrap(), CommitResult::Conflict);
    assert_eq!((version(&store, &a).await, version(&store, &b).await), (Some(va), None), "nothing was written");
    let both = vec![put(&b, "b1", Expect::Absent, later), put(&a, "a1", Expect::Version(va), later)];
    assert_eq!(store.commit(both).await.unwrap(), CommitResult::Committed);
    assert!(version(&store, &a).await.unwrap() > va && version(&store, &b).await.is_some());
}

/// Expired rows vanish from reads at once, and the sweep reclaims them in bounded rounds.
async fn expiry_and_bounded_sweep(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let clock = Arc::new(ManualClock::new(conformance::real_now()));
    let store = db.store_with(sql_env::options(clock.clone()).sweep_batch(2)).await;
    let t0 = conformance::real_now();
    let keys: Vec<String> = (0..35).map(|i| index_key(&format!("sweep-{i}"))).collect();
    for k in &keys {
        store.commit(vec![put(k, "short", Expect::Absent, t0 + 1_000)]).await.unwrap();
    }
    let long = index_key("sweep-long");
    store.commit(vec![put(&long, "long", Expect::Absent, t0 + 10_000)]).await.unwrap();
    let old_version = version(&store, &keys[0]).await.unwrap();
    clock.set(t0 + 1_000);
    assert_eq!(version(&store, &keys[0]).await, None, "invisible the moment it expires, before any sweep");
    assert!(version(&store, &long).await.is_some());
    // Ten statements of two rows per round: 20 rows, then the other 15.
    assert_eq!(store.sweep().await.unwrap(), 20);
    assert_eq!(store.sweep().await.unwrap(), 15);
    assert_eq!(store.sweep().await.unwrap(), 0);
    // Counters stay an hour past their last value, then go; versions still rise.
    clock.set(t0 + 10_000 + 3_600_000);
    let mut swept = 0;
    loop {
        let round = store.sweep().await.unwrap();
        assert!(round <= 10 * (2 + 2), "one round is at most ten statements of two rows and two counters");
        swept += round;
        if round == 0 {
            break;
        }
    }
    assert_eq!(swept, 1 + 36, "the long row and the 36 counters");
    store.commit(vec![put(&keys[0], "again", Expect::Absent, t0 + 2 * DAY)]).await.unwrap();
    assert!(version(&store, &keys[0]).await.unwrap() > old_version, "a recreated key never gets an old version");
    drop(store);
    db.drop_now().await;
}

/// The background task sweeps with no call coming in (its clock is the test's).
async fn background_sweeper(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let clock = Arc::new(ManualClock::new(conformance::real_now()));
    let every = std::time::Duration::from_secs(1);
    let store = db.store_with(sql_env::options(clock.clone()).sweep_interval(Some(every))).await;
    let key = index_key("background");
    store.commit(vec![put(&key, "x", Expect::Absent, clock_now(&clock) + 1)]).await.unwrap();
    clock.advance(1);
    assert_eq!(store_rows(&db).await, 1, "expired, but held until a sweep");
    // Waits for the task's next tick (the expiry itself was the test's clock moving).
    let started = std::time::Instant::now();
    while store_rows(&db).await > 0 && started.elapsed() < every * 5 {
        tokio::time::sleep(every / 4).await;
    }
    assert_eq!(store_rows(&db).await, 0, "the sweeper did not run");
    drop(store);
    db.drop_now().await;
}

fn clock_now(c: &ManualClock) -> u64 {
    use tollgate::Clock;
    c.now_ms()
}

async fn store_rows(db: &Db) -> i64 {
    use sqlx::Connection;
    let sql = "SELECT CAST(count(*) AS SIGNED) FROM tollgate_kv";
    match db.dialect {
        Dialect::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM tollgate_kv").fetch_one(&mut c).await.unwrap()
        }
        Dialect::MySql => {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Dialect::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM tollgate_kv").fetch_one(&mut c).await.unwrap()
        }
    }
}

/// Migrations apply once, concurrently, and a schema from the future is refused.
async fn migrations(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new(conformance::real_now()));
    // Checking only: an empty database is refused with what to do.
    let err = SqlStore::connect_with(&db.url, sql_env::options(clock.clone()).migrate(false)).await.unwrap_err();
    assert_eq!((err.code(), err.message().contains("tollgate migrate")), (ErrorCode::ConfigInvalid, true), "{err}");
    let (a, b) = tokio::join!(db.store(clock.clone()), db.store(clock.clone()));
    assert_eq!(a.schema_version().await.unwrap(), schema::LATEST);
    assert_eq!(b.migrate().await.unwrap(), schema::LATEST, "nothing left to apply");
    db.store_with(sql_env::options(clock.clone()).migrate(false)).await;
    db.execute(&format!("INSERT INTO tollgate_schema (version, name, applied_at) VALUES ({}, 'future', 0)", schema::LATEST + 1)).await;
    let err = SqlStore::connect_with(&db.url, sql_env::options(clock.clone())).await.unwrap_err();
    assert_eq!((err.code(), err.message().contains("upgrade tollgate")), (ErrorCode::ConfigInvalid, true), "{err}");
    drop((a, b));
    db.drop_now().await;
}

/// A row tollgate did not write reads as `store_corrupt`, never as a value.
async fn corrupt_rows(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let store = db.store(Arc::new(tollgate::SystemClock)).await;
    let key_column = if dialect == Dialect::MySql { "`key`" } else { "key" };
    let value = if dialect == Dialect::Postgres { "'\\x00'::bytea" } else { "'x'" };
    db.execute(&format!(
        "INSERT INTO tollgate_kv ({key_column}, tag, version, expires_at, value) VALUES ('i:{{u:bad}}', 'u:bad', -5, {}, {value})",
        conformance::real_now() + DAY
    ))
    .await;
    let err = store.get(vec![index_key("bad")]).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    drop(store);
    db.drop_now().await;
}

/// A wrong password is refused with a message that does not repeat it.
async fn secrets_stay_out_of_errors(dialect: Dialect) {
    let url = Db::shared(dialect).url;
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let user = scheme_user.rsplit_once(':').unwrap().0;
    let bad = format!("{user}:not-the-password-7731@{rest}");
    let err = SqlStore::connect_with(&bad, SqlOptions::default().sweep_interval(None)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreUnavailable);
    assert!(!err.message().contains("not-the-password-7731"), "{err}");
    let store = Db::shared(dialect).store(Arc::new(tollgate::SystemClock)).await;
    assert!(!format!("{store:?}").contains("tollgate-test-password"));
}

/// D1's commit runs [`sqlite::reads`] and [`sqlite::writes`] as two batches; here
/// they run natively on the same SQL: a write batch planned from a counter that
/// has moved since is refused whole by the guard row's check constraint.
async fn d1_guard_refuses_a_moved_counter() {
    use sqlx::{Arguments, Connection};
    use tollgate::store::sql::{plan, sqlite};
    let db = Db::fresh(Dialect::Sqlite).await;
    let store = db.store(Arc::new(tollgate::SystemClock)).await;
    let (key, later) = (index_key("guarded"), conformance::real_now() + DAY);
    store.commit(vec![put(&key, "first", Expect::Absent, later)]).await.unwrap();
    let first = version(&store, &key).await.unwrap();
    // Planned from a read that saw no counter and no key: stale, since the commit above.
    let ops = vec![put(&key, "second", Expect::Absent, later)];
    let stale = plan::plan(&ops, |_| None, &[("u:guarded".to_owned(), None)], conformance::real_now()).unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let mut refused = None;
    for statement in sqlite::writes(&stale) {
        let mut args = sqlx::sqlite::SqliteArguments::default();
        for p in &statement.params {
            match p {
                sqlite::Param::Int(i) => args.add(*i).unwrap(),
                sqlite::Param::Text(t) => args.add(t.clone()).unwrap(),
                sqlite::Param::Blob(b) => args.add(b.to_vec()).unwrap(),
                sqlite::Param::Null => args.add(Option::<i64>::None).unwrap(),
            }
        }
        if let Err(e) = sqlx::query_with(statement.sql, args).execute(&mut *tx).await {
            refused = Some(e.to_string());
            break;
        }
    }
    drop(tx);
    let refused = refused.expect("the stale batch was refused");
    assert!(refused.contains(sqlite::GUARD_CONSTRAINT), "{refused}");
    assert_eq!(version(&store, &key).await, Some(first), "nothing of the batch was written");
}

macro_rules! server_checks {
    ($dialect:expr $(, #[$attr:meta])*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn no_lost_update() {
            super::no_lost_update($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn reuses_an_application_pool() {
            super::reuses_an_application_pool($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn commit_across_tags() {
            super::commit_across_tags($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn expiry_and_bounded_sweep() {
            super::expiry_and_bounded_sweep($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn background_sweeper() {
            super::background_sweeper($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn migrations() {
            super::migrations($dialect).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn corrupt_rows() {
            super::corrupt_rows($dialect).await
        }
    };
}

/// A store over the application's own pool: it migrates, works, and leaves the pool usable.
async fn reuses_an_application_pool(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let options = || sql_env::options(Arc::new(tollgate::SystemClock)).max_connections(2);
    let store = match dialect {
        Dialect::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();
            let store = SqlStore::from_pg_pool(pool.clone(), options()).await.unwrap();
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
            store
        }
        Dialect::MySql => {
            let pool = sqlx::mysql::MySqlPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();
            let store = SqlStore::from_mysql_pool(pool.clone(), options()).await.unwrap();
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
            store
        }
        Dialect::Sqlite => {
            let connect = db.url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(2).connect_with(connect).await.unwrap();
            let store = SqlStore::from_sqlite_pool(pool.clone(), options()).await.unwrap();
            sqlx::query("SELECT 1").execute(&pool).await.unwrap();
            store
        }
    };
    let key = index_key("pooled");
    for i in 0..20 {
        let expect = if i == 0 { Expect::Absent } else { Expect::Version(version(&store, &key).await.unwrap()) };
        let r = store.commit(vec![put(&key, "v", expect, conformance::real_now() + DAY)]).await.unwrap();
        assert_eq!(r, CommitResult::Committed);
    }
    assert_eq!(store.schema_version().await.unwrap(), schema::LATEST);
    drop(store);
    db.drop_now().await;
}

/// A store whose connections wait between calls may be dropped after its runtime is gone.
fn dropped_outside_the_runtime(dialect: Dialect) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let store = Db::shared(dialect).store(Arc::new(tollgate::SystemClock)).await;
        store.get(vec![index_key("after-runtime")]).await.unwrap();
        store
    });
    drop(rt);
    drop(store);
}

mod sqlite {
    use super::*;
    conformance_suite!(SqliteFile);
    server_checks!(Dialect::Sqlite);
    #[test]
    fn dropped_outside_the_runtime() {
        super::dropped_outside_the_runtime(Dialect::Sqlite)
    }
    #[tokio::test]
    async fn d1_guard_refuses_a_moved_counter() {
        super::d1_guard_refuses_a_moved_counter().await
    }
}

mod postgres {
    use super::*;
    #[test]
    #[ignore]
    fn dropped_outside_the_runtime() {
        super::dropped_outside_the_runtime(Dialect::Postgres)
    }
    conformance_suite!(Postgres, #[ignore]);
    server_checks!(Dialect::Postgres, #[ignore]);
    #[tokio::test]
    #[ignore]
    async fn secrets_stay_out_of_errors() {
        super::secrets_stay_out_of_errors(Dialect::Postgres).await
    }
}

mod mariadb {
    use super::*;
    #[test]
    #[ignore]
    fn dropped_outside_the_runtime() {
        super::dropped_outside_the_runtime(Dialect::MySql)
    }
    conformance_suite!(MariaDb, #[ignore]);
    server_checks!(Dialect::MySql, #[ignore]);
    #[tokio::test]
    #[ignore]
    async fn secrets_stay_out_of_errors() {
        super::secrets_stay_out_of_errors(Dialect::MySql).await
    }
}
