#!/usr/bin/env bash
# The example apps' login page (examples/web/index.html) tested end to end in
# headless Chromium, once per app, by js/e2e/login-page.mjs (playwright-core
# driving Debian's /usr/bin/chromium). Installs what is missing: chromium from
# apt, js/e2e's and examples/hono-app's locked npm packages, the npm package
# (scripts/build-npm.sh's pkg/, rebuilt when older than the sources), packed and
# installed from its tarball into a fresh folder beside a copy of the example.
# The apps, each on its own port of 127.0.0.1, stopped by process group id:
#   1. Hono in Node (examples/hono-app/node.mjs, @hono/node-server)
#   2. Hono in workerd (examples/hono-app/workerd.mjs: the same app as a Worker, Miniflare)
#   3. axum (`cargo run --example axum_app --features axum`)
# Exits non-zero when any check of any app fails. TG_E2E_PORT moves the ports (default 18800).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${TG_E2E_PORT:-18800}
step() { printf '\n== %s\n' "$*"; }

work=$(mktemp -d)
groups=()
cleanup() {
  # Each app runs in its own process group (set -m below), led by the pid we started.
  for pid in "${groups[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${groups[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

step "Chromium (Debian's, from apt when missing) and playwright-core (js/e2e/package-lock.json)"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
/usr/bin/chromium --version 2>/dev/null
(cd js/e2e && npm ci --no-audit --no-fund --silent)

step "the npm package (pkg/, built by scripts/build-npm.sh when missing or older than the sources)"
if [ ! -f pkg/tollgate_bg.wasm ] || [ ! -f pkg/tollgate.js ] \
  || [ -n "$(find src Cargo.toml Cargo.lock -newer pkg/tollgate_bg.wasm -print -quit)" ]; then
  bash scripts/build-npm.sh
fi
(cd pkg && npm pack --pack-destination "$work" --silent)
tarball=$(ls "$work"/tollgate-*.tgz)

step "the Hono example app in a fresh folder: its locked packages, tollgate from the tarball"
app="$work/examples/hono-app"
mkdir -p "$app"
cp -r examples/web "$work/examples/"
cp examples/hono-app/*.mjs examples/hono-app/package.json examples/hono-app/package-lock.json "$app/"
(cd "$app" && npm ci --no-audit --no-fund --silent && npm install --no-save --no-audit --no-fund --silent "$tarball")

# A secret for this run only; never printed.
TOLLGATE_SECRET=$(head -c 48 /dev/urandom | base64 -w0)
export TOLLGATE_SECRET

# Background jobs get their own process group, led by the job's pid: stopping an app
# stops what it started (workerd under Miniflare, the binary under cargo run).
set -m
# start NAME PORT COMMAND...: runs COMMAND with PORT in its own process group, waits until GET / answers.
start() {
  local name=$1 p=$2
  shift 2
  PORT=$p "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  groups+=("$pid")
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null; then
      echo "$name: pid $pid, http://127.0.0.1:$p ($(head -1 "$work/$name.log"))"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$work/$name.log"
      echo "$name exited before serving" >&2
      return 1
    fi
    sleep 0.2
  done
  cat "$work/$name.log"
  echo "$name did not answer on port $p within 120 s" >&2
  return 1
}

apps=()
step "start the apps"
start hono-node $((port + 1)) node "$app/node.mjs"
apps+=("hono-node $((port + 1))")
start hono-workerd $((port + 2)) node "$app/workerd.mjs"
apps+=("hono-workerd $((port + 2))")
nice -n 10 cargo build --locked -q --example axum_app --features axum
start axum $((port + 3)) cargo run --locked -q --example axum_app --features axum
apps+=("axum $((port + 3))")

failed=()
own=$((port + 10)) # the test's own servers: another site's page and a relay, two ports per app
for entry in "${apps[@]}"; do
  read -r name p <<<"$entry"
  step "login page in headless Chromium: $name"
  own=$((own + 2))
  if ! node js/e2e/login-page.mjs "http://127.0.0.1:$p" "$name" "$own"; then
    failed+=("$name")
    echo "--- $name's log"
    cat "$work/$name.log"
  fi
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "browser tests failed for: ${failed[*]}" >&2
  exit 1
fi
echo "browser tests passed for: $(printf '%s ' "${apps[@]%% *}")"
