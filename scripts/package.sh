#!/usr/bin/env bash
# Packaging checks, run by scripts/test.sh (after scripts/test-js.sh, which builds pkg/):
#   1. the crate as `cargo package` makes it (the publish dry run): the files it must carry are
#      inside, the ones it must not are not, and the packaged crate builds with serve, Redis and
#      OpenTelemetry (cargo's own verification build);
#   2. the npm package: `npm pack`'s file list is exactly packaging/npm-files.txt, and every file
#      package.json's exports name is in it;
#   3. a static x86_64-unknown-linux-musl binary (dev profile: a release build takes several
#      times longer here, and this checks the linking, not the speed): ldd finds no dynamic
#      section, --version answers, serve on the memory store answers /healthz, signs a session in,
#      verifies it and exits 0 on SIGTERM;
#   4. packaging/tollgate.service: `systemd-analyze verify` reports nothing, and the hardening
#      options are in it.
# There is no Dockerfile: this machine has no docker daemon to build or run an image with.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n[package.sh] %s\n' "$*" >&2; }
fail() { printf '[package.sh] FAILED: %s\n' "$*" >&2; exit 1; }
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_install() { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null; }

WORK="$(mktemp -d)"
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "1. cargo package: contents, and the packaged crate builds (features server, redis, otel)"
# --allow-dirty: a working tree with changes is checked as it is (CI's fresh clone is clean).
cargo package --locked --allow-dirty --list > "$WORK/crate-files"
for needed in Cargo.toml Cargo.lock README.md src/lib.rs src/bin/tollgate.rs src/store/redis/commit.lua docs/openapi.json; do
  grep -qx "$needed" "$WORK/crate-files" || fail "the crate lacks $needed"
done
if grep -E '^(js|scripts|\.ci|target|node_modules)/' "$WORK/crate-files"; then
  fail "the crate carries files it does not need (above)"
fi
cargo package --locked --allow-dirty --features server,redis,otel 2>&1 | grep -E '^ *(Packaged|Verifying|Finished|error|warning)' >&2
crate="target/package/tollgate-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1).crate"
[ -f "$crate" ] || fail "no $crate"
echo "[package.sh] crate: $(wc -l < "$WORK/crate-files") files, $(du -k "$crate" | cut -f1) KiB compressed; verified by building it" >&2

step "2. npm pack of pkg/: the file list is packaging/npm-files.txt"
[ -f pkg/tollgate_bg.wasm ] || bash scripts/build-npm.sh
(cd pkg && npm pack --dry-run --json 2>/dev/null) > "$WORK/npm-pack.json"
python3 - "$WORK/npm-pack.json" packaging/npm-files.txt pkg/package.json <<'PY'
import json, sys
packed = {f["path"] for f in json.load(open(sys.argv[1]))[0]["files"]}
expected = {l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")}
missing, unexpected = sorted(expected - packed), sorted(packed - expected)
if missing or unexpected:
    sys.exit(f"[package.sh] FAILED: npm pack: missing {missing}, unexpected {unexpected}")
manifest = json.load(open(sys.argv[3]))
def targets(v):
    if isinstance(v, str): yield v
    elif isinstance(v, dict):
        for x in v.values(): yield from targets(x)
named = {t.removeprefix("./") for t in targets(manifest.get("exports", {}))} | {manifest["main"].removeprefix("./"), manifest["types"].removeprefix("./")}
absent = sorted(named - packed)
if absent:
    sys.exit(f"[package.sh] FAILED: package.json names files the tarball lacks: {absent}")
print(f"[package.sh] npm pack: the {len(packed)} expected files, every export present", file=sys.stderr)
PY

step "3. static binary for x86_64-unknown-linux-musl (dev profile), run"
rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
command -v musl-gcc >/dev/null || apt_install musl-tools
command -v curl >/dev/null || apt_install curl
cargo build --locked -q --target x86_64-unknown-linux-musl --features server,redis,otel --bin tollgate
bin=target/x86_64-unknown-linux-musl/debug/tollgate
ldd_says=$(ldd "$bin" 2>&1 | xargs || true)
case "$ldd_says" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) fail "the musl binary is dynamic: $ldd_says" ;;
esac
version=$("$bin" --version)
[ "$version" = "tollgate $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ] || fail "--version answered: $version"
api_key=package-check-api-key-0123
env -i PATH=/usr/bin:/bin TOLLGATE_STORE=memory TOLLGATE_LISTEN=127.0.0.1:0 TOLLGATE_ADMIN_LISTEN=off \
  TOLLGATE_SECRET=package-check-secret-of-32-bytes-or-more TOLLGATE_API_KEYS=$api_key \
  "$bin" serve > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's|^tollgate listening on http://||p' "$WORK/serve.out")
[ -n "$addr" ] || fail "the musl binary did not listen: $(cat "$WORK/serve.err")"
[ "$(curl -sf "http://$addr/healthz")" = '{"status":"ok"}' ] || fail "/healthz did not answer ok"
token=$(curl -sf -X POST "http://$addr/v1/sessions" -H "X-Api-Key: $api_key" -H 'Content-Type: application/json' -d '{"user":"musl"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf -X POST "http://$addr/v1/verify" -H 'Content-Type: application/json' -d "{\"token\":\"$token\",\"mode\":\"strict\"}" \
  | grep -q '"sub":"musl"' || fail "the session did not verify"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "serve exited with $? after SIGTERM"
SERVE_PID=""
echo "[package.sh] $bin: static ($ldd_says), $(du -m "$bin" | cut -f1) MiB; --version, /healthz, sign-in, strict verify, SIGTERM exit 0" >&2

step "4. packaging/tollgate.service: systemd-analyze verify, hardening options"
command -v systemd-analyze >/dev/null || apt_install systemd
# verify checks that ExecStart exists: the copy points at the binary just built.
sed "s|/usr/local/bin/tollgate|$PWD/$bin|" packaging/tollgate.service > "$WORK/tollgate.service"
verify_says=$(systemd-analyze verify "$WORK/tollgate.service" 2>&1) || fail "systemd-analyze verify: $verify_says"
[ -z "$verify_says" ] || fail "systemd-analyze verify: $verify_says"
for option in DynamicUser=yes NoNewPrivileges=yes ProtectSystem=strict StateDirectory=tollgate PrivateTmp=yes \
  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" SystemCallFilter=@system-service CapabilityBoundingSet= ; do
  grep -qx "$option" packaging/tollgate.service || fail "the unit lacks $option"
done
echo "[package.sh] the unit verifies ($(systemd-analyze --version | head -1)) and carries its hardening options" >&2

echo "[package.sh] all packaging checks passed" >&2
