//! How a case reports a check that did not hold: a [`Failure`] that names it
//! and where it is, returned, never a panic (a panic in wasm would take the
//! whole module down with it).

use std::fmt::Display;
use std::panic::Location;

use crate::engine::error::{Error, ErrorCode};

/// The check that did not hold, and where it is in the suite's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    check: String,
    at: String,
}

impl Failure {
    /// A failure of `check`, located at the caller.
    #[track_caller]
    pub fn new(check: impl Into<String>) -> Failure {
        let at = Location::caller();
        Failure { check: check.into(), at: format!("{}:{}", at.file(), at.line()) }
    }

    /// What did not hold.
    pub fn check(&self) -> &str {
        &self.check
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at {})", self.check, self.at)
    }
}

/// `ensure!(condition, "what must hold", args..)`: fails the case when the condition is false.
macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err($crate::conformance::Failure::new(format!($($what)+)));
        }
    };
}

/// `ensure_eq!(left, right, "what", args..)`: fails the case, showing both sides, when they differ.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($what:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err($crate::conformance::Failure::new(format!("{}: {:?}, expected {:?}", format!($($what)+), left, right)));
                }
            }
        }
    };
}

pub(crate) use {ensure, ensure_eq};

/// Turns an error or a missing value into the failure of the check `what`.
pub(crate) trait OrFail<T> {
    fn or_fail(self, what: &str) -> Result<T, Failure>;
}

impl<T, E: Display> OrFail<T> for Result<T, E> {
    #[track_caller]
    fn or_fail(self, what: &str) -> Result<T, Failure> {
        match self {
            Ok(v) => Ok(v),
            Err(e) => Err(Failure::new(format!("{what}: {e}"))),
        }
    }
}

impl<T> OrFail<T> for Option<T> {
    #[track_caller]
    fn or_fail(self, what: &str) -> Result<T, Failure> {
        match self {
            Some(v) => Ok(v),
            None => Err(Failure::new(format!("{what}: nothing there"))),
        }
    }
}

/// Checks that `result` failed with `code`.
#[track_caller]
pub(crate) fn expect_code<T>(result: Result<T, Error>, code: ErrorCode, what: &str) -> Result<(), Failure> {
    match result {
        Err(e) if e.code() == code => Ok(()),
        Err(e) => Err(Failure::new(format!("{what}: answered {} ({}), expected {code}", e.code(), e.message()))),
        Ok(_) => Err(Failure::new(format!("{what}: succeeded, expected {code}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing() -> Result<(), Failure> {
        ensure_eq!(1 + 1, 3, "arithmetic on {}", "this target");
        Ok(())
    }

    #[test]
    fn a_failure_names_the_check_and_where_it_is() {
        let f = failing().unwrap_err();
        assert_eq!(f.check(), "arithmetic on this target: 2, expected 3");
        assert!(f.to_string().contains("src/conformance/check.rs:"), "{f}");
        let e = expect_code(Ok::<(), Error>(()), ErrorCode::SessionRevoked, "strict verify").unwrap_err();
        assert_eq!(e.check(), "strict verify: succeeded, expected session_revoked");
        assert!(expect_code::<()>(Err(Error::new(ErrorCode::SessionRevoked, "gone")), ErrorCode::SessionRevoked, "x").is_ok());
    }
}
