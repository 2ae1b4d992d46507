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
#
# Environment (all optional):
#   KINDS="waypost:static waypost:geo gdnsd:geo gdnsd:static"   kinds, in round order
#   ROUNDS=3 DURATION=10 RATE= MODE=udp CLIENTS=8 OUTSTANDING=200 WARMUP=1
#   NQUERIES=100000 SEED=20240101 MAX_LOSS_PCT=0.1 SERVER_CPU=0 CLIENT_CPU=1
#   START_TIMEOUT=15 KEEP=0 WAYPOST=target/release/waypost GDNSD=gdnsd
#                           as in benches/load.sh
#   GEO_DB=tests/data/geo/GeoIP2-City-Test.mmdb   MaxMind DB for waypost (and gdnsd with
#                           GDNSD_MAP=db)
#   GDNSD_MAP=nets          nets: gdnsd's map is the benchmark subnets in `nets`, no database;
#                           db: GEO_DB plus a `map` and `nets` equivalent to waypost's config
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
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
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
need_tools dnsperf kdig taskset python3 getconf awk
SERVERS=
for k in $KINDS; do
    case $k in
        waypost:static|waypost:geo|waypost:a-ecs|waypost:static-ecs) ;;
        gdnsd:static|gdnsd:geo|gdnsd:a-ecs|gdnsd:static-ecs) ;;
        *) die "unknown kind '$k' (known: {waypost,gdnsd}:{static,geo,a-ecs,static-ecs})" ;;
    esac
    [[ " $SERVERS " == *" ${k%%:*} "* ]] || SERVERS="$SERVERS ${k%%:*}"
done
SERVERS=${SERVERS# }
[[ -n $SERVERS ]] || die "KINDS is empty"
for s in $SERVERS; do
    case $s in
        gdnsd)   command -v "$GDNSD" >/dev/null || die "gdnsd not found ($GDNSD)" ;;
        waypost) [[ -x $WAYPOST ]] ||
                     die "waypost binary not found at $WAYPOST (run 'cargo build --release' or set WAYPOST=)" ;;
    esac
done
[[ -r $GEO_DB ]] || die "GEO_DB not readable: $GEO_DB"
GEO_DB=$(cd "$(dirname "$GEO_DB")" && pwd)/$(basename "$GEO_DB")
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- work dir, data
make_workdir waypost-load-geo
mkdir -p "$W/zones" "$W/geo"
python3 "$HERE/gen-load-zone.py" "$W/zones" --queries "$NQUERIES" --seed "$SEED"
mv "$W/zones/queries.txt" "$W/queries.txt"
python3 "$HERE/geo/gen-geo-load.py" "$W/geo" --queries "$NQUERIES" --seed "$SEED" \
    --static-queries "$W/queries.txt"
# subnets.tsv: subnet, region, expected order, expected A of $SERVICE

# dnsperf data arguments of a workload, in ARGS.
workload_args() {
    case $1 in
        static)     ARGS=(-d "$W/queries.txt") ;;
        geo)        ARGS=(-B -d "$W/geo/geo.bin") ;;
        a-ecs)      ARGS=(-B -d "$W/geo/a-ecs.bin") ;;
        static-ecs) ARGS=(-B -d "$W/geo/static-ecs.bin") ;;
    esac
}

# ---------------------------------------------------------------- servers
# Waypost: the [geo], [datacenters.*] and [services.*] sections of waypost.toml, with
# the services renamed into load.test. (whose zone file has nothing at those names).
start_waypost() {
    local d=$W/waypost port=$1
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

[datacenters.iad]
location = [39.04, -77.49]
[datacenters.iad.services]
"web.load.test." = ["198.51.100.10", "2001:db8:b::10"]
"api.load.test." = ["198.51.100.11", "2001:db8:b::11"]
"cdn.load.test." = ["198.51.100.12"]

[datacenters.sin]
location = [1.35, 103.82]
[datacenters.sin.services]
"web.load.test." = ["203.0.113.10", "2001:db8:c::10"]
"api.load.test." = ["203.0.113.11", "2001:db8:c::11"]
"cdn.load.test." = { cname = "cdn-sin.example.net." }

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
    WAYPOST_UDP_WORKERS=1 taskset -c "$SERVER_CPU" "$WAYPOST" serve --config "$d/waypost.toml" \
        --dns-listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 >"$W/waypost.log" 2>&1 &
    PID[waypost]=$!
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
    "start_$s" "${PORT[$s]}"
    wait_ready "$s"
done

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
    waypost) printf 'waypost %s (binary %s; %s); ' "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')" \
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

if ((WARMUP > 0)); then
    for k in $KINDS; do
        workload_args "${k#*:}"
        dnsperf_cmd "${PORT[${k%%:*}]}" "$WARMUP" "${ARGS[@]}" >/dev/null 2>&1 || true
    done
fi

table_header 18
for ((r = 1; r <= ROUNDS; r++)); do
    for k in $KINDS; do
        workload_args "${k#*:}"
        run_one "$k" "$r" "${k%%:*}" "${ARGS[@]}"
        table_row 18 "$k" "$r"
    done
done
echo

LIVE=1
for s in $SERVERS; do
    kill -0 "${PID[$s]}" 2>/dev/null || { say "== $s is no longer running"; FAIL=1; LIVE=0; }
done
if ((LIVE)); then
    check_answers "Answers after the runs:" || FAIL=1
fi

# ---------------------------------------------------------------- summary
summarize 18 "$KINDS" "$(printf '%s;' \
    'waypost:geo|waypost:static|1|waypost geo+ECS / waypost static|le:1.1' \
    'waypost:geo|gdnsd:geo|1|waypost geo+ECS / gdnsd geo+ECS|lt:1' \
    'gdnsd:geo|gdnsd:static|0|gdnsd geo+ECS / gdnsd static' \
    'waypost:static|gdnsd:static|0|waypost static / gdnsd static' \
    'waypost:geo|waypost:a-ecs|0|waypost geo+ECS / waypost static A+ECS' \
    'gdnsd:geo|gdnsd:a-ecs|0|gdnsd geo+ECS / gdnsd static A+ECS' \
    'waypost:a-ecs|gdnsd:a-ecs|0|waypost static A+ECS / gdnsd static A+ECS' \
    'waypost:static-ecs|waypost:static|0|waypost static+ECS / waypost static' \
    'gdnsd:static-ecs|gdnsd:static|0|gdnsd static+ECS / gdnsd static')" || FAIL=1

exit "$FAIL"
