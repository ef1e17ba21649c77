#!/usr/bin/env bash
# Runs every test of tollgate. Installs what it needs first (idempotent).
# Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Rust: core, memory store conformance suite, doc tests, the Worker's config and routing"
cargo test --locked --features server,worker

step "Rust: clippy, warnings are errors"
cargo clippy --locked --all-targets --features server,worker -- -D warnings

step "WebAssembly: the library compiles for wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown >/dev/null
cargo check --locked --lib --target wasm32-unknown-unknown

step "Quickstart runs"
cargo run --locked -q --example quickstart >/dev/null

step "Cloudflare Worker: build, then test in workerd (KV and Durable Objects)"
bash scripts/test-worker.sh

echo
echo "all tollgate tests passed"
