# shellcheck shell=bash
# A throwaway OpenLDAP directory for the directory identity-source tests (tests/tests/directory.rs)
# and the directory bench: installs Debian's slapd and ldap-utils when missing, makes a test CA
# and server certificate with openssl, writes a slapd.conf (mdb, the memberof overlay, the small
# schema in tests/ldap/ferry.schema), starts slapd on free 127.0.0.1 ports (LDAPS, and plain LDAP
# for StartTLS), loads tests/ldap/directory.ldif, and exports what the tests need (FERRY_LDAP_*).
# A second, empty slapd ("spare") is started for the tests that stop or freeze their directory,
# so the other tests, running at the same time, keep theirs. Everything lives in .local/slapd/
# and is made anew on each start; passwords are generated for the run. Source this file, then
# call ferry_slapd_start; ferry_slapd_stop runs on exit (after any exit trap already set).

FERRY_ROOT=${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FERRY_LOCAL=${FERRY_LOCAL:-$FERRY_ROOT/.local}
FERRY_LDAP_SUFFIX='dc=ferry,dc=test'

slapd_log() { printf '[slapd] %s\n' "$*" >&2; }

# Debian's package starts a system slapd on ports 389/636 after installing: it is stopped and
# disabled at once (this script never uses those ports either way).
ferry_slapd_install() {
    command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || {
        local sudo=''
        [ "$(id -u)" -ne 0 ] && sudo='sudo'
        slapd_log "installing slapd and ldap-utils from Debian"
        mkdir -p "$FERRY_LOCAL"
        $sudo apt-get update -q >/dev/null || { slapd_log "apt-get update failed"; return 1; }
        if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            slapd ldap-utils >"$FERRY_LOCAL/apt-slapd.log" 2>&1; then
            cat "$FERRY_LOCAL/apt-slapd.log" >&2
            slapd_log "apt-get install slapd ldap-utils failed: the directory tests need them"
            return 1
        fi
        $sudo systemctl disable --now slapd >/dev/null 2>&1 || true
        $sudo service slapd stop >/dev/null 2>&1 || true
    }
    command -v ldapadd >/dev/null 2>&1 || { slapd_log "ldap-utils is missing (ldapadd)"; return 1; }
    command -v openssl >/dev/null 2>&1 || { slapd_log "openssl is missing"; return 1; }
    command -v ssh-keygen >/dev/null 2>&1 || { slapd_log "ssh-keygen is missing"; return 1; }
}

slapd_bin() { command -v slapd 2>/dev/null || echo /usr/sbin/slapd; }

# Three distinct free ports, held together until all are known.
slapd_free_ports() {
    python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# A CA, a server certificate it signs for 127.0.0.1 and localhost, and a second CA that signed
# nothing (the "certificate that does not verify" case).
slapd_make_certs() { # dir
    local d=$1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=ferry test CA' \
        -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 || return 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=ferry unrelated CA' \
        -keyout "$d/wrong-ca.key" -out "$d/wrong-ca.pem" >/dev/null 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
        -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || return 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 2 -extfile "$d/server.ext" -out "$d/server.pem" >/dev/null 2>&1 || return 1
    chmod 600 "$d"/*.key
}

slapd_write_conf() { # dir rootpw-hash
    local d=$1 rootpw=$2
    mkdir -p "$d/db"
    cat >"$d/slapd.conf" <<EOF
# Idle connections are closed after 2 s, as directories close idle clients (AD after 15
# minutes): the tests see ferry's kept service connection made again.
idletimeout 2
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include $FERRY_ROOT/tests/ldap/ferry.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile $d/slapd.pid
argsfile $d/slapd.args
TLSCACertificateFile $d/ca.pem
TLSCertificateFile $d/server.pem
TLSCertificateKeyFile $d/server.key
database mdb
maxsize 104857600
suffix "$FERRY_LDAP_SUFFIX"
rootdn "cn=admin,$FERRY_LDAP_SUFFIX"
rootpw $rootpw
directory $d/db
overlay memberof
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by dn.exact="cn=ferry-svc,ou=services,$FERRY_LDAP_SUFFIX" read
    by self read
    by * none
EOF
}

slapd_wait() { # url pid name
    local i
    for i in $(seq 1 100); do
        if LDAPTLS_CACERT="$FERRY_LDAP_CA" ldapsearch -x -H "$1" -s base -b '' -LLL namingContexts \
            >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || { slapd_log "$3 exited during start-up; its log:"; cat "$FERRY_LOCAL/slapd/$3.log" >&2; return 1; }
        sleep 0.1
    done
    slapd_log "$3 did not answer on $1 within 10 s"
    return 1
}

ferry_slapd_start() {
    ferry_slapd_install || return 1
    local root="$FERRY_LOCAL/slapd" main spare ldaps_port ldap_port spare_port
    ferry_slapd_stop
    rm -rf "$root"
    main="$root/main" spare="$root/spare"
    mkdir -p "$main" "$spare"
    slapd_make_certs "$main" || { slapd_log "openssl could not make the test certificates"; return 1; }
    cp "$main"/ca.pem "$main"/server.pem "$main"/server.key "$spare"/
    FERRY_LDAP_CA="$main/ca.pem"
    # Passwords for this run only: the service account, the test users, the root DN.
    local svc_pw user_pw root_pw
    svc_pw=$(openssl rand -hex 16) user_pw=$(openssl rand -hex 16) root_pw=$(openssl rand -hex 16)
    slapd_write_conf "$main" "$(slappasswd -h '{SSHA}' -s "$root_pw")"
    slapd_write_conf "$spare" "$(slappasswd -h '{SSHA}' -s "$root_pw")"
    ssh-keygen -q -t ed25519 -N '' -C alice@ferry.test -f "$root/alice_key" >/dev/null || return 1
    read -r ldaps_port ldap_port spare_port < <(slapd_free_ports)
    # -d 0: in the foreground (its pid is ours to stop, freeze and wait for), logging nothing.
    "$(slapd_bin)" -d 0 -f "$main/slapd.conf" \
        -h "ldaps://127.0.0.1:$ldaps_port/ ldap://127.0.0.1:$ldap_port/" >"$root/main.log" 2>&1 &
    FERRY_SLAPD_PID=$!
    "$(slapd_bin)" -d 0 -f "$spare/slapd.conf" -h "ldaps://127.0.0.1:$spare_port/" \
        >"$root/spare.log" 2>&1 &
    FERRY_SLAPD_SPARE_PID=$!
    slapd_chain_exit_trap
    slapd_wait "ldaps://127.0.0.1:$ldaps_port" "$FERRY_SLAPD_PID" main || return 1
    slapd_wait "ldaps://127.0.0.1:$spare_port" "$FERRY_SLAPD_SPARE_PID" spare || return 1
    sed -e "s|@USER_HASH@|$(slappasswd -h '{SSHA}' -s "$user_pw")|" \
        -e "s|@SVC_HASH@|$(slappasswd -h '{SSHA}' -s "$svc_pw")|" \
        -e "s|@ALICE_KEY@|$(cat "$root/alice_key.pub")|" \
        "$FERRY_ROOT/tests/ldap/directory.ldif" >"$root/directory.ldif"
    if ! LDAPTLS_CACERT="$FERRY_LDAP_CA" ldapadd -x -H "ldaps://127.0.0.1:$ldaps_port" \
        -D "cn=admin,$FERRY_LDAP_SUFFIX" -w "$root_pw" -f "$root/directory.ldif" >"$root/load.log" 2>&1; then
        cat "$root/load.log" >&2
        slapd_log "loading tests/ldap/directory.ldif failed"
        return 1
    fi
    # The memberof overlay must have filled memberOf, or the group tests would test nothing.
    if ! LDAPTLS_CACERT="$FERRY_LDAP_CA" ldapsearch -x -H "ldaps://127.0.0.1:$ldaps_port" \
        -D "cn=admin,$FERRY_LDAP_SUFFIX" -w "$root_pw" -b "uid=alice,ou=people,$FERRY_LDAP_SUFFIX" \
        -s base -LLL memberOf 2>/dev/null | grep -q '^memberOf: cn=sftp-users'; then
        slapd_log "the memberof overlay did not fill memberOf"
        return 1
    fi
    export FERRY_LDAP_URL="ldaps://127.0.0.1:$ldaps_port"
    export FERRY_LDAP_STARTTLS_URL="ldap://127.0.0.1:$ldap_port"
    export FERRY_LDAP_SPARE_URL="ldaps://127.0.0.1:$spare_port"
    export FERRY_LDAP_SPARE_PID="$FERRY_SLAPD_SPARE_PID"
    export FERRY_LDAP_CA
    export FERRY_LDAP_WRONG_CA="$main/wrong-ca.pem"
    export FERRY_LDAP_BASE_DN="ou=people,$FERRY_LDAP_SUFFIX"
    export FERRY_LDAP_GROUP_DN="cn=sftp-users,ou=groups,$FERRY_LDAP_SUFFIX"
    export FERRY_LDAP_GROUP_BASE_DN="ou=groups,$FERRY_LDAP_SUFFIX"
    export FERRY_LDAP_BIND_DN="cn=ferry-svc,ou=services,$FERRY_LDAP_SUFFIX"
    export FERRY_LDAP_BIND_PASSWORD="$svc_pw"
    export FERRY_LDAP_USER_PASSWORD="$user_pw"
    export FERRY_LDAP_USER_KEY="$root/alice_key"
    export FERRY_TEST_SLAPD=1
    slapd_log "slapd on $FERRY_LDAP_URL (StartTLS on $FERRY_LDAP_STARTTLS_URL), spare on $FERRY_LDAP_SPARE_URL"
}

# Runs ferry_slapd_stop on exit, after whatever exit trap was already set (services.sh's).
slapd_chain_exit_trap() {
    local existing
    existing=$(trap -p EXIT)
    case "$existing" in *ferry_slapd_stop*) return 0 ;; esac
    if [ -n "$existing" ]; then
        eval "set -- $existing"
        # shellcheck disable=SC2064 # expanded now on purpose: the earlier trap's command
        trap "$3; ferry_slapd_stop" EXIT
    else
        trap ferry_slapd_stop EXIT
    fi
}

ferry_slapd_stop() {
    local pid
    for pid in ${FERRY_SLAPD_PID:-} ${FERRY_SLAPD_SPARE_PID:-}; do
        # A frozen slapd (a test's SIGSTOP) would never see the TERM.
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    FERRY_SLAPD_PID='' FERRY_SLAPD_SPARE_PID=''
}
