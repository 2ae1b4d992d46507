#!/usr/bin/env bash
# Waypost load benchmark: server CPU time per answered query, against knotd.
#
# Usage: benches/load.sh            (see benches/README.md, or `benches/load.sh -h`)
#
# Environment (all optional):
#   PEERS="knotd waypost"   servers to measure, in round order (also: gdnsd)
#   ROUNDS=3                measured runs per server, interleaved by round
#   DURATION=10             seconds per dnsperf run (-l)
#   RATE=                   dnsperf -Q max QPS; empty = as fast as possible
#   MODE=udp                udp | tcp (dnsperf -m)
#   CLIENTS=8               dnsperf -c
#   OUTSTANDING=200         dnsperf -q
#   WARMUP=1                unmeasured warm-up seconds per server (0 = none)
#   QUERYFILE=              custom dnsperf query file (default: generated mix)
#   NQUERIES=100000 SEED=20240101   size/seed of the generated query file
#   DNSPERF_EXTRA=          extra dnsperf args, e.g. "-E 8:00011800c00002" (ECS 192.0.2.0/24)
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

die() { echo "load.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

# ---------------------------------------------------------------- checks
case $MODE in udp|tcp) ;; *) die "MODE must be udp or tcp, not '$MODE'" ;; esac
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds)"
for t in dnsperf kdig taskset python3 getconf awk; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
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

# ---------------------------------------------------------------- cleanup
W=$(mktemp -d "${TMPDIR:-/tmp}/waypost-load.XXXXXX")
declare -A PID=() PORT=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${!PID[@]}"; do
        kill "${PID[$p]}" 2>/dev/null || true
    done
    for p in "${!PID[@]}"; do
        # give it 5 s, then SIGKILL
        for _ in $(seq 50); do kill -0 "${PID[$p]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${PID[$p]}" 2>/dev/null || true
        wait "${PID[$p]}" 2>/dev/null || true
    done
    if [[ $KEEP == 1 ]]; then say "work dir kept: $W"; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- data
mkdir -p "$W/zones"
python3 "$HERE/gen-load-zone.py" "$W/zones" --queries "$NQUERIES" --seed "$SEED"
mv "$W/zones/queries.txt" "$W/queries.txt"
QF=${QUERYFILE:-$W/queries.txt}

# ---------------------------------------------------------------- servers
free_port() {
    python3 - <<'EOF'
import socket
for _ in range(200):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        t.close(); u.close(); continue
    print(p); break
else:
    raise SystemExit("no free port")
EOF
}

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

wait_ready() {
    local p=$1 deadline=$((SECONDS + START_TIMEOUT)) tcpflag=+notcp
    [[ $MODE == tcp ]] && tcpflag=+tcp
    while ((SECONDS < deadline)); do
        if ! kill -0 "${PID[$p]}" 2>/dev/null; then
            say "== $p exited during start-up; log:"; tail -n 30 "$W/$p.log" >&2
            die "$p failed to start"
        fi
        if kdig @127.0.0.1 -p "${PORT[$p]}" "$ZONE" SOA +short +time=1 +retry=0 $tcpflag \
               2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.2
    done
    say "== $p did not answer SOA within ${START_TIMEOUT}s; log:"; tail -n 30 "$W/$p.log" >&2
    die "$p failed to start"
}

for p in $PEERS; do
    PORT[$p]=$(free_port)
    "start_$p" "${PORT[$p]}"
    wait_ready "$p"
done

# ---------------------------------------------------------------- measuring
# utime+stime (fields 14, 15) of the whole process, in clock ticks.
cpu_ticks() {
    local s
    s=$(<"/proc/$1/stat") || return 1
    s=${s##*) }             # drop "pid (comm) "; field 3 (state) is now $1
    set -- $s
    echo $(( ${12} + ${13} ))
}

dnsperf_cmd() { # port duration
    # shellcheck disable=SC2086  # DNSPERF_EXTRA is a word list on purpose
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$1" -m "$MODE" -d "$QF" \
        -l "$2" -c "$CLIENTS" -q "$OUTSTANDING" ${RATE:+-Q "$RATE"} $DNSPERF_EXTRA
}

RES=$W/results.tsv
: >"$RES"
run_one() { # peer round
    local p=$1 r=$2 out=$W/dnsperf-$1-$2.txt t0 t1 rc=0
    t0=$(cpu_ticks "${PID[$p]}")
    dnsperf_cmd "${PORT[$p]}" "$DURATION" >"$out" 2>&1 || rc=$?
    t1=$(cpu_ticks "${PID[$p]}") || { say "== $p died during run $r"; tail -n 30 "$W/$p.log" >&2; FAIL=1; return; }
    if ((rc != 0)); then
        say "== dnsperf exited $rc against $p:"; tail -n 20 "$out" >&2; FAIL=1; return
    fi
    awk -v p="$p" -v r="$r" -v ticks=$((t1 - t0)) -v hz="$HZ" '
        /Queries sent:/       { sent = $3 }
        /Queries completed:/  { done = $3 }
        /Queries lost:/       { lost = $3 }
        /Run time \(s\):/     { rt = $4 }
        /Queries per second:/ { qps = $4 }
        /Response codes:/ {
            sub(/.*Response codes:[ \t]*/, "")
            n = split($0, a, /, /)
            for (i = 1; i <= n; i++) { split(a[i], b, " "); rc[b[1]] += b[2] }
        }
        END {
            other = 0; for (k in rc) if (k != "NOERROR" && k != "NXDOMAIN") other += rc[k]
            cpu = ticks / hz
            printf "%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.1f\t%.3f\t%.1f\t%d\n", p, r, sent, done, lost,
                qps, cpu, (rt > 0 ? 100 * cpu / rt : 0), (done > 0 ? 1e6 * cpu / done : 0),
                (done > 0 ? 100 * rc["NXDOMAIN"] / done : 0), other
        }' "$out" >>"$RES"
}

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
- dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}') pinned to CPU $CLIENT_CPU: -m $MODE -c $CLIENTS -q $OUTSTANDING -l $DURATION${RATE:+ -Q $RATE}${DNSPERF_EXTRA:+ $DNSPERF_EXTRA}
- queries: ${QUERYFILE:-generated mix (70% A, 10% AAAA, 10% NXDOMAIN, 10% CNAME/MX/TXT/wildcard/referral; seed $SEED)}, $(wc -l <"$QF") lines
- rounds: $ROUNDS per server, interleaved; ${WARMUP}s unmeasured warm-up each
- µs/query = server (utime+stime) over the run / queries completed; CLK_TCK=$HZ

EOF

if ((WARMUP > 0)); then
    for p in $PEERS; do dnsperf_cmd "${PORT[$p]}" "$WARMUP" >/dev/null 2>&1 || true; done
fi

printf '| %-8s | %3s | %9s | %9s | %6s | %8s | %7s | %5s | %8s | %6s | %5s |\n' \
    server run sent completed lost QPS "CPU s" "CPU%" "µs/query" "NXD%" "other"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ----: ----------: ----------: \
    -------: ---------: --------: ------: ---------: -------: ------:
for ((r = 1; r <= ROUNDS; r++)); do
    for p in $PEERS; do
        run_one "$p" "$r"
        tail -n 1 "$RES" | awk -F'\t' -v p="$p" -v r="$r" '$1 == p && $2 == r {
            printf "| %-8s | %3d | %9d | %9d | %6d | %8d | %7.2f | %5.1f | %8.3f | %6.1f | %5d |\n",
                $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
    done
done

# ---------------------------------------------------------------- summary
echo
awk -F'\t' -v peers="$PEERS" -v maxloss="$MAX_LOSS_PCT" '
    function median(s,   v, n, i, j, t) {
        n = split(s, v, " ")
        for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j+1] = v[j]; v[j+1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
        us[$1] = us[$1] " " $9; qps[$1] = qps[$1] " " $6
        runs[$1]++; sent[$1] += $3; done[$1] += $4; lost[$1] += $5; other[$1] += $11
        if ($3 > 0 && 100 * $5 / $3 > maxloss) { bad = 1; why = why sprintf("- FAIL: %s run %d lost %d of %d queries (> %s%%)\n", $1, $2, $5, $3, maxloss) }
        if ($4 > 0 && 100 * $11 / $4 > maxloss) { bad = 1; why = why sprintf("- FAIL: %s run %d: %d responses neither NOERROR nor NXDOMAIN\n", $1, $2, $11) }
    }
    END {
        printf "| %-8s | %4s | %15s | %12s | %10s | %9s |\n", "server", "runs", "median µs/query", "median QPS", "lost", "other rc"
        printf "|----------|-----:|----------------:|-------------:|-----------:|----------:|\n"
        np = split(peers, P, " ")
        for (i = 1; i <= np; i++) {
            p = P[i]; if (!(p in runs)) { printf "| %-8s | %4d | %15s | %12s | %10s | %9s |\n", p, 0, "-", "-", "-", "-"; bad = 1; continue }
            med[p] = median(us[p])
            printf "| %-8s | %4d | %15.3f | %12.0f | %10s | %9d |\n", p, runs[p], med[p], median(qps[p]),
                sprintf("%d/%d", lost[p], sent[p]), other[p]
        }
        print ""
        if (("waypost" in med) && ("knotd" in med) && med["knotd"] > 0)
            printf "**waypost/knotd CPU per query: %.2f×** (median %.3f vs %.3f µs/query)\n", med["waypost"] / med["knotd"], med["waypost"], med["knotd"]
        if (("gdnsd" in med) && ("knotd" in med) && med["knotd"] > 0)
            printf "gdnsd/knotd CPU per query: %.2f× (median %.3f vs %.3f µs/query)\n", med["gdnsd"] / med["knotd"], med["gdnsd"], med["knotd"]
        if (bad) { printf "%s", why; exit 1 }
        print "- all runs within loss/rcode limits (" maxloss "%)"
    }' "$RES" || FAIL=1

for p in $PEERS; do
    kill -0 "${PID[$p]}" 2>/dev/null || { say "== $p is no longer running"; FAIL=1; }
done
exit "$FAIL"
