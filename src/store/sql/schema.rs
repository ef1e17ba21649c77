//! The schema, as numbered migrations per dialect, and the checks around them.
//!
//! Every dialect holds the same three tables (names and columns; each
//! dialect's own types):
//!
//! | table | columns | holds |
//! |---|---|---|
//! | `tollgate_kv` | `key` (primary key), `tag`, `version`, `expires_at`, `value` | one stored value per key; `tag` is the key's hash tag (`u:<user>`), a column to shard or partition by user |
//! | `tollgate_versions` | `tag` (primary key), `version`, `expires_at` | each tag's version counter, moved by every commit on the tag; kept until every value it versioned has expired |
//! | `tollgate_schema` | `version` (primary key), `name`, `applied_at` | the migrations applied |
//!
//! SQLite and D1 add `tollgate_guard`, one row whose check constraint fails a
//! D1 batch when a counter moved since it was read (see [`super::sqlite`]).
//! Times are unix milliseconds; versions are positive 64-bit integers.
//!
//! Migrations are applied on connect (unless [`super::SqlOptions::migrate`] is
//! off) or by `tollgate migrate`, under a lock (an advisory lock on PostgreSQL,
//! `GET_LOCK` on MySQL, the write lock on SQLite), each at most once. A
//! database whose schema is newer than this build is refused, not downgraded.

/// One schema change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    /// Run in order; each is idempotent (`IF NOT EXISTS`), so a migration cut
    /// short (MySQL commits each DDL statement on its own) is simply run again.
    pub statements: &'static [&'static str],
}

/// The schema version this build writes and reads.
pub const LATEST: u32 = 1;

/// The name under which PostgreSQL's advisory lock and MySQL's `GET_LOCK` serialize migrations.
pub const LOCK_NAME: &str = "tollgate_migrate";

/// Why a schema version cannot be used.
pub fn refuse(found: u32) -> Option<String> {
    if found > LATEST {
        Some(format!(
            "the database holds tollgate schema version {found}, newer than this build knows ({LATEST}); upgrade tollgate, never downgrade a schema"
        ))
    } else if found < LATEST {
        Some(format!("the database holds tollgate schema version {found}, this build needs {LATEST}; run `tollgate migrate`"))
    } else {
        None
    }
}

/// The migrations not yet applied at `found`, in order.
pub fn pending(all: &'static [Migration], found: u32) -> impl Iterator<Item = &'static Migration> {
    all.iter().filter(move |m| m.version > found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_reaches_the_latest_version_in_order() {
        #[allow(unused_mut)] // the server dialects join with their features
        let mut lists: Vec<&[Migration]> = vec![super::super::sqlite::MIGRATIONS];
        #[cfg(all(feature = "postgres", not(target_arch = "wasm32")))]
        lists.push(super::super::postgres::MIGRATIONS);
        #[cfg(all(feature = "mysql", not(target_arch = "wasm32")))]
        lists.push(super::super::mysql::MIGRATIONS);
        for list in lists {
            let versions: Vec<u32> = list.iter().map(|m| m.version).collect();
            assert_eq!(versions, (1..=LATEST).collect::<Vec<_>>());
            assert!(list.iter().all(|m| !m.statements.is_empty()));
        }
    }

    #[test]
    fn newer_and_older_schemas_are_refused_with_what_to_do() {
        assert_eq!(refuse(LATEST), None);
        assert!(refuse(LATEST + 1).unwrap().contains("upgrade tollgate"));
        assert!(refuse(0).unwrap().contains("tollgate migrate"));
        assert_eq!(pending(super::super::sqlite::MIGRATIONS, 0).count(), LATEST as usize);
        assert_eq!(pending(super::super::sqlite::MIGRATIONS, LATEST).count(), 0);
    }
}
