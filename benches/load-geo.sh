#!/usr/bin/env bash
# Waypost geo load benchmark: server CPU time per answered query for a geo service
# name queried with EDNS Client Subnet from a spread of subnets, against waypost's
# static answers and gdnsd's geoip plugin (DYNA).
#
# Usage: benches/load-geo.sh        (see benches/README.md, or `benches/load-geo.sh -h`)
#
# Measured kinds (server:workload), interleaved by round:
#   waypost:static      the static mix of load.sh (no EDNS), baseline
#   waypost:geo         A web.load.test. (a [services] name, failover over ams/iad/sin),
#                       ECS drawn uniformly from 10 subnets (GB SE US CN AU JP DE LY,
#                       a [geo.networks] override and a database miss)
#   gdnsd:geo           the same queries; `web DYNA geoip!web`, a `nets`-only map
#                       giving each subnet the data-centre order waypost gives it
#   gdnsd:static        the static mix
#   optional, to split the cost (same ECS spread, dnsperf -B):
#   waypost:a-ecs, gdnsd:a-ecs             A h<0..999>.load.test. (static, answer shaped
#                                          like the geo one: 1 A + ECS)
#   waypost:static-ecs, gdnsd:static-ecs   the static mix
#   waypost-signed:<workload>  the same waypost signing load.test. itself (a CSK made by
#                       `waypost dnssec keygen`, DENIAL=nsec|nsec3): with DO=1, the
#                       DNSSEC part 2 figure (signed service answers against unsigned)
#   waypost-compact:<workload>  waypost-signed with [dnssec] denial = "compact" (RFC 9824)
#                       and compact-signing-rate = COMPACT_RATE; `KINDS="waypost-signed:nx
#                       waypost-compact:nx" DO=1` is the random-name flood figure (NSEC
#                       against compact denial; the budget is checked after the runs)
#   workload nx         A nx<random>.load.test. (names that do not exist), NX_QUERIES
#                       unique names, DO per DO=
#   waypost-hc:<workload>  the same waypost with CHECKS health checks running (any
#                       workload above; `KINDS="waypost:geo waypost-hc:geo"` compares
#                       the geo name with checks off and on). With waypost-hc present,
#                       both waypost servers also get CHECKS-3 generated services
#                       s<K>.load.test. (one 127.10.x.y address each, in one data centre),
#                       so their configs differ only in [health] and the checks: a
#                       per-address check per service plus one per data centre (which
#                       web.load.test. follows), all against benches/health/backend.py
#                       listening on each of those loopback addresses.
#
# Environment (all optional):
#   KINDS="waypost:static waypost:geo gdnsd:geo gdnsd:static"   kinds, in round order
#   ROUNDS=3 DURATION=10 RATE= MODE=udp CLIENTS=8 OUTSTANDING=200 WARMUP=1
#   NQUERIES=100000 SEED=20240101 MAX_LOSS_PCT=0.1 SERVER_CPU=0 CLIENT_CPU=1
#   DO=0                    1 = every query has the DO bit (DNSSEC OK): the EDNS queries
#                           are generated with it, the static mix gets dnsperf -D
#   DENIAL=nsec             waypost-signed: [dnssec] denial (nsec or nsec3)
#   COMPACT_RATE=2000       waypost-compact: compact-signing-rate (signatures/s per thread)
#   NX_QUERIES=1000000      workload nx: unique names in its query file
#   START_TIMEOUT=15 KEEP=0 WAYPOST=target/release/waypost GDNSD=gdnsd
#                           as in benches/load.sh
#   GEO_DB=tests/data/geo/GeoIP2-City-Test.mmdb   MaxMind DB for waypost (and gdnsd with
#                           GDNSD_MAP=db)
#   GDNSD_MAP=nets          nets: gdnsd's map is the benchmark subnets in `nets`, no database;
#                           db: GEO_DB plus a `map` and `nets` equivalent to waypost's config
#   CHECKS=1000             waypost-hc: unique health checks (3 data-centre + CHECKS-3 per-address)
#   CHECK_TYPE=http         waypost-hc: http (GET /health, expect "ok") or tcp (connect)
#   CHECK_INTERVAL=1s CHECK_TIMEOUT=500ms   waypost-hc: every check's timers (fall 3, rise 2)
#   IDLE=10                 waypost-hc: seconds of idle CPU measurement (no DNS load) before
#                           the runs: the checks' own CPU
#   BACKEND_CPU=$CLIENT_CPU CPU the check backend is pinned to
#
# Exit: 0 ok; 1 a run lost too many queries / bad rcodes / a server died / a server
#       gave a wrong geo answer (checked before and after the runs);
#       2 setup failure (missing tool or binary, server failed to start).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

KINDS=${KINDS:-"waypost:static waypost:geo gdnsd:geo gdnsd:static"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
DO=${DO:-0}
DENIAL=${DENIAL:-nsec}
COMPACT_RATE=${COMPACT_RATE:-2000}
NX_QUERIES=${NX_QUERIES:-1000000}
RATE=${RATE:-}
MODE=${MODE:-udp}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-200}
WARMUP=${WARMUP:-1}
NQUERIES=${NQUERIES:-100000}
SEED=${SEED:-20240101}
MAX_LOSS_PCT=${MAX_LOSS_PCT:-0.1}
WAYPOST=${WAYPOST:-$ROOT/target/release/waypost}
GDNSD=${GDNSD:-gdnsd}
GEO_DB=${GEO_DB:-$ROOT/tests/data/geo/GeoIP2-City-Test.mmdb}
GDNSD_MAP=${GDNSD_MAP:-nets}
CHECKS=${CHECKS:-1000}
CHECK_TYPE=${CHECK_TYPE:-http}
CHECK_INTERVAL=${CHECK_INTERVAL:-1s}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-500ms}
IDLE=${IDLE:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-$CLIENT_CPU}
START_TIMEOUT=${START_TIMEOUT:-15}
KEEP=${KEEP:-0}
ZONE=load.test.
SERVICE=web.load.test.
PROG=load-geo.sh
# shellcheck source=load-lib.sh
. "$HERE/load-lib.sh"

# ---------------------------------------------------------------- checks
case $MODE in udp|tcp) ;; *) die "MODE must be udp or tcp, not '$MODE'" ;; esac
case $GDNSD_MAP in nets|db) ;; *) die "GDNSD_MAP must be nets or db, not '$GDNSD_MAP'" ;; esac
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds)"
[[ $DO == 0 || $DO == 1 ]] || die "DO must be 0 or 1"
[[ $DENIAL == nsec || $DENIAL == nsec3 ]] || die "DENIAL must be nsec or nsec3"
[[ $COMPACT_RATE =~ ^[1-9][0-9]*$ ]] || die "COMPACT_RATE must be a positive integer"
need_tools dnsperf kdig taskset python3 getconf awk
SERVERS=
for k in $KINDS; do
    case $k in
        waypost:static|waypost:geo|waypost:a-ecs|waypost:static-ecs) ;;
        waypost-hc:static|waypost-hc:geo|waypost-hc:a-ecs|waypost-hc:static-ecs) ;;
        waypost:nx|waypost-signed:nx|waypost-compact:nx) ;;
        waypost-signed:static|waypost-signed:geo|waypost-signed:a-ecs|waypost-signed:static-ecs) ;;
        waypost-compact:static|waypost-compact:geo|waypost-compact:a-ecs|waypost-compact:static-ecs) ;;
        gdnsd:static|gdnsd:geo|gdnsd:a-ecs|gdnsd:static-ecs) ;;
        *) die "unknown kind '$k' (known: {waypost,waypost-hc,waypost-signed,waypost-compact,gdnsd}:{static,geo,a-ecs,static-ecs}, {waypost,waypost-signed,waypost-compact}:nx)" ;;
    esac
    [[ " $SERVERS " == *" ${k%%:*} "* ]] || SERVERS="$SERVERS ${k%%:*}"
done
SERVERS=${SERVERS# }
[[ -n $SERVERS ]] || die "KINDS is empty"
for s in $SERVERS; do
    case $s in
        gdnsd)   command -v "$GDNSD" >/dev/null || die "gdnsd not found ($GDNSD)" ;;
        waypost|waypost-hc|waypost-signed|waypost-compact) [[ -x $WAYPOST ]] ||
                     die "waypost binary not found at $WAYPOST (run 'cargo build --release' or set WAYPOST=)" ;;
    esac
done
HC=0
[[ " $SERVERS " == *" waypost-hc "* ]] && HC=1
declare -A START_S=() IDLE_T=() T_UP=()
LW=18   # width of the label column
((HC)) && LW=21
[[ " $SERVERS " == *" waypost-signed "* || " $SERVERS " == *" waypost-compact "* ]] && LW=21
if ((HC)); then
    [[ $CHECKS =~ ^[0-9]+$ ]] && ((CHECKS >= 4)) || die "CHECKS must be at least 4"
    case $CHECK_TYPE in http|tcp) ;; *) die "CHECK_TYPE must be http or tcp, not '$CHECK_TYPE'" ;; esac
    [[ $IDLE =~ ^[0-9]+$ ]] || die "IDLE must be a whole number of seconds"
    ((CHECKS + 64 < $(ulimit -n))) || die "CHECKS needs more open files than 'ulimit -n' ($(ulimit -n)) allows"
fi
[[ -r $GEO_DB ]] || die "GEO_DB not readable: $GEO_DB"
GEO_DB=$(cd "$(dirname "$GEO_DB")" && pwd)/$(basename "$GEO_DB")
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- work dir, data
make_workdir waypost-load-geo
mkdir -p "$W/zones" "$W/geo"
python3 "$HERE/gen-load-zone.py" "$W/zones" --queries "$NQUERIES" --seed "$SEED"
mv "$W/zones/queries.txt" "$W/queries.txt"
python3 "$HERE/geo/gen-geo-load.py" "$W/geo" --queries "$NQUERIES" --seed "$SEED" \
    --static-queries "$W/queries.txt" $( ((DO)) && echo --do)
# subnets.tsv: subnet, region, expected order, expected A of $SERVICE
if [[ " $KINDS " == *":nx "* ]]; then
    python3 -c 'import random, sys
r = random.Random(int(sys.argv[2]))
seen = set()
with open(sys.argv[3], "w") as f:
    while len(seen) < int(sys.argv[1]):
        n = "nx%012x" % r.getrandbits(48)
        if n not in seen:
            seen.add(n)
            f.write(n + ".load.test. A\n")' "$NX_QUERIES" "$SEED" "$W/nx.txt"
fi

# waypost-hc: the generated services and checks, and the backend they probe.
if ((HC)); then
    HC_PORT=$(free_port)
    python3 "$HERE/health/gen-checks.py" "$W/hc" --checks "$CHECKS" --port "$HC_PORT" --type "$CHECK_TYPE" \
        --interval "$CHECK_INTERVAL" --timeout "$CHECK_TIMEOUT" --zone "$ZONE"
    taskset -c "$BACKEND_CPU" python3 "$HERE/health/backend.py" --bind-file "$W/hc/binds.txt" \
        --ready "$W/hc/backend.ready" >"$W/backend.log" 2>&1 &
    PID[backend]=$!
    deadline=$((SECONDS + START_TIMEOUT))
    until [[ -e $W/hc/backend.ready ]]; do
        kill -0 "${PID[backend]}" 2>/dev/null || { tail -n 20 "$W/backend.log" >&2; die "the check backend failed to start"; }
        ((SECONDS < deadline)) || die "the check backend did not listen within ${START_TIMEOUT}s"
        sleep 0.1
    done
fi

# Lines added to [datacenters.DC.services] (waypost, waypost-hc with HC).
hc_dc() { if ((HC)); then cat "$W/hc/dc-$1.toml"; fi; }

# dnsperf data arguments of a workload, in ARGS.
workload_args() {
    case $1 in
        static)     ARGS=(-d "$W/queries.txt"); ((DO)) && ARGS+=(-D) ;;
        geo)        ARGS=(-B -d "$W/geo/geo.bin") ;;
        a-ecs)      ARGS=(-B -d "$W/geo/a-ecs.bin") ;;
        static-ecs) ARGS=(-B -d "$W/geo/static-ecs.bin") ;;
        nx)         ARGS=(-d "$W/nx.txt"); ((DO)) && ARGS+=(-D) ;;
    esac
}

# ---------------------------------------------------------------- servers
# Waypost: the [geo], [datacenters.*] and [services.*] sections of waypost.toml, with
# the services renamed into load.test. (whose zone file has nothing at those names);
# with waypost-hc among the servers, plus the generated services (both) and the
# [health] section and checks (waypost-hc only).
start_waypost() { start_waypost_as waypost "$1" 127.0.0.1:0; }
start_waypost-signed() { start_waypost_as waypost-signed "$1" 127.0.0.1:0; }
start_waypost-compact() { COMPACT_HTTP=$(free_port); start_waypost_as waypost-compact "$1" "127.0.0.1:$COMPACT_HTTP"; }
start_waypost-hc() { HC_HTTP=$(free_port); start_waypost_as waypost-hc "$1" "127.0.0.1:$HC_HTTP"; }
start_waypost_as() { # key port http-listen
    local key=$1 d=$W/$1 port=$2 http=$3
    mkdir -p "$d"
    cat >"$d/waypost.toml" <<EOF
version = 1

[server]
dns-listen = ["127.0.0.1:$port"]
http-listen = "127.0.0.1:0"
zones-dir = "$W/zones"

[geo]
database = "$GEO_DB"
order = "map"

[geo.map]
default = ["iad", "ams", "sin"]

[geo.map.continent]
EU = ["ams", "iad", "sin"]
AF = ["ams", "sin", "iad"]
NA = ["iad", "ams", "sin"]
SA = ["iad", "ams", "sin"]
AS = ["sin", "ams", "iad"]
OC = ["sin", "iad", "ams"]

[geo.map.country]
JP = ["sin", "iad", "ams"]

[geo.map.subdivision]
US-WA = ["iad", "sin", "ams"]

[geo.map.city]
"GB/London" = ["ams", "iad", "sin"]

[geo.networks]
"10.0.0.0/8" = ["ams", "iad"]
"192.0.2.0/26" = "continent:AS"

[datacenters.ams]
location = [52.37, 4.90]
[datacenters.ams.services]
"web.load.test." = ["192.0.2.10", "2001:db8:a::10"]
"api.load.test." = ["192.0.2.11", "2001:db8:a::11"]
"cdn.load.test." = ["192.0.2.12", "192.0.2.13"]
$(hc_dc ams)

[datacenters.iad]
location = [39.04, -77.49]
[datacenters.iad.services]
"web.load.test." = ["198.51.100.10", "2001:db8:b::10"]
"api.load.test." = ["198.51.100.11", "2001:db8:b::11"]
"cdn.load.test." = ["198.51.100.12"]
$(hc_dc iad)

[datacenters.sin]
location = [1.35, 103.82]
[datacenters.sin.services]
"web.load.test." = ["203.0.113.10", "2001:db8:c::10"]
"api.load.test." = ["203.0.113.11", "2001:db8:c::11"]
"cdn.load.test." = { cname = "cdn-sin.example.net." }
$(hc_dc sin)

[services."web.load.test."]
ttl = 60
policy = "failover"

[services."api.load.test."]
ttl = 60
policy = "nearest-n"
n = 2

[services."cdn.load.test."]
ttl = 300
policy = "weighted"
weights = { ams = 3, iad = 1, sin = 1 }

EOF
    if ((HC)); then
        cat "$W/hc/services.toml" >>"$d/waypost.toml"
        if [[ $key == waypost-hc ]]; then cat "$W/hc/checks.toml" >>"$d/waypost.toml"; fi
    fi
    if [[ $key == waypost-signed || $key == waypost-compact ]]; then
        if [[ $key == waypost-signed ]]; then
            printf '\n[dnssec]\nkey-dir = "keys"\ndenial = "%s"\n' "$DENIAL" >>"$d/waypost.toml"
        else
            printf '\n[dnssec]\nkey-dir = "keys"\ndenial = "compact"\ncompact-signing-rate = %s\n' "$COMPACT_RATE" >>"$d/waypost.toml"
        fi
        "$WAYPOST" dnssec keygen --config "$d/waypost.toml" "$ZONE" >"$W/keygen.log" 2>&1 ||
            { cat "$W/keygen.log" >&2; die "waypost dnssec keygen failed"; }
    fi
    WAYPOST_UDP_WORKERS=1 taskset -c "$SERVER_CPU" "$WAYPOST" serve --config "$d/waypost.toml" \
        --dns-listen "127.0.0.1:$port" --http-listen "$http" >"$W/$key.log" 2>&1 &
    PID[$key]=$!
}

# gdnsd: the same zone plus `web DYNA geoip!web`; a geoip map without a database whose
# `nets` give the benchmark subnets waypost's orders (default: iad, ams, sin); health
# checks off (service_types => up, which is a fixed UP state, no monitoring).
start_gdnsd() {
    local d=$W/gdnsd port=$1
    mkdir -p "$d/etc/zones" "$d/run" "$d/state"
    { cat "$W/zones/load.test.zone"; echo "$SERVICE 60 DYNA geoip!web"; } >"$d/etc/zones/load.test"
    cat >"$d/etc/config" <<EOF
options => {
    listen => [ 127.0.0.1:$port ]
    udp_threads => 1
    tcp_threads => 1
    run_dir => "$d/run"
    state_dir => "$d/state"
    edns_client_subnet => true
}
plugins => {
  geoip => {
    maps => {
      bench => {
        datacenters => [ iad, ams, sin ]
$(gdnsd_map)
      }
    }
    resources => {
      web => {
        map => bench
        service_types => up
        dcmap => {
          ams => { addrs_v4 => [ 192.0.2.10 ], addrs_v6 => [ 2001:db8:a::10 ] }
          iad => { addrs_v4 => [ 198.51.100.10 ], addrs_v6 => [ 2001:db8:b::10 ] }
          sin => { addrs_v4 => [ 203.0.113.10 ], addrs_v6 => [ 2001:db8:c::10 ] }
        }
      }
    }
  }
}
EOF
    "$GDNSD" -c "$d/etc" checkconf >"$W/gdnsd-checkconf.log" 2>&1 ||
        { tail -n 20 "$W/gdnsd-checkconf.log" >&2; die "gdnsd checkconf failed"; }
    taskset -c "$SERVER_CPU" "$GDNSD" -c "$d/etc" start >"$W/gdnsd.log" 2>&1 &
    PID[gdnsd]=$!
}

# The body of gdnsd's geoip map `bench` for GDNSD_MAP.
gdnsd_map() {
    if [[ $GDNSD_MAP == nets ]]; then
        echo "        nets => {"
        cat "$W/geo/gdnsd-nets.cfg"
        echo "        }"
        return
    fi
    # waypost.toml's [geo.map] and [geo.networks] in gdnsd's terms.
    cat <<EOF
        geoip2_db => "$GEO_DB"
        map => {
          default => [ iad, ams, sin ]
          EU => { default => [ ams, iad, sin ], GB => { London => [ ams, iad, sin ] } }
          AF => [ ams, sin, iad ]
          NA => { default => [ iad, ams, sin ], US => { WA => [ iad, sin, ams ] } }
          SA => [ iad, ams, sin ]
          AS => { default => [ sin, ams, iad ], JP => [ sin, iad, ams ] }
          OC => [ sin, iad, ams ]
        }
        nets => {
          10.0.0.0/8 => [ ams, iad ]
          192.0.2.0/26 => [ sin, ams, iad ]
        }
EOF
}

for s in $SERVERS; do
    PORT[$s]=$(free_port)
    t_start=$(date +%s.%N)
    T_UP[$s]=$t_start
    "start_$s" "${PORT[$s]}"
    wait_ready "$s"
    START_S[$s]=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
done

# ---------------------------------------------------------------- waypost-hc: checks
# "targets up has_result probes failures" of waypost-hc's /v1/status (nothing on error).
hc_status() {
    { curl -sf --max-time 20 "http://127.0.0.1:$HC_HTTP/v1/status" || true; } | python3 -c '
import json, sys
try:
    t = json.load(sys.stdin).get("targets", [])
except ValueError:
    sys.exit(0)
print(len(t), sum(x.get("state") == "up" for x in t), sum(bool(x.get("has_result")) for x in t),
      sum(x.get("probes", 0) for x in t), sum(x.get("failures", 0) for x in t))'
}
now() { date +%s.%N; }
# hc_probes: "probes failures time" (time: the middle of the /v1/status request).
hc_probes() {
    local a b p=0 f=0
    a=$(now)
    read -r _ _ _ p f < <(hc_status) || true
    b=$(now)
    echo "$p $f $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", (a + b) / 2 }')"
}
if ((HC)); then
    # Every check has a result and is up (bounded).
    t_start=$(now)
    deadline=$((SECONDS + START_TIMEOUT + 10))
    while :; do
        read -r HC_T HC_UP HC_RES HC_P0 HC_F0 < <(hc_status) || true
        [[ ${HC_T:-0} == "$CHECKS" && ${HC_UP:-0} == "$CHECKS" && ${HC_RES:-0} == "$CHECKS" ]] && break
        kill -0 "${PID[waypost-hc]}" 2>/dev/null || { tail -n 30 "$W/waypost-hc.log" >&2; die "waypost-hc exited"; }
        if ((SECONDS >= deadline)); then
            say "== waypost-hc /v1/status: ${HC_T:-?} targets (want $CHECKS), ${HC_UP:-?} up, ${HC_RES:-?} with a result"
            curl -sf --max-time 20 "http://127.0.0.1:$HC_HTTP/v1/status" | python3 -c '
import json, sys
for x in json.load(sys.stdin).get("targets", []):
    if x.get("state") != "up" or not x.get("has_result"):
        print(" ", x.get("id"), x.get("state"), x.get("last_error")); break' >&2 || true
            die "waypost-hc: the $CHECKS checks did not all come up"
        fi
        sleep 0.5
    done
    HC_UP_S=$(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    HC_STATUS_MS=$(curl -s -o /dev/null -w '%{time_total}' --max-time 30 "http://127.0.0.1:$HC_HTTP/v1/status" |
        awk '{ printf "%.0f", $1 * 1000 }')
    HC_STATUS_KB=$(curl -s --max-time 30 "http://127.0.0.1:$HC_HTTP/v1/status" | wc -c | awk '{ printf "%.0f", $1 / 1024 }')
    HC_RATE_WANT=$(python3 -c 'import re,sys
m = re.fullmatch(r"([0-9.]+)(ms|s)", sys.argv[2]); v = float(m[1]) / (1000 if m[2] == "ms" else 1)
print(f"{int(sys.argv[1]) / v:.0f}")' "$CHECKS" "$CHECK_INTERVAL")
fi

# ---------------------------------------------------------------- answer check
# `answer SERVER NAME SUBNET|-`: "A1,A2/scope" (scope "-" without ECS in the answer).
answer() {
    local ecs=()
    [[ $3 != - ]] && ecs=(+subnet="$3")
    { kdig @127.0.0.1 -p "${PORT[$1]}" "$2" A "${ecs[@]}" +norec +time=2 +retry=1 "$(kdig_mode)" 2>&1 || true; } |
        awk -v name="$2" '
            /CLIENT-SUBNET:/ { n = split($3, a, "/"); scope = a[n] }
            /status:/ { st = $0; sub(/.*status: /, "", st); sub(/[;,].*/, "", st) }
            $1 == name && $4 == "A" { ips = ips (ips == "" ? "" : ",") $5 }
            END {
                if (st != "NOERROR") { printf "%s", (st == "" ? "no-answer" : st); exit }
                printf "%s/%s", (ips == "" ? "NODATA" : ips), (scope == "" ? "-" : scope)
            }'
}

# Prints the expected and actual answer per subnet and server; returns 1 on a mismatch.
check_answers() { # title
    local bad=0 net region order exp s got row
    echo "$1"
    printf '| %-4s | %-16s | %-26s | %-13s |' name "ECS" "client (region)" expected
    for s in $SERVERS; do printf ' %-23s |' "$s A/scope"; done
    printf '\n|%s|%s|%s|%s|' ------ ------------------ ---------------------------- ---------------
    for s in $SERVERS; do printf '%s|' -------------------------; done
    echo
    {
        while IFS=$'\t' read -r net region order exp; do
            printf '%s\t%s\t%s\t%s\n' "$SERVICE" "$net" "$region" "$exp"
        done <"$W/geo/subnets.tsv"
        printf '%s\t%s\t%s\t%s\n' "$SERVICE" - "source 127.0.0.1 (default)" 198.51.100.10
        printf '%s\t%s\t%s\t%s\n' "h1.$ZONE" - "static, no ECS" 10.0.0.1
        printf '%s\t%s\t%s\t%s\n' "h1.$ZONE" 81.2.69.160/27 "static, ECS" 10.0.0.1
    } >"$W/checks.tsv"
    while IFS=$'\t' read -r name net region exp; do
        row=$(printf '| %-4s | %-16s | %-26s | %-13s |' "${name%.$ZONE}" "$net" "$region" "$exp")
        for s in $SERVERS; do
            got=$(answer "$s" "$name" "$net")
            if [[ ${got%/*} == "$exp" ]]; then
                row+=$(printf ' %-23s |' "$got")
            else
                row+=$(printf ' %-23s |' "$got WRONG")
                say "== $s: $name A with ECS $net: got '$got', expected $exp"
                bad=1
            fi
        done
        echo "$row"
    done <"$W/checks.tsv"
    echo
    return "$bad"
}

# ---------------------------------------------------------------- measuring
RES=$W/results.tsv
: >"$RES"
FAIL=0
ENGINE_VERSIONS=$(for s in $SERVERS; do case $s in
    gdnsd) printf 'gdnsd %s (geoip plugin; map: %s); ' "$("$GDNSD" -V 2>&1 | grep -o '[0-9][0-9.]*' | head -1)" \
               "$([[ $GDNSD_MAP == db ]] && echo "$(basename "$GEO_DB") + map + nets" || echo "nets only, no DB")" ;;
    waypost|waypost-hc|waypost-signed|waypost-compact) printf '%s %s (binary %s; %s); ' "$s" "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" \
                 "$(date -u -r "$WAYPOST" +%Y-%m-%dT%H:%MZ)" "$(basename "$GEO_DB")" ;;
esac; done)
SUBNET_LIST=$(cut -f1 "$W/geo/subnets.tsv" | paste -sd' ')

cat <<EOF
## Waypost geo load benchmark ($(date -u +%Y-%m-%dT%H:%MZ))
- host: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)
- servers: ${ENGINE_VERSIONS%; }; each pinned to CPU $SERVER_CPU, 1 UDP + 1 TCP worker
- dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}') pinned to CPU $CLIENT_CPU: -m $MODE -c $CLIENTS -q $OUTSTANDING -l $DURATION${RATE:+ -Q $RATE}
- static: load.sh's generated mix (seed $SEED), $(wc -l <"$W/queries.txt") lines, no EDNS
- geo: ${SERVICE%.} A ×$NQUERIES, wire-format (dnsperf -B), each with EDNS (4096) + ECS drawn uniformly from: $SUBNET_LIST
- rounds: $ROUNDS per kind, interleaved; ${WARMUP}s unmeasured warm-up each
- µs/query = server (utime+stime) over the run / queries completed; CLK_TCK=$HZ

EOF

check_answers "Answers before the runs ($SERVICE per ECS subnet; A/ECS scope):" || {
    say "== wrong answers before measuring; not measuring"
    exit 1
}
# waypost-signed: the geo answer with DO carries its RRSIG (otherwise the figure would
# be that of an unsigned answer).
if [[ " $SERVERS " == *" waypost-signed "* ]]; then
    sigs=$(kdig @127.0.0.1 -p "${PORT[waypost-signed]}" "$SERVICE" A +subnet=81.2.69.160/27 +dnssec +norec +time=2 +retry=1 2>&1 |
        awk -v name="$SERVICE" '$1 == name && $4 == "RRSIG" && $5 == "A"' | wc -l)
    ((sigs >= 1)) || die "waypost-signed: $SERVICE A with DO has no RRSIG"
    echo "waypost-signed: $SERVICE A with DO has $sigs RRSIG (denial $DENIAL)"
    echo
fi

# waypost-hc: the checks' own CPU, with no DNS load (every server idle at once).
if ((HC)); then
    cat <<EOF
Health checks (waypost-hc): $CHECKS unique targets = 3 data-centre + $((CHECKS - 3)) per-address $CHECK_TYPE checks (s0..s$((CHECKS - 4)).$ZONE, one 127.10.x.y each), interval $CHECK_INTERVAL, timeout $CHECK_TIMEOUT, fall 3, rise 2, max-concurrent 64; backend: benches/health/backend.py on $CHECKS loopback sockets, pinned to CPU $BACKEND_CPU.
- start-up to first SOA answer: $(for s in $SERVERS; do printf '%s %ss; ' "$s" "${START_S[$s]}"; done)all $CHECKS targets up with a result $HC_UP_S s after that
- /v1/status with $CHECKS targets: ${HC_STATUS_MS} ms, ${HC_STATUS_KB} KiB

EOF
    read -r p0 _ tp0 < <(hc_probes)
    declare -A I0=()
    for s in $SERVERS backend; do I0[$s]=$(cpu_ticks "${PID[$s]}"); done
    ti0=$(now)
    sleep "$IDLE"
    for s in $SERVERS backend; do IDLE_T[$s]=$(( $(cpu_ticks "${PID[$s]}") - ${I0[$s]} )); done
    ti1=$(now)
    read -r p1 _ tp1 < <(hc_probes)
    IDLE_S=$(awk -v a="$ti0" -v b="$ti1" 'BEGIN { printf "%.2f", b - a }')
    # probes per second between the two status reads, scaled to the CPU window
    IDLE_RATE=$(awk -v n=$((p1 - p0)) -v a="$tp0" -v b="$tp1" 'BEGIN { printf "%.1f", n / (b - a) }')
    IDLE_PROBES=$(awk -v r="$IDLE_RATE" -v d="$IDLE_S" 'BEGIN { printf "%.0f", r * d }')
    echo "Idle CPU over ${IDLE_S} s without DNS load (probes: ${IDLE_RATE}/s, expected $HC_RATE_WANT/s):"
    echo
    printf '| %-18s | %11s | %9s | %14s |\n' process "CPU s" "% of a core" "µs per probe"
    printf '|%s|%s|%s|%s|\n' -------------------- ------------: ----------: ---------------:
    for s in $SERVERS backend; do
        awk -v p="$s" -v t="${IDLE_T[$s]}" -v hz="$HZ" -v d="$IDLE_S" -v n="$IDLE_PROBES" -v base="${IDLE_T[waypost]:-0}" 'BEGIN {
            per = "-"
            if (p == "waypost-hc" && n > 0) per = sprintf("%.1f (net %.1f)", 1e6 * t / hz / n, 1e6 * (t - base) / hz / n)
            if (p == "backend" && n > 0) per = sprintf("%.1f", 1e6 * t / hz / n)
            printf "| %-18s | %11.2f | %10.1f%% | %14s |\n", p, t / hz, 100 * t / hz / d, per }'
    done
    echo
    HC_IDLE_CPS=$(awk -v t="${IDLE_T[waypost-hc]}" -v b="${IDLE_T[waypost]:-0}" -v hz="$HZ" -v d="$IDLE_S" \
        'BEGIN { printf "%.6f", (t - b) / hz / d }')   # CPU s per s the checks cost (minus plain idle)
    read -r HC_PR0 HC_F0 HC_TR0 < <(hc_probes)
fi

if ((WARMUP > 0)); then
    for k in $KINDS; do
        workload_args "${k#*:}"
        dnsperf_cmd "${PORT[${k%%:*}]}" "$WARMUP" "${ARGS[@]}" >/dev/null 2>&1 || true
    done
fi

table_header "$LW"
for ((r = 1; r <= ROUNDS; r++)); do
    for k in $KINDS; do
        workload_args "${k#*:}"
        run_one "$k" "$r" "${k%%:*}" "${ARGS[@]}"
        table_row "$LW" "$k" "$r"
    done
done
echo

LIVE=1
for s in $SERVERS; do
    kill -0 "${PID[$s]}" 2>/dev/null || { say "== $s is no longer running"; FAIL=1; LIVE=0; }
done
if ((HC)) && kill -0 "${PID[waypost-hc]}" 2>/dev/null; then
    read -r HC_PR1 HC_F1 HC_TR1 < <(hc_probes)
    read -r HC_T HC_UP _ _ _ < <(hc_status) || true
    awk -v t="${HC_T:-0}" -v up="${HC_UP:-0}" -v n="$CHECKS" -v p0="$HC_PR0" -v p1="${HC_PR1:-0}" -v f0="$HC_F0" \
        -v f1="${HC_F1:-0}" -v a="$HC_TR0" -v b="$HC_TR1" -v want="$HC_RATE_WANT" 'BEGIN {
        printf "Checks during the runs (%.0f s, warm-up included): %d probes = %.0f/s (expected %s/s), %d failed; now %d of %d targets up\n\n",
            b - a, p1 - p0, (p1 - p0) / (b - a), want, f1 - f0, up, t }'
    if [[ ${HC_UP:-0} != "$CHECKS" ]]; then
        say "== waypost-hc: only ${HC_UP:-0} of $CHECKS targets up after the runs"; FAIL=1
    fi
    if ((${HC_F1:-0} > HC_F0)); then
        say "== waypost-hc: $((HC_F1 - HC_F0)) probes failed during the runs (see waypost-hc.log)"
    fi
fi
if ((LIVE)); then
    check_answers "Answers after the runs:" || FAIL=1
fi
# waypost-compact: the signatures it made on the query path stayed within its budget
# (COMPACT_RATE per second for its one UDP thread, from its start, plus a second's burst).
if [[ " $SERVERS " == *" waypost-compact "* ]] && ((LIVE)); then
    metric() { curl -sf --max-time 10 "http://127.0.0.1:$COMPACT_HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
    made=$(metric waypost_compact_denial_signatures_total)
    tc=$(metric waypost_compact_denial_truncated_total)
    hits=$(metric waypost_compact_denial_cache_hits_total)
    up=$(awk -v a="${T_UP[waypost-compact]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    awk -v made="${made:-0}" -v tc="${tc:-0}" -v hits="${hits:-0}" -v up="$up" -v rate="$COMPACT_RATE" 'BEGIN {
        printf "waypost-compact: %d signatures made on the query path in %.1f s up (%.0f/s; budget %d/s + %d burst = at most %d), %d answered from the thread cache, %d UDP answers TC=1 past the budget\n\n",
            made, up, made / up, rate, rate, rate * (up + 1), hits, tc
        exit (made > rate * (up + 1)) }' || { say "== waypost-compact: more signatures than its budget allows"; FAIL=1; }
fi

# ---------------------------------------------------------------- summary
summarize "$LW" "$KINDS" "$(printf '%s;' \
    'waypost:geo|waypost:static|1|waypost geo+ECS / waypost static|le:1.1' \
    'waypost:geo|gdnsd:geo|1|waypost geo+ECS / gdnsd geo+ECS|lt:1' \
    'gdnsd:geo|gdnsd:static|0|gdnsd geo+ECS / gdnsd static' \
    'waypost:static|gdnsd:static|0|waypost static / gdnsd static' \
    'waypost:geo|waypost:a-ecs|0|waypost geo+ECS / waypost static A+ECS' \
    'gdnsd:geo|gdnsd:a-ecs|0|gdnsd geo+ECS / gdnsd static A+ECS' \
    'waypost:a-ecs|gdnsd:a-ecs|0|waypost static A+ECS / gdnsd static A+ECS' \
    'waypost:static-ecs|waypost:static|0|waypost static+ECS / waypost static' \
    'gdnsd:static-ecs|gdnsd:static|0|gdnsd static+ECS / gdnsd static' \
    "waypost-hc:geo|waypost:geo|1|waypost geo+ECS, $CHECKS checks on / off|le:1.1" \
    "waypost-signed:geo|waypost:geo|1|waypost geo+ECS, signed / unsigned (DO=$DO)|le:1.1" \
    "waypost-signed:static|waypost:static|0|waypost static, signed / unsigned (DO=$DO)|" \
    "waypost-compact:nx|waypost-signed:nx|1|random names, compact / $DENIAL denial (DO=$DO)|le:2" \
    "waypost-signed:nx|waypost:nx|0|random names, $DENIAL denial / unsigned (DO=$DO)|" \
    "waypost-compact:geo|waypost-signed:geo|0|waypost geo+ECS, compact / $DENIAL denial (DO=$DO)|" \
    "waypost-hc:static|waypost:static|0|waypost static, $CHECKS checks on / off|le:1.1")" || FAIL=1

# waypost-hc's µs/query includes the probes running during the run; net of them
# (idle check CPU per second × run time) it is the cost of answering alone.
if ((HC)); then
    awk -F'\t' -v cps="$HC_IDLE_CPS" -v dur="$DURATION" '
        function median(s,   v, n, i, j, t) {
            n = split(s, v, " ")
            for (i = 2; i <= n; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j+1] = v[j]; v[j+1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $1 ~ /^waypost-hc:/ && $4 > 0 { w = substr($1, 12); net[w] = net[w] " " 1e6 * ($7 - cps * dur) / $4 }
        $1 ~ /^waypost:/ && $4 > 0 { w = substr($1, 9); off[w] = off[w] " " $9 }
        END {
            for (w in net) {
                printf "- waypost-hc %s net of the checks'\'' idle CPU (%.1f ms/s × %d s per run): median %.3f µs/query", w, 1000 * cps, dur, median(net[w])
                if (w in off) printf "; %.2f× waypost %s (checks off)", median(net[w]) / median(off[w]), w
                printf "\n"
            }
        }' "$RES"
fi

exit "$FAIL"
