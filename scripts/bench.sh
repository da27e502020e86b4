#!/usr/bin/env bash
# Auth benchmark: starts DynamoDB Local and moto, builds the auth binary and the bench in the
# release profile, and prints the figures. BENCH_ITERATIONS=N scales the sample counts.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
ferry_services_start
cargo build --release --locked -p auth -p ferry-tests --bin auth --bin auth-bench
target/release/auth-bench
