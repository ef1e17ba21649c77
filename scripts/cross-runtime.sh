#!/usr/bin/env bash
# Rust and Node on one Redis, taking turns on the same sessions: the npm package,
# installed from its packed tarball into a fresh folder, runs js/test/cross-runtime.mjs,
# which calls the Rust example examples/cross_runtime.rs for the Rust steps. Once on a
# single server, once on a six-node Cluster, both started here on 127.0.0.1 and
# stopped by pid on exit. The test prints each step and its outcome.
#
# Needs the npm package built (scripts/build-npm.sh; run here when pkg/ has no
# .wasm), cargo, npm, and redis-server (installed with apt when missing).
# Ports: single 16480, Cluster 17110-17115 (bus ports +10000);
# CROSS_SINGLE_PORT and CROSS_CLUSTER_PORT (the first of six) move them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIND=127.0.0.1
SINGLE_PORT=${CROSS_SINGLE_PORT:-16480}
FIRST=${CROSS_CLUSTER_PORT:-17110}
CLUSTER_PORTS=()
for i in 0 1 2 3 4 5; do CLUSTER_PORTS+=($((FIRST + i))); done

log() { printf '[cross-runtime.sh] %s\n' "$*" >&2; }

for port in "$SINGLE_PORT" "${CLUSTER_PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/$BIND/$port") 2>/dev/null; then
    echo "port $port on $BIND is in use; stop what runs there first" >&2
    exit 1
  fi
done

source scripts/lib/redis-servers.sh
install_redis

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-cross.XXXXXX")"
PIDFILES=()
stop_all() {
  stop_pidfiles
  rm -rf "$WORK"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

start_server() { # port, extra args...
  local port="$1"; shift
  PIDFILES+=("$WORK/redis-$port.pid")
  # DEBUG from loopback: the lost-reply test holds a node in DEBUG SLEEP.
  redis-server --port "$port" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis-$port.pid" \
    --logfile "$WORK/redis-$port.log" --dir "$WORK" --save '' --appendonly no --repl-diskless-sync-delay 0 \
    --enable-debug-command local "$@"
  for _ in $(seq 100); do
    [ "$(redis-cli -h "$BIND" -p "$port" ping 2>/dev/null)" = PONG ] && return
    sleep 0.1
  done
  echo "redis on port $port did not start; see $WORK/redis-$port.log" >&2
  return 1
}

log "building the Rust side (examples/cross_runtime.rs)"
cargo build --locked -q --features redis --example cross_runtime
BIN="${CARGO_TARGET_DIR:-target}/debug/examples/cross_runtime"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

if [ ! -f pkg/tollgate_bg.wasm ]; then
  log "building the npm package"
  bash scripts/build-npm.sh
fi
log "packing the npm package and installing it into a fresh folder"
(cd pkg && npm pack --pack-destination "$WORK" --silent >/dev/null)
APP="$WORK/app"
mkdir -p "$APP/test"
cp js/package.json js/package-lock.json "$APP/"
(cd "$APP" && npm ci --no-audit --no-fund --silent && npm install --no-save --no-audit --no-fund --silent "$WORK"/tollgate-*.tgz)
cp js/test/cross-runtime.mjs js/test/helpers.mjs "$APP/test/"

export CROSS_RUNTIME_BIN="$BIN"
CROSS_SECRET="cross-runtime-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export CROSS_SECRET

log "single server on $SINGLE_PORT"
start_server "$SINGLE_PORT"
(cd "$APP" && CROSS_TOPOLOGY=single CROSS_REDIS="$BIND:$SINGLE_PORT" node --test test/cross-runtime.mjs)

log "cluster on ${CLUSTER_PORTS[*]}"
addrs=()
for port in "${CLUSTER_PORTS[@]}"; do
  start_server "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000
  addrs+=("$BIND:$port")
done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1
for _ in $(seq 150); do
  ok=1
  for port in "${CLUSTER_PORTS[@]}"; do
    redis-cli -h "$BIND" -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
  done
  [ "$ok" = 1 ] && break
  sleep 0.2
done
[ "$ok" = 1 ] || { echo "the cluster did not reach cluster_state:ok; see $WORK/cluster-create.log" >&2; exit 1; }
nodes="$(IFS=,; echo "${addrs[*]}")"
(cd "$APP" && CROSS_TOPOLOGY=cluster CROSS_REDIS="$nodes" node --test test/cross-runtime.mjs)

log "Rust and Node agree on one Redis, single server and Cluster"
