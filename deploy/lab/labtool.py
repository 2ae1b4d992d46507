#!/usr/bin/env python3
"""Helper for the Waypost lab (lab.sh, test.sh): reads every instance's /v1/status,
asks every instance for the service over DNS, and waits (bounded) for conditions.

Runs inside the client namespace (wp-client), standard library only.

    labtool.py status                      each instance's view: verdicts, votes, peers
    labtool.py query                       every instance's answer for web.lab.test. A
    labtool.py reload INSTANCE             POST /v1/reload
    labtool.py wait SECONDS [--since T0] CHECK ARGS...
                                           poll CHECK until it holds; prints the seconds
                                           since T0 (default: now) and exits 0, else 1
    labtool.py hold SECONDS CHECK ARGS...  CHECK must hold for SECONDS without a break
    labtool.py check CHECK ARGS...         evaluate once
    labtool.py traffic SECONDS             peer bytes received per instance per second
    labtool.py stats V...                  median and max of the values

Checks (INSTANCES is a comma list like a,b,c; "-" for a TTL means any):
    up INSTANCES                           DNS answers and /v1/status works
    answers INSTANCES ADDR TTL             web.lab.test. A is exactly ADDR with TTL
    verdict INSTANCES DC up|down           the fleet verdict about DC's site
    state INSTANCE DC PHASE                the local hysteresis (up/failing/down/recovering)
    votes INSTANCE DC a=up,b=up,c=down     those fresh votes (and no other fresh vote)
    fresh-voters INSTANCES N               every target has exactly N fresh votes
    peer-stale INSTANCES PEER              PEER unreachable and not fresh, its votes stale
    warning INSTANCE SUBSTRING             fleet.warnings has a line containing SUBSTRING
    no-zone-warnings INSTANCES             no "zone ..." line in fleet.warnings
    settled                                all peers fresh, every target up with 3 fresh
                                           up votes, every instance answers 10.99.0.21 TTL 60
"""

import json
import os
import random
import signal
import socket
import ssl
import statistics
import struct
import sys
import time
import urllib.request

INSTANCES = {"a": "10.99.0.11", "b": "10.99.0.12", "c": "10.99.0.13"}
SITES = {"a": "10.99.0.21", "b": "10.99.0.22", "c": "10.99.0.23"}
HTTP_PORT = 8053
# The lab's API is HTTPS with mutual TLS (lab.sh write_pki): trust the lab CA, present the
# client certificate.
LAB_DIR = os.environ.get("LAB_DIR", "/tmp/waypost-lab")


def tls_context():
    ctx = ssl.create_default_context(cafile=os.path.join(LAB_DIR, "pki", "ca.pem"))
    ctx.load_cert_chain(os.path.join(LAB_DIR, "pki", "client.pem"), os.path.join(LAB_DIR, "pki", "client.key"))
    return ctx


def api(inst, path):
    return f"https://{INSTANCES[inst]}:{HTTP_PORT}{path}"
SERVICE = "web.lab.test."
SLOW_TTL, FAST_TTL = 60, 5


class CheckFailed(Exception):
    pass


def target_id(dc):
    return f"http://{SITES[dc]}:80/health"


# --- DNS -----------------------------------------------------------------------------

def _skip_name(msg, off):
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def dns_query(server, name, qtype=1, timeout=1.0):
    """One UDP query; returns (rcode, [(address or rdata hex, ttl)])."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, 53))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            msg, _ = s.recvfrom(65535)
            if len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = _skip_name(msg, off) + 4
    out = []
    for _ in range(an):
        off = _skip_name(msg, off)
        rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            out.append((socket.inet_ntoa(rdata), ttl))
        elif rtype == qtype:
            out.append((rdata.hex(), ttl))
    return flags & 0xF, out


def answer(inst):
    """(sorted addresses, ttl) of INST's answer for the service, or raises CheckFailed."""
    try:
        rcode, rrs = dns_query(INSTANCES[inst], SERVICE)
    except OSError as e:
        raise CheckFailed(f"{inst}: DNS query failed: {e}")
    if rcode != 0:
        raise CheckFailed(f"{inst}: rcode {rcode}")
    ttls = {t for _, t in rrs}
    return sorted(a for a, _ in rrs), (min(ttls) if ttls else None)


# --- HTTP ----------------------------------------------------------------------------

def status(inst, timeout=1.0):
    try:
        with urllib.request.urlopen(api(inst, "/v1/status"), timeout=timeout, context=tls_context()) as r:
            return json.load(r)
    except (OSError, ValueError) as e:
        raise CheckFailed(f"{inst}: GET /v1/status failed: {e}")


def reload(inst):
    # lab.sh sets admin-token = "lab"; with a token configured, reload needs it.
    req = urllib.request.Request(api(inst, "/v1/reload"), method="POST", data=b"",
                                 headers={"Authorization": "Bearer lab"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=tls_context()) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def target(st, dc, inst):
    for t in st.get("targets", []):
        if t.get("id") == target_id(dc):
            return t
    raise CheckFailed(f"{inst}: no target {target_id(dc)} in status")


def peer(st, name, inst):
    for p in st.get("fleet", {}).get("peers", []):
        if p.get("name") == name:
            return p
    raise CheckFailed(f"{inst}: no peer {name} in status")


def insts(arg):
    names = [x for x in arg.split(",") if x]
    for n in names:
        if n not in INSTANCES:
            raise SystemExit(f"unknown instance {n!r} (a, b or c)")
    return names


# --- checks: each returns a short description or raises CheckFailed ------------------

def chk_up(arg):
    for i in insts(arg):
        answer(i)
        status(i)
    return "answering"


def chk_answers(arg, addr, ttl):
    seen = []
    for i in insts(arg):
        addrs, t = answer(i)
        seen.append(f"{i}:{','.join(addrs) or '-'}/{t}")
        if addrs != [addr] or (ttl != "-" and t != int(ttl)):
            raise CheckFailed(f"{i} answers {addrs} TTL {t}, want [{addr}] TTL {ttl} ({' '.join(seen)})")
    return " ".join(seen)


def chk_verdict(arg, dc, want):
    out = []
    for i in insts(arg):
        v = target(status(i), dc, i)["verdict"]
        if v["up"] != (want == "up"):
            raise CheckFailed(f"{i}: verdict on {dc} is {'up' if v['up'] else 'down'} ({v['reason']})")
        out.append(f"{i}: {v['reason']}")
    return "; ".join(out)


def chk_state(inst, dc, phase):
    t = target(status(inst), dc, inst)
    if t["state"] != phase:
        raise CheckFailed(f"{inst}: local state of {dc} is {t['state']}, want {phase}")
    return f"{inst} sees {dc} {phase} (verdict {'up' if t['verdict']['up'] else 'down'}: {t['verdict']['reason']})"


def fmt_votes(votes):
    return " ".join(f"{v['vantage']}={'up' if v['up'] else 'down'}({v['phase']},{v['age_s']}s{'' if v['fresh'] else ',stale'})" for v in votes)


def chk_votes(inst, dc, spec):
    want = dict(kv.split("=") for kv in spec.split(","))
    votes = target(status(inst), dc, inst)["votes"]
    fresh = {v["vantage"]: ("up" if v["up"] else "down") for v in votes if v["fresh"]}
    if fresh != want:
        raise CheckFailed(f"{inst}: fresh votes on {dc} are {fresh}, want {want} [{fmt_votes(votes)}]")
    return f"{inst} votes on {dc}: {fmt_votes(votes)}"


def chk_fresh_voters(arg, n):
    for i in insts(arg):
        for t in status(i)["targets"]:
            k = sum(1 for v in t["votes"] if v["fresh"])
            if k != int(n):
                raise CheckFailed(f"{i}: {t['id']} has {k} fresh votes, want {n} [{fmt_votes(t['votes'])}]")
    return f"{n} fresh voters per target"


def chk_peer_stale(arg, name):
    out = []
    for i in insts(arg):
        st = status(i)
        p = peer(st, name, i)
        if p["reachable"] or p["fresh"]:
            raise CheckFailed(f"{i}: peer {name} reachable={p['reachable']} fresh={p['fresh']}")
        for t in st["targets"]:
            for v in t["votes"]:
                if v["vantage"] == name and v["fresh"]:
                    raise CheckFailed(f"{i}: {name}'s vote on {t['id']} is still fresh ({v['age_s']} s)")
        out.append(f"{i}: peer {name} reachable=false fresh=false age {p['age_s']}s, error {p['last_error']!r}")
    return "; ".join(out)


def chk_warning(inst, substr):
    w = status(inst)["fleet"]["warnings"]
    hits = [x for x in w if substr in x]
    if not hits:
        raise CheckFailed(f"{inst}: no warning containing {substr!r} in {w}")
    return f"{inst}: {hits[0]}"


def chk_no_zone_warnings(arg):
    for i in insts(arg):
        w = [x for x in status(i)["fleet"]["warnings"] if x.startswith("zone ")]
        if w:
            raise CheckFailed(f"{i}: {w}")
    return "no zone warnings"


def chk_settled():
    for i in INSTANCES:
        st = status(i)
        for p in st["fleet"]["peers"]:
            if not (p["reachable"] and p["fresh"]):
                raise CheckFailed(f"{i}: peer {p['name']} reachable={p['reachable']} fresh={p['fresh']}")
        if st["fleet"]["warnings"]:
            raise CheckFailed(f"{i}: warnings {st['fleet']['warnings']}")
        for t in st["targets"]:
            v = t["verdict"]
            fresh_up = [x for x in t["votes"] if x["fresh"] and x["up"] and x["phase"] == "up"]
            if not v["up"] or v["wavering"] or len(fresh_up) != 3:
                raise CheckFailed(f"{i}: {t['id']} verdict up={v['up']} wavering={v['wavering']} [{fmt_votes(t['votes'])}]")
    return chk_answers("a,b,c", SITES["a"], str(SLOW_TTL))


CHECKS = {
    "up": chk_up, "answers": chk_answers, "verdict": chk_verdict, "state": chk_state,
    "votes": chk_votes, "fresh-voters": chk_fresh_voters, "peer-stale": chk_peer_stale,
    "warning": chk_warning, "no-zone-warnings": chk_no_zone_warnings, "settled": chk_settled,
}


def run_check(args):
    name, rest = args[0], args[1:]
    if name not in CHECKS:
        raise SystemExit(f"unknown check {name!r}; one of {', '.join(CHECKS)}")
    return CHECKS[name](*rest)


def cmd_wait(argv):
    timeout = float(argv[0])
    argv = argv[1:]
    since = time.time()
    if argv and argv[0] == "--since":
        since = float(argv[1])
        argv = argv[2:]
    deadline = since + timeout
    last = ""
    while True:
        try:
            desc = run_check(argv)
            now = time.time()
            print(f"{now - since:.2f}")
            print(f"    {' '.join(argv)}: {desc}", file=sys.stderr)
            return 0
        except CheckFailed as e:
            last = str(e)
        if time.time() > deadline:
            print(f"    timed out after {time.time() - since:.1f} s waiting for: {' '.join(argv)}\n    last: {last}", file=sys.stderr)
            return 1
        time.sleep(0.1)


def cmd_hold(argv):
    secs = float(argv[0])
    end = time.time() + secs
    desc = ""
    n = 0
    while True:
        try:
            desc = run_check(argv[1:])
            n += 1
        except CheckFailed as e:
            print(f"    broke after {secs - (end - time.time()):.1f} s ({n} good polls): {' '.join(argv[1:])}\n    {e}", file=sys.stderr)
            return 1
        if time.time() >= end:
            print(f"    held {secs:g} s ({n} polls): {' '.join(argv[1:])}: {desc}", file=sys.stderr)
            return 0
        time.sleep(0.1)


def cmd_status(argv):
    for i in (argv or list(INSTANCES)):
        print(f"== instance {i} ({INSTANCES[i]}) ==")
        try:
            st = status(i)
        except CheckFailed as e:
            print(f"  {e}")
            continue
        f = st["fleet"]
        print(f"  vantage {f['vantage']}, quorum {f['quorum']}, stale after {f['stale_after_s']:g} s, generation {st['generation']}, zones " +
              ", ".join(f"{z['zone']} serial {z['serial']}" for z in st["zones"]))
        for t in st["targets"]:
            v = t["verdict"]
            print(f"  target {t['id']}: here {t['state']}{'' if t.get('probed_here', True) else ' (not probed here)'}; "
                  f"verdict {'UP' if v['up'] else 'DOWN'}{' wavering' if v['wavering'] else ''} ({v['reason']})")
            print(f"      votes: {fmt_votes(t['votes'])}")
        for p in f["peers"]:
            print(f"  peer {p['name']} {p['url']}: reachable={str(p['reachable']).lower()} fresh={str(p['fresh']).lower()} "
                  f"age {p['age_s']}s, {p['bytes_received']} bytes received, generation {p['generation']}, zones {p['zones']}"
                  + (f", last error: {p['last_error']}" if p["last_error"] else ""))
        for w in f["warnings"]:
            print(f"  WARNING: {w}")
    return 0


def cmd_query(argv):
    for i in INSTANCES:
        try:
            addrs, ttl = answer(i)
            print(f"{i} ({INSTANCES[i]}): {SERVICE} A {' '.join(addrs) or '(none)'} TTL {ttl}")
        except CheckFailed as e:
            print(f"{i} ({INSTANCES[i]}): {e}")
    return 0


def cmd_traffic(argv):
    secs = float(argv[0]) if argv else 5.0

    def sample():
        return {i: {p["name"]: p["bytes_received"] for p in status(i)["fleet"]["peers"]} for i in INSTANCES}, time.time()

    (b0, t0) = sample()
    time.sleep(secs)
    (b1, t1) = sample()
    dt = t1 - t0
    for i in INSTANCES:
        parts = [f"from {n} {(b1[i][n] - b0[i][n]) / dt:.0f} B/s" for n in sorted(b1[i])]
        total = sum(b1[i][n] - b0[i][n] for n in b1[i]) / dt
        print(f"  instance {i}: received {total:.0f} B/s from peers ({', '.join(parts)}), "
              f"about {total:.0f} B per 1 s peer interval")
    return 0


def cmd_stats(argv):
    vals = [float(x) for x in argv]
    print(f"median {statistics.median(vals):.2f} s, max {max(vals):.2f} s over {len(vals)} trials ({' '.join(f'{v:.2f}' for v in vals)})")
    return 0


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, argv = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "wait":
            return cmd_wait(argv)
        if cmd == "hold":
            return cmd_hold(argv)
        if cmd == "check":
            print(run_check(argv))
            return 0
        if cmd == "status":
            return cmd_status(argv)
        if cmd == "query":
            return cmd_query(argv)
        if cmd == "reload":
            code, body = reload(argv[0])
            print(f"reload {argv[0]}: HTTP {code} {body.strip()[:400]}")
            return 0 if code == 200 else 1
        if cmd == "traffic":
            return cmd_traffic(argv)
        if cmd == "stats":
            return cmd_stats(argv)
    except CheckFailed as e:
        print(e, file=sys.stderr)
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
