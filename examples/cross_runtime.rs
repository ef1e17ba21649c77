//! One step of a session, done by a Rust process on a Redis a Node process
//! shares: `js/test/cross-runtime.mjs` (run by `scripts/cross-runtime.sh`)
//! calls this once per step and reads the JSON line it prints.
//!
//! ```text
//! cross_runtime issue <user>
//! cross_runtime verify <access token>          (strict)
//! cross_runtime refresh <refresh token>
//! cross_runtime revoke <user> <sid>
//! cross_runtime list <user>
//! cross_runtime index <user>                   (the sids the stored index lists, read raw)
//! cross_runtime issue-from <user> <ip> <user agent>    (issue with a client)
//! cross_runtime list-marking <user> <current sid>      (sessions with ip, user_agent, current)
//! cross_runtime race <refresh token> <tasks> <unix ms>   (all tasks refresh at that instant)
//! ```
//!
//! Redis: `CROSS_REDIS_URL` (one server) or `CROSS_REDIS_CLUSTER` (nodes,
//! comma-separated); keys under `CROSS_PREFIX`; HS256 key `x1` with the secret
//! `CROSS_SECRET`, issuer `cross-runtime`, audience `app`: the Node side's settings.
//! A failed step prints `{"ok":false,"code":..}` and exits 0: the code is the answer.
#![allow(clippy::disallowed_methods)] // an example reads real time

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tollgate::store::redis::{RedisConfig, RedisStore};
use tollgate::{ClientInfo, Config, Error, SessionManager, Store, Tokens, VerifyMode};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/cross-runtime.sh sets it)"))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn tokens_json(t: &Tokens) -> Value {
    json!({
        "ok": true,
        "accessToken": t.access_token,
        "refreshToken": t.refresh_token,
        "sid": t.session.sid,
        "user": t.session.user,
        "generation": t.session.generation,
    })
}

fn failed(e: &Error) -> Value {
    json!({ "ok": false, "code": e.code().as_str() })
}

async fn sessions() -> Arc<SessionManager<RedisStore>> {
    let config = match std::env::var("CROSS_REDIS_CLUSTER") {
        Ok(nodes) => RedisConfig::cluster(nodes.split(',')).expect("CROSS_REDIS_CLUSTER lists host:port"),
        Err(_) => RedisConfig::from_url(&var("CROSS_REDIS_URL")).expect("CROSS_REDIS_URL is a redis:// URL"),
    };
    let store = RedisStore::connect(config.key_prefix(var("CROSS_PREFIX"))).await.expect("Redis answers");
    let config = Config::builder().secret(var("CROSS_SECRET")).kid("x1").issuer("cross-runtime").audience("app").build().unwrap();
    Arc::new(SessionManager::new(config, store).unwrap())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("missing argument {i}; see the module docs"));
    let s = sessions().await;
    let out = match arg(0).as_str() {
        "issue" => s.issue(&arg(1), Map::new(), json!({ "runtime": "rust" })).await.map_or_else(|e| failed(&e), |t| tokens_json(&t)),
        "verify" => match s.verify(&arg(1), VerifyMode::Strict).await {
            Ok(v) => json!({ "ok": true, "sub": v.claims.sub(), "sid": v.session.map(|s| s.sid) }),
            Err(e) => failed(&e),
        },
        "refresh" => s.refresh(&arg(1)).await.map_or_else(|e| failed(&e), |t| tokens_json(&t)),
        "revoke" => s.revoke(&arg(1), &arg(2)).await.map_or_else(|e| failed(&e), |()| json!({ "ok": true })),
        "list" => match s.list(&arg(1)).await {
            Ok(list) => json!({ "ok": true, "sids": list.iter().map(|s| s.sid.clone()).collect::<Vec<_>>() }),
            Err(e) => failed(&e),
        },
        "issue-from" => {
            let client = ClientInfo::new(arg(2).parse().ok(), Some(&arg(3)));
            s.issue_from(&arg(1), Map::new(), json!({ "runtime": "rust" }), &client).await.map_or_else(|e| failed(&e), |t| tokens_json(&t))
        }
        "list-marking" => match s.list_marking(&arg(1), Some(&arg(2))).await {
            Ok(list) => json!({ "ok": true, "sessions": list }),
            Err(e) => failed(&e),
        },
        "race" => {
            let (token, tasks, at): (String, usize, u64) = (arg(1), arg(2).parse().unwrap(), arg(3).parse().unwrap());
            tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await;
            let started = now_ms();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let (s, token) = (s.clone(), token.clone());
                    tokio::spawn(async move { s.refresh(&token).await.map_or_else(|e| failed(&e), |t| tokens_json(&t)) })
                })
                .collect();
            let mut results = Vec::with_capacity(tasks);
            for h in handles {
                results.push(h.await.unwrap());
            }
            json!({ "ok": true, "startedAt": started, "results": results })
        }
        "index" => {
            // The index as stored, not filtered through the records as `list` is: what a
            // removal (the one-trip revoke) left in it.
            let slot = s.store().get(vec![tollgate::engine::record::index_key(&arg(1))]).await.expect("Redis answers").pop().flatten();
            match tollgate::engine::record::UserIndex::decode(slot.as_ref().map(|v| &v.value[..])) {
                Ok(index) => {
                    json!({ "ok": true, "present": slot.is_some(), "sids": index.sessions.iter().map(|e| e.sid.clone()).collect::<Vec<_>>() })
                }
                Err(e) => failed(&e),
            }
        }
        other => panic!("unknown step {other}; see the module docs"),
    };
    println!("{out}");
}
