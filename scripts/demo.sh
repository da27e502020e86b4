#!/usr/bin/env bash
# The local stack as it stands: DynamoDB Local and moto on 127.0.0.1, the real auth Lambda
# binary behind a local Lambda Runtime API, a demo user, and a few logins shown as Transfer
# Family would see them. Stops everything when done.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
ferry_services_start
cargo build --release --locked -p auth -p ferry-tests --bin auth --bin auth-demo
target/release/auth-demo
