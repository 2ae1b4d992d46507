#!/usr/bin/env bash
# Waypost failover benchmark: how long after a site dies do answers move, and do they
# move the moment the health state flips?
#
# Usage: benches/failover.sh        (see benches/README.md, or `benches/failover.sh -h`)
#
# Runs waypost with the example config (waypost.toml: data centres ams, iad, sin;
# web.example.com. failover, TTL 60) plus an HTTP check of each data centre
# (GET /health, expect "ok") against three small local backends
# (benches/health/backend.py on 127.0.0.1). Per trial: wait until London
# (ECS 81.2.69.160/27) gets ams with TTL 60; kill ams's backend (T0); poll DNS and
# GET /v1/status every POLL s; record
#   detection      T(ams's check target `down` in /v1/status) - T0
#   answer change  T(first iad answer for London) - T0, and the gap between the two
# then start the backend again (T1 = it listens) and record the time until the target
# is `up` and London gets ams again.
#
# Environment (all optional):
#   INTERVAL=1 FALL=3 RISE=2   health check settings (seconds, counts)
#   TRIALS=5                   trials (at least 5)
#   POLL=0.05                  seconds between polls of DNS and of /v1/status
#   START_TIMEOUT=30           bounded waits for start-up and all targets up
#   SEED=                      seed for the random kill delay (0..INTERVAL s)
#   KEEP=0                     1 keeps the work dir (config, logs, per-trial JSON)
#   WAYPOST=target/release/waypost
#
# Budget per trial: INTERVAL x FALL + INTERVAL for the answer change, INTERVAL x RISE
# + INTERVAL for the return. Exit: 0 ok; 1 a trial over budget, a wrong answer, a DNS
# timeout, flapping, or waypost died; 2 setup failure.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

INTERVAL=${INTERVAL:-1}
FALL=${FALL:-3}
RISE=${RISE:-2}
TRIALS=${TRIALS:-5}
POLL=${POLL:-0.05}
START_TIMEOUT=${START_TIMEOUT:-30}
SEED=${SEED:-}
KEEP=${KEEP:-0}
WAYPOST=${WAYPOST:-$ROOT/target/release/waypost}
MODE=udp
ZONE=example.com.
PROG=failover.sh
# shellcheck source=load-lib.sh
. "$HERE/load-lib.sh"

num='^[0-9]+([.][0-9]+)?$'
[[ $INTERVAL =~ $num ]] && awk -v i="$INTERVAL" 'BEGIN { exit !(i >= 0.1) }' ||
    die "INTERVAL must be a number of seconds ≥ 0.1"
[[ $POLL =~ $num ]] || die "POLL must be a number of seconds"
[[ $FALL =~ ^[1-9][0-9]*$ ]] || die "FALL must be a positive integer"
[[ $RISE =~ ^[1-9][0-9]*$ ]] || die "RISE must be a positive integer"
[[ $TRIALS =~ ^[0-9]+$ ]] && ((TRIALS >= 5)) || die "TRIALS must be at least 5"
need_tools kdig python3 awk
[[ -x $WAYPOST ]] || die "waypost binary not found at $WAYPOST (run 'cargo build --release' or set WAYPOST=)"

make_workdir waypost-failover

# ---------------------------------------------------------------- config
# The example config with absolute paths, plus [health] and one check per data centre.
declare -A SITE_PORT=()
for s in ams iad sin; do
    SITE_PORT[$s]=$(free_port)
done
PORT[waypost]=$(free_port)
HTTP_PORT=$(free_port)
interval_ms=$(awk -v i="$INTERVAL" 'BEGIN { printf "%d", i * 1000 + 0.5 }')
timeout_ms=$(( interval_ms / 2 < 500 ? interval_ms / 2 : 500 ))
sed -e "s|^zones-dir = .*|zones-dir = \"$ROOT/zones\"|" \
    -e "s|^database = .*|database = \"$ROOT/tests/data/geo/GeoIP2-City-Test.mmdb\"|" \
    -e "s|^overrides-file = .*|overrides-file = \"$ROOT/deploy/example/geo-overrides.toml\"|" \
    "$ROOT/waypost.toml" >"$W/waypost.toml"
{
    echo
    echo "[health]"
    echo "interval = \"${interval_ms}ms\""
    echo "timeout = \"${timeout_ms}ms\""
    echo "fall = $FALL"
    echo "rise = $RISE"
    echo "state-file = \"$W/state.json\""
    for s in ams iad sin; do
        cat <<EOF

[datacenters.$s.check]
type = "http"
address = "127.0.0.1"
port = ${SITE_PORT[$s]}
path = "/health"
expect-body = "ok"
EOF
    done
} >>"$W/waypost.toml"
"$WAYPOST" check --config "$W/waypost.toml" >"$W/check.log" 2>&1 ||
    { tail -n 20 "$W/check.log" >&2; die "waypost check rejected the config ($W/waypost.toml)"; }
FAILOVER_TTL=$(awk '/^\[services."web.example.com."\]/ { s = 1; next } /^\[/ { s = 0 }
    s && /^ttl *=/ { t = $3 } s && /^failover-ttl *=/ { f = $3 }
    END { print (f != "" ? f : (t < 10 ? t : 10)) }' "$W/waypost.toml")

# ---------------------------------------------------------------- run
cat <<EOF
## Waypost failover benchmark ($(date -u +%Y-%m-%dT%H:%MZ))
- host: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)
- waypost $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') (binary $(date -u -r "$WAYPOST" +%Y-%m-%dT%H:%MZ)), example config + HTTP checks of ams, iad, sin
- checks: interval ${interval_ms}ms, timeout ${timeout_ms}ms, fall $FALL, rise $RISE; failover TTL $FAILOVER_TTL
- client: London, ECS 81.2.69.160/27 (order ams, iad, sin), A web.example.com.; DNS and /v1/status polled every ${POLL}s
- trials: $TRIALS; kill = SIGKILL of ams's backend; times in seconds after the kill (restore: after the backend listens again)

EOF

# The driver owns the three backends; waypost starts once they listen.
python3 "$HERE/health/failover-driver.py" --workdir "$W" --backend "$HERE/health/backend.py" \
    --ports "${SITE_PORT[ams]},${SITE_PORT[iad]},${SITE_PORT[sin]}" \
    --dns-port "${PORT[waypost]}" --http-port "$HTTP_PORT" --waypost-pid-file "$W/waypost.pid" \
    --trials "$TRIALS" --interval "$INTERVAL" --fall "$FALL" --rise "$RISE" --poll "$POLL" \
    --failover-ttl "$FAILOVER_TTL" --start-timeout "$START_TIMEOUT" ${SEED:+--seed "$SEED"} &
PID[driver]=$!
deadline=$((SECONDS + START_TIMEOUT))
until [[ -e $W/backends.ready ]]; do
    kill -0 "${PID[driver]}" 2>/dev/null || { wait "${PID[driver]}" || true; die "the backends did not start"; }
    ((SECONDS < deadline)) || die "the backends did not start within ${START_TIMEOUT}s"
    sleep 0.05
done

"$WAYPOST" serve --config "$W/waypost.toml" --dns-listen "127.0.0.1:${PORT[waypost]}" \
    --http-listen "127.0.0.1:$HTTP_PORT" >"$W/waypost.log" 2>&1 &
PID[waypost]=$!
echo "${PID[waypost]}" >"$W/waypost.pid"
wait_ready waypost

rc=0
wait "${PID[driver]}" || rc=$?
unset 'PID[driver]'
if ! kill -0 "${PID[waypost]}" 2>/dev/null; then
    say "== waypost exited; log:"; tail -n 30 "$W/waypost.log" >&2
    ((rc == 0)) && rc=1
fi
if ((rc != 0)); then
    say "== waypost log (last 15 lines):"; tail -n 15 "$W/waypost.log" >&2
fi
exit "$rc"
