#!/usr/bin/env bash
# The one test command: installs what is missing (into .local/), starts DynamoDB Local and moto
# on free 127.0.0.1 ports, runs every test of the workspace against them, and stops them again,
# also when something fails. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh

ferry_services_start
status=0
# The end-to-end suites run the real function binaries, so build them first.
cargo build --workspace --bins --locked || status=$?
[ "$status" -eq 0 ] && cargo test --workspace --all-targets --locked "$@" || status=$?
# Doc tests are not covered by --all-targets.
if [ "$status" -eq 0 ] && [ $# -eq 0 ]; then
    cargo test --workspace --doc --locked || status=$?
fi
exit "$status"
