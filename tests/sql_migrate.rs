//! `tollgate migrate` as a real process: on a SQLite file (runs anywhere) and
//! on fresh PostgreSQL and MariaDB databases (`scripts/sql.sh`).
#![cfg(all(feature = "server", feature = "sqlite", feature = "postgres", feature = "mysql"))]

#[path = "support/sql_env.rs"]
mod sql_env;

use std::process::Command;

use sql_env::Db;
use tollgate::store::sql::Dialect;

/// Runs `tollgate migrate args..`: exit status and everything it printed.
fn migrate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate")).arg("migrate").args(args).env_remove("TOLLGATE_STORE").output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
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
fn refusals_say_what_to_do() {
    let (ok, said) = migrate(&[]);
    assert!(!ok && said.contains("needs a database URL"), "{said}");
    let (ok, said) = migrate(&["redis://127.0.0.1:1"]);
    assert!(!ok && said.contains("sqlite:, postgres://"), "{said}");
}
