#!/usr/bin/env bash
# Instructions per HS256 access-token verify (examples/verify_cost.rs) under
# `valgrind --tool=callgrind`, next to a bare pre-keyed HMAC-SHA-256 of the same signing
# input (the floor) and jsonwebtoken's `decode` (the common peer). Instruction counts do
# not move with the machine's load, so the ratios hold on a busy machine.
# Each mode runs twice, N and 2N verifies; (I(2N) - I(N)) / N leaves set-up out.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${VERIFY_COST_N:-2000}"
command -v valgrind >/dev/null || {
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
}
cargo build --locked --release --example verify_cost
bin=target/release/examples/verify_cost
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
instructions() { # mode count
  valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" "$1" "$2" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  sed -n 's/^summary: \([0-9]*\).*/\1/p' "$work/out"
}
declare -A per
for mode in hmac tollgate jsonwebtoken; do
  one=$(instructions "$mode" "$N")
  two=$(instructions "$mode" $((2 * N)))
  per[$mode]=$(( (two - one) / N ))
done
printf '%-34s %12s %10s\n' "HS256 verify of one token" "instr/op" "vs floor"
for mode in hmac tollgate jsonwebtoken; do
  awk -v m="$mode" -v i="${per[$mode]}" -v f="${per[hmac]}" 'BEGIN { printf "%-34s %12d %9.2fx\n", m, i, f / i }'
done
awk -v t="${per[tollgate]}" -v j="${per[jsonwebtoken]}" 'BEGIN { printf "tollgate does one verify in %.2fx the instructions of jsonwebtoken::decode (%.2fx faster)\n", t / j, j / t }'
