//! The Cloudflare Worker (feature `worker`): the HTTP API of [`crate::http`] on
//! Workers KV or on Durable Objects, one object per user. The stores themselves
//! live with every other store: [`crate::store::kv`] and [`crate::store::durable`].
//!
//! - [`config`]: vars and secrets (signing key and API keys are secrets).
//! - [`route`]: which user's Durable Object serves a request.
//! - [`user_sessions`]: the Durable Object class `UserSessions`.
//!
//! Config and routing are plain Rust, tested natively; the Worker entry and the
//! object class compile for wasm32 only. `js/worker/` holds wrangler.toml and the
//! tests that run the built Worker in workerd.

pub mod config;
pub mod route;
pub mod user_sessions;

#[cfg(target_arch = "wasm32")]
mod entry;

#[cfg(target_arch = "wasm32")]
pub use user_sessions::UserSessions;
