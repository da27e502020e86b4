#!/usr/bin/env bash
# Upload-processor benchmark: starts DynamoDB Local and moto, builds the bench with optimisation,
# and prints the processor's throughput on a 1 GiB object (data folder and S3 emulator) next to
# `openssl dgst -sha256`, with its peak memory. BENCH_BYTES=N changes the object size.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
command -v openssl >/dev/null || { echo "bench-upload: openssl is needed as the bar" >&2; exit 1; }
ferry_services_start
cargo build --profile bench-fast --locked -p ferry-tests --bin upload-bench
target/bench-fast/upload-bench
