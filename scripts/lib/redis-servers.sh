# Sourced by scripts/redis.sh and scripts/cross-runtime.sh: installing Redis, and stopping
# the servers a script started (each listed by its pid file in PIDFILES), by pid.
# The sourcing script defines `log`.

# redis-server, redis-sentinel, the redis tools and openssl (for TLS), from apt when missing.
install_redis() {
  if command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null \
    && command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null && command -v openssl >/dev/null; then
    return
  fi
  log "installing redis-server redis-sentinel redis-tools openssl"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-sentinel redis-tools openssl >/dev/null
}

# SIGTERM to every server in PIDFILES; a bounded wait for each, then SIGKILL for stragglers.
stop_pidfiles() {
  local pids=() pf pid
  for pf in "${PIDFILES[@]}"; do
    [ -f "$pf" ] || continue
    pid="$(cat "$pf" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  done
}
