#!/usr/bin/env bash
# Waypost fleet peer traffic: bytes per instance per second that observation sharing
# costs, with CHECKS health-check targets and PEERS peers per instance, in steady
# state (every pull a conditional 304) and while every document changes.
#
# Usage: benches/fleet-traffic.sh        (see benches/README.md, or `benches/fleet-traffic.sh -h`)
#
# Starts PEERS+1 waypost instances v0..vN on 127.0.0.1 (each lists all the others as
# [[fleet.peers]], one token, fleet interval FLEET_INTERVAL) with the same CHECKS TCP
# checks (benches/health/gen-checks.py, the load-geo.sh `waypost-hc` config) against one
# benches/health/tcp-sink.py (accepts and closes; backend.py cannot keep up with
# 6 x 1,000 connects/s), waits until every instance sees every target up and every
# peer fresh, then benches/health/fleet-traffic.py measures instance v0:
#   steady state (WINDOW s): pulls served and made, 304 vs 200 (status counters:
#       Δunchanged_pulls, Δbytes_received), and the bytes that crossed the pull
#       connections (TCP counters of the pulling sockets from `ss -tinp`: request and
#       response bytes, segments);
#   bytes per pull: one full and one conditional pull over a raw socket with the
#       request waypost's client sends;
#   change burst: the backend is stopped, every target goes up -> failing -> down over
#       `fall` (3) intervals, and the same counters run until no document has changed
#       anywhere for QUIET s.
#
# Environment (all optional):
#   CHECKS=1000 PEERS=5 CHECK_INTERVAL=1s CHECK_TIMEOUT=500ms FLEET_INTERVAL=1s
#   WINDOW=20      seconds of steady-state measurement
#   SETTLE=5       seconds to wait after convergence before measuring
#   CONVERGE=90    bound on start-up until all targets up and all peers fresh
#   QUIET=4 BURST_MAX=60   change burst: end after QUIET s without a changed pull; fail after BURST_MAX s
#   POLL=0.5       seconds between ss samples (pulls per connection are FLEET_INTERVAL apart)
#   START_TIMEOUT=15 KEEP=0 WAYPOST=target/release/waypost
#
# Exit: 0 ok; 1 the measurement failed (no convergence, burst did not settle, a server
#       died); 2 setup failure (missing tool or binary, server failed to start).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

CHECKS=${CHECKS:-1000}
PEERS=${PEERS:-5}
CHECK_INTERVAL=${CHECK_INTERVAL:-1s}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-500ms}
FLEET_INTERVAL=${FLEET_INTERVAL:-1s}
WINDOW=${WINDOW:-20}
SETTLE=${SETTLE:-5}
CONVERGE=${CONVERGE:-90}
QUIET=${QUIET:-4}
BURST_MAX=${BURST_MAX:-60}
POLL=${POLL:-0.5}
START_TIMEOUT=${START_TIMEOUT:-15}
KEEP=${KEEP:-0}
WAYPOST=${WAYPOST:-$ROOT/target/release/waypost}
GEO_DB=${GEO_DB:-$ROOT/tests/data/geo/GeoIP2-City-Test.mmdb}
TOKEN=fleet-bench-token
ZONE=load.test.
MODE=udp
PROG=fleet-traffic.sh
# shellcheck source=load-lib.sh
. "$HERE/load-lib.sh"

need_tools python3 ss curl
[[ -x $WAYPOST ]] || die "waypost binary not found at $WAYPOST (run 'cargo build --release' or set WAYPOST=)"
[[ $CHECKS =~ ^[0-9]+$ ]] && ((CHECKS >= 4)) || die "CHECKS must be at least 4"
[[ $PEERS =~ ^[1-9][0-9]*$ ]] || die "PEERS must be a positive integer"
((CHECKS + 64 < $(ulimit -n))) || die "CHECKS needs more open files than 'ulimit -n' ($(ulimit -n)) allows"
[[ -r $GEO_DB ]] || die "GEO_DB not readable: $GEO_DB"
N=$((PEERS + 1))
FLEET_INTERVAL_S=$(python3 -c 'import re,sys
m = re.fullmatch(r"([0-9.]+)(ms|s)", sys.argv[1]) or sys.exit("FLEET_INTERVAL must look like 1s or 500ms")
print(float(m[1]) / (1000 if m[2] == "ms" else 1))' "$FLEET_INTERVAL")
# A binary older than the last commit to the sources may not have what is measured.
BIN_T=$(date -r "$WAYPOST" +%s)
SRC_T=$(cd "$ROOT" && git log -1 --format=%ct -- src Cargo.toml Cargo.lock 2>/dev/null || echo 0)
STALE=
if ((SRC_T > BIN_T)); then
    STALE="WARNING: the binary ($(date -u -r "$WAYPOST" +%H:%M:%SZ)) is older than the last source commit ($(cd "$ROOT" && TZ=UTC git log -1 --format='%h %cd' --date=format-local:%H:%M:%SZ -- src Cargo.toml Cargo.lock)); rebuild it"
    say "== $STALE"
fi

make_workdir waypost-fleet-traffic
mkdir -p "$W/zones"
python3 "$HERE/gen-load-zone.py" "$W/zones" --queries 1 >/dev/null
rm -f "$W/zones/queries.txt"

# ---------------------------------------------------------------- checks and backend
HC_PORT=$(free_port)
python3 "$HERE/health/gen-checks.py" "$W/hc" --checks "$CHECKS" --port "$HC_PORT" --type tcp \
    --interval "$CHECK_INTERVAL" --timeout "$CHECK_TIMEOUT" --zone "$ZONE"
python3 "$HERE/health/tcp-sink.py" --bind-file "$W/hc/binds.txt" --ready "$W/hc/backend.ready" >"$W/backend.log" 2>&1 &
PID[backend]=$!
deadline=$((SECONDS + START_TIMEOUT))
until [[ -e $W/hc/backend.ready ]]; do
    kill -0 "${PID[backend]}" 2>/dev/null || { tail -n 20 "$W/backend.log" >&2; die "the check backend failed to start"; }
    ((SECONDS < deadline)) || die "the check backend did not listen within ${START_TIMEOUT}s"
    sleep 0.1
done

# ---------------------------------------------------------------- configs
# The base config is load-geo.sh's waypost-hc one: zone load.test., data centres
# ams/iad/sin with the generated services, [health] and the checks.
cat >"$W/base.toml" <<EOF
version = 1

[server]
zones-dir = "$W/zones"

[geo]
database = "$GEO_DB"
order = "map"

[geo.map]
default = ["iad", "ams", "sin"]

[geo.map.continent]
EU = ["ams", "iad", "sin"]
NA = ["iad", "ams", "sin"]
AS = ["sin", "ams", "iad"]

[datacenters.ams]
location = [52.37, 4.90]
[datacenters.ams.services]
"web.load.test." = ["192.0.2.10", "2001:db8:a::10"]
$(cat "$W/hc/dc-ams.toml")

[datacenters.iad]
location = [39.04, -77.49]
[datacenters.iad.services]
"web.load.test." = ["198.51.100.10", "2001:db8:b::10"]
$(cat "$W/hc/dc-iad.toml")

[datacenters.sin]
location = [1.35, 103.82]
[datacenters.sin.services]
"web.load.test." = ["203.0.113.10", "2001:db8:c::10"]
$(cat "$W/hc/dc-sin.toml")

[services."web.load.test."]
ttl = 60
policy = "failover"

EOF
cat "$W/hc/services.toml" "$W/hc/checks.toml" >>"$W/base.toml"

declare -a HPORT=()
for ((i = 0; i < N; i++)); do HPORT[i]=$(free_port); done
for ((i = 0; i < N; i++)); do
    {
        cat "$W/base.toml"
        printf '\n[fleet]\nvantage = "v%d"\ntoken = "%s"\ninterval = "%s"\n' "$i" "$TOKEN" "$FLEET_INTERVAL"
        for ((j = 0; j < N; j++)); do
            ((j == i)) && continue
            printf '\n[[fleet.peers]]\nname = "v%d"\nurl = "http://127.0.0.1:%d"\n' "$j" "${HPORT[j]}"
        done
    } >"$W/v$i.toml"
done

# ---------------------------------------------------------------- instances
for ((i = 0; i < N; i++)); do
    "$WAYPOST" serve --config "$W/v$i.toml" --dns-listen 127.0.0.1:0 \
        --http-listen "127.0.0.1:${HPORT[i]}" --udp-workers 1 >"$W/v$i.log" 2>&1 &
    PID[v$i]=$!
done
for ((i = 0; i < N; i++)); do
    deadline=$((SECONDS + START_TIMEOUT))
    until curl -sf --noproxy '*' --max-time 2 "http://127.0.0.1:${HPORT[i]}/healthz" >/dev/null; do
        kill -0 "${PID[v$i]}" 2>/dev/null || { tail -n 30 "$W/v$i.log" >&2; die "v$i exited during start-up"; }
        ((SECONDS < deadline)) || { tail -n 30 "$W/v$i.log" >&2; die "v$i did not answer /healthz within ${START_TIMEOUT}s"; }
        sleep 0.2
    done
done

PIDS=$(for ((i = 0; i < N; i++)); do printf '%s,' "${PID[v$i]}"; done)
PORTS=$(IFS=,; echo "${HPORT[*]}")

cat <<EOF
## Waypost fleet peer traffic ($(date -u +%Y-%m-%dT%H:%MZ))
- host: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), load average $(cut -d" " -f1-3 /proc/loadavg) at start
- waypost $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') (binary $(date -u -r "$WAYPOST" +%Y-%m-%dT%H:%MZ)), $N instances v0..v$PEERS on 127.0.0.1, each pulling the other $PEERS every $FLEET_INTERVAL
- $CHECKS TCP checks (interval $CHECK_INTERVAL, timeout $CHECK_TIMEOUT, fall 3, rise 2) on every instance, against benches/health/tcp-sink.py
${STALE:+- **$STALE**
}- figures are for instance v0; "in" = v0 being pulled by its $PEERS peers (their requests + v0's responses), "out" = v0 pulling its $PEERS peers

EOF

rc=0
python3 "$HERE/health/fleet-traffic.py" --ports "$PORTS" --pids "${PIDS%,}" --backend-pid "${PID[backend]}" \
    --token "$TOKEN" --targets "$CHECKS" --interval-s "$FLEET_INTERVAL_S" --window "$WINDOW" --settle "$SETTLE" --converge "$CONVERGE" \
    --quiet "$QUIET" --burst-max "$BURST_MAX" --poll "$POLL" --json "$W/results.json" || rc=1

for ((i = 0; i < N; i++)); do
    kill -0 "${PID[v$i]}" 2>/dev/null || { say "== v$i is no longer running"; tail -n 20 "$W/v$i.log" >&2; rc=1; }
done
# Failed pulls after convergence (e.g. a request racing the server closing a connection
# at its 60 s lifetime); start-up ones (peers not listening yet) are not counted.
if [[ -s $W/results.json ]]; then
    since=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["converged_at"])' "$W/results.json")
    fails=$(cat "$W"/v*.log | awk -v t="$since" '/peer unreachable/ && $1 >= t' | wc -l)
    echo "- peers marked unreachable after convergence (a failed pull after a good one; 'peer unreachable' in the $N logs): $fails"
fi
exit "$rc"
