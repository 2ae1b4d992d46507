#!/usr/bin/env bash
# End-to-end fleet scenarios in the namespace lab (deploy/lab/lab.sh), each with a bounded wait:
#   1. kill site a: all three instances agree within interval × fall + peer interval + 1 s,
#      every instance answers b's address with the failover TTL; recovery on all three
#   2. cut only instance c → site a: c sees it down, the quorum keeps a in every answer
#   3. stop instance b: a and c carry on with two fresh voters; b's votes go stale;
#      killing site a is still agreed (2 of 2)
#   4. a zone changed on one instance only: every instance warns about the serial mismatch
# then failover/recovery times over several trials, and peer traffic.
# Prints PASS/FAIL per scenario and "N passed, N failed"; exits 1 on any failure.
# Needs root (network namespaces); prints SKIP and exits 0 where they cannot be made.
#
# Environment: WAYPOST (binary), LAB_DIR, TRIALS (default 5), KEEP_LAB=1 (leave the lab up).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LAB=$HERE/lab.sh
TRIALS=${TRIALS:-5}

# The lab's timing (see lab.sh write_config): check interval 1 s, fall 3, rise 2, peers pulled every 1 s.
INTERVAL=1 FALL=3 RISE=2 PEER_INTERVAL=1
BUDGET=$((INTERVAL * FALL + PEER_INTERVAL + 1))          # all agree a site is down: 5 s
MEDIAN_TARGET=$((INTERVAL * FALL + 1))                   # median failover: under 4 s
RECOVER_BUDGET=$((INTERVAL * RISE + PEER_INTERVAL + 2))  # all answer a again: 5 s
A=10.99.0.21 B=10.99.0.22 SLOW_TTL=60 FAST_TTL=5

passed=0 failed=0
started=$(date +%s)

lab() { "$LAB" "$@" >/dev/null; }
now() { date +%s.%N; }
# w TIMEOUT [--since T] CHECK ARGS...: waits for the check, prints the seconds it took.
w() { ip netns exec wp-client python3 "$HERE/labtool.py" wait "$@"; }
hold() { ip netns exec wp-client python3 "$HERE/labtool.py" hold "$@"; }
note() { echo "  $*"; }

cleanup() {
  if [ "${KEEP_LAB:-0}" = 1 ]; then echo "lab left up (KEEP_LAB=1); remove it with $LAB down"; else "$LAB" down >/dev/null 2>&1; fi
}

# Puts the lab back to normal after a scenario (whatever state it left), then waits until settled.
restore() {
  lab uncut c a || true
  lab start-site a || true
  "$LAB" start-instance b >/dev/null 2>&1 || true
  lab restore-zone a || true
  w 20 settled >/dev/null 2>&1
}

scenario() { # NAME FUNCTION
  local name=$1 fn=$2
  echo "--- $name"
  if "$fn"; then
    echo "PASS: $name"; passed=$((passed + 1))
  else
    echo "FAIL: $name"; failed=$((failed + 1))
    echo "  status at failure:"; "$LAB" status 2>&1 | sed 's/^/    /'
  fi
  if ! restore; then
    echo "  could not restore the lab to normal:"; w 1 settled 2>&1 | sed 's/^/    /'
  fi
}

le() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }

# --- scenarios --------------------------------------------------------------------------------

kill_site_a() {
  local t t_verdict t_dns
  t=$(now); lab kill-site a
  t_verdict=$(w "$BUDGET" --since "$t" verdict a,b,c a down) || return 1
  t_dns=$(w "$BUDGET" --since "$t" answers a,b,c $B $FAST_TTL) || return 1
  note "site a killed: all three verdicts down after ${t_verdict} s, every instance answers $B TTL $FAST_TTL after ${t_dns} s (budget ${BUDGET} s)"
  lab start-site a; t=$(now)
  t_verdict=$(w 10 --since "$t" verdict a,b,c a up) || return 1
  t_dns=$(w 10 --since "$t" answers a,b,c $A -) || return 1
  w 10 settled >/dev/null || return 1
  note "site a back: all three verdicts up after ${t_verdict} s, every instance answers $A after ${t_dns} s, TTL $SLOW_TTL again"
}

cut_c_from_a() {
  local t t_down
  local hp
  t=$(now); lab cut c a
  # From the cut until c has seen site a down and a little after, every answer stays a's.
  hold $((INTERVAL * FALL + 3)) answers a,b,c $A - & hp=$!
  t_down=$(w $((BUDGET + 3)) --since "$t" state c a down) || { wait $hp; return 1; }
  wait $hp || return 1
  note "instance c's own state for site a: down (${t_down} s after the cut)"
  w 2 votes c a a=up,b=up,c=down >/dev/null || return 1
  w 2 verdict a,b,c a up >/dev/null || return 1
  w 2 answers a,b,c $A $SLOW_TTL >/dev/null || return 1
  lab uncut c a
  w 10 state c a up >/dev/null || return 1
}

stop_instance_b() {
  local t t_stale t_down
  t=$(now); lab stop-instance b
  t_stale=$(w 10 --since "$t" peer-stale a,c b) || return 1
  note "b's votes stale on a and c ${t_stale} s after b stopped"
  w 2 fresh-voters a,c 2 >/dev/null || return 1
  hold 2 answers a,c $A $SLOW_TTL || return 1
  t=$(now); lab kill-site a
  t_down=$(w "$BUDGET" --since "$t" verdict a,c a down) || return 1
  w "$BUDGET" --since "$t" answers a,c $B $FAST_TTL >/dev/null || return 1
  note "with b stopped, a and c agree site a is down after ${t_down} s (budget ${BUDGET} s)"
  lab start-site a
  w 10 answers a,c $A - >/dev/null || return 1
  "$LAB" start-instance b >/dev/null || return 1
  w 15 settled >/dev/null || return 1
  note "b restarted; all three settled"
}

serial_mismatch() {
  lab bump-serial a || return 1
  local new=2026010102 old=2026010101
  w 5 warning b "zone lab.test.: peer a serves serial $new, we serve $old" >/dev/null || return 1
  w 5 warning c "zone lab.test.: peer a serves serial $new, we serve $old" >/dev/null || return 1
  w 5 warning a "zone lab.test.: peer b serves serial $old, we serve $new" >/dev/null || return 1
  w 5 warning a "zone lab.test.: peer c serves serial $old, we serve $new" >/dev/null || return 1
  note "b and c warn: peer a serves serial $new, we serve $old; a warns about b and c"
  lab restore-zone a || return 1
  w 5 no-zone-warnings a,b,c >/dev/null || return 1
  note "zone restored on a: no zone warnings left"
}

random_phase() { sleep "$(printf '%d.%02d' $((INTERVAL - 1)) $((RANDOM % 100)))"; }

down_times=() up_times=()
failover_timing() {
  local i t d u
  for i in $(seq "$TRIALS"); do
    w 20 settled >/dev/null || return 1
    # Failures come at any moment, not just after a probe: start at a random phase of the interval.
    random_phase
    t=$(now); lab kill-site a
    d=$(w 10 --since "$t" answers a,b,c $B $FAST_TTL 2>/dev/null) || { note "trial $i: no failover within 10 s"; return 1; }
    random_phase
    lab start-site a; t=$(now)
    u=$(w 10 --since "$t" answers a,b,c $A - 2>/dev/null) || { note "trial $i: no recovery within 10 s"; return 1; }
    note "trial $i: kill site a → every instance answers $B in $d s; restore → every instance answers $A in $u s"
    down_times+=("$d"); up_times+=("$u")
  done
  local down_stats up_stats
  down_stats=$(python3 "$HERE/labtool.py" stats "${down_times[@]}")
  up_stats=$(python3 "$HERE/labtool.py" stats "${up_times[@]}")
  note "failover (kill a → all answer b): $down_stats"
  note "recovery (restore a → all answer a): $up_stats"
  local median
  median=$(python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' "${down_times[@]}")
  le "$median" "$MEDIAN_TARGET" || { note "median failover $median s is over interval × fall + 1 s = $MEDIAN_TARGET s"; return 1; }
  le "$(printf '%s\n' "${down_times[@]}" | sort -g | tail -1)" "$BUDGET" || { note "a failover took longer than $BUDGET s"; return 1; }
  le "$(printf '%s\n' "${up_times[@]}" | sort -g | tail -1)" "$RECOVER_BUDGET" || { note "a recovery took longer than $RECOVER_BUDGET s"; return 1; }
}

no_crash() {
  local dc ok=0 pid
  for dc in a b c; do
    pid=$(cat "${LAB_DIR:-/tmp/waypost-lab}/run/waypost-$dc.pid" 2>/dev/null) || { note "no pid file for instance $dc"; ok=1; continue; }
    kill -0 "$pid" 2>/dev/null || { note "instance $dc (pid $pid) is not running"; ok=1; }
  done
  if grep -l -E 'panicked| ERROR ' "${LAB_DIR:-/tmp/waypost-lab}"/run/waypost-*.log; then
    note "errors or panics in the logs above:"; grep -h -E 'panicked| ERROR ' "${LAB_DIR:-/tmp/waypost-lab}"/run/waypost-*.log | head -20 | sed 's/^/    /'
    ok=1
  fi
  return $ok
}

# The example fleet configs (deploy/example/fleet) are valid and differ only in [server] and [fleet].
example_configs() {
  local ex=$HERE/../example/fleet tmp dc ok=0 waypost
  waypost=$("$LAB" which-waypost) || return 1
  tmp=$(mktemp -d)
  cp -r "$ex"/. "$tmp"/
  # The real deployment brings its own GeoIP database; MaxMind's test database stands in.
  cp "$HERE/../../tests/data/geo/GeoIP2-City-Test.mmdb" "$tmp/GeoLite2-City.mmdb"
  # And its own fleet CA, certificates and token files, as README "Security" makes them.
  "$HERE/../fleet-certs.sh" ca "$tmp/tls"
  for dc in ams iad sin; do "$HERE/../fleet-certs.sh" cert "$tmp/tls" "$dc" "IP:10.10.0.53"; done
  mkdir -p "$tmp/secrets"; echo admin-secret > "$tmp/secrets/admin.token"; echo fleet-secret > "$tmp/secrets/fleet.token"
  for dc in ams iad sin; do
    "$waypost" check --config "$tmp/waypost-$dc.toml" >/dev/null || { note "waypost check failed on waypost-$dc.toml"; ok=1; }
    if ! diff <(sed -n '/^# --- shared by every instance/,$p' "$ex/waypost-ams.toml") \
              <(sed -n '/^# --- shared by every instance/,$p' "$ex/waypost-$dc.toml") >/dev/null; then
      note "waypost-$dc.toml differs from waypost-ams.toml outside [server] and [fleet]"; ok=1
    fi
  done
  rm -rf "$tmp"
  [ $ok = 0 ] && note "waypost-ams/iad/sin.toml pass waypost check; shared part identical"
  return $ok
}

# --- run ----------------------------------------------------------------------------------------

out=$("$LAB" up 2>&1); rc=$?
if grep -q '^SKIP' <<<"$out"; then echo "$out"; exit 0; fi
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ $rc != 0 ]; then echo "$out"; echo "FAIL: lab up"; echo "0 passed, 1 failed"; exit 1; fi
head -1 <<<"$out"
if ! w 20 settled >/dev/null; then
  "$LAB" status
  echo "FAIL: the lab did not settle (all peers fresh, every site up, every instance answering $A TTL $SLOW_TTL)"
  echo "0 passed, 1 failed"; exit 1
fi
echo "lab settled: every instance answers web.lab.test. A $A TTL $SLOW_TTL; check interval ${INTERVAL} s, fall $FALL, rise $RISE, peer interval ${PEER_INTERVAL} s"

echo "--- 0. example fleet configuration set"
if example_configs; then echo "PASS: example fleet configs"; passed=$((passed + 1)); else echo "FAIL: example fleet configs"; failed=$((failed + 1)); fi

scenario "1. kill site a: all agree within ${BUDGET} s, clients get b with TTL ${FAST_TTL}, then recovery" kill_site_a
scenario "2. cut only c → site a: c dissents, the quorum keeps a in every answer" cut_c_from_a
scenario "3. stop instance b: a and c keep a quorum of two, b's votes go stale, a site failure is still agreed" stop_instance_b
scenario "4. zone changed on a only: serial mismatch shown in fleet.warnings everywhere" serial_mismatch
scenario "5. failover timing over $TRIALS trials (median under ${MEDIAN_TARGET} s)" failover_timing

echo "--- peer traffic (observations pulled every ${PEER_INTERVAL} s, 3 targets)"
ip netns exec wp-client python3 "$HERE/labtool.py" traffic 5

echo "--- 6. no instance crashed or logged an error"
if no_crash; then echo "PASS: no crash, no errors in the logs"; passed=$((passed + 1)); else echo "FAIL: crash or errors"; failed=$((failed + 1)); fi

echo "lab test took $(( $(date +%s) - started )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
