#!/usr/bin/env bash
# Builds the Cloudflare Worker into js/worker/build/ (index.js, index_bg.wasm),
# offline: worker-build 0.8.7 -> cargo (wasm32, feature `worker`, profile
# wasm-release, the npm package's) -> wasm-bindgen -> wasm-opt -> esbuild.
#
# Installs what it needs, once: the rustup target, worker-build 0.8.7, the
# wasm-bindgen CLI of exactly the version in Cargo.lock, and js/worker's locked
# npm packages (wrangler 4.86.0, which runs on Node 20 and brings esbuild and
# workerd; binaryen 132 for wasm-opt). worker-build would download wasm-bindgen,
# wasm-opt and esbuild from the internet: the *_BIN variables point it at these.
#
# Prints the bundle's size raw and gzipped against Workers' 3 MB compressed limit.
#
# `scripts/build-worker.sh conformance` makes the Worker's test build instead, into
# js/worker/build-conformance/: features worker,conformance (the conformance suite's test-only
# routes), profile wasm-test, no wasm-opt. Never deploy it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n==> %s\n' "$*"; }

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown

if [ "$(worker-build --version 2>/dev/null || true)" != "0.8.7" ]; then
  step "installing worker-build 0.8.7 (a few minutes, once)"
  nice -n 10 cargo install worker-build --version 0.8.7
fi

# The CLI must match the wasm-bindgen library exactly (pinned with `=` in Cargo.toml).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  step "installing wasm-bindgen-cli $want (a few minutes, once)"
  # No --locked: one of its pinned dependencies is missing from the registry mirror here.
  nice -n 10 cargo install wasm-bindgen-cli --version "$want"
fi

nm=js/worker/node_modules
if [ ! -x "$nm/.bin/wrangler" ] || [ ! -x "$nm/.bin/wasm-opt" ] || [ ! -x "$nm/@esbuild/linux-x64/bin/esbuild" ]; then
  step "installing js/worker's npm packages (wrangler, binaryen)"
  (cd js/worker && npm ci --no-audit --no-fund)
fi

export WASM_BINDGEN_BIN
WASM_BINDGEN_BIN=$(command -v wasm-bindgen)
export WASM_OPT_BIN="$root/$nm/.bin/wasm-opt"
export ESBUILD_BIN="$root/$nm/@esbuild/linux-x64/bin/esbuild"

if [ "${1:-}" = conformance ]; then
  step "worker-build (profile wasm-test, features worker,conformance): the test build"
  nice -n 10 worker-build --profile wasm-test --no-opt --out-dir js/worker/build-conformance -- --features worker,conformance --locked
  exit 0
fi

step "worker-build (profile wasm-release, feature worker)"
nice -n 10 worker-build --profile wasm-release --out-dir js/worker/build -- --features worker --locked

wasm=js/worker/build/index_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
js_raw=$(stat -c %s js/worker/build/index.js)
total_gz=$(cat "$wasm" js/worker/build/index.js | gzip -9 | wc -c)
echo
echo "index_bg.wasm: $raw bytes raw, $gz bytes gzipped"
echo "index.js:      $js_raw bytes raw"
echo "bundle:        $((raw + js_raw)) bytes raw, $total_gz bytes gzipped (Workers' limit after compression: 3 MB Free plan, 10 MB Paid)"
