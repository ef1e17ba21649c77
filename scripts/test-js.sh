#!/usr/bin/env bash
# Everything on the JavaScript side, from a fresh clone; exits non-zero on any failure:
#   1. js/'s locked npm packages; the package built by scripts/build-npm.sh
#      (which installs the rustup target and the pinned wasm-bindgen CLI)
#   2. the core's wasm32 build imports nothing from env (scripts/check-wasm-core.sh)
#   3. the facade's wasm-bindgen tests in Node
#   4. the package packed (npm pack), installed from the tarball into a fresh
#      folder, its types checked there (tsc), the conformance suite run there on
#      stores written in JS (through a test build of the wasm with the `conformance`
#      feature, never packed), and the node:test suites, with a redis-server of our
#      own on 127.0.0.1 (installed with apt if missing); among them the package
#      in workerd (Miniflare) and in the Vercel Edge emulator (npm edge-runtime,
#      bundled by esbuild with the edge-light condition, cross-realm init)
#   5. the bench against jose (SKIP_BENCH=1 skips it; BENCH_MS shortens it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${TG_TEST_REDIS_PORT:-16479}

step() { printf '\n== %s\n' "$*"; }

step "npm packages (js/package-lock.json)"
(cd js && npm ci --no-audit --no-fund)

step "build the npm package"
scripts/build-npm.sh

step "the package has no test hooks"
if grep -q runConformanceCase pkg/tollgate.js; then
  echo "pkg/ exports the conformance suite: build it with scripts/build-npm.sh" >&2
  exit 1
fi

step "conformance test build of the wasm (features wasm,conformance; never packed)"
nice -n 10 cargo rustc --locked --lib --profile wasm-test --target wasm32-unknown-unknown --features wasm,conformance --crate-type cdylib
wasm-bindgen --target nodejs --out-dir js/.work/conformance --out-name tollgate_conformance \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-test/tollgate.wasm"
echo '{ "type": "commonjs" }' >js/.work/conformance/package.json # --target nodejs writes CommonJS

step "the core imports nothing from env"
scripts/check-wasm-core.sh

step "wasm-bindgen tests (Node)"
nice -n 10 cargo test --target wasm32-unknown-unknown --features wasm --test wasm

step "types against pkg/index.d.ts"
(cd js && node_modules/.bin/tsc --noEmit -p .)

work=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step "redis-server on 127.0.0.1:$port"
if ! command -v redis-server >/dev/null; then
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools
fi
redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$work/redis.pid" \
  --dir "$work" --save '' --appendonly no --logfile "$work/redis.log"
for _ in $(seq 50); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.1
done
redis_pid=$(cat "$work/redis.pid")
redis-cli -p "$port" ping

step "npm pack, install the tarball into a fresh folder"
(cd pkg && npm pack --pack-destination "$work" --silent)
tarball=$(ls "$work"/tollgate-*.tgz)
app="$work/app"
mkdir -p "$app"
cp js/package.json js/package-lock.json "$app/"
(cd "$app" && npm ci --no-audit --no-fund --silent && npm install --no-save --no-audit --no-fund --silent "$tarball")
cp -r js/test js/types-check.ts "$app/"
sed 's/,\?\s*"paths": {[^}]*}//' js/tsconfig.json > "$app/tsconfig.json"
ls "$app/node_modules/tollgate"

step "types against the installed package"
(cd "$app" && node_modules/.bin/tsc --noEmit -p .)

step "conformance suite on stores written in JavaScript (Node)"
(cd "$app" && TG_TEST_REDIS_PORT=$port TG_TEST_CONFORMANCE_MODULE="$root/js/.work/conformance/tollgate_conformance.js" node test/conformance.mjs)

step "node:test suites in the fresh folder"
(cd "$app" && TG_TEST_REDIS_PORT=$port node --test test/*.test.mjs)

if [ "${SKIP_BENCH:-0}" != "1" ]; then
  step "bench: tollgate vs jose"
  cp js/bench.mjs "$app/"
  (cd "$app" && TOLLGATE=tollgate node bench.mjs)
fi
