//! # tollgate
//!
//! JWT sessions with atomic refresh rotation, reuse detection, hashed refresh
//! tokens, per-user limits and revocation, from one sans-IO core that runs
//! natively, in WebAssembly and in Cloudflare Workers.
//!
//! ```
//! use serde_json::{json, Map};
//! use tollgate::{Config, MemoryStore, SessionManager, VerifyMode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate::Error> {
//! let config = Config::builder()
//!     .secret("a secret of at least thirty-two bytes!")
//!     .issuer("https://auth.example")
//!     .build()?;
//! let sessions = SessionManager::new(config, MemoryStore::new())?;
//!
//! let tokens = sessions.issue("user-42", Map::new(), json!({ "device": "laptop" })).await?;
//! let verified = sessions.verify(&tokens.access_token, VerifyMode::Strict).await?;
//! assert_eq!(verified.claims.sub(), "user-42");
//!
//! let next = sessions.refresh(&tokens.refresh_token).await?;
//! sessions.revoke("user-42", &next.session.sid).await?;
//! let err = sessions.verify(&next.access_token, VerifyMode::Strict).await.unwrap_err();
//! assert_eq!(err.code().as_str(), "session_revoked");
//! # Ok(()) }
//! ```
//!
//! The layout: [`engine`] (the sans-IO core) is pure (no IO, clock or RNG); [`store`] holds the Store
//! contract, its adapters and the driver loop; [`manager`] is the async API.

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod cookies;
pub mod crypto;
pub mod engine;
pub mod http;
pub mod manager;
pub mod metrics;
pub mod platform;
#[cfg(feature = "server")]
pub mod server;
pub mod settings;
pub mod store;
#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod wasm;
#[cfg(feature = "worker")]
pub mod worker;

pub use crate::crypto::{KeyMaterial, KeySpec};
pub use crate::engine::audit::{AuditEvent, AuditKind};
pub use crate::engine::client::{ClientInfo, TrustedProxy};
pub use crate::engine::error::{Error, ErrorCode};
pub use crate::engine::jwt::AccessClaims;
pub use crate::engine::keys::{Alg, Key, KeySet};
pub use crate::engine::ops::{ListedSession, SessionInfo, Tokens, Verified, VerifyMode};
pub use crate::engine::policy::{LimitPolicy, Policy};
pub use crate::manager::{AuditHook, SessionManager};
pub use crate::platform::{Clock, ManualClock, SystemClock};
pub use crate::settings::{Config, ConfigBuilder, Settings};
pub use crate::store::{Caps, MemoryStore, Store, StoreError, StoreErrorKind};

/// The README's code blocks run as doc tests, so its examples cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
