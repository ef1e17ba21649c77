#!/usr/bin/env bash
# Load benchmark of `tollgate serve` (release build) with wrk, on the memory store
# and on a Redis server: POST /v1/verify stateless and strict, POST /v1/refresh
# (each connection refreshes its own chain of tokens), each as a ratio to the same
# server's GET /healthz, with p99 and serve's CPU time per request.
#
# wrk and serve share the machine, so its load drifts during a run: /healthz is
# measured before and after every route, and a route's ratio is taken against the
# mean of the two measurements around it. ROUNDS rounds; the table gives each
# round's ratio and their median. Not part of scripts/test.sh (a benchmark).
# Environment: CONNECTIONS (32), DURATION (5s), THREADS (2), ROUNDS (3),
# REDIS_PORT (18693), SERVE_PORT (18694), STORES ("memory redis"), SERVE_BIN (a
# tollgate binary to measure instead of building this checkout's).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
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
  if [ -f "$WORK/redis.pid" ]; then
    local pid
    pid=$(cat "$WORK/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Gone before the next run on the same port starts its own server.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
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

# wrk for one route: prints "requests/s p99 non-2xx serve-cpu-us-per-request".
measure() {
  local script="$1" path="$2" out before after
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  before=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
  out=$(wrk "${args[@]}" "http://$BIND:$SERVE_PORT$path")
  after=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
  python3 - "$before" "$after" "$(getconf CLK_TCK)" <<PY
import re, sys
out = """$out"""
before, after, tick = (int(a) for a in sys.argv[1:])
rps = re.search(r"^Requests/sec:\s+(\S+)", out, re.M).group(1)
p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
done = int(re.search(r"(\d+) requests in", out).group(1))
cpu_us = (after - before) / tick / max(done, 1) * 1e6
print(rps, p99.group(1) if p99 else "?", bad.group(1) if bad else 0, f"{cpu_us:.1f}")
PY
}

bench() {
  local store="$1" label="$2"
  TOLLGATE_STORE="$store" TOLLGATE_LISTEN="$BIND:$SERVE_PORT" TOLLGATE_ADMIN_LISTEN=off TOLLGATE_LOG=warn \
    TOLLGATE_SECRET="bench-secret-of-at-least-32-bytes-long" TOLLGATE_API_KEYS="$API_KEY" TOLLGATE_REDIS_PREFIX="bench$$:" \
    "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$WORK/serve.out" || { log "serve did not start:"; cat "$WORK/serve.err" >&2; exit 1; }
  # One line per measurement: "round route requests/s p99 non-2xx cpu".
  : >"$WORK/rows"
  local round route
  # /healthz opens the run; after that, the one measured after each route is the one
  # before the next route, across rounds too.
  echo "1 healthz $(measure "" /healthz)" >>"$WORK/rows"
  for round in $(seq "$ROUNDS"); do
    for route in stateless strict refresh; do
      # Fresh sessions each time: a refresh chain cannot be started twice (that is reuse).
      make_scripts
      case "$route" in
        refresh) echo "$round $route $(measure "$WORK/refresh.lua" /v1/refresh)" >>"$WORK/rows" ;;
        *) echo "$round $route $(measure "$WORK/verify-$route.lua" /v1/verify)" >>"$WORK/rows" ;;
      esac
      echo "$round healthz $(measure "" /healthz)" >>"$WORK/rows"
    done
  done
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; SERVE_PID=""
  printf '\n%s: wrk -t%s -c%s -d%s, %s rounds\n' "$label" "$THREADS" "$CONNECTIONS" "$DURATION" "$ROUNDS"
  python3 - "$WORK/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
# Each route's ratio is to the mean of the /healthz measurements right before and after it.
ratios, cpu, p99, bad, health = {}, {}, {}, {}, []
for i, (_, route, rps, lat, non2xx, us) in enumerate(rows):
    if route == "healthz":
        health.append(float(rps))
        cpu.setdefault(route, []).append(float(us))
        continue
    around = (float(rows[i - 1][2]) + float(rows[i + 1][2])) / 2
    ratios.setdefault(route, []).append(float(rps) / around)
    cpu.setdefault(route, []).append(float(us))
    p99.setdefault(route, []).append(lat)
    bad[route] = bad.get(route, 0) + int(non2xx)
names = {"stateless": "verify stateless", "strict": "verify strict", "refresh": "refresh"}
print(f"{'route':<18} {'x healthz, each round':<24} {'median':>7} {'p99 (each round)':<26} {'serve us/req':>12} {'non-2xx':>8}")
print(f"{'GET /healthz':<18} {', '.join(f'{h / 1000:.0f}k/s' for h in health):<66} {statistics.median(cpu['healthz']):12.1f} {0:8}")
for route, name in names.items():
    r = ratios[route]
    print(f"{name:<18} {', '.join(f'{x:.2f}' for x in r):<24} {statistics.median(r):7.2f} {', '.join(p99[route]):<26} {statistics.median(cpu[route]):12.1f} {bad[route]:8}")
print(f"/healthz moved between {min(health) / 1000:.0f}k/s and {max(health) / 1000:.0f}k/s during the run ({max(health) / min(health):.2f}x)")
PY
}

for store in $STORES; do
  case "$store" in
    memory) bench memory "memory store" ;;
    redis) bench "redis://$BIND:$REDIS_PORT/0" "Redis (one server, loopback)" ;;
    *) log "STORES names \"$store\": use memory and/or redis"; exit 2 ;;
  esac
done
