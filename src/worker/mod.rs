//! The Cloudflare Worker (feature `worker`): the HTTP API of [`crate::http`] on
//! Workers KV or on Durable Objects, one object per user.
//!
//! - [`config`]: vars and secrets (signing key and API keys are secrets).
//! - [`route`]: which user's Durable Object serves a request.
//! - [`kv`]: the Workers KV store (not atomic, eventually consistent: fit for
//!   stateless verification and low-contention use).
//! - [`durable`]: the Durable Object class `UserSessions` and its SQLite store
//!   (atomic and consistent: strict rotation, reuse detection, immediate revocation).
//!
//! Config, routing and the KV rules are plain Rust, tested natively; the Worker
//! entry and the stores compile for wasm32 only. `js/worker/` holds wrangler.toml
//! and the tests that run the built Worker in workerd.

pub mod config;
pub mod durable;
pub mod kv;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod entry;

#[cfg(target_arch = "wasm32")]
pub use durable::UserSessions;
