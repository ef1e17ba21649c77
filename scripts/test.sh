#!/usr/bin/env bash
# Runs every test of tollgate. Installs what it needs first (idempotent).
# Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Rust: core, memory store conformance suite, doc tests"
cargo test --locked --features server

step "Rust: clippy, warnings are errors"
cargo clippy --locked --all-targets --features server,redis-tls -- -D warnings

step "Redis: conformance suite on one server, Sentinel and Cluster, then fault tests (real servers on loopback)"
bash scripts/redis.sh

step "WebAssembly: the library compiles for wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown >/dev/null
cargo check --locked --lib --target wasm32-unknown-unknown

step "Quickstart runs"
cargo run --locked -q --example quickstart >/dev/null

echo
echo "all tollgate tests passed"
