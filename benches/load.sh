#!/usr/bin/env bash
# Waypost load benchmark: server CPU time per answered query, against knotd.
#
# Usage: benches/load.sh            (see benches/README.md, or `benches/load.sh -h`)
# Geo routing (service names, ECS, gdnsd geoip): benches/load-geo.sh.
#
# Environment (all optional):
#   PEERS="knotd waypost"   servers to measure, in round order (also: gdnsd)
#   ROUNDS=3                measured runs per server, interleaved by round
#   DURATION=10             seconds per dnsperf run (-l)
#   RATE=                   dnsperf -Q max QPS; empty = as fast as possible
#   MODE=udp                udp | tcp (dnsperf -m)
#   ONESHOT=0               1 = one query per TCP connection (MODE=tcp), with
#                           benches/tcp-oneshot.py instead of dnsperf, CLIENTS in flight
#                           (dnsperf's -O num-queries-per-conn=1 paces reconnections at ~80 ms)
#   CLIENTS=8               dnsperf -c
#   OUTSTANDING=200         dnsperf -q
#   WARMUP=1                unmeasured warm-up seconds per server (0 = none)
#   QUERYFILE=              custom dnsperf query file (default: generated mix)
#   NQUERIES=100000 SEED=20240101   size/seed of the generated query file
#   DNSPERF_EXTRA=          extra dnsperf args, e.g. "-E 8:00011800c00002" (ECS 192.0.2.0/24),
#                           or "-D" for DO=1 queries (with SIGNED)
#   SIGNED=                 nsec | nsec3: sign the benchmark zone first (dnssec-signzone,
#                           ECDSA P-256 KSK + ZSK; NSEC3 with 0 iterations and no salt),
#                           so both servers serve the same signed file
#   MAX_LOSS_PCT=0.1        fail if any run loses more than this % (or gets
#                           more than this % of rcodes other than NOERROR/NXDOMAIN)
#   WAYPOST=target/release/waypost   waypost binary
#   KNOTD=knotd GDNSD=gdnsd  other server binaries
#   SERVER_CPU=0 CLIENT_CPU=1        taskset CPUs
#   START_TIMEOUT=15        seconds to wait for each server to answer SOA
#   KEEP=0                  1 = keep the work dir (configs, logs, dnsperf output)
#
# Exit: 0 ok; 1 a run lost too many queries / bad rcodes / server died;
#       2 setup failure (missing tool or binary, server failed to start).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

PEERS=${PEERS:-"knotd waypost"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-}
MODE=${MODE:-udp}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-200}
WARMUP=${WARMUP:-1}
QUERYFILE=${QUERYFILE:-}
NQUERIES=${NQUERIES:-100000}
SEED=${SEED:-20240101}
DNSPERF_EXTRA=${DNSPERF_EXTRA:-}
MAX_LOSS_PCT=${MAX_LOSS_PCT:-0.1}
WAYPOST=${WAYPOST:-$ROOT/target/release/waypost}
KNOTD=${KNOTD:-knotd}
GDNSD=${GDNSD:-gdnsd}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
START_TIMEOUT=${START_TIMEOUT:-15}
KEEP=${KEEP:-0}
ZONE=load.test.
PROG=load.sh
# shellcheck source=load-lib.sh
. "$HERE/load-lib.sh"

# ---------------------------------------------------------------- checks
case $MODE in udp|tcp) ;; *) die "MODE must be udp or tcp, not '$MODE'" ;; esac
ONESHOT=${ONESHOT:-0}
[[ $ONESHOT == 0 || $MODE == tcp ]] || die "ONESHOT=1 needs MODE=tcp"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds)"
need_tools dnsperf kdig taskset python3 getconf awk
for p in $PEERS; do
    case $p in
        knotd)   command -v "$KNOTD" >/dev/null || die "knotd not found ($KNOTD)" ;;
        gdnsd)   command -v "$GDNSD" >/dev/null || die "gdnsd not found ($GDNSD)" ;;
        waypost) [[ -x $WAYPOST ]] ||
                     die "waypost binary not found at $WAYPOST (run 'cargo build --release' or set WAYPOST=)" ;;
        *) die "unknown peer '$p' (known: knotd waypost gdnsd)" ;;
    esac
done
if [[ -n $QUERYFILE ]]; then
    [[ -r $QUERYFILE ]] || die "QUERYFILE not readable: $QUERYFILE"
    QUERYFILE=$(cd "$(dirname "$QUERYFILE")" && pwd)/$(basename "$QUERYFILE")
fi
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- work dir
make_workdir waypost-load

# ---------------------------------------------------------------- data
mkdir -p "$W/zones"
python3 "$HERE/gen-load-zone.py" "$W/zones" --queries "$NQUERIES" --seed "$SEED"
mv "$W/zones/queries.txt" "$W/queries.txt"
QF=${QUERYFILE:-$W/queries.txt}
SIGNED=${SIGNED:-}
case $SIGNED in
    "") ;;
    nsec|nsec3)
        need_tools dnssec-keygen dnssec-signzone
        (
            cd "$W/zones"
            ksk=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK -n ZONE -K . "${ZONE%.}")
            zsk=$(dnssec-keygen -q -a ECDSAP256SHA256 -n ZONE -K . "${ZONE%.}")
            cat "$ksk.key" "$zsk.key" >>"${ZONE}zone"
            nsec3=()
            [[ $SIGNED == nsec3 ]] && nsec3=(-3 - -H 0)
            dnssec-signzone -q "${nsec3[@]}" -o "$ZONE" -f signed.tmp -K . "${ZONE}zone" >/dev/null
            mv signed.tmp "${ZONE}zone"
            rm -f K* dsset-*
        ) || die "signing the zone failed"
        ;;
    *) die "SIGNED must be nsec or nsec3, not '$SIGNED'" ;;
esac

# ---------------------------------------------------------------- servers
start_knotd() {
    local d=$W/knotd port=$1
    mkdir -p "$d/run" "$d/db"
    cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d/run"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$d/db"
template:
  - id: default
    storage: "$W/zones"
    file: "%s.zone"
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $ZONE
EOF
    taskset -c "$SERVER_CPU" "$KNOTD" -c "$d/knot.conf" >"$W/knotd.log" 2>&1 &
    PID[knotd]=$!
}

start_waypost() {
    local port=$1
    WAYPOST_UDP_WORKERS=1 taskset -c "$SERVER_CPU" "$WAYPOST" serve \
        --zones "$W/zones" --dns-listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 \
        >"$W/waypost.log" 2>&1 &
    PID[waypost]=$!
}

start_gdnsd() {
    local d=$W/gdnsd port=$1
    mkdir -p "$d/etc/zones" "$d/run" "$d/state"
    cp "$W/zones/load.test.zone" "$d/etc/zones/load.test"
    cat >"$d/etc/config" <<EOF
options => {
    listen => [ 127.0.0.1:$port ]
    udp_threads => 1
    tcp_threads => 1
    run_dir => "$d/run"
    state_dir => "$d/state"
}
EOF
    taskset -c "$SERVER_CPU" "$GDNSD" -c "$d/etc" start >"$W/gdnsd.log" 2>&1 &
    PID[gdnsd]=$!
}

for p in $PEERS; do
    PORT[$p]=$(free_port)
    "start_$p" "${PORT[$p]}"
    wait_ready "$p"
done

# ---------------------------------------------------------------- measuring
RES=$W/results.tsv
: >"$RES"

FAIL=0
ENGINE_VERSIONS=$(for p in $PEERS; do case $p in
    knotd) printf 'knotd %s; ' "$("$KNOTD" -V 2>&1 | grep -o '[0-9][0-9.]*' | head -1)" ;;
    gdnsd) printf 'gdnsd %s; ' "$("$GDNSD" -V 2>&1 | grep -o '[0-9][0-9.]*' | head -1)" ;;
    waypost) printf 'waypost %s; ' "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" ;;
esac; done)

cat <<EOF
## Waypost load benchmark ($(date -u +%Y-%m-%dT%H:%MZ))
- host: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)
- servers: ${ENGINE_VERSIONS%; }; each pinned to CPU $SERVER_CPU, 1 UDP + 1 TCP worker
$(if [[ $ONESHOT == 1 ]]; then echo "- tcp-oneshot.py pinned to CPU $CLIENT_CPU: one query per TCP connection, $CLIENTS connections in flight, -l $DURATION"
else echo "- dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}') pinned to CPU $CLIENT_CPU: -m $MODE -c $CLIENTS -q $OUTSTANDING -l $DURATION${RATE:+ -Q $RATE}${DNSPERF_EXTRA:+ $DNSPERF_EXTRA}"; fi)
- zone: ${SIGNED:+signed ($SIGNED), }$(wc -l <"$W/zones/${ZONE}zone") lines
- queries: ${QUERYFILE:-generated mix (70% A, 10% AAAA, 10% NXDOMAIN, 10% CNAME/MX/TXT/wildcard/referral; seed $SEED)}, $(wc -l <"$QF") lines
- rounds: $ROUNDS per server, interleaved; ${WARMUP}s unmeasured warm-up each
- µs/query = server (utime+stime) over the run / queries completed; CLK_TCK=$HZ

EOF

if ((WARMUP > 0)); then
    # shellcheck disable=SC2086  # DNSPERF_EXTRA is a word list on purpose
    for p in $PEERS; do dnsperf_cmd "${PORT[$p]}" "$WARMUP" -d "$QF" $DNSPERF_EXTRA >/dev/null 2>&1 || true; done
fi

table_header 8
for ((r = 1; r <= ROUNDS; r++)); do
    for p in $PEERS; do
        # shellcheck disable=SC2086  # DNSPERF_EXTRA is a word list on purpose
        run_one "$p" "$r" "$p" -d "$QF" $DNSPERF_EXTRA
        table_row 8 "$p" "$r"
    done
done

# ---------------------------------------------------------------- summary
echo
summarize 8 "$PEERS" "waypost|knotd|1|waypost/knotd CPU per query;gdnsd|knotd|0|gdnsd/knotd CPU per query" || FAIL=1

for p in $PEERS; do
    kill -0 "${PID[$p]}" 2>/dev/null || { say "== $p is no longer running"; FAIL=1; }
done
exit "$FAIL"
