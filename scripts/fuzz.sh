#!/usr/bin/env bash
# cargo-fuzz targets (fuzz/fuzz_targets): JWT verify, refresh-token parsing, record decoding,
# HTTP request -> route -> response, the configuration readers. Each runs for FUZZ_SECONDS
# (10 by default: the CI slice), from seeds written by examples/fuzz_seeds.rs (real tokens,
# records, requests, settings) plus what earlier runs found in fuzz/corpus/. A crash fails the
# script; its input is kept in fuzz/artifacts/<target>/. Longer by hand:
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${FUZZ_SECONDS:-10}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(jwt_verify refresh_token record_decode http_request config_sources)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $FUZZ_VERSION" ]; then
    cargo install cargo-fuzz --version "$FUZZ_VERSION" --locked
fi

nice -n 10 cargo run --quiet --locked --example fuzz_seeds -- fuzz/corpus
# No sanitizer: the crate forbids unsafe code, so ASan finds nothing a panic would not; debug
# assertions on, so arithmetic overflow is a crash.
FLAGS=(--sanitizer none --debug-assertions)
nice -n 10 cargo +nightly fuzz build "${FLAGS[@]}"

failed=0
for target in "${TARGETS[@]}"; do
    log="fuzz/artifacts/$target.log"
    mkdir -p "fuzz/artifacts/$target"
    if nice -n 10 cargo +nightly fuzz run "${FLAGS[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (input in fuzz/artifacts/$target/, log $log)"
        failed=1
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    corpus=$(ls "fuzz/corpus/$target" | wc -l)
    echo "fuzz: $target: $runs executions in ${SECONDS_PER_TARGET}s, corpus $corpus inputs: $result"
done
exit "$failed"
