#!/usr/bin/env bash
# Soak test (not part of CI): mixed DNS load for DURATION seconds against `waypost demo`,
# with a reload and a failover (a site toggled down and back) every minute. Prints per
# minute: queries completed and lost, responses other than NOERROR/NXDOMAIN, server RSS,
# server-side answer-time p99 (from waypost_answer_seconds), client average/max latency.
#
#   benches/soak.sh                 # one hour
#   DURATION=180 RATE=5000 benches/soak.sh
#
# Needs dnsperf, curl, python3. Uses the demo's fixed ports (1053, 8053, 18081-18083).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3600}
RATE=${RATE:-20000}
WAYPOST=${WAYPOST:-target/release/waypost}
MAX_LOSS_PCT=${MAX_LOSS_PCT:-0.1}
[ -x "$WAYPOST" ] || { echo "soak: $WAYPOST missing (cargo build --release)" >&2; exit 2; }
for t in dnsperf curl python3; do command -v $t >/dev/null || { echo "soak: needs $t" >&2; exit 2; }; done

W=$(mktemp -d /tmp/waypost-soak.XXXXXX)
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM

"$WAYPOST" demo >"$W/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8053/readyz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:8053/readyz >/dev/null || { echo "soak: server did not start" >&2; tail "$W/server.log" >&2; exit 2; }

# Mixed queries: static names, a CNAME, NXDOMAIN, a referral, and the three services.
cat >"$W/queries" <<'Q'
www.example.com A
web.example.com A
web.example.com AAAA
api.example.com A
cdn.example.com A
mail.example.com A
example.com MX
example.com SOA
nothere.example.com A
x.dev.example.com A
_imaps._tcp.example.com SRV
foo.apps.example.com A
Q

p99() { # p99 in ms from the delta of two histogram scrapes
  python3 - "$1" "$2" <<'PY'
import sys, re
def read(f):
    b = {}
    for l in open(f):
        m = re.match(r'waypost_answer_seconds_bucket\{le="([^"]+)"\} (\d+)', l)
        if m: b[float('inf') if m[1] == '+Inf' else float(m[1])] = int(m[2])
    return b
a, b = read(sys.argv[1]), read(sys.argv[2])
d = sorted((le, b[le] - a.get(le, 0)) for le in b)
total = d[-1][1] if d else 0
if total == 0: print("-"); sys.exit()
for le, c in d:
    if c >= 0.99 * total:
        print("%.3f" % (le * 1000) if le != float('inf') else ">max"); break
PY
}

printf '%-6s %10s %7s %7s %10s %12s %12s %12s\n' minute completed lost other rss_kib p99_ms avg_lat_ms max_lat_ms
minutes=$(( (DURATION + 59) / 60 ))
fail=0
rss0=$(awk '/VmRSS/{print $2}' /proc/$SERVER/status)
for m in $(seq 1 "$minutes"); do
  curl -s http://127.0.0.1:8053/metrics >"$W/m0"
  len=$(( DURATION - (m - 1) * 60 )); [ "$len" -gt 60 ] && len=60
  dnsperf -s 127.0.0.1 -p 1053 -d "$W/queries" -l "$len" -Q "$RATE" -c 4 >"$W/perf" 2>&1 &
  PERF=$!
  ( sleep $((len / 6)); curl -s -X POST http://127.0.0.1:8053/v1/reload >/dev/null
    sleep $((len / 6)); curl -s -X POST http://127.0.0.1:18081/toggle >/dev/null
    sleep $((len / 3)); curl -s -X POST http://127.0.0.1:18081/toggle >/dev/null ) &
  EVENTS=$!
  wait "$PERF" || true
  wait "$EVENTS" || true
  curl -s http://127.0.0.1:8053/metrics >"$W/m1"
  kill -0 "$SERVER" 2>/dev/null || { echo "soak: the server died" >&2; tail "$W/server.log" >&2; exit 1; }
  completed=$(awk '/Queries completed:/{print $3}' "$W/perf")
  lost=$(awk '/Queries lost:/{print $3}' "$W/perf")
  other=$(awk '/Response codes:/{for(i=3;i<=NF;i++){gsub(",","",$i); if($i!~/^(NOERROR|NXDOMAIN)$/ && $(i+1)~/^[0-9]+/){s+=$(i+1)}}} END{print s+0}' "$W/perf")
  avg=$(awk '/Average Latency/{printf "%.3f", $4*1000}' "$W/perf")
  max=$(awk '/Average Latency/{gsub("[(),]","",$0); printf "%.3f", $8*1000}' "$W/perf")
  rss=$(awk '/VmRSS/{print $2}' /proc/$SERVER/status)
  printf '%-6s %10s %7s %7s %10s %12s %12s %12s\n' "$m" "${completed:-0}" "${lost:-0}" "$other" "$rss" "$(p99 "$W/m0" "$W/m1")" "${avg:--}" "${max:--}"
  if [ -n "$completed" ] && [ "$completed" -gt 0 ]; then
    python3 -c "import sys; sys.exit(0 if ${lost:-0} * 100 <= $MAX_LOSS_PCT * ($completed + ${lost:-0}) and $other == 0 else 1)" || fail=1
  fi
done
errors=$(grep -cE "ERROR|panicked" "$W/server.log" || true)
echo "RSS $rss0 → $rss KiB over $DURATION s; server log errors: $errors"
[ "$errors" -eq 0 ] || fail=1
exit $fail
