#!/usr/bin/env bash
# schemathesis (pinned, from PyPI) against a running `tollgate serve`, on the memory
# store and on a Redis server, with the API key: no 5xx and no response that
# violates docs/openapi.json. Starts and stops (by pid) everything it uses.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=target/schemathesis-venv
BIND=127.0.0.1
REDIS_PORT=18690
SERVE_PORT=18691
API_KEY=schemathesis-api-key-0123456789
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-30}

log() { printf '[schemathesis.sh] %s\n' "$*" >&2; }
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_install() {
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
command -v redis-server >/dev/null || apt_install redis-server

cargo build --locked -q --features server,redis --bin tollgate

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in "$REDIS_PORT" "$SERVE_PORT"; do
  if (exec 3<>"/dev/tcp/$BIND/$port") 2>/dev/null; then
    log "port $port is taken: stop what listens there"; exit 1
  fi
done

redis-server --port "$REDIS_PORT" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis.pid" --save '' --appendonly no --dir "$WORK" >/dev/null
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Runs schemathesis against serve on the store $1; serve must then exit 0 on SIGTERM.
run_against() {
  local store="$1" out="$WORK/serve-${1%%:*}.out"
  env -u TOLLGATE_SIGNING_KEY TOLLGATE_STORE="$store" TOLLGATE_LISTEN="$BIND:$SERVE_PORT" TOLLGATE_ADMIN_LISTEN=off \
    TOLLGATE_SECRET="schemathesis-secret-of-at-least-32-bytes" TOLLGATE_API_KEYS="$API_KEY" TOLLGATE_REDIS_PREFIX="st$$:" \
    target/debug/tollgate serve >"$out" 2>"$WORK/serve.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do grep -q "listening" "$out" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening" "$out" || { cat "$WORK/serve.err" >&2; log "serve on $store did not start"; exit 1; }
  log "serve on $store: schemathesis, $EXAMPLES examples per operation"
  "$VENV/bin/st" run docs/openapi.json --url "http://$BIND:$SERVE_PORT" -H "X-Api-Key: $API_KEY" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    -n "$EXAMPLES" --seed 1 --max-failures 20 --no-color
  kill -TERM "$pid"
  wait "$pid" || { log "serve on $store did not exit 0 on SIGTERM"; exit 1; }
}

run_against memory
run_against "redis://$BIND:$REDIS_PORT/0"
log "no 5xx, no response that violates docs/openapi.json, on memory and on Redis"
