//! The cost of a sign-in as one user's sessions pile up: 50,000 sign-ins for
//! one user on the memory store, timed one by one, with the default per-user
//! limit (100, oldest evicted). Printed: the mean, median and 99th percentile
//! cost per sign-in over the first and the last 5,000, and their ratio.
//!
//! The peer, in the same run: the limit set to 4294967295, which is what the
//! old unbounded default did (the index grows by one entry per sign-in and
//! every sign-in rewrites it), over 5,000 sign-ins (first and last 500): it
//! grows quadratically, so 50,000 would take minutes.
//!
//! `cargo run --release --example index_growth` (`GROWTH_SIGN_INS` changes the 50,000).
#![allow(clippy::disallowed_methods)] // an example reads real time

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map};
use tollgate::engine::record::index_key;
use tollgate::{Config, ManualClock, MemoryStore, SessionManager};

const SECRET: &[u8] = b"index-growth-example-secret-of-32-bytes!";

/// Times `n` sign-ins of one user; answers each one's duration and the index's final size in bytes.
async fn sign_ins(limit: u32, n: usize) -> (Vec<Duration>, usize) {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let store = MemoryStore::with_clock(clock.clone());
    let config = Config::builder().secret(SECRET.to_vec()).max_sessions_per_user(limit).build().unwrap();
    let sessions = SessionManager::new(config, store.clone()).unwrap().with_clock(clock.clone());
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        sessions.issue("heavy-user", Map::new(), json!({ "ua": "bench" })).await.unwrap();
        times.push(start.elapsed());
        clock.advance(1);
    }
    let index_bytes = store.get_one(&index_key("heavy-user")).map(|v| v.value.len()).unwrap_or(0);
    (times, index_bytes)
}

/// (mean, median, p99) in microseconds.
fn stats(slice: &[Duration]) -> (f64, f64, f64) {
    let mut us: Vec<f64> = slice.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    (mean, us[us.len() / 2], us[us.len() * 99 / 100])
}

fn row(what: &str, slice: &[Duration]) -> f64 {
    let (mean, median, p99) = stats(slice);
    println!("| {what:<38} | {mean:>9.1} | {median:>9.1} | {p99:>9.1} |");
    mean
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("GROWTH_SIGN_INS").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let window = n / 10;
    let peer_n = n / 10;
    let peer_window = peer_n / 10;
    // A short warm-up so the first window does not pay for allocator and cache warm-up alone.
    let _ = sign_ins(100, 2_000).await;

    let (capped, capped_bytes) = sign_ins(100, n).await;
    let (unbounded, unbounded_bytes) = sign_ins(u32::MAX, peer_n).await;

    println!("cost per sign-in, one user, memory store (microseconds)\n");
    println!("| {:<38} | {:>9} | {:>9} | {:>9} |", "sign-ins", "mean", "median", "p99");
    println!("|{}|{}|{}|{}|", "-".repeat(40), "-".repeat(11), "-".repeat(11), "-".repeat(11));
    let first = row(&format!("limit 100: first {window} of {n}"), &capped[..window]);
    let last = row(&format!("limit 100: last {window} of {n}"), &capped[n - window..]);
    let peer_first = row(&format!("no limit: first {peer_window} of {peer_n}"), &unbounded[..peer_window]);
    let peer_last = row(&format!("no limit: last {peer_window} of {peer_n}"), &unbounded[peer_n - peer_window..]);
    println!();
    println!("limit 100: last / first = {:.2} (index {capped_bytes} bytes at the end)", last / first);
    println!("no limit:  last / first = {:.2} (index {unbounded_bytes} bytes at the end)", peer_last / peer_first);
}
