//! The tour: issue a session, verify its access token, rotate its refresh
//! token, watch a stolen (reused) refresh token revoke the session, and revoke.
//!
//! Run: `cargo run --example quickstart`
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map};
use tollgate::{Config, ManualClock, MemoryStore, SessionManager, VerifyMode};

fn short(token: &str) -> String {
    format!("{}…({} chars)", &token[..token.len().min(24)], token.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tollgate::Error> {
    // A clock we move ourselves, so the tour can skip past the grace window without waiting.
    let clock = Arc::new(ManualClock::new(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64));
    let config = Config::builder()
        .secret("quickstart-secret-use-tollgate-keygen-in-prod")
        .kid("2026-11")
        .issuer("https://auth.example")
        .audience("api")
        .refresh_grace(Duration::from_secs(10))
        .build()?;
    let sessions = SessionManager::new(config, MemoryStore::with_clock(clock.clone()))?.with_clock(clock.clone());

    let mut claims = Map::new();
    claims.insert("role".into(), json!("editor"));
    let t = sessions.issue("alice", claims, json!({ "device": "laptop", "ip": "192.0.2.7" })).await?;
    println!("issued      session {} for alice", t.session.sid);
    println!("            access  {}", short(&t.access_token));
    println!("            refresh {}", short(&t.refresh_token));

    let v = sessions.verify(&t.access_token, VerifyMode::Stateless).await?;
    println!("verified    stateless: sub={} role={}", v.claims.sub(), v.claims.to_json()["role"]);
    let v = sessions.verify(&t.access_token, VerifyMode::Strict).await?;
    println!("verified    strict: session live, metadata {}", v.session.unwrap().metadata);

    clock.advance(2_000);
    let t2 = sessions.refresh(&t.refresh_token).await?;
    println!("refreshed   generation {} -> new refresh {}", t2.session.generation, short(&t2.refresh_token));
    let again = sessions.refresh(&t.refresh_token).await?;
    println!("repeated    within the grace window: same successor = {}", again.refresh_token == t2.refresh_token);

    clock.advance(30_000);
    match sessions.refresh(&t.refresh_token).await {
        Err(e) => println!("reuse       old refresh token after the grace window -> {} ({})", e.code(), e.message()),
        Ok(_) => println!("reuse       NOT detected (this is a bug)"),
    }
    match sessions.verify(&t2.access_token, VerifyMode::Strict).await {
        Err(e) => println!("            the thief's and the owner's tokens are dead: strict verify -> {}", e.code()),
        Ok(_) => println!("            session still live (this is a bug)"),
    }

    let t3 = sessions.issue("alice", Map::new(), json!({ "device": "phone" })).await?;
    println!("issued      a new session {} (alice signs in again)", t3.session.sid);
    println!("listed      alice has {} live session(s)", sessions.list("alice").await?.len());
    sessions.revoke("alice", &t3.session.sid).await?;
    let e = sessions.verify(&t3.access_token, VerifyMode::Strict).await.unwrap_err();
    println!("revoked     strict verify -> {} (HTTP {})", e.code(), e.http_status());
    println!("listed      alice has {} live session(s)", sessions.list("alice").await?.len());
    Ok(())
}
