#!/usr/bin/env bash
# Waypost three-data-centre lab on one machine, with Linux network namespaces.
#
#   wp-a, wp-b, wp-c   one data centre each: Waypost instance on 10.99.0.1X (DNS :53,
#                      HTTP API :8053) and its web site on 10.99.0.2X:80 (/health)
#   wp-client          a client, 10.99.0.100
#   wp-core            the bridge joining them (nothing is added to the root namespace)
#
# Every instance checks all three sites, pulls its two peers' observations every second,
# and answers web.lab.test. A from site a while a is up (TTL 60), else from b (TTL 5).
# The HTTP API is HTTPS only, with mutual TLS: a lab CA (deploy/fleet-certs.sh, in
# $LAB_DIR/pki) signs each instance's certificate and the client's (pki/client.*), and
# every caller of the API, peers included, must present one. The admin and peer tokens
# are read from files ($LAB_DIR/secrets).
#
# Usage: deploy/lab/lab.sh COMMAND
#   up                     build the lab, start sites and instances, wait for DNS
#   down                   stop everything, delete the namespaces and the work dir's pids
#   status                 each instance's view: local state, verdict and votes, peers
#   query                  ask every instance for web.lab.test. A from the client
#   kill-site X            stop site X's web server (its health check fails)
#   start-site X           start it again
#   toggle-site X          make site X's /health answer 503 (or 200 again)
#   cut C A                make site A unreachable from instance C only (blackhole route)
#   uncut C A              undo
#   stop-instance X        stop Waypost in data centre X (SIGTERM)
#   start-instance X       start it again
#   reload X               POST /v1/reload to instance X
#   bump-serial X          raise the zone serial on instance X only, and reload it
#   restore-zone X         put the original zone back on instance X, and reload it
#   logs X                 show instance X's log
#   which-waypost          print the binary the lab runs
#
# Environment: WAYPOST (binary; default target/release/waypost, else target/debug/waypost),
# LAB_DIR (work dir; default /tmp/waypost-lab).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB_DIR=${LAB_DIR:-/tmp/waypost-lab}
DCS=(a b c)
NSS=(wp-a wp-b wp-c wp-client wp-core)
NET=10.99.0
SERIAL=2026010101

declare -A NUM=([a]=1 [b]=2 [c]=3)
declare -A LOCATION=([a]="52.37, 4.90" [b]="39.04, -77.49" [c]="1.35, 103.82")

die() { echo "lab: $*" >&2; exit 1; }
say() { echo "lab: $*"; }

instance_ip() { echo "$NET.1${NUM[$1]}"; }
site_ip() { echo "$NET.2${NUM[$1]}"; }

check_dc() {
  [ -n "${1:-}" ] && [ -n "${NUM[$1]:-}" ] || die "expected a data centre: a, b or c (got '${1:-}')"
}

# Prints SKIP and exits 0 where namespaces cannot be made (not root, no iproute2).
preflight() {
  if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the Waypost lab needs root to create network namespaces"
    exit 0
  fi
  if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
    echo "SKIP: 'ip netns' is not available (install iproute2)"
    exit 0
  fi
  if ! ip netns add wp-preflight 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 0
  fi
  ip netns del wp-preflight
  command -v python3 >/dev/null || die "python3 is required (the lab's web sites and helper)"
  command -v openssl >/dev/null || die "openssl is required (the lab's CA and certificates: deploy/fleet-certs.sh)"
}

find_waypost() {
  local w=${WAYPOST:-}
  if [ -z "$w" ]; then
    if [ -x "$ROOT/target/release/waypost" ]; then w=$ROOT/target/release/waypost
    else w=$ROOT/target/debug/waypost; fi
  fi
  case $w in /*) ;; *) if [ -x "$w" ]; then w=$PWD/$w; else w=$ROOT/$w; fi ;; esac
  [ -x "$w" ] || die "no waypost binary at $w (build it with cargo build --release, or set WAYPOST)"
  echo "$w"
}

# Runs the helper in the client namespace.
tool() { ip netns exec wp-client python3 "$HERE/labtool.py" "$@"; }

# Running and not a zombie (our processes are reparented to init, which may reap them late).
running() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
pid_alive() { [ -f "$1" ] && running "$(cat "$1")"; }

# Stops the process whose pid is in file $1 (ours), waiting for it to exit.
stop_pidfile() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if running "$pid"; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do running "$pid" || break; sleep 0.05; done
    running "$pid" && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# --- network ---------------------------------------------------------------------------

net_up() {
  ip netns add wp-core
  ip -n wp-core link set lo up
  ip -n wp-core link add br0 type bridge
  ip -n wp-core link set br0 up
  local n
  for n in a b c client; do
    ip netns add "wp-$n"
    ip -n "wp-$n" link set lo up
    # Both ends are created inside namespaces: the root namespace gets nothing.
    ip -n wp-core link add "vc-$n" type veth peer name eth0 netns "wp-$n"
    ip -n wp-core link set "vc-$n" master br0 up
  done
  for n in a b c; do
    ip -n "wp-$n" addr add "$(instance_ip "$n")/24" dev eth0
    ip -n "wp-$n" addr add "$(site_ip "$n")/24" dev eth0
    ip -n "wp-$n" link set eth0 up
  done
  ip -n wp-client addr add "$NET.100/24" dev eth0
  ip -n wp-client link set eth0 up
}

net_down() {
  local ns pid
  for ns in "${NSS[@]}"; do
    if ip netns list | awk '{print $1}' | grep -qx -- "$ns"; then
      # Anything still running in a lab namespace was started by the lab.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
      sleep 0.2
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
  done
}

# --- files -----------------------------------------------------------------------------

write_zone() { # $1 file, $2 serial
  cat > "$1" <<EOF
; The lab's zone. web.lab.test. is a geo service (see [services] in waypost.toml):
; it has no A records here.
\$ORIGIN lab.test.
\$TTL 300
@       IN SOA  ns1 hostmaster ( $2 1h 15m 1w 60 )
        IN NS   ns1
        IN NS   ns2
        IN NS   ns3
ns1     IN A    $(instance_ip a)
ns2     IN A    $(instance_ip b)
ns3     IN A    $(instance_ip c)
web     IN TXT  "geo service: failover a > b > c"
EOF
}

# The lab CA, a certificate per instance (for its address) and one for the client
# namespace's tools; the admin and peer tokens in files.
write_pki() {
  local pki=$LAB_DIR/pki dc
  CA_NAME="Waypost lab CA" "$HERE/../fleet-certs.sh" ca "$pki"
  for dc in "${DCS[@]}"; do "$HERE/../fleet-certs.sh" cert "$pki" "$dc" "IP:$(instance_ip "$dc")"; done
  "$HERE/../fleet-certs.sh" cert "$pki" client "IP:$NET.100"
  mkdir -p "$LAB_DIR/secrets"
  echo lab > "$LAB_DIR/secrets/admin.token"
  echo lab-fleet-token > "$LAB_DIR/secrets/peer.token"
  chmod 600 "$LAB_DIR/secrets/"*
}

write_config() { # $1 dc
  local dc=$1 dir=$LAB_DIR/$1 p d
  mkdir -p "$dir/zones"
  write_zone "$dir/zones/lab.test.zone" "$SERIAL"
  {
    cat <<EOF
# Waypost lab instance $dc (generated by deploy/lab/lab.sh). Only [server] and [fleet]
# differ between the three instances.
version = 1

[server]
dns-listen = ["$(instance_ip "$dc"):53"]
http-listen = "$(instance_ip "$dc"):8053"
http-tls-cert = "../pki/$dc.pem"
http-tls-key = "../pki/$dc.key"
zones-dir = "zones"

[health]
interval = "1s"
timeout = "500ms"
fall = 3
rise = 2
state-file = "state.json"
admin-token-file = "../secrets/admin.token"

[fleet]
vantage = "$dc"
token-file = "../secrets/peer.token"
interval = "1s"
ca = "../pki/ca.pem"                # peers' certificates chain to the lab CA
client-ca = "../pki/ca.pem"         # and so must every client's (mutual TLS)
client-cert = "../pki/$dc.pem"
client-key = "../pki/$dc.key"
EOF
    for p in "${DCS[@]}"; do
      [ "$p" = "$dc" ] && continue
      printf '[[fleet.peers]]\nname = "%s"\nurl = "https://%s:8053"\n' "$p" "$(instance_ip "$p")"
    done
    printf '\n[geo.map]\ndefault = ["a", "b", "c"]\n'
    for d in "${DCS[@]}"; do
      cat <<EOF

[datacenters.$d]
location = [${LOCATION[$d]}]
[datacenters.$d.services]
"web.lab.test." = ["$(site_ip "$d")"]
[datacenters.$d.check]
type = "http"
address = "$(site_ip "$d")"
port = 80
path = "/health"
expect-body = "ok"
EOF
    done
    cat <<EOF

[services."web.lab.test."]
ttl = 60
failover-ttl = 5
policy = "failover"
EOF
  } > "$dir/waypost.toml"
}

# --- processes ---------------------------------------------------------------------------

start_site() {
  local dc=$1 f=$LAB_DIR/run/site-$1.pid
  pid_alive "$f" && { say "site $dc is already running"; return 0; }
  # setsid: the process outlives this script; $! is its pid (ip netns exec and setsid exec).
  ip netns exec "wp-$dc" setsid python3 "$HERE/site.py" --name "$dc" --bind "$(site_ip "$dc")" --port 80 \
    >> "$LAB_DIR/run/site-$dc.log" 2>&1 < /dev/null &
  echo $! > "$f"
  local i
  for i in $(seq 50); do
    ip netns exec "wp-$dc" python3 -c "import socket; socket.create_connection(('$(site_ip "$dc")', 80), 0.2)" 2>/dev/null && return 0
    pid_alive "$f" || break
    sleep 0.1
  done
  die "site $dc did not start (see $LAB_DIR/run/site-$dc.log)"
}

start_instance() {
  local dc=$1 f=$LAB_DIR/run/waypost-$1.pid
  pid_alive "$f" && { say "instance $dc is already running"; return 0; }
  ip netns exec "wp-$dc" setsid "$(find_waypost)" serve --config "$LAB_DIR/$dc/waypost.toml" \
    >> "$LAB_DIR/run/waypost-$dc.log" 2>&1 < /dev/null &
  echo $! > "$f"
}

wait_instances() { # $1 comma list
  local i
  for i in $(seq 100); do
    if tool check up "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  tool check up "$1" || true
  die "instances $1 did not answer within 20 s (see $LAB_DIR/run/waypost-*.log)"
}

# --- commands ------------------------------------------------------------------------------

cmd_up() {
  preflight
  local w
  w=$(find_waypost)
  cmd_down >/dev/null
  if [ -e "$LAB_DIR" ]; then
    [ -f "$LAB_DIR/.waypost-lab" ] || die "$LAB_DIR exists and is not a lab dir; set LAB_DIR"
    rm -rf "$LAB_DIR"
  fi
  mkdir -p "$LAB_DIR/run"
  touch "$LAB_DIR/.waypost-lab"
  local dc
  write_pki
  for dc in "${DCS[@]}"; do write_config "$dc"; done
  "$w" check --config "$LAB_DIR/a/waypost.toml" >/dev/null || die "waypost check failed on the lab config"
  net_up
  for dc in "${DCS[@]}"; do start_site "$dc"; done
  for dc in "${DCS[@]}"; do start_instance "$dc"; done
  wait_instances a,b,c
  cat <<EOF
lab: up. Binary $w, work dir $LAB_DIR (configs, zones, logs in run/).
  data centres a, b, c: instances 10.99.0.11-13 (DNS :53, HTTPS :8053, mutual TLS), sites 10.99.0.21-23
  the API from the client namespace: ip netns exec wp-client curl --cacert $LAB_DIR/pki/ca.pem \\
    --cert $LAB_DIR/pki/client.pem --key $LAB_DIR/pki/client.key https://10.99.0.11:8053/v1/status
  client namespace wp-client (10.99.0.100). Try:
    $0 query                   # every instance: web.lab.test. A 10.99.0.21 TTL 60
    $0 kill-site a; sleep 5; $0 query    # now 10.99.0.22 TTL 5 everywhere
    $0 start-site a            # back to a after two good checks
    $0 cut c a; $0 status      # c sees a down, the quorum keeps it up
    $0 stop-instance b         # a and c carry on with two voters
    $0 bump-serial a; $0 status    # b and c warn about a's serial
    ip netns exec wp-client dig @10.99.0.12 web.lab.test A
    $0 down                    # remove everything
EOF
}

cmd_down() {
  local f
  if [ -d "$LAB_DIR/run" ]; then
    for f in "$LAB_DIR"/run/*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
  fi
  net_down
  say "down"
}

cmd_query() {
  local i digcmd=""
  if command -v dig >/dev/null; then digcmd="dig +norec +time=1 +tries=1 +noall +answer"
  elif command -v kdig >/dev/null; then digcmd="kdig +norec +time=1 +retry=0 +noall +answer"; fi
  if [ -z "$digcmd" ]; then tool query; return; fi
  for i in "${DCS[@]}"; do
    printf '%s (%s): ' "$i" "$(instance_ip "$i")"
    ip netns exec wp-client $digcmd "@$(instance_ip "$i")" web.lab.test. A | awk '{printf "%s TTL %s  ", $5, $2} END {print ""}'
  done
}

set_serial() { # $1 dc, $2 serial
  write_zone "$LAB_DIR/$1/zones/lab.test.zone" "$2"
  tool reload "$1"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) tool status "$@" ;;
    query) cmd_query ;;
    kill-site) check_dc "${1:-}"; stop_pidfile "$LAB_DIR/run/site-$1.pid"; say "site $1 stopped" ;;
    start-site) check_dc "${1:-}"; start_site "$1"; say "site $1 started" ;;
    toggle-site)
      check_dc "${1:-}"
      ip netns exec "wp-$1" python3 -c "import urllib.request as u; print(u.urlopen(u.Request('http://$(site_ip "$1")/toggle', method='POST'), timeout=2).read().decode().strip())" ;;
    cut|uncut)
      check_dc "${1:-}"; check_dc "${2:-}"
      if [ "$cmd" = cut ]; then
        ip -n "wp-$1" route replace blackhole "$(site_ip "$2")/32"; say "site $2 unreachable from instance $1"
      else
        ip -n "wp-$1" route del blackhole "$(site_ip "$2")/32" 2>/dev/null || true; say "site $2 reachable from instance $1 again"
      fi ;;
    stop-instance) check_dc "${1:-}"; stop_pidfile "$LAB_DIR/run/waypost-$1.pid"; say "instance $1 stopped" ;;
    start-instance) check_dc "${1:-}"; start_instance "$1"; wait_instances "$1"; say "instance $1 started" ;;
    reload) check_dc "${1:-}"; tool reload "$1" ;;
    bump-serial)
      check_dc "${1:-}"
      local cur
      cur=$(awk '/SOA/ {for (i = 1; i <= NF; i++) if ($i == "(") {print $(i+1); exit}}' "$LAB_DIR/$1/zones/lab.test.zone")
      set_serial "$1" $((cur + 1)); say "instance $1 now serves lab.test. serial $((cur + 1))" ;;
    restore-zone) check_dc "${1:-}"; set_serial "$1" "$SERIAL"; say "instance $1 serves lab.test. serial $SERIAL again" ;;
    which-waypost) find_waypost ;;
    logs) check_dc "${1:-}"; cat "$LAB_DIR/run/waypost-$1.log" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || exit 2 ;;
  esac
}

main "$@"
