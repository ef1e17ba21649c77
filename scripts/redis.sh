#!/usr/bin/env bash
# Starts real Redis servers on 127.0.0.1 and runs tollgate's Redis tests (or
# benchmark) against them; stops every process it started, by pid, on exit.
#
#   scripts/redis.sh            the store's unit tests (codec, configuration, error classes), the
#                               conformance suite on all three topologies, `tollgate serve` on
#                               each, then the fault tests
#   scripts/redis.sh conformance   the conformance suite and `tollgate serve` only
#   scripts/redis.sh faults     the fault tests only
#   scripts/redis.sh bench      the benchmark against the single server
#   scripts/redis.sh cost       the commit script's server time per call (INFO commandstats)
#   scripts/redis.sh scale      bytes per session and rates from 10k to 1M live sessions, memory and Redis
#   scripts/redis.sh shell      start everything and open a shell with the variables set
#   scripts/redis.sh up ENVFILE start everything, write the variables to ENVFILE, and wait
#                               until this script is stopped (kill its pid; it stops the servers)
#
# Topologies (non-default ports):
#   single    16379 (password protected); 16378 TLS only, with a CA made for the run
#   sentinel  master 16380, replica 16381, sentinels 26380 26381 26382 (master name `mymaster`)
#   cluster   17100-17105: three masters, three replicas
#   evicting  16391: maxmemory-policy volatile-lru (the eviction check refuses it), with a user
#             whose ACL forbids CONFIG
# The fault tests start and kill their own server on 16390.
# TG_REDIS_PORT_BASE=N moves every port into N..N+99 (for several runs on one machine): single
# N, TLS N+1, master N+2, replica N+3, sentinels N+4..N+6, cluster N+10..N+15, faults N+20,
# evicting N+21.
set -euo pipefail

MODE="${1:-all}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIND=127.0.0.1
# Every port can be moved (several copies of this script on one machine): TG_REDIS_PORT_BASE=N
# puts them at N (single), N+1 (TLS), N+2/N+3 (master/replica), N+4..N+6 (sentinels),
# N+10..N+15 (cluster; bus ports at +10000), N+20 (faults), N+21 (evicting).
if [ -n "${TG_REDIS_PORT_BASE:-}" ]; then
  B=$TG_REDIS_PORT_BASE
  SINGLE_PORT=$B TLS_PORT=$((B + 1)) MASTER_PORT=$((B + 2)) REPLICA_PORT=$((B + 3))
  SENTINEL_PORTS=($((B + 4)) $((B + 5)) $((B + 6)))
  CLUSTER_PORTS=($((B + 10)) $((B + 11)) $((B + 12)) $((B + 13)) $((B + 14)) $((B + 15)))
  FAULT_PORT=$((B + 20)) EVICTING_PORT=$((B + 21))
else
  SINGLE_PORT=16379 TLS_PORT=16378 MASTER_PORT=16380 REPLICA_PORT=16381
  SENTINEL_PORTS=(26380 26381 26382)
  CLUSTER_PORTS=(17100 17101 17102 17103 17104 17105)
  FAULT_PORT=16390 EVICTING_PORT=16391
fi
SINGLE_PASSWORD=tollgate-test-password

log() { printf '[redis.sh] %s\n' "$*" >&2; }

source "$ROOT/scripts/lib/redis-servers.sh"

for port in "$SINGLE_PORT" "$TLS_PORT" "$MASTER_PORT" "$REPLICA_PORT" "${SENTINEL_PORTS[@]}" "${CLUSTER_PORTS[@]}" "$FAULT_PORT" "$EVICTING_PORT"; do
  if (exec 3<>"/dev/tcp/$BIND/$port") 2>/dev/null; then
    echo "port $port on $BIND is in use; stop what runs there first" >&2
    exit 1
  fi
done

install_redis
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-redis.XXXXXX")"
PIDFILES=()

stop_all() {
  stop_pidfiles
  if [ "${KEEP_REDIS_LOGS:-}" = 1 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

common_args() { # port
  echo --port "$1" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis-$1.pid" --logfile "$WORK/redis-$1.log" \
    --dir "$WORK" --save '' --appendonly no --repl-diskless-sync-delay 0 --protected-mode no
}

start_server() { # port, extra args...
  local port="$1"; shift
  PIDFILES+=("$WORK/redis-$port.pid")
  # shellcheck disable=SC2046
  redis-server $(common_args "$port") "$@"
}

wait_ping() { # port [password]
  local auth=()
  [ -n "${2:-}" ] && auth=(-a "$2" --no-auth-warning)
  for _ in $(seq 100); do
    [ "$(redis-cli -h "$BIND" -p "$1" "${auth[@]}" ping 2>/dev/null)" = PONG ] && return
    sleep 0.1
  done
  echo "redis on port $1 did not start; see $WORK/redis-$1.log" >&2
  return 1
}

start_single() {
  start_server "$SINGLE_PORT" --requirepass "$SINGLE_PASSWORD"
  wait_ping "$SINGLE_PORT" "$SINGLE_PASSWORD"
}

start_evicting() { # a server that may evict keys, and a user that may not read its CONFIG
  start_server "$EVICTING_PORT" --maxmemory 64mb --maxmemory-policy volatile-lru
  wait_ping "$EVICTING_PORT"
  redis-cli -h "$BIND" -p "$EVICTING_PORT" acl setuser noconfig on '>noconfig-password' '~*' '&*' +@all -config >/dev/null
}

start_tls() { # a TLS-only server with a CA made here
  local d="$WORK/tls"
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tollgate test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
  PIDFILES+=("$WORK/redis-$TLS_PORT.pid")
  redis-server --port 0 --tls-port "$TLS_PORT" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis-$TLS_PORT.pid" \
    --logfile "$WORK/redis-$TLS_PORT.log" --dir "$WORK" --save '' --appendonly no \
    --tls-cert-file "$d/server.crt" --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.crt" --tls-auth-clients no
  for _ in $(seq 100); do
    [ "$(redis-cli --tls --cacert "$d/ca.crt" -h "$BIND" -p "$TLS_PORT" ping 2>/dev/null)" = PONG ] && return
    sleep 0.1
  done
  echo "the TLS redis on port $TLS_PORT did not start; see $WORK/redis-$TLS_PORT.log" >&2
  return 1
}

start_bench_server() { # no password: redis-benchmark would need it on its command line
  start_server "$SINGLE_PORT"
  wait_ping "$SINGLE_PORT"
}

start_sentinel() {
  start_server "$MASTER_PORT"
  start_server "$REPLICA_PORT" --replicaof "$BIND" "$MASTER_PORT"
  wait_ping "$MASTER_PORT"
  wait_ping "$REPLICA_PORT"
  for port in "${SENTINEL_PORTS[@]}"; do
    # Each sentinel rewrites its own config file.
    cat >"$WORK/sentinel-$port.conf" <<EOF
port $port
bind $BIND
daemonize yes
pidfile $WORK/sentinel-$port.pid
logfile $WORK/sentinel-$port.log
dir $WORK
sentinel monitor mymaster $BIND $MASTER_PORT 2
sentinel down-after-milliseconds mymaster 2000
sentinel failover-timeout mymaster 10000
sentinel parallel-syncs mymaster 1
EOF
    PIDFILES+=("$WORK/sentinel-$port.pid")
    redis-sentinel "$WORK/sentinel-$port.conf"
  done
  for port in "${SENTINEL_PORTS[@]}"; do wait_ping "$port"; done
  # Ready when the replica is in sync and every sentinel sees the others and the replica.
  for _ in $(seq 150); do
    local ok=1
    redis-cli -h "$BIND" -p "$REPLICA_PORT" info replication | grep -q 'master_link_status:up' || ok=0
    for port in "${SENTINEL_PORTS[@]}"; do
      local info
      info="$(redis-cli -h "$BIND" -p "$port" sentinel master mymaster 2>/dev/null | tr -d '\r')"
      echo "$info" | grep -A1 -x 'num-other-sentinels' | tail -1 | grep -qx 2 || ok=0
      echo "$info" | grep -A1 -x 'num-slaves' | tail -1 | grep -qx 1 || ok=0
    done
    [ "$ok" = 1 ] && return
    sleep 0.2
  done
  echo "the sentinel group did not settle; see $WORK/sentinel-*.log" >&2
  return 1
}

start_cluster() {
  local addrs=()
  for port in "${CLUSTER_PORTS[@]}"; do
    # DEBUG from loopback: tests/redis_resend.rs holds a node in DEBUG SLEEP.
    start_server "$port" --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000 \
      --enable-debug-command local
    addrs+=("$BIND:$port")
  done
  for port in "${CLUSTER_PORTS[@]}"; do wait_ping "$port"; done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1
  for _ in $(seq 150); do
    local ok=1
    for port in "${CLUSTER_PORTS[@]}"; do
      redis-cli -h "$BIND" -p "$port" cluster info | grep -q 'cluster_state:ok' || ok=0
      if redis-cli -h "$BIND" -p "$port" info replication | grep -q 'role:slave'; then
        redis-cli -h "$BIND" -p "$port" info replication | grep -q 'master_link_status:up' || ok=0
      fi
    done
    [ "$ok" = 1 ] && return
    sleep 0.2
  done
  echo "the cluster did not reach cluster_state:ok; see $WORK/cluster-create.log" >&2
  return 1
}

join() { local IFS=,; echo "$*"; }

export TG_TEST_REDIS_URL="redis://:$SINGLE_PASSWORD@$BIND:$SINGLE_PORT/0"
export TG_TEST_REDIS_SENTINELS
TG_TEST_REDIS_SENTINELS="$(join "${SENTINEL_PORTS[@]/#/$BIND:}")"
export TG_TEST_REDIS_SENTINEL_MASTER=mymaster
export TG_TEST_REDIS_CLUSTER
TG_TEST_REDIS_CLUSTER="$(join "${CLUSTER_PORTS[@]/#/$BIND:}")"
export TG_TEST_REDIS_SERVER_BIN
TG_TEST_REDIS_SERVER_BIN="$(command -v redis-server)"
export TG_TEST_REDIS_FAULT_PORT="$FAULT_PORT"
export TG_TEST_REDIS_WORKDIR="$WORK"
export TG_TEST_REDIS_TLS_URL="rediss://$BIND:$TLS_PORT"
export TG_TEST_REDIS_TLS_CA="$WORK/tls/ca.crt"
export TG_TEST_REDIS_EVICTING_URL="redis://$BIND:$EVICTING_PORT/0"
export TG_TEST_REDIS_NOCONFIG_URL="redis://noconfig:noconfig-password@$BIND:$EVICTING_PORT/0"

cd "$ROOT"
CARGO=(nice -n 10 cargo)

case "$MODE" in
  all|conformance|faults|shell|up)
    log "starting single, sentinel and cluster in $WORK"
    start_single
    start_tls
    start_sentinel
    start_cluster
    start_evicting
    log "ready"
    ;;
  bench|cost|scale)
    start_bench_server
    ;;
  *)
    echo "usage: $0 [all|conformance|faults|bench|cost|scale|shell|up ENVFILE]" >&2
    exit 2
    ;;
esac

# The conformance suite on every topology (and the store's own tests), one line per topology.
conformance() {
  export TG_TEST_CONFORMANCE_LOG="$WORK/conformance.log"
  local failed=0
  "${CARGO[@]}" test --locked --features redis --test redis_store -- --ignored || failed=1
  "${CARGO[@]}" test --locked --features redis-tls --test redis_store -- --ignored tls:: || failed=1
  "${CARGO[@]}" test --locked --features redis --test redis_eviction -- --ignored || failed=1
  PROPTEST_CASES="${PROPTEST_CASES:-64}" "${CARGO[@]}" test --locked --features redis --test session_model -- --ignored || failed=1
  bash scripts/conformance-summary.sh "$TG_TEST_CONFORMANCE_LOG" || failed=1
  [ "$failed" = 0 ]
}

case "$MODE" in
  all)
    "${CARGO[@]}" test --locked --features redis --lib store::redis
    conformance
    "${CARGO[@]}" test --locked --features redis,server --test redis_serve -- --ignored
    "${CARGO[@]}" test --locked --features redis --test redis_faults -- --ignored --test-threads=1 --nocapture
    "${CARGO[@]}" test --locked --features redis --test redis_resend -- --ignored --test-threads=1 --nocapture
    ;;
  conformance)
    "${CARGO[@]}" test --locked --features redis --lib store::redis
    conformance
    "${CARGO[@]}" test --locked --features redis,server --test redis_serve -- --ignored
    ;;
  faults)
    "${CARGO[@]}" test --locked --features redis --test redis_faults -- --ignored --test-threads=1 --nocapture
    "${CARGO[@]}" test --locked --features redis --test redis_resend -- --ignored --test-threads=1 --nocapture
    ;;
  bench)
    export TG_TEST_REDIS_HOST="$BIND" TG_TEST_REDIS_PORT="$SINGLE_PORT"
    "${CARGO[@]}" run --locked --release --features redis --example redis_bench
    ;;
  cost)
    export TG_TEST_REDIS_HOST="$BIND" TG_TEST_REDIS_PORT="$SINGLE_PORT"
    "${CARGO[@]}" run --locked --release --features redis --example redis_commit_cost
    ;;
  scale)
    export TG_TEST_REDIS_HOST="$BIND" TG_TEST_REDIS_PORT="$SINGLE_PORT"
    "${CARGO[@]}" run --locked --release --features redis --example scale
    ;;
  up)
    env | grep '^TG_TEST_REDIS_' | sed 's/^/export /' >"${2:?up needs a file to write the variables to}"
    log "servers up; variables in $2; stop with: kill $$"
    while true; do sleep 1; done
    ;;
  shell)
    log "servers up; leave the shell to stop them"
    "${SHELL:-bash}" -i || true
    ;;
esac
