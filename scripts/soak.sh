#!/usr/bin/env bash
# A soak of the auth function: SOAK_LOGINS logins of mixed kinds (default 100,000: right and wrong
# passwords, unknown users, key logins, malformed payloads) through the release `auth` binary
# under a Lambda Runtime API, against DynamoDB Local and moto. Prints the rate, the wrong answers
# (must be none) and the function's resident memory after the first 1,000 logins and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
cargo build --release --locked -p auth -p ferry-tests --bin auth --bin soak-bench
ferry_services_start
echo "cores: $(nproc); logins: ${SOAK_LOGINS:-100000}"
target/release/soak-bench
