//! SQL stores: SQLite, PostgreSQL and MySQL/MariaDB natively (sqlx; features
//! `sqlite`, `postgres`, `mysql`), and the statements the D1 store shares.
//!
//! [`SqlStore::connect`] takes a URL (`sqlite:<path>`, `postgres://..`,
//! `mysql://..`); an application that already has a pool hands it over
//! instead (`SqlStore::from_pg_pool`, `from_mysql_pool`, `from_sqlite_pool`).
//!
//! # What it guarantees
//!
//! - **Atomic.** Every expectation is checked before anything is written, and
//!   a failed one writes nothing (`Conflict`). Every commit moves the version
//!   counter of its tag (the user), in the same transaction as its writes, and
//!   that counter row is where two commits on one user meet:
//!   - PostgreSQL: one statement reads the counter and the versions; a second
//!     statement moves the counter only if it still holds what was read, and
//!     writes the rows only then (a conditional `UPDATE`, which waits for a
//!     racing commit and then sees its version). Two round trips, no
//!     `BEGIN`/`COMMIT`.
//!   - MySQL / MariaDB: a transaction that locks the counter row first
//!     (`SELECT .. FOR UPDATE`), then reads the versions, at `READ COMMITTED`,
//!     set by the store for each transaction: the reads see every commit
//!     before it.
//!   - SQLite: one transaction under the database's write lock (`BEGIN IMMEDIATE`).
//!
//!   No update is lost at the isolation level the store uses nor above it: a
//!   deadlock or serialization failure reported by the database rolled
//!   everything back, and answers `Conflict`.
//! - **Consistent.** Reads go to the one database every writer writes to: a
//!   read sees every acknowledged commit. (Point a store at a read replica and
//!   this no longer holds; tollgate never does so itself.)
//! - **Versions never repeat for a key**, even after a delete: they come from
//!   the tag's counter row (`tollgate_versions`), `max(last + 1, now in µs)`,
//!   written in the commit's transaction. The counter is kept until every value
//!   it versioned has expired, plus an hour.
//! - **Expiry.** A row is never returned once its `expires_at` has passed (by
//!   the store's clock: every read filters on it), and a put whose expiry has
//!   passed is a delete. A background task ([`SqlOptions::sweep_interval`],
//!   every minute by default) deletes expired rows in bounded batches
//!   ([`SqlOptions::sweep_batch`] rows per statement, at most ten statements per
//!   round), skipping rows a commit holds.
//! - **Durable** as the database is: PostgreSQL and MySQL/MariaDB acknowledge a
//!   commit once their log holds it (their defaults); SQLite runs in WAL mode
//!   with `synchronous = FULL`.
//!
//! # Round trips per call
//!
//! | call | PostgreSQL | MySQL / MariaDB | SQLite (in-process) |
//! |---|---|---|---|
//! | get | 1 | 1 | one statement per key |
//! | commit | 2: read, conditional write | 5 to 7: begin, lock, read, put, delete, counter, commit (a new tag: 2 more) | one transaction |
//!
//! # Failures
//!
//! Every call has a deadline ([`SqlOptions::operation_timeout`], 3 s), which
//! also bounds waiting for a pooled connection. When the database is down,
//! calls answer `store_unavailable` within it; broken connections are dropped
//! by the pool and new ones made when the database is back, with nothing to
//! do by hand. A commit whose answer was lost (the connection broke during
//! `COMMIT`) answers `store_unavailable`: it may or may not have been applied.
//! Errors name the database's error code and, except for data and constraint
//! errors (whose messages may quote values), its message; never a URL,
//! password or stored value.
//!
//! # Schema
//!
//! See [`schema`]: three tables, migrations applied on connect or by
//! `tollgate migrate`.

pub mod plan;
pub mod schema;
pub mod sqlite;

#[cfg(all(feature = "mysql", not(target_arch = "wasm32")))]
pub mod mysql;
#[cfg(all(feature = "postgres", not(target_arch = "wasm32")))]
pub mod postgres;

#[cfg(all(any(feature = "sqlite", feature = "postgres", feature = "mysql"), not(target_arch = "wasm32")))]
mod conns;
#[cfg(all(any(feature = "sqlite", feature = "postgres", feature = "mysql"), not(target_arch = "wasm32")))]
mod store;
#[cfg(all(any(feature = "sqlite", feature = "postgres", feature = "mysql"), not(target_arch = "wasm32")))]
pub(crate) use store::{to_int, version_of, SqlError};
#[cfg(all(any(feature = "sqlite", feature = "postgres", feature = "mysql"), not(target_arch = "wasm32")))]
pub use store::{Dialect, SqlOptions, SqlStore};
