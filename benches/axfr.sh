#!/usr/bin/env bash
# Zone transfer benchmark (issue 15): AXFR of a large zone from knotd and from waypost,
# server pinned to one CPU and kdig to the other, alternated in one run; then the CPU
# per answered UDP query of waypost's UDP worker with and without AXFRs running.
#
# Usage: benches/axfr.sh
#
# Environment (all optional):
#   RECORDS=100000        records in the generated zone (A, AAAA, TXT, MX and NS mixed)
#   ROUNDS=5              AXFRs per server, interleaved
#   DURATION=10           seconds of each dnsperf run (second part)
#   WAYPOST=target/release/waypost  KNOTD=knotd
#   SERVER_CPU=0 CLIENT_CPU=1
#   KEEP=0                1 = keep the work dir
#
# Figures: wall time of each AXFR as kdig sees it (first byte sent to last byte read),
# and the server's utime+stime over it (from /proc). CPU per UDP query: the utime+stime
# of waypost's `udp-0` thread over a dnsperf run ÷ queries completed.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
RECORDS=${RECORDS:-100000}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WAYPOST=${WAYPOST:-$ROOT/target/release/waypost}
KNOTD=${KNOTD:-knotd}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEEP=${KEEP:-0}
ZONE=axfr.test
HZ=$(getconf CLK_TCK)

die() { echo "axfr.sh: $*" >&2; exit 2; }
for t in kdig dnsperf taskset python3 "$KNOTD"; do command -v "$t" >/dev/null || die "$t not found"; done
[[ -x $WAYPOST ]] || die "no waypost binary at $WAYPOST (cargo build --release)"

W=$(mktemp -d /tmp/waypost-axfr.XXXXXX)
declare -A PID
cleanup() {
    for p in "${PID[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ $KEEP == 1 ]] && echo "work dir kept: $W" || rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/zones"
python3 - "$W/zones/$ZONE.zone" "$RECORDS" "$ZONE" <<'EOF'
import sys
path, n, zone = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write(f"$ORIGIN {zone}.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n")
    i, written = 0, 5
    while written < n:
        h = f"h{i}"
        kind = i % 5
        if kind == 0:
            f.write(f"{h} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
        elif kind == 1:
            f.write(f"{h} AAAA 2001:db8::{i >> 16:x}:{i & 0xffff:x}\n")
        elif kind == 2:
            f.write(f'{h} TXT "record {i} of a large zone"\n')
        elif kind == 3:
            f.write(f"{h} MX 10 mail{i % 100}\n")
        else:
            f.write(f"sub{i} NS ns.sub{i}\nns.sub{i} A 10.200.{(i >> 8) & 255}.{i & 255}\n")
            written += 1
        written += 1
        i += 1
EOF
python3 - "$W/queries" "$ZONE" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(0, 20000):
        f.write(f"h{i * 5 % 100000}.{sys.argv[2]}. A\n")
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KPORT=$(free_port); WPORT=$(free_port)

mkdir -p "$W/knotd/run" "$W/knotd/db"
cat >"$W/knotd/knot.conf" <<EOF
server:
    rundir: "$W/knotd/run"
    listen: 127.0.0.1@$KPORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$W/knotd/db"
acl:
  - id: all
    address: 127.0.0.1
    action: transfer
zone:
  - domain: $ZONE
    storage: "$W/zones"
    file: "$ZONE.zone"
    journal-content: none
    zonefile-sync: -1
    acl: all
EOF
cat >"$W/waypost.toml" <<EOF
version = 1
[server]
zones-dir = "zones"
dns-listen = ["127.0.0.1:$WPORT"]
http-listen = "127.0.0.1:0"
udp-workers = 1
max-zone-records = $((RECORDS * 2))
[transfer]
allow = [{ network = "127.0.0.1" }]
EOF
taskset -c "$SERVER_CPU" "$KNOTD" -c "$W/knotd/knot.conf" >"$W/knotd.log" 2>&1 &
PID[knotd]=$!
taskset -c "$SERVER_CPU" "$WAYPOST" serve --config "$W/waypost.toml" >"$W/waypost.log" 2>&1 &
PID[waypost]=$!
declare -A PORT=([knotd]=$KPORT [waypost]=$WPORT)
for s in knotd waypost; do
    for _ in $(seq 1 300); do
        kdig @127.0.0.1 -p "${PORT[$s]}" "$ZONE" SOA +short +time=1 2>/dev/null | grep -q hostmaster && break
        sleep 0.1
    done
    kdig @127.0.0.1 -p "${PORT[$s]}" "$ZONE" SOA +short | grep -q hostmaster || die "$s did not start (see $W/$s.log)"
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_of_thread() { awk '{print $14 + $15}' "$1"; }
now_ns() { date +%s%N; }

echo "# AXFR of $ZONE ($RECORDS records), $ROUNDS rounds, kdig on CPU $CLIENT_CPU"
declare -A WALL CPU COUNT
for s in knotd waypost; do WALL[$s]=""; CPU[$s]=""; done
for r in $(seq 1 "$ROUNDS"); do
    for s in knotd waypost; do
        c0=$(ticks "${PID[$s]}"); t0=$(now_ns)
        n=$(taskset -c "$CLIENT_CPU" kdig @127.0.0.1 -p "${PORT[$s]}" "$ZONE" AXFR +noall +answer | wc -l)
        t1=$(now_ns); c1=$(ticks "${PID[$s]}")
        COUNT[$s]=$n
        WALL[$s]+=" $(( (t1 - t0) / 1000000 ))"
        CPU[$s]+=" $(( (c1 - c0) * 1000 / HZ ))"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for s in knotd waypost; do
    printf '%-8s records %-7s wall ms:%s (median %s)  server CPU ms:%s (median %s)\n' "$s" "${COUNT[$s]}" "${WALL[$s]}" "$(median <<<"${WALL[$s]}")" "${CPU[$s]}" "$(median <<<"${CPU[$s]}")"
done
# CPU is read in clock ticks (10 ms): the ratio is of the sums over all rounds.
sum() { tr ' ' '\n' | awk '{s += $1} END {print s + 0}'; }
kw=$(median <<<"${WALL[knotd]}"); ww=$(median <<<"${WALL[waypost]}")
kc=$(sum <<<"${CPU[knotd]}"); wc_=$(sum <<<"${CPU[waypost]}")
awk -v kw="$kw" -v ww="$ww" -v kc="$kc" -v wc="$wc_" -v r="$ROUNDS" 'BEGIN { printf "waypost/knotd: wall (median) %.2fx; server CPU over %d AXFRs %d ms vs %d ms: %.2fx\n", ww / (kw > 0 ? kw : 1), r, wc, kc, wc / (kc > 0 ? kc : 1) }'

# Part 2: the UDP worker's CPU per query, quiet and with AXFRs running back to back.
UDP_TID=$(grep -l '^udp-0$' /proc/"${PID[waypost]}"/task/*/comm | head -1 | xargs dirname)
udp_run() {
    local label=$1 c0 c1 q
    c0=$(ticks_of_thread "$UDP_TID/stat")
    q=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$WPORT" -d "$W/queries" -l "$DURATION" -c 4 -q 100 -Q 20000 2>/dev/null | awk '/Queries completed/ {print $3}')
    c1=$(ticks_of_thread "$UDP_TID/stat")
    awk -v c="$((c1 - c0))" -v hz="$HZ" -v q="$q" -v l="$label" 'BEGIN { printf "%-22s %8d queries, udp-0 thread %.3f us/query\n", l, q, c * 1e6 / hz / q }'
}
echo "# waypost UDP worker CPU per query at 20k q/s (dnsperf -Q 20000), without and with AXFRs running"
udp_run "quiet"
( while true; do taskset -c "$CLIENT_CPU" kdig @127.0.0.1 -p "$WPORT" "$ZONE" AXFR +noall >/dev/null 2>&1 || true; done ) &
LOOP=$!
udp_run "AXFRs back to back"
kill "$LOOP" 2>/dev/null || true
wait "$LOOP" 2>/dev/null || true
udp_run "quiet again"
