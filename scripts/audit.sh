#!/usr/bin/env bash
# Supply chain, offline: RustSec advisories, licenses, duplicate versions and sources of every
# crate any feature can pull in (deny.toml), checked by cargo-deny against a snapshot of the
# advisory database (nothing is fetched). The snapshot is found at $TOLLGATE_ADVISORY_SNAPSHOT,
# else in ../shared/data/ beside the checkout (or beside the checkout a local clone came from).
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
# cargo-deny keeps the default database in a directory named after its URL.
DB_DIR="${CARGO_HOME:-$HOME/.cargo}/tollgate-advisory-dbs/advisory-db-3157b0e258782691"

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]; then
    cargo install cargo-deny --version "$DENY_VERSION" --locked
fi

snapshot="${TOLLGATE_ADVISORY_SNAPSHOT:-}"
if [ -z "$snapshot" ]; then
    # Beside this checkout, or beside the checkout a local clone was made from.
    origin=$(git remote get-url origin 2>/dev/null || true)
    for dir in ../shared/data "${origin:+$origin/../shared/data}"; do
        [ -n "$dir" ] && [ -d "$dir" ] || continue
        snapshot=$(ls -1 "$dir"/rustsec-advisory-db-*.tar.gz 2>/dev/null | sort | tail -1 || true)
        [ -n "$snapshot" ] && break
    done
fi
if [ -z "$snapshot" ] || [ ! -f "$snapshot" ]; then
    echo "audit: no RustSec snapshot found (set TOLLGATE_ADVISORY_SNAPSHOT to a rustsec-advisory-db-*.tar.gz)" >&2
    exit 1
fi

# Unpack the snapshot as a one-commit git repository (cargo-deny reads the commit time as the
# database's date), again only when the snapshot changes.
stamp=$(sha256sum "$snapshot" | cut -d' ' -f1)
if [ "$(cat "$DB_DIR/.tollgate-snapshot" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$DB_DIR"
    mkdir -p "$DB_DIR"
    tar xzf "$snapshot" -C "$DB_DIR" --strip-components=1
    date=$(basename "$snapshot" .tar.gz | grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}$' || echo 1970-01-01)
    (cd "$DB_DIR" && git init -q && git add -A \
        && GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
           git -c user.name=snapshot -c user.email=snapshot@localhost commit -qm "RustSec snapshot $date")
    echo "$stamp" > "$DB_DIR/.tollgate-snapshot"
fi
echo "audit: RustSec snapshot $(basename "$snapshot"), $(find "$DB_DIR/crates" -name 'RUSTSEC-*.md' | wc -l) advisories"

# The database is really read: without deny.toml's accepted list, the accepted advisory fails.
no_ignores=$(mktemp)
trap 'rm -f "$no_ignores"' EXIT
sed '/^ignore = \[/,/^\]/d' deny.toml > "$no_ignores"
if cargo deny --offline --config "$no_ignores" check advisories >/dev/null 2>&1; then
    echo "audit: the check passed with no accepted advisories; the database was not read" >&2
    exit 1
fi

cargo deny --offline --log-level error check advisories bans licenses sources
dups=$(cargo deny --offline check bans 2>&1 | grep -oE "duplicate entries for crate '[^']+'" | cut -d"'" -f2 | tr '\n' ' ' || true)
echo "audit: crates present in two versions (allowed, listed): ${dups:-none}"
echo "audit: accepted advisories (deny.toml): $(grep -oE 'RUSTSEC-[0-9]{4}-[0-9]{4}' deny.toml | sort -u | tr '\n' ' ')"
