#!/usr/bin/env bash
# Runs every test of tollgate. Installs what it needs first (idempotent).
# Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Rust: core, memory store conformance suite, doc tests, the Worker's config and routing"
conformance_log=$(mktemp)
trap 'rm -f "$conformance_log"' EXIT
tests=0
TG_TEST_CONFORMANCE_LOG=$conformance_log cargo test --locked --features server,otel,worker,axum || tests=$?
bash scripts/conformance-summary.sh "$conformance_log"
[ "$tests" = 0 ]

step "Rust: formatting (rustfmt.toml) and clippy, warnings are errors"
cargo fmt --check
cargo clippy --locked --all-targets --features server,otel,redis-tls,worker,sqlite,postgres,mysql,axum -- -D warnings

step "Supply chain, offline: RustSec advisories, licenses, sources, duplicate versions (deny.toml)"
bash scripts/audit.sh

step "Fuzzing (cargo-fuzz, nightly): JWT verify, refresh tokens, records, HTTP, configuration; FUZZ_SECONDS each"
bash scripts/fuzz.sh

step "Redis: conformance suite on one server, Sentinel and Cluster, then fault tests (real servers on loopback)"
bash scripts/redis.sh

step "tollgate serve against docs/openapi.json: schemathesis on the memory store and on Redis (no 5xx, no response violating the document)"
bash scripts/schemathesis.sh

step "SQL: conformance suite and the store's own checks on SQLite, PostgreSQL and MariaDB, then fault tests (real servers on loopback)"
bash scripts/sql.sh

step "WebAssembly and npm: the core imports nothing from env (check-wasm-core.sh), the package is built,
      its wasm-bindgen tests pass, and the packed tarball is used from Node (jose interop, JS store over Redis)"
SKIP_BENCH=1 bash scripts/test-js.sh

step "Packaging: cargo package (built), npm pack's file list, a static musl binary that serves, the systemd unit"
bash scripts/package.sh

step "Rust and Node on one Redis, a single server and a Cluster: each step of a session done by the other runtime"
bash scripts/cross-runtime.sh

step "Quickstart runs"
cargo run --locked -q --example quickstart >/dev/null

step "Cloudflare Worker: build, then test in workerd (KV, Durable Objects and D1)"
bash scripts/test-worker.sh

step "Example apps in headless Chromium: the login page against Hono in Node, Hono in workerd and the axum example"
bash scripts/e2e.sh

echo
echo "all tollgate tests passed"
