#!/usr/bin/env bash
# Load on `ferry up` (release build), on the data folder and with --aws on DynamoDB Local and
# moto: LOAD_SESSIONS SFTP sessions at once (default 50) uploading and reading back random files
# of 64 KiB to 4 MiB for LOAD_SECONDS (default 180) each, every byte checked by SHA-256; the
# server's resident memory after 10 % of the run and at the end; logins per second under that
# load. LOAD_STORES="local aws" by default. Prints figures; fails only on a failed operation or a
# corrupt byte, never on time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
cargo build --release --locked -p ferry -p ferry-tests --bin ferry --bin load-bench
ferry_services_start
# Fifty sessions and a login loop hold well over a hundred descriptors in each process.
ulimit -n 4096
echo "cores: $(nproc); sessions: ${LOAD_SESSIONS:-50}; seconds per store: ${LOAD_SECONDS:-180}"
target/release/load-bench
