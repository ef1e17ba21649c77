#!/usr/bin/env bash
# Builds the npm package into pkg/: cargo (release, wasm32, feature `wasm`) ->
# wasm-bindgen (--target web; pkg/node.js, web.js and workerd.js initialize it
# per runtime) -> wasm-opt from npm's binaryen (Debian's 108 breaks
# wasm-bindgen output). Installs what it needs: the rustup target, the
# wasm-bindgen CLI of exactly the version in Cargo.lock, and js/'s locked npm
# packages. Prints the .wasm size raw and gzipped.
#
# Profile: Cargo.toml's [profile.wasm-release] (size-optimized, with the crates
# of the verify hot path at opt-level 3; its comment has the measurements), then
# wasm-opt -Os. WASM_OPT_FLAGS overrides the wasm-opt level to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown

# The CLI must match the wasm-bindgen library exactly (pinned with `=` in Cargo.toml).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (a few minutes, once)"
  # No --locked: one of its pinned dependencies is missing from the registry mirror here.
  nice -n 10 cargo install wasm-bindgen-cli --version "$want"
fi

if [ ! -x js/node_modules/.bin/wasm-opt ]; then
  (cd js && npm ci --no-audit --no-fund)
fi

nice -n 10 cargo rustc --lib --profile wasm-release --target wasm32-unknown-unknown --features wasm --crate-type cdylib
wasm-bindgen --target web --out-dir pkg --out-name tollgate \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/tollgate.wasm"
# Every feature enabled: rustc's wasm32 target emits bulk-memory, sign-ext,
# reference types and the like, which every runtime tollgate supports has.
js/node_modules/.bin/wasm-opt ${WASM_OPT_FLAGS:--Os} --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  pkg/tollgate_bg.wasm -o pkg/tollgate_bg.wasm

raw=$(stat -c %s pkg/tollgate_bg.wasm)
gz=$(gzip -9 -c pkg/tollgate_bg.wasm | wc -c)
echo "pkg/tollgate_bg.wasm: $raw bytes raw, $gz bytes gzipped (-9)"
