//! Sessions, one client at a time: the flow, rotation and reuse, expiry, the
//! sliding touch, metadata, the user cache, and bad input.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::check::{ensure, ensure_eq, expect_code, OrFail};
use super::setup::{secs, Settings, ISSUER};
use super::store_contract::{raw_get, SID_A};
use super::{Checked, Failure, Subject};
use crate::engine::error::{Error, ErrorCode};
use crate::engine::ops::VerifyMode;
use crate::engine::record::{index_key, session_key};
use crate::store::Store;

pub(super) const MIN_MS: u64 = 60_000;

pub(super) fn meta() -> Value {
    json!({ "device": "test" })
}

/// What is stored for the user: the index and the given sessions, to check that nothing changed.
pub(super) async fn user_state(store: &dyn Store, user: &str, sids: &[&str]) -> Result<Vec<Option<Bytes>>, Failure> {
    let mut keys = vec![index_key(user)];
    keys.extend(sids.iter().map(|sid| session_key(user, sid)));
    let got = store.get(keys).await.or_fail("get of the user's keys")?;
    Ok(got.into_iter().map(|v| v.map(|v| v.value)).collect())
}

pub(super) async fn full_flow(s: &Subject) -> Checked {
    let m = s.manager(&Settings::default())?;
    let user = s.user();
    let mut claims = Map::new();
    claims.insert("role".into(), json!("admin"));
    let t = m.issue(user, claims, meta()).await.or_fail("issue")?;
    ensure!(t.refresh_token.starts_with("tgr_"), "the refresh token starts with its prefix");
    let v = m.verify(&t.access_token, VerifyMode::Stateless).await.or_fail("stateless verify")?;
    ensure_eq!(v.claims.sub(), user, "sub");
    ensure_eq!(v.claims.sid(), Some(t.session.sid.as_str()), "sid");
    ensure_eq!(v.claims.iss(), Some(ISSUER), "iss");
    ensure_eq!(v.claims.to_json()["role"], json!("admin"), "a custom claim");
    ensure!(v.session.is_none(), "stateless verify reads no session");
    let v = m.verify(&t.access_token, VerifyMode::Strict).await.or_fail("strict verify")?;
    ensure_eq!(v.session.map(|s| s.metadata), Some(meta()), "the session's metadata");

    s.advance(1000);
    let t2 = m.refresh(&t.refresh_token).await.or_fail("refresh")?;
    ensure!(t2.refresh_token != t.refresh_token, "a refresh hands out a new refresh token");
    ensure_eq!(t2.session.sid, t.session.sid, "the session id across a refresh");
    ensure_eq!(t2.session.generation, 1, "the generation after one refresh");
    let v2 = m.verify(&t2.access_token, VerifyMode::Strict).await.or_fail("strict verify after a refresh")?;
    ensure_eq!(v2.claims.to_json()["role"], json!("admin"), "a custom claim after a refresh");

    let listed = m.list(user).await.or_fail("list")?;
    ensure_eq!(listed.iter().map(|s| s.sid.as_str()).collect::<Vec<_>>(), vec![t.session.sid.as_str()], "the listed sessions");

    m.revoke(user, &t.session.sid).await.or_fail("revoke")?;
    expect_code(m.verify(&t2.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "strict verify after revoke")?;
    expect_code(m.refresh(&t2.refresh_token).await, ErrorCode::SessionRevoked, "refresh after revoke")?;
    // Stateless verification cannot see revocation: the token stays valid until it expires.
    m.verify(&t2.access_token, VerifyMode::Stateless).await.or_fail("stateless verify after revoke")?;
    ensure!(m.list(user).await.or_fail("list after revoke")?.is_empty(), "no session listed after revoke");
    m.revoke(user, &t.session.sid).await.or_fail("revoking a revoked session")?;
    Ok(())
}

pub(super) async fn rotation_grace_and_reuse(s: &Subject) -> Checked {
    let m = s.manager(&Settings { refresh_grace: secs(10), ..Settings::default() })?;
    let user = s.user();
    let t0 = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    let t1 = m.refresh(&t0.refresh_token).await.or_fail("refresh")?;
    s.advance(5_000);
    let again = m.refresh(&t0.refresh_token).await.or_fail("a repeated refresh within the grace window")?;
    ensure!(again.refresh_token == t1.refresh_token, "a repeat within the grace window answers the same successor");
    // The chain moves on; a token two links back, still in its window, answers the head.
    let t2 = m.refresh(&t1.refresh_token).await.or_fail("refresh of the successor")?;
    let head = m.refresh(&t0.refresh_token).await.or_fail("a token two links back, within its window")?;
    ensure!(head.refresh_token == t2.refresh_token, "a token two links back answers the head of the chain");
    s.advance(10_001);
    expect_code(m.refresh(&t0.refresh_token).await, ErrorCode::RefreshTokenReused, "a rotated token past the grace window")?;
    expect_code(m.refresh(&t2.refresh_token).await, ErrorCode::SessionRevoked, "the head after reuse")?;
    expect_code(m.verify(&t2.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "strict verify after reuse")?;
    ensure!(m.list(user).await.or_fail("list after reuse")?.is_empty(), "no session listed after reuse");
    Ok(())
}

pub(super) async fn reuse_detected_long_after_rotation(s: &Subject) -> Checked {
    let m = s.manager(&Settings::default())?;
    let t0 = m.issue(s.user(), Map::new(), meta()).await.or_fail("issue")?;
    let mut current = t0.refresh_token;
    let mut stolen = String::new();
    for i in 0..20 {
        s.advance(11 * MIN_MS);
        if i == 2 {
            stolen = current.clone();
        }
        current = m.refresh(&current).await.or_fail(&format!("refresh {i}"))?.refresh_token;
    }
    expect_code(m.refresh(&stolen).await, ErrorCode::RefreshTokenReused, "a token rotated 17 links and 3 hours ago")
}

pub(super) async fn forged_refresh_secret_changes_nothing(s: &Subject) -> Checked {
    let m = s.manager(&Settings::default())?;
    let user = s.user();
    let t = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    let before = user_state(s.store(), user, &[&t.session.sid]).await?;
    // Same locator, a different (valid-looking) secret: invalid, and it must not revoke.
    let (locator, _) = t.refresh_token.rsplit_once('.').or_fail("the refresh token's locator")?;
    let forged = format!("{locator}.{}", "A".repeat(43));
    expect_code(m.refresh(&forged).await, ErrorCode::TokenInvalid, "a forged secret for a real session")?;
    ensure!(user_state(s.store(), user, &[&t.session.sid]).await? == before, "a forged refresh changed what is stored");
    m.refresh(&t.refresh_token).await.or_fail("the real token after a forged one")?;
    Ok(())
}

pub(super) async fn idle_and_absolute_expiry(s: &Subject) -> Checked {
    let settings = Settings {
        idle_ttl: secs(3600),
        absolute_ttl: secs(3 * 3600),
        access_ttl: secs(600),
        touch_interval: secs(60),
        ..Settings::default()
    };
    let m = s.manager(&settings)?;
    let user = s.user();
    let t = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    // Refreshing slides the idle expiry.
    s.advance(50 * MIN_MS);
    let mut current = m.refresh(&t.refresh_token).await.or_fail("refresh at 50 min")?;
    s.advance(50 * MIN_MS);
    current = m.refresh(&current.refresh_token).await.or_fail("refresh at 100 min")?;
    s.advance(50 * MIN_MS);
    current = m.refresh(&current.refresh_token).await.or_fail("refresh at 150 min")?;
    // 150 minutes in: alive thanks to sliding, but the absolute cap (180 min) holds.
    let capped = current.session.absolute_expires_at.min(s.now() + 60 * MIN_MS);
    ensure_eq!(current.session.idle_expires_at, capped, "the idle expiry at 150 min");
    s.advance(31 * MIN_MS);
    expect_code(m.refresh(&current.refresh_token).await, ErrorCode::SessionExpired, "refresh past the absolute expiry")?;

    // An untouched session dies after its idle lifetime.
    let t = m.issue(user, Map::new(), meta()).await.or_fail("a second issue")?;
    s.advance(61 * MIN_MS);
    expect_code(m.refresh(&t.refresh_token).await, ErrorCode::SessionExpired, "refresh past the idle expiry")?;
    ensure!(m.list(user).await.or_fail("list")?.is_empty(), "no expired session listed");
    Ok(())
}

pub(super) async fn access_token_expiry(s: &Subject) -> Checked {
    let m = s.manager(&Settings { access_ttl: secs(60), leeway: secs(5), ..Settings::default() })?;
    let t = m.issue(s.user(), Map::new(), meta()).await.or_fail("issue")?;
    s.advance(64_000);
    m.verify(&t.access_token, VerifyMode::Stateless).await.or_fail("stateless verify inside the leeway")?;
    s.advance(2_000);
    expect_code(m.verify(&t.access_token, VerifyMode::Stateless).await, ErrorCode::TokenExpired, "stateless verify past the leeway")?;
    expect_code(m.verify(&t.access_token, VerifyMode::Strict).await, ErrorCode::TokenExpired, "strict verify past the leeway")
}

pub(super) async fn touch_writes_at_most_once_per_interval(s: &Subject) -> Checked {
    let m = s.manager(&Settings { touch_interval: secs(60), ..Settings::default() })?;
    let user = s.user();
    let t = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    let key = session_key(user, &t.session.sid);
    let version = |v: Option<(Bytes, u64)>| v.map(|(_, version)| version);
    let v0 = version(raw_get(s.store(), &key).await?).or_fail("the session record")?;
    for i in 0..5 {
        s.advance(10_000);
        m.verify(&t.access_token, VerifyMode::Strict).await.or_fail(&format!("strict verify {i}"))?;
    }
    ensure_eq!(version(raw_get(s.store(), &key).await?), Some(v0), "the record's version after verifies within the interval");
    s.advance(10_000);
    let v = m.verify(&t.access_token, VerifyMode::Strict).await.or_fail("strict verify once the interval has passed")?;
    let v1 = version(raw_get(s.store(), &key).await?).or_fail("the touched record")?;
    ensure!(v1 != v0, "one write once the interval has passed");
    ensure_eq!(v.session.map(|s| s.last_seen), Some(s.now()), "last seen after the touch");
    m.verify(&t.access_token, VerifyMode::Strict).await.or_fail("strict verify right after the touch")?;
    ensure_eq!(version(raw_get(s.store(), &key).await?), Some(v1), "the record's version right after the touch");
    Ok(())
}

pub(super) async fn revoke_all_keeps_current(s: &Subject) -> Checked {
    let m = s.manager(&Settings::default())?;
    let user = s.user();
    let a = m.issue(user, Map::new(), meta()).await.or_fail("issue a")?;
    let b = m.issue(user, Map::new(), meta()).await.or_fail("issue b")?;
    let c = m.issue(user, Map::new(), meta()).await.or_fail("issue c")?;
    ensure_eq!(m.revoke_all(user, Some(&b.session.sid)).await.or_fail("revoke all but b")?, 2, "sessions revoked");
    for t in [&a, &c] {
        expect_code(m.verify(&t.access_token, VerifyMode::Strict).await, ErrorCode::SessionRevoked, "strict verify of a revoked session")?;
    }
    m.verify(&b.access_token, VerifyMode::Strict).await.or_fail("strict verify of the kept session")?;
    ensure_eq!(m.revoke_all(user, None).await.or_fail("revoke all")?, 1, "sessions revoked");
    ensure!(m.list(user).await.or_fail("list")?.is_empty(), "no session listed after revoking all");
    ensure_eq!(m.revoke_all(user, None).await.or_fail("revoke all again")?, 0, "sessions revoked the second time");
    Ok(())
}

pub(super) async fn metadata_update(s: &Subject) -> Checked {
    let m = s.manager(&Settings { max_metadata_bytes: Some(1024), ..Settings::default() })?;
    let user = s.user();
    let t = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    let phone = json!({ "device": "phone" });
    let info = m.update_metadata(user, &t.session.sid, phone.clone()).await.or_fail("update metadata")?;
    ensure_eq!(info.metadata, phone, "the answered metadata");
    let listed = m.list(user).await.or_fail("list")?;
    ensure_eq!(listed.first().map(|s| &s.metadata), Some(&phone), "the listed metadata");
    let before = user_state(s.store(), user, &[&t.session.sid]).await?;
    let huge = json!({ "x": "y".repeat(2000) });
    expect_code(m.update_metadata(user, &t.session.sid, huge).await, ErrorCode::BadRequest, "metadata over the limit")?;
    ensure!(user_state(s.store(), user, &[&t.session.sid]).await? == before, "refused metadata changed what is stored");
    expect_code(m.update_metadata(user, SID_A, json!({})).await, ErrorCode::SessionNotFound, "metadata of an unknown session")
}

pub(super) async fn user_cache(s: &Subject) -> Checked {
    let m = s.manager(&Settings { user_cache_ttl: secs(60), ..Settings::default() })?;
    let user = s.user();
    let calls = Rc::new(Cell::new(0u32));
    let load = |calls: Rc<Cell<u32>>| {
        move |u: String| async move {
            calls.set(calls.get() + 1);
            Ok(json!({ "name": u }))
        }
    };
    let v = m.user_info(user, load(calls.clone())).await.or_fail("user info on a miss")?;
    ensure_eq!(v, json!({ "name": user }), "the loaded info");
    m.user_info(user, load(calls.clone())).await.or_fail("user info on a hit")?;
    ensure_eq!(calls.get(), 1, "loader calls after a hit");
    s.advance(61_000);
    m.user_info(user, load(calls.clone())).await.or_fail("user info after expiry")?;
    ensure_eq!(calls.get(), 2, "loader calls after the cached info expired");
    m.put_user_info(user, json!({ "name": "put" })).await.or_fail("put user info")?;
    ensure_eq!(m.cached_user_info(user).await.or_fail("cached info")?, Some(json!({ "name": "put" })), "the info put");
    let n = m.refresh_user_info(&[user], |u| load(calls.clone())(u)).await.or_fail("refresh user info")?;
    ensure_eq!(n, 1, "users refreshed");
    ensure_eq!(m.cached_user_info(user).await.or_fail("cached info")?, Some(json!({ "name": user })), "the refreshed info");
    m.delete_user_info(user).await.or_fail("delete user info")?;
    ensure_eq!(m.cached_user_info(user).await.or_fail("cached info")?, None, "the deleted info");
    // A failing loader surfaces its error and caches nothing.
    let failed = m.user_info(user, |_| async { Err(Error::new(ErrorCode::StoreUnavailable, "directory down")) }).await;
    expect_code(failed, ErrorCode::StoreUnavailable, "a failing loader")?;
    ensure_eq!(m.cached_user_info(user).await.or_fail("cached info")?, None, "the info after a failing loader");
    Ok(())
}

pub(super) async fn bad_input_changes_nothing(s: &Subject) -> Checked {
    let m = s.manager(&Settings { max_metadata_bytes: Some(4096), ..Settings::default() })?;
    let user = s.user();
    ensure!(m.list(user).await.or_fail("list before any session")?.is_empty(), "no session listed for a new user");
    let t = m.issue(user, Map::new(), meta()).await.or_fail("issue")?;
    let before = user_state(s.store(), user, &[&t.session.sid]).await?;
    let mut reserved = Map::new();
    reserved.insert("sub".into(), json!("someone-else"));
    let rt = &t.refresh_token;
    use ErrorCode::{BadRequest, SessionNotFound, TokenInvalid};
    expect_code(m.issue("", Map::new(), meta()).await, BadRequest, "issue for an empty user id")?;
    expect_code(m.issue(&"x".repeat(300), Map::new(), meta()).await, BadRequest, "issue for a 300-byte user id")?;
    expect_code(m.issue("a\nb", Map::new(), meta()).await, BadRequest, "issue for a user id with a newline")?;
    expect_code(m.issue(user, reserved, meta()).await, BadRequest, "issue with a reserved claim")?;
    expect_code(m.issue(user, Map::new(), json!({ "huge": "x".repeat(1 << 20) })).await, BadRequest, "issue with 1 MiB of metadata")?;
    for (token, what) in [
        (String::new(), "an empty refresh token"),
        ("tgr_".into(), "a bare prefix"),
        ("tgr_abc.def".into(), "a short garbage token"),
        ("tgr_".repeat(2000), "an 8000-byte token"),
        (rt.replace("tgr_", "xyz_"), "another prefix"),
        (rt[..rt.len() - 2].to_owned(), "a truncated token"),
        (format!("{rt}!"), "a token with a trailing character"),
    ] {
        expect_code(m.refresh(&token).await, TokenInvalid, &format!("refresh with {what}"))?;
    }
    expect_code(m.revoke(user, "not-a-session").await, SessionNotFound, "revoke of a malformed session id")?;
    expect_code(m.revoke(user, SID_A).await, SessionNotFound, "revoke of an unknown session")?;
    expect_code(m.revoke("", SID_A).await, BadRequest, "revoke for an empty user id")?;
    let huge = json!({ "huge": "x".repeat(5000) });
    expect_code(m.update_metadata(user, &t.session.sid, huge).await, BadRequest, "metadata over the limit")?;
    ensure!(user_state(s.store(), user, &[&t.session.sid]).await? == before, "bad input changed what is stored");
    m.refresh(&t.refresh_token).await.or_fail("the session after bad input")?;
    Ok(())
}
