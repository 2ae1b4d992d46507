# Helpers shared by benches/load.sh and benches/load-geo.sh. Sourced, not run.
#
# The caller sets PROG (message prefix), MODE (udp|tcp), START_TIMEOUT, KEEP, ZONE,
# CLIENT_CPU, CLIENTS, OUTSTANDING, RATE, HZ and MAX_LOSS_PCT, calls make_workdir,
# and fills PID[key] / PORT[key] for each server it starts; a server's log is
# $W/<key>.log.

declare -A PID=() PORT=()

die() { echo "$PROG: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

need_tools() {
    local t
    for t; do command -v "$t" >/dev/null || die "missing tool: $t"; done
}

# ---------------------------------------------------------------- work dir
# Creates $W and installs the EXIT trap that stops every server in PID.
make_workdir() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

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

# kdig transport flag matching MODE.
kdig_mode() { if [[ $MODE == tcp ]]; then echo +tcp; else echo +notcp; fi; }

# Waits (bounded) until server KEY answers SOA for $ZONE; dies with its log otherwise.
wait_ready() {
    local p=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "${PID[$p]}" 2>/dev/null; then
            say "== $p exited during start-up; log:"; tail -n 30 "$W/$p.log" >&2
            die "$p failed to start"
        fi
        if kdig @127.0.0.1 -p "${PORT[$p]}" "$ZONE" SOA +short +time=1 +retry=0 "$(kdig_mode)" \
               2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.2
    done
    say "== $p did not answer SOA within ${START_TIMEOUT}s; log:"; tail -n 30 "$W/$p.log" >&2
    die "$p failed to start"
}

# ---------------------------------------------------------------- measuring
# utime+stime (fields 14, 15) of the whole process, in clock ticks.
cpu_ticks() {
    local s
    s=$(<"/proc/$1/stat") || return 1
    s=${s##*) }             # drop "pid (comm) "; field 3 (state) is now $1
    # shellcheck disable=SC2086
    set -- $s
    echo $(( ${12} + ${13} ))
}

# dnsperf against 127.0.0.1:PORT for DURATION seconds; the rest are data arguments
# (-d FILE, -B, -E ...).
# With ONESHOT=1 (MODE=tcp) the client is tcp-oneshot.py instead: one query per connection,
# CLIENTS connections in flight, -d FILE only.
dnsperf_cmd() { # port duration data-args...
    local port=$1 dur=$2
    shift 2
    if [[ ${ONESHOT:-0} == 1 ]]; then
        taskset -c "$CLIENT_CPU" python3 "$HERE/tcp-oneshot.py" -s 127.0.0.1 -p "$port" "$@" -l "$dur" -c "$CLIENTS"
        return
    fi
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -m "$MODE" "$@" \
        -l "$dur" -c "$CLIENTS" -q "$OUTSTANDING" ${RATE:+-Q "$RATE"}
}

# One measured run: appends a line to $RES (tab-separated: label round sent completed
# lost QPS cpu-s cpu% µs/query NXD% other-rcodes avg-latency-µs). Sets FAIL=1 if the server died
# or dnsperf failed.
run_one() { # label round server-key data-args...
    local label=$1 r=$2 key=$3 out t0 t1 rc=0
    shift 3
    out=$W/dnsperf-${label//[:\/]/-}-$r.txt
    t0=$(cpu_ticks "${PID[$key]}")
    dnsperf_cmd "${PORT[$key]}" "$DURATION" "$@" >"$out" 2>&1 || rc=$?
    t1=$(cpu_ticks "${PID[$key]}") || { say "== $key died during run $r"; tail -n 30 "$W/$key.log" >&2; FAIL=1; return; }
    if ((rc != 0)); then
        say "== dnsperf exited $rc against $key:"; tail -n 20 "$out" >&2; FAIL=1; return
    fi
    awk -v p="$label" -v r="$r" -v ticks=$((t1 - t0)) -v hz="$HZ" '
        /Queries sent:/       { sent = $3 }
        /Queries completed:/  { done = $3 }
        /Queries lost:/       { lost = $3 }
        /Run time \(s\):/     { rt = $4 }
        /Queries per second:/ { qps = $4 }
        /Average Latency \(s\):/ { lat = $4 }
        /Response codes:/ {
            sub(/.*Response codes:[ \t]*/, "")
            n = split($0, a, /, /)
            for (i = 1; i <= n; i++) { split(a[i], b, " "); rc[b[1]] += b[2] }
        }
        END {
            other = 0; for (k in rc) if (k != "NOERROR" && k != "NXDOMAIN") other += rc[k]
            cpu = ticks / hz
            printf "%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.1f\t%.3f\t%.1f\t%d\t%.0f\n", p, r, sent, done, lost,
                qps, cpu, (rt > 0 ? 100 * cpu / rt : 0), (done > 0 ? 1e6 * cpu / done : 0),
                (done > 0 ? 100 * rc["NXDOMAIN"] / done : 0), other, 1e6 * lat
        }' "$out" >>"$RES"
}

# ---------------------------------------------------------------- output
# Per-run table; the first column is W characters wide.
table_header() { # width
    local w=$1
    printf "| %-${w}s | %3s | %9s | %9s | %6s | %8s | %7s | %5s | %8s | %6s | %5s | %6s |\n" \
        server run sent completed lost QPS "CPU s" "CPU%" "µs/query" "NXD%" "other" "lat µs"
    printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf '%*s' $((w + 2)) '' | tr ' ' -)" \
        ----: ----------: ----------: -------: ---------: --------: ------: ---------: -------: ------: -------:
}

table_row() { # width label round  (prints that run's line from $RES)
    tail -n 1 "$RES" | awk -F'\t' -v w="$1" -v p="$2" -v r="$3" '$1 == p && $2 == r {
        printf "| %-*s | %3d | %9d | %9d | %6d | %8d | %7.2f | %5.1f | %8.3f | %6.1f | %5d | %6d |\n",
            w, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }'
}

# Summary table (median µs/query and QPS per label), ratio lines, loss/rcode verdict.
# RATIOS: ";"-separated "num|den|bold|name|target" specs, printed when both labels
# have runs: "[**]name: R×[**] (median A vs B µs/query)", plus "; target OP X: met|MISSED"
# when target is "le:X" or "lt:X". Returns 1 if a run broke MAX_LOSS_PCT or a label has
# no runs.
summarize() { # width "labels" "ratios"
    awk -F'\t' -v w="$1" -v peers="$2" -v ratios="$3" -v maxloss="$MAX_LOSS_PCT" '
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
        dash = sprintf("%*s", w + 2, ""); gsub(/ /, "-", dash)
        printf "| %-*s | %4s | %15s | %12s | %10s | %9s |\n", w, "server", "runs", "median µs/query", "median QPS", "lost", "other rc"
        printf "|%s|-----:|----------------:|-------------:|-----------:|----------:|\n", dash
        np = split(peers, P, " ")
        for (i = 1; i <= np; i++) {
            p = P[i]; if (!(p in runs)) { printf "| %-*s | %4d | %15s | %12s | %10s | %9s |\n", w, p, 0, "-", "-", "-", "-"; bad = 1; continue }
            med[p] = median(us[p])
            printf "| %-*s | %4d | %15.3f | %12.0f | %10s | %9d |\n", w, p, runs[p], med[p], median(qps[p]),
                sprintf("%d/%d", lost[p], sent[p]), other[p]
        }
        print ""
        nr = split(ratios, R, ";")
        for (i = 1; i <= nr; i++) {
            if (split(R[i], f, "|") < 4) continue
            num = f[1]; den = f[2]
            if (!(num in med) || !(den in med) || med[den] <= 0) continue
            x = med[num] / med[den]; b = (f[3] == 1 ? "**" : "")
            line = sprintf("%s%s: %.2f×%s (median %.3f vs %.3f µs/query)", b, f[4], x, b, med[num], med[den])
            if (split(f[5], t, ":") == 2) {
                ok = (t[1] == "le" ? x <= t[2] + 0 : x < t[2] + 0)
                line = line sprintf("; target %s %s: %s", (t[1] == "le" ? "≤" : "<"), t[2], (ok ? "met" : "MISSED"))
            }
            print line
        }
        if (bad) { printf "%s", why; exit 1 }
        print "- all runs within loss/rcode limits (" maxloss "%)"
    }' "$RES"
}
