//! The per-user session limit, one client at a time (the racing version is in [`super::races`]).

use serde_json::Map;

use super::check::{ensure, ensure_eq, expect_code, OrFail};
use super::sessions::{meta, user_state, MIN_MS};
use super::setup::{secs, Settings};
use super::{Checked, Subject};
use crate::engine::error::ErrorCode;
use crate::engine::ops::VerifyMode;
use crate::engine::policy::LimitPolicy;

pub(super) async fn limit_evicts_oldest(s: &Subject) -> Checked {
    let m = s.manager(&Settings { limit: Some((2, LimitPolicy::EvictOldest)), ..Settings::default() })?;
    let user = s.user();
    let a = m.issue(user, Map::new(), meta()).await.or_fail("issue a")?;
    s.advance(1);
    let b = m.issue(user, Map::new(), meta()).await.or_fail("issue b")?;
    s.advance(1);
    let c = m.issue(user, Map::new(), meta()).await.or_fail("issue c")?;
    let sids: Vec<String> = m.list(user).await.or_fail("list")?.into_iter().map(|s| s.sid).collect();
    ensure_eq!(sids, vec![b.session.sid.clone(), c.session.sid.clone()], "the sessions left under a limit of 2");
    expect_code(m.verify(&a.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "strict verify of the evicted session")
}

pub(super) async fn single_session_mode(s: &Subject) -> Checked {
    let m = s.manager(&Settings { limit: Some((1, LimitPolicy::EvictOldest)), ..Settings::default() })?;
    let user = s.user();
    let a = m.issue(user, Map::new(), meta()).await.or_fail("issue a")?;
    let b = m.issue(user, Map::new(), meta()).await.or_fail("issue b")?;
    expect_code(m.refresh(&a.refresh_token).await, ErrorCode::SessionRevoked, "refresh of the replaced session")?;
    m.refresh(&b.refresh_token).await.or_fail("refresh of the new session")?;
    ensure_eq!(m.list(user).await.or_fail("list")?.len(), 1, "sessions listed in single-session mode");
    Ok(())
}

pub(super) async fn limit_refuses(s: &Subject) -> Checked {
    let m = s.manager(&Settings { limit: Some((2, LimitPolicy::Refuse)), idle_ttl: secs(3600), ..Settings::default() })?;
    let user = s.user();
    let a = m.issue(user, Map::new(), meta()).await.or_fail("issue a")?;
    m.issue(user, Map::new(), meta()).await.or_fail("issue b")?;
    let before = user_state(s.store(), user, &[]).await?;
    expect_code(m.issue(user, Map::new(), meta()).await, ErrorCode::SessionLimit, "a third issue under a limit of 2")?;
    ensure!(user_state(s.store(), user, &[]).await? == before, "a refused issue changed the user's index");
    m.revoke(user, &a.session.sid).await.or_fail("revoke a")?;
    m.issue(user, Map::new(), meta()).await.or_fail("an issue after a revoke made room")?;
    // Idled-out sessions do not count, even though the index still names them.
    s.advance(3601 * 1000);
    m.issue(user, Map::new(), meta()).await.or_fail("an issue once the others idled out")?;
    m.issue(user, Map::new(), meta()).await.or_fail("a second issue once the others idled out")?;
    ensure_eq!(m.list(user).await.or_fail("list")?.len(), 2, "sessions listed");
    Ok(())
}

pub(super) async fn limit_counts_touched_sessions_alive(s: &Subject) -> Checked {
    let settings = Settings { limit: Some((1, LimitPolicy::Refuse)), idle_ttl: secs(3600), access_ttl: secs(3000), ..Settings::default() };
    let m = s.manager(&settings)?;
    let user = s.user();
    let a = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    // Kept alive by a touch past its original idle expiry (the index's hint is stale).
    s.advance(50 * MIN_MS);
    m.verify(&a.access_token, VerifyMode::Strict).await.or_fail("strict verify that touches")?;
    s.advance(20 * MIN_MS);
    expect_code(m.issue(user, Map::new(), meta()).await, ErrorCode::SessionLimit, "an issue while the touched session lives")
}
