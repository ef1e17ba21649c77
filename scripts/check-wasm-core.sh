#!/usr/bin/env bash
# Builds the crate for wasm32 with no features and fails if the module imports
# anything from `env` (the host). The crate is linked as a cdylib with
# --export-all so every function it compiles stays in the module and is checked,
# not only what a particular entry point reaches. Needs node (for its WebAssembly
# parser: no extra tool to install).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
nice -n 10 cargo rustc --lib --target wasm32-unknown-unknown --crate-type cdylib -- -C link-arg=--export-all
node scripts/wasm-imports.mjs "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/debug/tollgate.wasm"
