#!/usr/bin/env bash
# Directory login benchmark: starts the test OpenLDAP (scripts/lib/slapd.sh), builds the bench
# in the bench-fast profile, and prints a directory login's p50 and p99 beside a local Argon2
# login's. BENCH_ITERATIONS=N sets the sample count (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/slapd.sh
source scripts/lib/slapd.sh
ferry_slapd_start
cargo build --profile bench-fast --locked -p ferry-tests --bin directory-bench
target/bench-fast/directory-bench
