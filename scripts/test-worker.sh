#!/usr/bin/env bash
# Builds the Cloudflare Worker and its conformance test build, and tests them in workerd
# (scripts/build-worker.sh installs what is missing). Three parts, all over HTTP:
#   1. js/worker/test/conformance.mjs: the conformance suite on Workers KV, D1 and in
#      Durable Objects, through the test build's test-only routes; one line per store.
#   2. js/worker/test/*.test.mjs (node:test): miniflare runs the built Worker in
#      workerd with local KV, SQLite-backed Durable Object and D1 bindings, one
#      instance per configuration (KV, Durable Objects, D1, ES256/EdDSA, broken configs).
#   3. `wrangler dev --local` with js/worker/wrangler.toml as written, in the
#      background, stopped by its process id; a smoke test runs against it.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
step() { printf '\n==> %s\n' "$*"; }

if [ "${SKIP_BUILD:-}" != 1 ]; then
  bash scripts/build-worker.sh
  bash scripts/build-worker.sh conformance
fi

step "the deployable build has no test routes"
if grep -q __conformance js/worker/build/index_bg.wasm; then
  echo "js/worker/build has the conformance routes: build it with scripts/build-worker.sh (no argument)" >&2
  exit 1
fi

step "conformance suite in workerd: Workers KV, D1, Durable Objects (the test build)"
(cd js/worker && node test/conformance.mjs)

step "Worker tests in workerd (miniflare)"
cd js/worker
node --test --test-concurrency=1 test/*.test.mjs

step "wrangler dev --local with wrangler.toml, smoke test"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
state=$(mktemp -d)
log="$state/wrangler.log"
# Secrets for this run only, passed as vars (wrangler dev reads .dev.vars too).
WRANGLER_SEND_METRICS=false setsid node_modules/.bin/wrangler dev --local --ip 127.0.0.1 --port "$port" \
  --persist-to "$state" --show-interactive-dev-session=false \
  --var "TOLLGATE_SECRET:worker-smoke-secret-of-at-least-32-bytes" \
  --var "TOLLGATE_API_KEYS:test-api-key-0123456789" >"$log" 2>&1 &
wrangler_pid=$!
stop() {
  # wrangler and its workerd run in their own process group, led by $wrangler_pid.
  kill -TERM -- "-$wrangler_pid" 2>/dev/null || true
  wait "$wrangler_pid" 2>/dev/null || true
  rm -rf "$state"
}
trap stop EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then cat "$log"; echo "wrangler dev exited"; exit 1; fi
  sleep 0.2
done
TG_TEST_WORKER_URL="http://127.0.0.1:$port" node --test test/wrangler-dev.smoke.mjs || { cat "$log"; exit 1; }

echo
echo "all Worker tests passed"
