#!/usr/bin/env bash
# Starts PostgreSQL and MariaDB on 127.0.0.1, each in a data directory of its
# own, runs tollgate's SQL tests (or benchmark) against them, and stops what it
# started, by pid, on exit. Installs the servers from apt when missing.
#
#   scripts/sql.sh              SQLite, PostgreSQL and MariaDB: conformance suite, the store's
#                               own checks and `tollgate migrate`, then the fault tests
#   scripts/sql.sh conformance  the conformance suite, the store's own checks and `tollgate migrate`
#   scripts/sql.sh faults       the fault tests only (each server restarted under writes)
#   scripts/sql.sh bench        the benchmark: every SQL store, Redis, pgbench, side by side
#   scripts/sql.sh up ENVFILE   start the servers, write the variables to ENVFILE, and wait
#                               until this script is stopped (kill its pid; it stops the servers)
#   scripts/sql.sh kill|start postgres|mariadb
#                               crash (PostgreSQL: immediate shutdown, MariaDB: SIGKILL) or start
#                               one server of a running set (TG_TEST_SQL_WORKDIR names it):
#                               what the fault tests call
#
# Ports: PostgreSQL 18432, MariaDB 18433, and for the benchmark a redis-server on 18434.
set -euo pipefail

MODE="${1:-all}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIND=127.0.0.1
PG_PORT=18432
MARIADB_PORT=18433
REDIS_PORT=18434
DB_USER=tollgate
DB_PASSWORD=tollgate-test-password
DB_NAME=tollgate

log() { printf '[sql.sh] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { # the newest installed server, PostgreSQL 15 on Debian 12
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

install_servers() {
  local want=()
  pg_bin >/dev/null || want+=(postgresql)
  command -v psql >/dev/null || want+=(postgresql-client)
  [ -x "$(mariadbd_bin)" ] && command -v mariadb-install-db >/dev/null || want+=(mariadb-server mariadb-client)
  if [ "$MODE" = bench ]; then command -v redis-server >/dev/null || want+=(redis-server); fi
  [ ${#want[@]} = 0 ] && return
  log "installing ${want[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${want[@]}" >/dev/null
}

# Servers refuse to run as root: as root they run as their own system users.
run_pg() { (cd / && if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi); }
maria_user() { if [ "$(id -u)" = 0 ]; then echo mysql; else id -un; fi; }
# /usr/sbin is not on every user's PATH.
mariadbd_bin() { command -v mariadbd || echo /usr/sbin/mariadbd; }

start_postgres() {
  local bin pgdata="$WORK/pg" run="$WORK/pgrun" # data; socket and log
  bin="$(pg_bin)"
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata" "$run"
    [ "$(id -u)" = 0 ] && chown postgres "$pgdata" "$run"
    run_pg "$bin/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=scram-sha-256 \
      >"$WORK/pg-initdb.log"
  fi
  run_pg "$bin/pg_ctl" -D "$pgdata" -l "$run/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $run -c listen_addresses=$BIND -c max_connections=300" start >/dev/null \
    || { log "PostgreSQL did not start"; tail -20 "$run/pg.log" >&2; return 1; }
  if [ ! -f "$WORK/pg.ready" ]; then
    run_pg psql -q -h "$run" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" \
      -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" -c "CREATE DATABASE pgbench OWNER $DB_USER" >/dev/null
    touch "$WORK/pg.ready"
  fi
}

pg_pid() { head -1 "$WORK/pg/postmaster.pid" 2>/dev/null || true; }

start_mariadb() {
  local data="$WORK/maria" run="$WORK/mariarun" user # data; socket, pid and log
  user="$(maria_user)"
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data" "$run"
    [ "$(id -u)" = 0 ] && chown mysql "$data" "$run"
    mariadb-install-db --no-defaults --datadir="$data" --user="$user" --auth-root-authentication-method=normal \
      --skip-test-db >"$WORK/maria-install.log" 2>&1
  fi
  # mariadbd does not daemonize: it runs in the background, its pid in its pid file.
  setsid "$(mariadbd_bin)" --no-defaults --datadir="$data" --user="$user" --port="$MARIADB_PORT" --bind-address="$BIND" \
    --socket="$run/maria.sock" --pid-file="$run/maria.pid" --log-error="$run/maria.err" \
    --innodb-buffer-pool-size=128M --max-connections=300 --skip-name-resolve </dev/null >/dev/null 2>&1 &
  for _ in $(seq 300); do
    mariadb-admin --no-defaults --socket="$run/maria.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --no-defaults --socket="$run/maria.sock" -uroot ping >/dev/null 2>&1 \
    || { log "mariadbd did not start"; tail -20 "$run/maria.err" >&2; return 1; }
  if [ ! -f "$WORK/maria.ready" ]; then
    mariadb --no-defaults --socket="$run/maria.sock" -uroot -e "
      CREATE DATABASE $DB_NAME;
      CREATE USER '$DB_USER'@'$BIND' IDENTIFIED BY '$DB_PASSWORD';
      GRANT ALL PRIVILEGES ON \`tollgate%\`.* TO '$DB_USER'@'$BIND';"
    touch "$WORK/maria.ready"
  fi
}

maria_pid() { cat "$WORK/mariarun/maria.pid" 2>/dev/null || true; }

wait_gone() { # pid
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  return 1
}

stop_pid() { # pid signal
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1" 2>/dev/null || true
  wait_gone "$1" || { kill -9 "$1" 2>/dev/null || true; wait_gone "$1" || true; }
}

start_redis() {
  redis-server --port "$REDIS_PORT" --bind "$BIND" --daemonize yes --pidfile "$WORK/redis.pid" --dir "$WORK" \
    --save '' --appendonly no --logfile "$WORK/redis.log"
  for _ in $(seq 100); do redis-cli -h "$BIND" -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  log "redis-server did not start"; return 1
}

# Subcommands the fault tests call on a running set.
case "$MODE" in
  kill|start)
    WORK="${TG_TEST_SQL_WORKDIR:?kill and start act on the set TG_TEST_SQL_WORKDIR names}"
    case "$MODE:${2:-}" in
      kill:postgres) stop_pid "$(pg_pid)" QUIT ;; # immediate shutdown: no checkpoint, recovery on start
      kill:mariadb) stop_pid "$(maria_pid)" KILL ;;
      start:postgres) start_postgres ;;
      start:mariadb) start_mariadb ;;
      *) echo "usage: $0 kill|start postgres|mariadb" >&2; exit 2 ;;
    esac
    exit 0
    ;;
  all|conformance|faults|bench|up) ;;
  *) echo "usage: $0 [all|conformance|faults|bench|up ENVFILE|kill NAME|start NAME]" >&2; exit 2 ;;
esac

for port in "$PG_PORT" "$MARIADB_PORT" "$REDIS_PORT"; do
  if (exec 3<>"/dev/tcp/$BIND/$port") 2>/dev/null; then
    echo "port $port on $BIND is in use; stop what runs there first" >&2
    exit 1
  fi
done

install_servers
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-sql.XXXXXX")"
chmod 755 "$WORK" # the servers' own users reach their directories inside

stop_all() {
  stop_pid "$(pg_pid)" INT # fast shutdown
  stop_pid "$(maria_pid)" TERM
  [ -f "$WORK/redis.pid" ] && stop_pid "$(cat "$WORK/redis.pid")" TERM
  if [ "${KEEP_SQL_LOGS:-}" = 1 ]; then log "data and logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

log "starting PostgreSQL ($(pg_bin | cut -d/ -f5)) on $PG_PORT and MariaDB on $MARIADB_PORT in $WORK"
start_postgres
start_mariadb
[ "$MODE" = bench ] && start_redis

export TG_TEST_PG_URL="postgres://$DB_USER:$DB_PASSWORD@$BIND:$PG_PORT/$DB_NAME"
export TG_TEST_MYSQL_URL="mysql://$DB_USER:$DB_PASSWORD@$BIND:$MARIADB_PORT/$DB_NAME"
export TG_TEST_SQL_WORKDIR="$WORK"
export TG_TEST_SQL_SCRIPT="$ROOT/scripts/sql.sh"

cd "$ROOT"
CARGO=(nice -n 10 cargo)
FEATURES=sqlite,postgres,mysql

case "$MODE" in
  all|conformance)
    # One line per store in the CI log (scripts/conformance-summary.sh fails on any failed case).
    export TG_TEST_CONFORMANCE_LOG="$WORK/conformance.log"
    failed=0
    "${CARGO[@]}" test --locked --features "$FEATURES" --test sql_store -- --include-ignored || failed=1
    bash scripts/conformance-summary.sh "$TG_TEST_CONFORMANCE_LOG" || failed=1
    [ "$failed" = 0 ]
    "${CARGO[@]}" test --locked --features "$FEATURES,server" --test sql_migrate -- --include-ignored
    if [ "$MODE" = all ]; then
      "${CARGO[@]}" test --locked --features "$FEATURES" --test sql_faults -- --ignored --test-threads=1 --nocapture
    fi
    ;;
  faults)
    "${CARGO[@]}" test --locked --features "$FEATURES" --test sql_faults -- --ignored --test-threads=1 --nocapture
    ;;
  bench)
    export TG_TEST_PGBENCH_URL="postgres://$DB_USER:$DB_PASSWORD@$BIND:$PG_PORT/pgbench"
    export TG_TEST_BENCH_REDIS_URL="redis://$BIND:$REDIS_PORT/0"
    export TG_TEST_PG_BIN="$(pg_bin)"
    "${CARGO[@]}" run --locked --release --features "$FEATURES,redis" --example sql_bench
    ;;
  up)
    env | grep -E '^TG_TEST_(PG|MYSQL|SQL)_' | sed 's/^/export /' >"${2:?up needs a file to write the variables to}"
    log "servers up; variables in $2; stop with: kill $$"
    while true; do sleep 1; done
    ;;
esac
