#!/usr/bin/env bash
# Parallel password guesses against `ferry up` (release, data folder, default bounds but for the
# per-source cap, since every guess comes from 127.0.0.1): peak memory of the server and how
# long a right password waits meanwhile. BENCH_GUESSES=N (default 500). Prints figures; asserts
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
GUESSES=${BENCH_GUESSES:-500}
cargo build --release --locked -p ferry -p ferry-tests --bin ferry --bin guess-bench
ferry=target/release/ferry

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Enough descriptors for every guess's connection, and no per-source cap in the way: the bench
# measures what the guesses cost, not how soon the front door turns them away.
ulimit -n 4096
"$ferry" up --data "$work/data" --listen 127.0.0.1:0 --no-processing \
    --max-connections $((GUESSES + 100)) --max-connections-per-source $((GUESSES + 100)) \
    >/dev/null 2>"$work/ferry.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "SFTP on" "$work/ferry.err" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*SFTP on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/ferry.err")
password=$(sed -n 's/.*created user demo with password \([^ ]*\) .*/\1/p' "$work/ferry.err")
[ -n "$port" ] && [ -n "$password" ] || { echo "ferry up did not start:" >&2; cat "$work/ferry.err" >&2; exit 1; }
echo "cores: $(nproc); password checks at once: one per core (the default)"
target/release/guess-bench "$port" "$pid" "$password" "$GUESSES"
