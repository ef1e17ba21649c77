//! The sans-IO core: no async, no clock, no RNG, no network.
//!
//! Every operation is a state machine ([`step::Operation`]) constructed with the
//! current time and, where needed, random bytes. It answers effects
//! ([`step::StoreCmd`], [`step::CryptoCmd`]) for its driver to carry out and
//! is handed the replies. This module compiles for `wasm32-unknown-unknown` with
//! no features and imports nothing from the host.

pub mod audit;
pub mod b64;
pub mod client;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod list;
pub mod ops;
pub mod policy;
pub mod record;
mod record_bytes;
pub mod refresh_key;
pub mod step;
pub mod token;
