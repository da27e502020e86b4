#!/usr/bin/env bash
# SFTP throughput: a file (1 GiB by default, BENCH_SFTP_MB to change) goes up and comes back
# through `ferry up` and through OpenSSH's own sftp-server behind a private sshd on 127.0.0.1,
# with the same client, key and cipher negotiation; a listing of a folder of 100,000 files
# (BENCH_LIST_NAMES to change) through both, the same folder on disk; then logins per second
# through `ferry up`.
# Installs openssh-server with apt-get if sshd is missing. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${BENCH_SFTP_MB:-1024}
LOGINS=${BENCH_LOGINS:-50}
NAMES=${BENCH_LIST_NAMES:-100000}

if [ ! -x /usr/sbin/sshd ]; then
    echo "[bench] installing openssh-server for the reference sftp-server" >&2
    (apt-get install -y -q openssh-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q openssh-server >/dev/null; })
fi
cargo build --release --locked -p ferry
ferry=target/release/ferry

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

ssh-keygen -q -t ed25519 -N "" -f "$work/id"
head -c "${MB}M" /dev/urandom > "$work/file.bin"

# ferry up, with a key-only user.
# ferry up picks its port and says it ("SFTP on 127.0.0.1:PORT"), so nothing can take it first.
"$ferry" up --data "$work/data" --listen 127.0.0.1:0 >/dev/null 2>"$work/ferry.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "SFTP on" "$work/ferry.err" 2>/dev/null && break; sleep 0.1; done
fport=$(sed -n 's/.*SFTP on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/ferry.err")
[ -n "$fport" ] || { echo "ferry up did not start:" >&2; cat "$work/ferry.err" >&2; exit 1; }
"$ferry" --local "$work/data" user add bench --home bench --no-password --key "$work/id.pub" 2>/dev/null
ferry_pid=${pids[0]}

# A private sshd serving OpenSSH's sftp-server.
sport=$(free_port)
mkdir -p /run/sshd "$work/sshd"
ssh-keygen -q -t ed25519 -N "" -f "$work/sshd/host"
cp "$work/id.pub" "$work/sshd/authorized_keys"
mkdir -p "$work/home"
cat > "$work/sshd/config" <<CONF
Port $sport
ListenAddress 127.0.0.1
HostKey $work/sshd/host
AuthorizedKeysFile $work/sshd/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $work/sshd/pid
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
/usr/sbin/sshd -D -e -f "$work/sshd/config" 2>"$work/sshd/log" &
pids+=($!)
sleep 0.5

sftp_run() { # port user batch
    sftp -q -P "$1" -i "$work/id" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -b "$3" "$2@127.0.0.1" >/dev/null
}
measure() { # name port user remote-dir
    local put get t0 t1 t2
    printf 'put %s %s/bench.bin\n' "$work/file.bin" "$4" > "$work/put"
    printf 'get %s/bench.bin %s\n' "$4" "$work/back.bin" > "$work/get"
    t0=$(date +%s.%N); sftp_run "$2" "$3" "$work/put"
    t1=$(date +%s.%N); sftp_run "$2" "$3" "$work/get"
    t2=$(date +%s.%N)
    cmp -s "$work/file.bin" "$work/back.bin" || { echo "[bench] $1: the round trip changed bytes" >&2; exit 1; }
    rm -f "$work/back.bin"
    put=$(python3 -c "print(f'{$MB/($t1-$t0):.1f}')"); get=$(python3 -c "print(f'{$MB/($t2-$t1):.1f}')")
    echo "$put $get"
}
# The listing first, so that the memory it takes is not hidden under the transfers' peak. Flat
# memory means listing ten times the names leaves the same peak: a folder of NAMES/10 files is
# listed after a warm-up session, then the folder of NAMES.
mk_folder() { # dir count
    mkdir -p "$1"
    python3 -c "import sys; [open(f'{sys.argv[1]}/file-{n:06}.txt', 'w').close() for n in range(int(sys.argv[2]))]" "$1" "$2"
}
big="$work/data/objects/ferry-local/bench/big"
small="$work/data/objects/ferry-local/bench/small"
mk_folder "$big" "$NAMES"
mk_folder "$small" $((NAMES / 10))
list() { # port user remote-dir expected -> seconds
    local t0 t1 n
    printf 'ls -1 %s\n' "$3" > "$work/ls"
    t0=$(date +%s.%N)
    n=$(sftp -q -P "$1" -i "$work/id" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -b "$work/ls" "$2@127.0.0.1" | grep -c 'file-')
    t1=$(date +%s.%N)
    [ "$n" -eq "$4" ] || { echo "[bench] listing on port $1 showed $n names, not $4" >&2; exit 1; }
    python3 -c "print(f'{$t1-$t0:.3f}')"
}
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$ferry_pid/status"; }
printf 'pwd\n' > "$work/pwd"
sftp_run "$fport" bench "$work/pwd"
warm=$(hwm)
list "$fport" bench /ferry-local/bench/small $((NAMES / 10)) >/dev/null
small_peak=$(hwm)
f_ls=$(list "$fport" bench /ferry-local/bench/big "$NAMES")
listing_peak=$(hwm)
o_ls=$(list "$sport" "$(whoami)" "$big" "$NAMES")
rm -rf "$big" "$small"

read -r f_put f_get < <(measure "ferry up" "$fport" bench /ferry-local/bench)
read -r o_put o_get < <(measure "OpenSSH" "$sport" "$(whoami)" "$work/home")
peak=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$ferry_pid/status")

t0=$(date +%s.%N)
for _ in $(seq 1 "$LOGINS"); do sftp_run "$fport" bench "$work/pwd"; done
t1=$(date +%s.%N)
rate=$(python3 -c "print(f'{$LOGINS/($t1-$t0):.1f}')")

echo "SFTP throughput, ${MB} MiB file, $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
printf '%-34s upload %8s MiB/s   download %8s MiB/s\n' "ferry up (release)" "$f_put" "$f_get" "OpenSSH sftp-server via sshd" "$o_put" "$o_get"
python3 -c "print(f'ferry / OpenSSH: upload {$f_put/$o_put:.2f}x, download {$f_get/$o_get:.2f}x')"
echo "ferry up peak resident memory: ${peak} MiB"
echo "Listing a folder of $NAMES files (one sftp session, login included, ls -1):"
python3 - "$NAMES" "$f_ls" "$o_ls" <<PY
import sys
n, f, o = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"{'ferry up (release)':34} {n / f:10.0f} names/s   ({f:.2f} s)")
print(f"{'OpenSSH sftp-server via sshd':34} {n / o:10.0f} names/s   ({o:.2f} s)")
print(f"ferry / OpenSSH: {o / f:.2f}x")
PY
echo "ferry up peak resident memory: ${warm} MiB after one session, ${small_peak} MiB after listing $((NAMES / 10)) names, ${listing_peak} MiB after listing $NAMES"
echo "sequential key logins through ferry up (one sftp process each): ${rate}/s over ${LOGINS}"
