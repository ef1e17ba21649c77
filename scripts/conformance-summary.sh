#!/usr/bin/env bash
# Prints one line per store from the log the native conformance harness writes
# (tests/conformance/mod.rs: store, case, outcome, reason; tab-separated), as the JS harnesses
# print theirs (js/test/conformance-runner.mjs):
#   conformance: redis-sentinel: 22 passed, 2 skipped (needs consistent reads: a, b)
# Exits non-zero when the log is missing or empty, or a case failed.
set -euo pipefail
log=${1:?usage: conformance-summary.sh LOGFILE}
if [ ! -s "$log" ]; then
  echo "conformance: no outcomes in $log: the suite did not run" >&2
  exit 1
fi
sort -t "$(printf '\t')" -k1,1 -k2,2 "$log" | awk -F '\t' '
  !($1 in seen) { seen[$1] = 1; order[++stores] = $1 }
  $3 == "passed" { passed[$1]++ }
  $3 == "failed" { failed[$1]++; failures[$1] = failures[$1] (failures[$1] == "" ? "" : ", ") $2; bad = 1 }
  $3 == "skipped" {
    skipped[$1]++
    key = $1 SUBSEP $4
    if (!(key in names)) { reasons[$1, ++nreasons[$1]] = $4; names[key] = "" }
    names[key] = names[key] (names[key] == "" ? "" : ", ") $2
  }
  $3 != "passed" && $3 != "failed" && $3 != "skipped" { print "conformance: unreadable log line: " $0; bad = 1 }
  END {
    for (i = 1; i <= stores; i++) {
      s = order[i]
      line = "conformance: " s ": " (passed[s] + 0) " passed"
      if (failed[s]) line = line ", " failed[s] " failed (" failures[s] ")"
      if (skipped[s]) {
        line = line ", " skipped[s] " skipped ("
        for (j = 1; j <= nreasons[s]; j++) line = line (j > 1 ? "; " : "") reasons[s, j] ": " names[s SUBSEP reasons[s, j]]
        line = line ")"
      }
      print line
    }
    exit bad
  }'
