#!/usr/bin/env bash
# Fuzzes every parser at a trust boundary (shared/fuzz/fuzz_targets/) with cargo fuzz (libFuzzer,
# nightly, AddressSanitizer). Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   scripts/fuzz.sh            five minutes per target (the long run)
#   scripts/fuzz.sh 5          the short run the test command does
# Each corpus is seeded from events/ and shared/fuzz/seeds/ and grows in .local/fuzz/corpus/.
# A crash fails the run; its input is kept in shared/fuzz/artifacts/<target>/ and printed. Prints
# one line per target: executions, coverage (libFuzzer's cov: edges), corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-300}
shift || true
CARGO_FUZZ_VERSION=0.13.1
LOCAL=${FERRY_LOCAL:-$PWD/.local}
log() { printf '[fuzz] %s\n' "$*" >&2; }

rustup toolchain list | grep -q '^nightly' || { log "cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)"; exit 1; }
if ! "$LOCAL/cargo-fuzz/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into $LOCAL/cargo-fuzz"
    cargo install --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$LOCAL/cargo-fuzz"
fi
export PATH="$LOCAL/cargo-fuzz/bin:$PATH"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd shared && cargo fuzz list)

# Seeds: the sample events every test shares, and hand-written seeds for the rest.
seed_dirs() { # target -> directories
    case "$1" in
        transfer_request) echo events/auth ;;
        stream_record) echo events/policy-validator ;;
        upload_event) echo events/upload-processor ;;
    esac
    [ -d "shared/fuzz/seeds/$1" ] && echo "shared/fuzz/seeds/$1"
    return 0
}

log "building ${#targets[@]} targets (nightly, release with debug assertions, ASan)"
(cd shared && cargo +nightly fuzz build --debug-assertions >/dev/null)

summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$LOCAL/fuzz/corpus/$t"
    mkdir -p "$corpus" "shared/fuzz/artifacts/$t"
    mapfile -t seeds < <(seed_dirs "$t")
    out="$LOCAL/fuzz/$t.log"
    seed_paths=()
    for s in "${seeds[@]}"; do seed_paths+=("$PWD/$s"); done
    if (cd shared && cargo +nightly fuzz run --debug-assertions "$t" "$corpus" "${seed_paths[@]}" -- \
            -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
            -print_final_stats=1) >"$out" 2>&1; then
        verdict=ok
    else
        verdict=CRASH
        failed=1
        log "$t: crashed; the input and trace:"
        grep -E "panicked|ERROR|SUMMARY|artifact_prefix|Test unit written" "$out" | head -n 20 >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$out" | tail -n 1 | cut -d' ' -f2)
    files=$(find "$corpus" -type f | wc -l)
    summary+=("$(printf '%-18s %-6s %10s execs %7s cov %6s corpus' "$t" "$verdict" "${execs:-?}" "${cov:-?}" "$files")")
done
echo "fuzzing, ${SECONDS_PER_TARGET} s per target, $(nproc) cores:"
printf '  %s\n' "${summary[@]}"
exit "$failed"
