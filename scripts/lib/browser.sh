# shellcheck shell=bash
# The browser suite's tools (tests/tests/console.rs): Debian's chromium, installed with apt-get
# only when /usr/bin/chromium is missing, and playwright-core from tests/browser's lockfile
# (`npm ci`, into tests/browser/node_modules; playwright's own browser download is never used).
# Sourced after scripts/lib/services.sh (log, need, FERRY_LOCAL).
ferry_browser_install() {
    local sudo=''
    [ "$(id -u)" -ne 0 ] && sudo='sudo'
    if [ ! -x /usr/bin/chromium ]; then
        mkdir -p "$FERRY_LOCAL"
        log "installing Debian's chromium for the console's browser suite"
        $sudo apt-get update -q >/dev/null || { log "apt-get update failed (needed for chromium)"; return 1; }
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            chromium fonts-dejavu-core >"$FERRY_LOCAL/apt-chromium.log" 2>&1; then
            cat "$FERRY_LOCAL/apt-chromium.log" >&2
            log "apt-get install chromium failed: tests/tests/console.rs needs it"
            return 1
        fi
    fi
    need node "node runs the console's browser driver (tests/browser/console.mjs)" || return 1
    need npm "npm installs playwright-core for the browser driver" || return 1
    # Again only when the lockfile changed since the last install.
    local stamp=tests/browser/node_modules/.ferry-lock
    if [ ! -f "$stamp" ] || ! cmp -s tests/browser/package-lock.json "$stamp"; then
        log "installing playwright-core (npm ci in tests/browser)"
        (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >/dev/null) \
            || { log "npm ci in tests/browser failed"; return 1; }
        cp tests/browser/package-lock.json "$stamp"
    fi
}
