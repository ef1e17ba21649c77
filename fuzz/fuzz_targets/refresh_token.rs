//! Refresh-token parsing, and a refresh through the manager (whose store holds no session).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::engine::token::RefreshToken;
use tollgate::{ErrorCode, MemoryStore, SessionManager};
use tollgate_fuzz::{manager, runtime};

static FIXTURE: OnceLock<(tokio::runtime::Runtime, SessionManager<MemoryStore>)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (rt, sessions) = FIXTURE.get_or_init(|| (runtime(), manager(0)));
    if let Ok(token) = RefreshToken::parse(text, "tgr") {
        // One token, one text: what parses formats back to the same text (no malleable twin).
        assert_eq!(RefreshToken::format("tgr", &token.user, &token.sid, &token.secret), text);
    }
    let e = rt.block_on(sessions.refresh(text)).expect_err("a refresh passed with no session stored");
    assert!(matches!(e.code(), ErrorCode::TokenInvalid | ErrorCode::SessionNotFound | ErrorCode::BadRequest), "{e}");
});
