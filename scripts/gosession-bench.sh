#!/usr/bin/env bash
# tollgate and the Go session library hunterhug/gosession side by side on one
# Redis server, in one window (outside CI: gosession is not part of this
# repository and nothing of it is committed).
#
#   GOSESSION_SRC=/path/to/gosession bash scripts/gosession-bench.sh
#
# GOSESSION_SRC is a copy of https://github.com/hunterhug/gosession: a source
# tree, or a bare git directory (a mirror made by `git clone --mirror`, or the
# copy a tollgate maintainer fetches with the search tool's fetch into
# /work/.mirror/hunterhug+gosession/repo); a bare directory is unpacked with
# `git --git-dir=DIR archive HEAD | tar -x -C TREE`.
#
# What it does:
#  1. builds gosession in GOPATH mode (no Go module is downloaded): Debian's Go
#     1.19 with redigo and gofrs/uuid from /usr/share/gocode, the copy placed at
#     gopath/src/github.com/hunterhug/gosession without mongo_session.go (its
#     MongoDB driver is not packaged), and our driver benches/go/gosession_driver;
#  2. builds examples/redis_side_by_side.rs (release, feature `redis`);
#  3. starts one redis-server on 127.0.0.1:$GOSESSION_REDIS_PORT (no persistence);
#  4. runs gosession, then tollgate, then both again (two alternations), each
#     doing sign-in, verify, refresh and revoke with 1 task and with 64 for
#     $BENCH_SECONDS (2) seconds each, resetting INFO commandstats before each;
#  5. prints tollgate/gosession per operation and round, and the server time
#     per call (usec_per_call of INFO commandstats) of each side's commands:
#     tollgate's EVALSHA (the commit script) against gosession's EXEC, and GET / MGET.
# The server is stopped by its pid on exit. Exit 2: GOSESSION_SRC missing.
#
# Operations: sign-in = SetToken / SessionManager::issue (a new user each
# call), verify = CheckToken / strict verify, refresh = RefreshToken (neither
# checks nor rotates) / refresh (checks and rotates), revoke = DeleteToken / revoke
# (ours twice: `revoke` by the manager that signed the sessions in and remembers them,
# `revoke-read` by one that remembers nothing, both against the same DeleteToken).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${GOSESSION_REDIS_PORT:-16395}"
SECONDS_PER="${BENCH_SECONDS:-2}"
ROUNDS="${GOSESSION_ROUNDS:-2}"
CARGO="${CARGO:-cargo}" # a command line, e.g. "flock /tmp/build.lock cargo"

log() { printf '[gosession-bench] %s\n' "$*" >&2; }

if [ -z "${GOSESSION_SRC:-}" ] || [ ! -d "${GOSESSION_SRC:-}" ]; then
  cat >&2 <<'MSG'
[gosession-bench] GOSESSION_SRC is not set to a copy of hunterhug/gosession.
  Get one and point GOSESSION_SRC at it, for example:
    git clone --mirror https://github.com/hunterhug/gosession /tmp/gosession.git   (where GitHub is reachable)
    GOSESSION_SRC=/tmp/gosession.git bash scripts/gosession-bench.sh
  On the project's build machine (no GitHub access) ask the lead to fetch it with
  the search tool's fetch (github:hunterhug/gosession); it lands as a bare git
  directory under /work/.mirror/hunterhug+gosession/repo.
MSG
  exit 2
fi

source "$ROOT/scripts/lib/redis-servers.sh"

# Go 1.19 with the two packages gosession imports (MongoDB's driver is left out).
install_go() {
  if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/gomodule/redigo ] \
    && [ -d /usr/share/gocode/src/github.com/gofrs/uuid ]; then
    return
  fi
  log "installing golang-go golang-github-gomodule-redigo-dev golang-github-gofrs-uuid-dev"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-github-gomodule-redigo-dev \
    golang-github-gofrs-uuid-dev >/dev/null
}
install_go
install_redis

WORK="$(mktemp -d /tmp/gosession-bench.XXXXXX)"
PIDFILES=("$WORK/redis.pid")
cleanup() { stop_pidfiles; rm -rf "$WORK"; }
trap cleanup EXIT

# 1. gosession and the driver, GOPATH mode.
GOPATH_DIR="$WORK/gopath"
TREE="$GOPATH_DIR/src/github.com/hunterhug/gosession"
mkdir -p "$TREE" "$GOPATH_DIR/src/gosession_driver"
if [ -f "$GOSESSION_SRC/HEAD" ] && [ -d "$GOSESSION_SRC/objects" ]; then
  git --git-dir="$GOSESSION_SRC" archive HEAD | tar -x -C "$TREE"
  log "gosession $(git --git-dir="$GOSESSION_SRC" rev-parse --short HEAD) (bare git directory)"
else
  cp -a "$GOSESSION_SRC/." "$TREE/"
  log "gosession from the tree $GOSESSION_SRC"
fi
[ -f "$TREE/redis_session.go" ] || { log "no redis_session.go in $GOSESSION_SRC: not a copy of hunterhug/gosession"; exit 1; }
rm -f "$TREE/mongo_session.go" "$TREE"/*_test.go "$TREE/go.mod" "$TREE/go.sum"
rm -rf "$TREE/example"
cp "$ROOT/benches/go/gosession_driver/main.go" "$GOPATH_DIR/src/gosession_driver/"
(cd "$GOPATH_DIR/src/gosession_driver" && GO111MODULE=off GOPATH="$GOPATH_DIR:/usr/share/gocode" \
  GOCACHE="$WORK/gocache" go build -o "$WORK/gosession_driver" .)
log "built the gosession driver"

# 2. tollgate's side.
(cd "$ROOT" && nice -n 10 $CARGO build --release --features redis --example redis_side_by_side -q)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
TOLLGATE="$TARGET/release/examples/redis_side_by_side"

# 3. one Redis server.
redis-server --port "$PORT" --bind 127.0.0.1 --daemonize yes --pidfile "$WORK/redis.pid" --save '' \
  --appendonly no --dir "$WORK" --logfile "$WORK/redis.log"
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$PORT" ping >/dev/null
log "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$PORT"

# usec_per_call and calls of one command in INFO commandstats ("- -" when absent).
cmdstat() {
  local line
  line="$(redis-cli -p "$PORT" info commandstats | tr -d '\r' | grep "^cmdstat_$1:" || true)"
  if [ -z "$line" ]; then echo "- -"; return; fi
  echo "$(echo "$line" | sed 's/.*usec_per_call=\([^,]*\).*/\1/') $(echo "$line" | sed 's/^[^:]*:calls=\([^,]*\).*/\1/')"
}

# 4. alternate: gosession, tollgate, gosession, tollgate.
RESULTS="$WORK/results"
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
  for side in gosession tollgate; do
    redis-cli -p "$PORT" flushall >/dev/null
    redis-cli -p "$PORT" config resetstat >/dev/null
    log "round $round: $side"
    if [ "$side" = gosession ]; then
      "$WORK/gosession_driver" -addr "127.0.0.1:$PORT" -seconds "$SECONDS_PER" > "$WORK/out"
    else
      TG_TEST_REDIS_PORT="$PORT" BENCH_SECONDS="$SECONDS_PER" "$TOLLGATE" > "$WORK/out"
    fi
    grep '^RESULT ' "$WORK/out" | sed "s/^RESULT /$round $side /" >> "$RESULTS"
    for cmd in evalsha exec get mget; do
      echo "$round $side CMD $cmd $(cmdstat "$cmd")" >> "$RESULTS"
    done
  done
done

# 5. the table.
echo
echo "tollgate / gosession on one Redis (127.0.0.1:$PORT), ${SECONDS_PER}s per operation, $ROUNDS rounds alternating"
awk -v rounds="$ROUNDS" '
  $3 != "CMD" { rate[$1, $2, $3, $4] = $5; p50[$1, $2, $3, $4] = $6; seen[$3, $4] = 1; if (!($3 SUBSEP $4 in order)) { order[$3, $4] = ++n; name[n] = $3 " " $4 } }
  $3 == "CMD" { usec[$1, $2, $4] = $5; calls[$1, $2, $4] = $6 }
  END {
    printf "%-18s", "operation, tasks"
    for (r = 1; r <= rounds; r++) printf " | round %d: tollgate/s  gosession/s  ratio  p50 us (t/g)", r
    printf "\n"
    for (i = 1; i <= n; i++) {
      split(name[i], f, " ")
      printf "%-18s", f[1] ", " f[2]
      for (r = 1; r <= rounds; r++) {
        # A variant of ours (revoke-read) is compared with the peer of its operation (revoke).
        peer = f[1]; sub(/-read$/, "", peer)
        t = rate[r, "tollgate", f[1], f[2]]; g = rate[r, "gosession", peer, f[2]]
        printf " | %20s %12s %6.2fx %8s/%-8s", t, g, (g > 0 ? t / g : 0), p50[r, "tollgate", f[1], f[2]], p50[r, "gosession", peer, f[2]]
      }
      printf "\n"
    }
    printf "\nRedis server time per call (INFO commandstats usec_per_call; calls), per run:\n"
    split("evalsha exec get mget", cmds, " ")
    for (r = 1; r <= rounds; r++)
      for (side = 1; side <= 2; side++) {
        who = (side == 1 ? "tollgate" : "gosession")
        line = ""
        for (c = 1; c <= 4; c++)
          if (usec[r, who, cmds[c]] != "-" && usec[r, who, cmds[c]] != "")
            line = line sprintf("  %s %s us (%s calls)", toupper(cmds[c]), usec[r, who, cmds[c]], calls[r, who, cmds[c]])
        printf "round %d %-9s%s\n", r, who, line
      }
  }' "$RESULTS"
