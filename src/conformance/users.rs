//! User ids that storage keys must escape: braces, `%` and `:`.

use serde_json::{json, Map};

use super::check::{ensure, ensure_eq, expect_code, OrFail};
use super::sessions::meta;
use super::setup::{secs, Settings};
use super::store_contract::raw_get;
use super::{Checked, Subject};
use crate::engine::error::ErrorCode;
use crate::engine::ops::VerifyMode;
use crate::engine::record::{hash_tag, index_key, session_key, user_cache_key, user_tag};

/// User ids with braces, `%` and `:` (which storage keys escape inside their hash
/// tag) work end to end, and ids that differ only by an escape never share data.
pub(super) async fn user_ids_with_reserved_characters(s: &Subject) -> Checked {
    let m = s.manager(&Settings { user_cache_ttl: secs(60), ..Settings::default() })?;
    // Pairs that would collide if only braces were escaped, or if escaping were skipped.
    let ids: Vec<String> = ["{u:x}", "a}b", "}{", "a{b", "a%7Bb", "a%257Bb", "100%", "x:y:z", "s:{u:eve}:AAAAAAAAAAAAAAAAAAAAAA"]
        .iter()
        .map(|id| format!("{id}{}", s.user()))
        .collect();
    let mut tokens = Vec::new();
    for user in &ids {
        let t = m.issue(user, Map::new(), meta()).await.or_fail(&format!("issue for {user:?}"))?;
        ensure_eq!(hash_tag(&session_key(user, &t.session.sid)), user_tag(user), "the hash tag of {user:?}'s session key");
        ensure!(raw_get(s.store(), &index_key(user)).await?.is_some(), "{user:?}'s index is under its escaped key");
        let v = m.verify(&t.access_token, VerifyMode::Strict).await.or_fail(&format!("strict verify for {user:?}"))?;
        ensure_eq!(v.claims.sub(), *user, "sub");
        let t2 = m.refresh(&t.refresh_token).await.or_fail(&format!("refresh for {user:?}"))?;
        ensure_eq!(t2.session.user, *user, "the refreshed session's user");
        m.put_user_info(user, json!({ "name": user })).await.or_fail(&format!("put user info for {user:?}"))?;
        ensure!(raw_get(s.store(), &user_cache_key(user)).await?.is_some(), "{user:?}'s cached info is under its escaped key");
        tokens.push(t2);
    }
    // Each user sees exactly their own session and cache entry.
    for (user, t) in ids.iter().zip(&tokens) {
        let listed: Vec<String> = m.list(user).await.or_fail(&format!("list for {user:?}"))?.into_iter().map(|i| i.sid).collect();
        ensure_eq!(listed, vec![t.session.sid.clone()], "{user:?}'s sessions");
        let cached = m.cached_user_info(user).await.or_fail(&format!("cached info for {user:?}"))?;
        ensure_eq!(cached, Some(json!({ "name": user })), "{user:?}'s cached info");
    }
    // Revoking one touches no other.
    m.revoke(&ids[3], &tokens[3].session.sid).await.or_fail("revoke one user's session")?;
    ensure_eq!(m.revoke_all(&ids[0], None).await.or_fail("revoke all of another user's")?, 1, "sessions revoked");
    for (i, (user, t)) in ids.iter().zip(&tokens).enumerate() {
        let live = m.verify(&t.access_token, VerifyMode::Strict).await;
        if i == 0 || i == 3 {
            expect_code(live, ErrorCode::SessionRevoked, &format!("strict verify for {user:?}, revoked"))?;
        } else {
            live.or_fail(&format!("{user:?} keeps their session"))?;
        }
    }
    Ok(())
}
