#!/usr/bin/env bash
# Load benchmark of `tollgate serve` (release build) with wrk, on the memory store
# and on a Redis server: POST /v1/verify stateless and strict, POST /v1/refresh
# (each connection refreshes its own chain of tokens), printed as requests/s, the
# ratio to the same server's GET /healthz measured in the same run, and p99.
# Not part of scripts/test.sh (a benchmark); run it under the build lock.
# Environment: CONNECTIONS (32), DURATION (5s), THREADS (2), REDIS_PORT (18693),
# SERVE_PORT (18694), STORES ("memory redis"), SERVE_BIN (a tollgate binary to
# measure instead of building this checkout's). The last row measures /healthz again:
# how far it is from 1.00 shows how much the machine drifted during the run.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
BIND=127.0.0.1
# Ports of the Redis server and of serve, overridable so that runs side by side do not collide.
REDIS_PORT=${REDIS_PORT:-18693}
SERVE_PORT=${SERVE_PORT:-18694}
# Which stores to measure: "memory", "redis" or both.
STORES=${STORES:-memory redis}
API_KEY=bench-api-key-0123456789abcdef

log() { printf '[bench-serve.sh] %s\n' "$*" >&2; }
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
for tool in wrk redis-server; do
  command -v "$tool" >/dev/null || { $sudo apt-get update -qq; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$tool" >/dev/null; }
done
if [ -n "${SERVE_BIN:-}" ]; then
  BIN=$SERVE_BIN
else
  cargo build --release --locked -q --features server,redis --bin tollgate
  BIN=target/release/tollgate
fi

WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis.pid" --save '' --appendonly no --dir "$WORK" >/dev/null
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Sessions for the run: one access token for verify, and a refresh token per connection.
make_scripts() {
  python3 - "$BIND:$SERVE_PORT" "$API_KEY" "$WORK" "$((CONNECTIONS * 2))" "$THREADS" <<'PY'
import http.client, json, sys
addr, key, work, n, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
host, port = addr.split(":")
c = http.client.HTTPConnection(host, int(port))
def create(user):
    c.request("POST", "/v1/sessions", json.dumps({"user": user}), {"X-Api-Key": key, "Content-Type": "application/json"})
    r = c.getresponse(); body = json.loads(r.read()); assert r.status == 201, body
    return body
access = create("bench-verify")["access_token"]
refresh = [create(f"bench-refresh-{i}")["refresh_token"] for i in range(n)]
for mode in ("stateless", "strict"):
    open(f"{work}/verify-{mode}.lua", "w").write(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = \'{json.dumps({"token": access, "mode": mode})}\'\n')
tokens = ",\n".join(json.dumps(t) for t in refresh)
open(f"{work}/refresh.lua", "w").write(f"""
local tokens = {{ {tokens} }}
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
-- Each thread takes its own share of the starting tokens; each answer brings the next one.
local queue = nil
function request()
  if queue == nil then
    queue = {{}}
    for i = id, #tokens, {threads} do queue[#queue + 1] = tokens[i] end
  end
  local t = table.remove(queue, 1) or "tgr_none.none"
  return wrk.format("POST", "/v1/refresh", {{ ["Content-Type"] = "application/json" }}, '{{"refresh_token":"' .. t .. '"}}')
end
function response(status, headers, body)
  local next = body:match('"refresh_token":"([^"]+)"')
  if next then queue[#queue + 1] = next end
end
""")
PY
}

# wrk for one route: prints "requests/s p99 non-2xx".
measure() {
  local script="$1" path="$2" out
  if [ -n "$script" ]; then
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "http://$BIND:$SERVE_PORT$path")
  else
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://$BIND:$SERVE_PORT$path")
  fi
  local rps p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  echo "$rps ${p99:-?} ${bad:-0}"
}

bench() {
  local store="$1" label="$2"
  TOLLGATE_STORE="$store" TOLLGATE_LISTEN="$BIND:$SERVE_PORT" TOLLGATE_ADMIN_LISTEN=off TOLLGATE_LOG=warn \
    TOLLGATE_SECRET="bench-secret-of-at-least-32-bytes-long" TOLLGATE_API_KEYS="$API_KEY" TOLLGATE_REDIS_PREFIX="bench$$:" \
    "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$WORK/serve.out" || { log "serve did not start:"; cat "$WORK/serve.err" >&2; exit 1; }
  make_scripts
  local health verify_stateless verify_strict refresh
  health=$(measure "" /healthz)
  verify_stateless=$(measure "$WORK/verify-stateless.lua" /v1/verify)
  verify_strict=$(measure "$WORK/verify-strict.lua" /v1/verify)
  refresh=$(measure "$WORK/refresh.lua" /v1/refresh)
  health_again=$(measure "" /healthz)
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; SERVE_PID=""
  local base=${health%% *}
  printf '\n%s: wrk -t%s -c%s -d%s, same run\n' "$label" "$THREADS" "$CONNECTIONS" "$DURATION"
  printf '%-22s %12s %10s %10s %8s\n' route "requests/s" "x healthz" p99 "non-2xx"
  for row in "GET /healthz|$health" "verify stateless|$verify_stateless" "verify strict|$verify_strict" "refresh|$refresh" "GET /healthz again|$health_again"; do
    local name=${row%%|*} rps p99 bad
    read -r rps p99 bad <<<"${row#*|}"
    printf '%-22s %12s %10s %10s %8s\n' "$name" "$rps" "$(python3 -c "print(f'{$rps / $base:.2f}')")" "$p99" "$bad"
  done
}

for store in $STORES; do
  case "$store" in
    memory) bench memory "memory store" ;;
    redis) bench "redis://$BIND:$REDIS_PORT/0" "Redis (one server, loopback)" ;;
    *) log "STORES names \"$store\": use memory and/or redis"; exit 2 ;;
  esac
done
