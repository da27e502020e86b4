#!/usr/bin/env bash
# The one test command: installs what is missing (into .local/), starts DynamoDB Local and moto
# on free 127.0.0.1 ports, runs every test of the workspace against them, and stops them again,
# also when something fails. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
# shellcheck source=lib/browser.sh
source scripts/lib/browser.sh
# shellcheck source=lib/slapd.sh
source scripts/lib/slapd.sh

ferry_services_start
# The directory suite (tests/tests/directory.rs) runs against a throwaway OpenLDAP, installed
# from Debian's packages when missing, on free loopback ports; stopped on exit like the others.
ferry_slapd_start
# The deployment template must pass all three checkers: cfn-lint (any error or warning fails),
# SAM's own validation with its linter, and the checkov security scan (every finding fixed, or
# skipped in the template with its reason). All run offline.
# checkov judges only the resources whose conditions hold under the parameter defaults, so the
# API Gateway variant (API, invocation role, WAF) is checked from a copy that defaults to it.
ferry_lint_install
api_variant="$FERRY_LOCAL/template-api-gateway.yaml"
sed 's/^    Default: AWS_LAMBDA$/    Default: API_GATEWAY/' infra/template.yaml >"$api_variant"
grep -q '^    Default: API_GATEWAY$' "$api_variant" || { log "no IdentityProviderType default to switch"; exit 1; }
for template in infra/template.yaml "$api_variant"; do
    AWS_DEFAULT_REGION=us-east-1 "$FERRY_LOCAL/lint/bin/cfn-lint" "$template"
    AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 "$FERRY_LOCAL/sam/bin/sam" validate --lint \
        --template-file "$template" >/dev/null
    "$FERRY_LOCAL/checkov/bin/checkov" --quiet --compact --skip-download -f "$template" >/dev/null
done
log "infra/template.yaml (AWS_LAMBDA and API_GATEWAY): cfn-lint, sam validate --lint and checkov clean"
# The supply chain (deny.toml): duplicate versions, licences and sources must pass; advisories
# are checked when the RustSec database can be had, and a loud line says so when it cannot.
scripts/deny.sh
log_file="$FERRY_LOCAL/test-output.log"
rm -f "$log_file"
status=0
# The interop suite drives real SFTP clients (psftp, lftp, rclone, curl, paramiko).
ferry_clients_install || status=$?
# The console's browser suite drives Debian's chromium through playwright-core.
[ "$status" -eq 0 ] && { ferry_browser_install || status=$?; }
# The end-to-end suites run the real function binaries, so build them first.
[ "$status" -eq 0 ] && { cargo build --workspace --bins --locked || status=$?; }
if [ "$status" -eq 0 ]; then
    cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log_file" || status=$?
fi
# A short run of every fuzz target (seconds each; the long run is `scripts/fuzz.sh` alone): any
# crash fails the run, with its input kept in shared/fuzz/artifacts/.
if [ "$status" -eq 0 ]; then
    scripts/fuzz.sh "${FERRY_FUZZ_SECONDS:-5}" || status=$?
fi
# One closing line for the whole run, summed over every test binary.
if [ -f "$log_file" ]; then
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { printf "tests: %d passed, %d failed\n", p, f }' "$log_file"
fi
exit "$status"
