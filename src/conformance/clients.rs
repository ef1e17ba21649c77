//! What a second client on the same data sees the moment a write is acknowledged:
//! the guarantee of a consistent store (a Sentinel client may read a demoted
//! master until it hears of a failover; Workers KV shows a write elsewhere
//! within about 60 s).

use serde_json::Map;

use super::check::{ensure, expect_code, OrFail};
use super::sessions::meta;
use super::setup::{secs, Settings};
use super::{Checked, Subject};
use crate::engine::error::ErrorCode;
use crate::engine::ops::VerifyMode;

pub(super) async fn revocation_seen_at_once_by_another_client(s: &Subject) -> Checked {
    let settings = Settings::default();
    let (here, there) = (s.manager(&settings)?, s.peer_manager(&settings)?);
    let user = s.user();
    let t = here.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    there.verify(&t.access_token, VerifyMode::Strict).await.or_fail("strict verify by the other client")?;
    here.revoke(user, &t.session.sid).await.or_fail("revoke")?;
    expect_code(there.verify(&t.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "the other client's strict verify")?;
    expect_code(there.refresh(&t.refresh_token).await, ErrorCode::SessionRevoked, "the other client's refresh")?;
    ensure!(there.list(user).await.or_fail("the other client's list")?.is_empty(), "the other client lists a revoked session");
    Ok(())
}

pub(super) async fn reuse_seen_at_once_by_another_client(s: &Subject) -> Checked {
    let settings = Settings { refresh_grace: secs(10), ..Settings::default() };
    let (here, there) = (s.manager(&settings)?, s.peer_manager(&settings)?);
    let t0 = here.issue(s.user(), Map::new(), meta()).await.or_fail("issue")?;
    let t1 = here.refresh(&t0.refresh_token).await.or_fail("refresh")?;
    s.advance(10_001);
    expect_code(there.refresh(&t0.refresh_token).await, ErrorCode::RefreshTokenReused, "the rotated token at the other client")?;
    expect_code(here.verify(&t1.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "strict verify of the successor")
}
