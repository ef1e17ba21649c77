//! Access-token verify, stateless and strict, through the manager: the HMAC fast path and the
//! asymmetric keys (ES256, EdDSA, RS256) in the native driver. Byte 0 picks the signing key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::{MemoryStore, SessionManager, VerifyMode};
use tollgate_fuzz::{manager, runtime, KEYS};

struct Fixture {
    rt: tokio::runtime::Runtime,
    managers: Vec<SessionManager<MemoryStore>>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(|| Fixture { rt: runtime(), managers: (0..KEYS.len() as u8).map(manager).collect() });
    let Some((&choice, token)) = data.split_first() else { return };
    let Ok(token) = std::str::from_utf8(token) else { return };
    let sessions = &f.managers[choice as usize % f.managers.len()];
    if let Ok(v) = f.rt.block_on(sessions.verify(token, VerifyMode::Stateless)) {
        let _ = v.claims.to_json();
    }
    // The fuzz store holds no session, so no token, however crafted, passes a strict verify.
    let strict = f.rt.block_on(sessions.verify(token, VerifyMode::Strict));
    assert!(strict.is_err(), "a strict verify passed with no session stored");
});
