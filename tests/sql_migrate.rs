//! `tollgate migrate` as a real process: on a SQLite file (runs anywhere) and
//! on fresh PostgreSQL and MariaDB databases (`scripts/sql.sh`).
#![cfg(all(feature = "server", feature = "sqlite", feature = "postgres", feature = "mysql"))]

#[path = "support/sql_env.rs"]
mod sql_env;

use std::process::Command;

use sql_env::Db;
use tollgate::store::sql::Dialect;

/// Runs `tollgate migrate args..` with the settings `vars`: exit status and everything it printed.
fn migrate_with(args: &[&str], vars: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("migrate").args(args).env_remove("TOLLGATE_STORE").env_remove("TOLLGATE_DATA_DIR").envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn migrate(args: &[&str]) -> (bool, String) {
    migrate_with(args, &[])
}

async fn check_then_apply(dialect: Dialect) {
    let db = Db::fresh(dialect).await;
    let (ok, said) = migrate(&["--check", &db.url]);
    assert!(!ok && said.contains("tollgate migrate"), "an empty database is behind: {said}");
    let (ok, said) = migrate(&[&db.url]);
    assert!(ok && said.contains("up to date"), "{said}");
    assert!(said.contains("applied tollgate schema migrations"), "says what it applied: {said}");
    let (ok, said) = migrate(&["--check", &db.url]);
    assert!(ok && said.contains("up to date"), "{said}");
    let (ok, said) = migrate(&[&db.url]);
    assert!(ok && !said.contains("applied"), "nothing left to apply: {said}");
    assert!(!said.contains("tollgate-test-password"), "the password never shows: {said}");
    db.drop_now().await;
}

#[tokio::test]
async fn sqlite_file() {
    check_then_apply(Dialect::Sqlite).await;
}

#[tokio::test]
#[ignore]
async fn postgres() {
    check_then_apply(Dialect::Postgres).await;
}

#[tokio::test]
#[ignore]
async fn mariadb() {
    check_then_apply(Dialect::MySql).await;
}

#[test]
fn without_a_url_it_migrates_the_store_serve_would_use() {
    let dir = std::env::temp_dir().join(format!("tollgate-migrate-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_str().unwrap();
    let (ok, said) = migrate_with(&[], &[("TOLLGATE_DATA_DIR", data_dir)]);
    assert!(ok && said.contains("sqlite schema version"), "serve's default SQLite file: {said}");
    assert!(dir.join("sessions.db").is_file());
    let (ok, said) = migrate_with(&["--check"], &[("TOLLGATE_DATA_DIR", data_dir)]);
    assert!(ok && said.contains("up to date"), "{said}");
    let other = format!("sqlite:{data_dir}/other.db");
    let (ok, said) = migrate_with(&[], &[("TOLLGATE_STORE", &other), ("TOLLGATE_DATA_DIR", data_dir)]);
    assert!(ok && dir.join("other.db").is_file(), "TOLLGATE_STORE wins: {said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refusals_say_what_to_do() {
    let (ok, said) = migrate_with(&[], &[("TOLLGATE_STORE", "memory")]);
    assert!(!ok && said.contains("migrate works on a SQL store"), "{said}");
    let (ok, said) = migrate(&["redis://127.0.0.1:1"]);
    assert!(!ok && said.contains("migrate works on a SQL store"), "{said}");
    let (ok, said) = migrate(&["postgres://tg:tollgate-test-password@"]);
    assert!(!ok && said.contains("without a host") && !said.contains("tollgate-test-password"), "{said}");
}
