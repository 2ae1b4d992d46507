#!/usr/bin/env python3
"""The measuring half of benches/fleet-traffic.sh: fleet peer traffic of one instance
(v0) of a running fleet, in steady state and while every document changes.

Usage: fleet-traffic.py --ports P0,P1,.. --pids PID0,PID1,.. --backend-pid PID
                        --token T --targets N [--window 20] [--settle 5] [--converge 90]
                        [--quiet 4] [--burst-max 60] [--poll 0.5] [--json FILE]

Instance i listens for HTTP on 127.0.0.1:P<i> and is process PID<i>; every instance
pulls every other one. Steps:
 1. waits (bounded) until every instance has N targets, all up, and every peer fresh
    with N targets in its document; then --settle more seconds;
 2. steady state: over --window seconds, v0's /v1/status fleet.peers (bytes_received,
    unchanged_pulls) and each peer's entry for v0, and the TCP counters of the pull
    connections (ss -tinp: the pulling side's socket, so bytes_sent = requests and
    bytes_received = responses, exactly what crossed the connection, HTTP head and
    body; segs_in + segs_out = packets);
 3. one full and one conditional pull over a raw socket, with the request reqwest
    sends (accept, authorization, if-none-match, host): request, response head and
    body sizes;
 4. change burst: SIGTERM to the backend (every probe then fails: phase up -> failing
    -> down over `fall` intervals), the same counters from the stop until no
    document has changed anywhere for --quiet seconds.
Sockets are told apart by owning pid, so this script's own HTTP requests never count.
The ss window has no /v1/status request in it; the status counters' window includes
the fetches at its ends (~0.1 s each on a release build with 1,000 targets, seconds on
a debug build, long enough to delay probes and pulls and so change documents).
"""

import argparse
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

IPHDR = 52  # IPv4 (20) + TCP with the timestamps option (32), per segment
BIG = 1000  # a response delta above this is a 200 with a document (a 304 is ~100 B)
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def get_json(port, path, timeout=30):
    with OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.load(r)


def statuses(ports):
    """Every instance's /v1/status, fetched in parallel; (list, mid-time)."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as ex:
        res = list(ex.map(lambda p: get_json(p, "/v1/status"), ports))
    return res, (t0 + time.monotonic()) / 2


def peer_counters(sts, names):
    """{(puller, pulled): (bytes_received, unchanged_pulls)} from the statuses."""
    out = {}
    for i, st in enumerate(sts):
        for p in st["fleet"]["peers"]:
            out[(names[i], p["name"])] = (p.get("bytes_received") or 0, p.get("unchanged_pulls") or 0)
    return out


def raw_pull(port, token, etag=None):
    """One pull as waypost's peer client sends it (reqwest: accept, then the request's
    own headers, then host). Returns sizes, status, ETag and the body."""
    hdrs = ["accept: */*", f"authorization: Bearer {token}"]
    if etag:
        hdrs.append(f"if-none-match: {etag}")
    hdrs.append(f"host: 127.0.0.1:{port}")
    req = ("GET /v1/peer/observations HTTP/1.1\r\n" + "".join(h + "\r\n" for h in hdrs) + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(65536)
            if not c:
                raise SystemExit(f"fleet-traffic.py: connection closed before the response head ({buf[:200]!r})")
            buf += c
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            h[k.strip().lower()] = v.strip()
        if "chunked" in h.get("transfer-encoding", ""):
            raise SystemExit("fleet-traffic.py: chunked response; sizes would need de-chunking")
        n = 0 if status in (204, 304) else int(h.get("content-length", "0"))
        while len(body) < n:
            c = s.recv(1 << 20)
            if not c:
                break
            body += c
    return {"status": status, "req": len(req), "head": len(head) + 4, "body": len(body),
            "etag": h.get("etag"), "doc": body, "head_text": head.decode("latin-1"), "req_text": req.decode()}


ADDR_RE = re.compile(r"^(\S+):(\d+)$")
PID_RE = re.compile(r"pid=(\d+)")
FIELD_RE = re.compile(r"\b(bytes_sent|bytes_received|segs_out|segs_in):(\d+)")


def ss_snapshot(ports):
    """{(pid, lport, rport): [bytes_sent, bytes_received, segs_out, segs_in]} of the
    connected TCP sockets towards any instance's HTTP port, by owning process."""
    filt = "( " + " or ".join(f"dport = :{p}" for p in ports) + " )"
    out = subprocess.run(["ss", "-tinpH", "state", "connected", filt], capture_output=True, text=True, check=True).stdout
    snap, cur = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace():
            cur = None
            # [State] Recv-Q Send-Q Local:Port Peer:Port [users:((..,pid=N,..))]
            addrs = [m for m in map(ADDR_RE.match, line.split()) if m][:2]
            pm = PID_RE.search(line)
            if len(addrs) == 2 and pm:
                cur = (int(pm[1]), int(addrs[0][2]), int(addrs[1][2]))
        elif cur is not None:
            f = dict((k, int(v)) for k, v in FIELD_RE.findall(line))
            snap[cur] = [f.get("bytes_sent", 0), f.get("bytes_received", 0), f.get("segs_out", 0), f.get("segs_in", 0)]
            cur = None
    return snap


class Wire:
    """Per pull relation (puller, pulled): request bytes, response bytes, segments,
    requests, 200s (responses over BIG bytes), new connections; from ss deltas."""

    KEYS = ("req", "resp", "segs", "requests", "full", "conns")

    def __init__(self, ports, pids, names):
        self.ports, self.pids, self.names = ports, pids, names
        self.by_pid = {p: n for p, n in zip(pids, names)}
        self.by_port = {p: n for p, n in zip(ports, names)}
        self.last = ss_snapshot(ports)
        self.tot = {}
        self.last_full = None  # monotonic time of the last poll that saw a 200

    def rel(self, key):
        a, b = self.by_pid.get(key[0]), self.by_port.get(key[2])
        return (a, b) if a and b and a != b else None

    def poll(self):
        snap = ss_snapshot(self.ports)
        now = time.monotonic()
        for key, cur in snap.items():
            r = self.rel(key)
            if r is None:
                continue
            prev = self.last.get(key)
            t = self.tot.setdefault(r, dict.fromkeys(self.KEYS, 0))
            if prev is None:
                prev = [0, 0, 0, 0]
                t["conns"] += 1
            d = [c - p for c, p in zip(cur, prev)]
            t["req"] += d[0]
            t["resp"] += d[1]
            t["segs"] += d[2] + d[3]
            if d[0] > 0:
                t["requests"] += 1
            if d[1] > BIG:
                t["full"] += 1
                self.last_full = now
        self.last = snap
        return now

    def copy(self):
        return {r: dict(t) for r, t in self.tot.items()}


def sub(a, b):
    out = {}
    for r in set(a) | set(b):
        x, y = a.get(r, {}), b.get(r, {})
        out[r] = {k: x.get(k, 0) - y.get(k, 0) for k in Wire.KEYS}
    return out


def total(w, pred):
    s = dict.fromkeys(Wire.KEYS, 0)
    for r, t in w.items():
        if pred(r):
            for k in s:
                s[k] += t[k]
    return s


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read().rsplit(")", 1)[1].split()
    return (int(s[11]) + int(s[12])) / os.sysconf("SC_CLK_TCK")


def poll_for(wire, seconds, step):
    end = time.monotonic() + seconds
    while True:
        wire.poll()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))


def converged(sts, n, npeers):
    """'' when every instance sees n targets up and every peer fresh with n targets."""
    for st in sts:
        v = st["fleet"]["vantage"]
        t = st.get("targets", [])
        up = sum(x.get("state") == "up" and bool(x.get("has_result")) for x in t)
        if len(t) != n or up != n:
            return f"{v}: {up} of {len(t)} targets up (want {n})"
        peers = st["fleet"]["peers"]
        if len(peers) != npeers:
            return f"{v}: {len(peers)} peers (want {npeers})"
        for p in peers:
            if not p.get("fresh") or p.get("targets") != n:
                return f"{v}: peer {p['name']} fresh={p.get('fresh')} targets={p.get('targets')} error={p.get('last_error')}"
    return ""


def probe_counts(sts):
    """(failed probes, phase changes) summed over every instance's targets."""
    f = sum(x.get("failures", 0) for st in sts for x in st.get("targets", []))
    c = sum(x.get("flips", 0) for st in sts for x in st.get("targets", []))
    return f, c


def all_down(sts, n):
    return all(sum(x.get("state") == "down" for x in st.get("targets", [])) == n for st in sts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--pids", required=True)
    ap.add_argument("--backend-pid", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--targets", type=int, required=True)
    ap.add_argument("--interval-s", type=float, default=1.0)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--converge", type=float, default=90)
    ap.add_argument("--quiet", type=float, default=4)
    ap.add_argument("--burst-max", type=float, default=60)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--json")
    a = ap.parse_args()
    ports = [int(x) for x in a.ports.split(",")]
    pids = [int(x) for x in a.pids.split(",")]
    names = [f"v{i}" for i in range(len(ports))]
    npeers = len(ports) - 1
    n = a.targets
    v0 = names[0]
    served = lambda r: r[1] == v0   # v0 pulled by its peers
    pulling = lambda r: r[0] == v0  # v0 pulling its peers
    anyrel = lambda r: True

    # 1. convergence
    t0 = time.monotonic()
    why = "no status yet"
    while time.monotonic() - t0 < a.converge:
        try:
            sts, _ = statuses(ports)
            why = converged(sts, n, npeers)
            if not why:
                break
        except (OSError, ValueError, KeyError) as e:
            why = f"status: {e}"
        time.sleep(2)
    else:
        raise SystemExit(f"fleet-traffic.py: not converged within {a.converge:.0f}s: {why}")
    t_conv = time.monotonic() - t0
    conv_wall = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    log(f"== converged after {t_conv:.1f}s (all {len(ports)} instances: {n} targets up, {npeers} peers fresh); settling {a.settle:.0f}s")
    status_ms = []
    for p in ports[:1] * 3:
        s0 = time.monotonic()
        get_json(p, "/v1/status")
        status_ms.append((time.monotonic() - s0) * 1000)
    time.sleep(a.settle)

    # 2. steady state
    wire = Wire(ports, pids, names)
    sts0, ts0 = statuses(ports)
    wire.poll()
    w0 = wire.copy()
    c0 = {i: cpu_s(p) for i, p in enumerate(pids + [a.backend_pid])}
    tw0 = time.monotonic()
    log(f"== steady state: measuring {a.window:.0f}s")
    poll_for(wire, a.window, a.poll)
    w1 = wire.copy()
    tw1 = time.monotonic()
    sts1, ts1 = statuses(ports)
    c1 = {i: cpu_s(p) for i, p in enumerate(pids + [a.backend_pid])}
    wire.poll()
    steady = sub(w1, w0)
    span = tw1 - tw0
    sspan = ts1 - ts0
    pc0, pc1 = peer_counters(sts0, names), peer_counters(sts1, names)
    pdelta = {r: (pc1[r][0] - pc0[r][0], pc1[r][1] - pc0[r][1]) for r in pc1 if r in pc0}

    # 3. raw pulls against v0 (after the window: they are not v0's peers' traffic anyway)
    full = raw_pull(ports[0], a.token)
    if full["status"] != 200:
        raise SystemExit(f"fleet-traffic.py: a full pull answered {full['status']} (want 200)")
    cond = raw_pull(ports[0], a.token, full["etag"] or '"none"')
    has304 = cond["status"] == 304
    if not has304:
        # No ETag / no 304 (a build without conditional pulls): a "304 pull" does not exist.
        log(f"== v0 answered a conditional pull with {cond['status']} (ETag {full['etag']!r}): no 304 support")
    doc = json.loads(full["doc"])
    if len(doc["targets"]) != n:
        raise SystemExit(f"fleet-traffic.py: v0's document has {len(doc['targets'])} targets (want {n})")
    sample_ids = [t["id"] for t in doc["targets"][:2]]

    # 4. change burst (only meaningful when unchanged documents are 304s)
    burst = None
    if has304:
        stb0, _ = statuses(ports)
        pb0 = peer_counters(stb0, names)
        wire.poll()
        wb0 = wire.copy()
        tk = time.monotonic()
        os.kill(a.backend_pid, signal.SIGTERM)
        log(f"== backend (pid {a.backend_pid}) stopped; waiting for the documents to settle (quiet {a.quiet:.0f}s)")
        series = []
        wire.last_full = None
        while True:
            now = wire.poll()
            series.append((now, wire.copy()))
            lf = wire.last_full
            if lf is not None and now - lf >= a.quiet:
                break
            if now - tk > a.burst_max:
                raise SystemExit(f"fleet-traffic.py: documents still changing {a.burst_max:.0f}s after the backend stopped")
            time.sleep(a.poll)
        first_full = next(t for t, w in series if total(sub(w, wb0), anyrel)["full"] > 0)
        at_last = next(w for t, w in series if t >= wire.last_full)  # cumulative at the last 200
        burst = sub(at_last, wb0)
        burst_s = wire.last_full - tk
        stb1, _ = statuses(ports)
        if not all_down(stb1, n):
            raise SystemExit("fleet-traffic.py: after the burst not every instance sees every target down")
        pb1 = peer_counters(stb1, names)
        bdelta = {r: (pb1[r][0] - pb0[r][0], pb1[r][1] - pb0[r][1]) for r in pb1 if r in pb0}
        down = raw_pull(ports[0], a.token)

    # ---------------------------------------------------------------- report
    def st_sum(d, pred):
        b = sum(v[0] for r, v in d.items() if pred(r))
        u = sum(v[1] for r, v in d.items() if pred(r))
        return b, u

    st_in_b, st_in_304 = st_sum(pdelta, served)
    st_out_b, st_out_304 = st_sum(pdelta, pulling)
    w_in, w_out, w_all = total(steady, served), total(steady, pulling), total(steady, anyrel)
    n_inst = len(ports)
    req304 = cond["req"]
    resp304 = cond["head"]
    resp200 = full["head"] + full["body"]
    pull304 = req304 + resp304
    pull200 = (req304 if has304 else full["req"]) + resp200

    def rate(x):
        return x / span

    # model: pulls/s x bytes per pull (ss counts the pulls; status splits 304/200)
    in_full = w_in["full"]
    out_full = w_out["full"]
    # rates: 304s from the status counters (over their span), 200s from ss (over its span)
    r304_in, r304_out = st_in_304 / sspan, st_out_304 / sspan
    r200_in, r200_out = in_full / span, out_full / span
    model_in = r304_in * pull304 + r200_in * pull200
    model_out = r304_out * pull304 + r200_out * pull200
    if burst is not None:
        b_in, b_out = total(burst, served), total(burst, pulling)
        bs_in_b, bs_in_304 = st_sum(bdelta, served)
        bs_out_b, bs_out_304 = st_sum(bdelta, pulling)
    cpu = {k: (c1[k] - c0[k]) / span * 100 for k in c0}

    rows = []

    def row(k, v):
        rows.append((k, v))

    f = lambda x: f"{x:,.0f}"
    row("instances / peers each / targets", f"{n_inst} / {npeers} / {n:,} TCP checks every 1 s (all up)")
    row("converged (all targets up, all peers fresh)", f"{t_conv:.1f} s after start-up")
    row("steady window", f"{span:.1f} s (status counters over {sspan:.1f} s)")
    row(f"pulls/s served by v0 ({npeers} peers pull it)", f"{r304_in + r200_in:.2f}: {r304_in:.2f} × 304, {r200_in:.2f} × 200  [ss: {w_in['requests'] / span:.2f} requests/s]")
    row(f"pulls/s made by v0 (it pulls {npeers} peers)", f"{r304_out + r200_out:.2f}: {r304_out:.2f} × 304, {r200_out:.2f} × 200  [ss: {w_out['requests'] / span:.2f} requests/s]")
    row("body bytes received (Δ bytes_received)", f"v0 from its peers: {f(st_out_b)} B; peers from v0: {f(st_in_b)} B")
    if has304:
        row("bytes per 304 pull (req + resp head)", f"{req304} + {resp304} = {pull304} B")
    else:
        row("bytes per 304 pull (req + resp head)", f"none: answered {cond['status']}, {cond['head'] + cond['body']:,} B (no conditional pulls in this build)")
    row("bytes per 200 pull (req + head + body)", f"{pull200 - resp200} + {full['head']} + {full['body']:,} = {pull200:,} B")
    row(f"full document, {n:,} targets up", f"{full['body']:,} B ({full['body'] / n:.1f} B/target)")
    if burst is not None:
        row(f"full document, {n:,} targets down", f"{down['body']:,} B")
    nominal = npeers / a.interval_s * (pull304 if has304 else pull200)
    row(f"steady B/s per instance, nominal ({npeers / a.interval_s:g} pulls/s each way)", f"in {f(nominal)}, out {f(nominal)}, total {f(2 * nominal)} (TCP payload; {'304' if has304 else '200'} pulls)")
    row("steady B/s per instance, model", f"in (pulled by {npeers}) {f(model_in)}, out (pulling {npeers}) {f(model_out)}, total {f(model_in + model_out)}")
    row("steady B/s per instance, measured (TCP payload)", f"in {f(rate(w_in['req'] + w_in['resp']))}, out {f(rate(w_out['req'] + w_out['resp']))}, total {f(rate(w_in['req'] + w_in['resp'] + w_out['req'] + w_out['resp']))}")
    wire_tot = lambda t: t["req"] + t["resp"] + IPHDR * t["segs"]
    row("steady B/s per instance, + IP/TCP headers", f"in {f(rate(wire_tot(w_in)))}, out {f(rate(wire_tot(w_out)))}, total {f(rate(wire_tot(w_in) + wire_tot(w_out)))} ({(w_in['segs'] + w_out['segs']) / span:.1f} segments/s × {IPHDR} B)")
    row("steady B/s, fleet average per instance (ss)", f"{f(rate(wire_tot(w_all)) / n_inst * 2)} incl. headers, {f(rate(w_all['req'] + w_all['resp']) / n_inst * 2)} payload (in + out)")
    row("measured bytes per pull (ss payload / requests)", f"{(w_in['req'] + w_in['resp'] + w_out['req'] + w_out['resp']) / max(1, w_in['requests'] + w_out['requests']):,.0f} B; new connections in window: {w_in['conns'] + w_out['conns']} (60 s HTTP connection lifetime)")
    pf0, pc0_ = probe_counts(sts0)
    pf1, pc1_ = probe_counts(sts1)
    row("failed probes / flips in the status window", f"{pf1 - pf0} / {pc1_ - pc0_} (all instances; a failed probe changes a document: up -> failing)")
    row("CPU over the window", f"v0 {cpu[0]:.0f}% of a core; all {n_inst} instances {sum(cpu[i] for i in range(n_inst)):.0f}%; backend {cpu[n_inst]:.0f}%")
    if burst is not None:
        row("change burst: all targets fail", f"first changed pull {first_full - tk:.1f} s after the stop, last {burst_s:.1f} s after (fall 3)")
        row("change burst: 200 pulls (ss)", f"served by v0 {b_in['full']}, made by v0 {b_out['full']} ({(b_in['full'] + b_out['full']) / max(burst_s, 0.5):.1f}/s)")
        row("change burst: body bytes (Δ bytes_received)", f"pulled from v0 {f(bs_in_b)}, v0 pulled {f(bs_out_b)}, total {f(bs_in_b + bs_out_b)} B")
        row("change burst: wire bytes for v0 (TCP payload)", f"in {f(b_in['req'] + b_in['resp'])}, out {f(b_out['req'] + b_out['resp'])}, total {f(b_in['req'] + b_in['resp'] + b_out['req'] + b_out['resp'])} B over {burst_s:.1f} s")
        row("change burst: + IP/TCP headers", f"total {f(wire_tot(b_in) + wire_tot(b_out))} B = {f((wire_tot(b_in) + wire_tot(b_out)) / max(burst_s, 0.5))} B/s for v0")
    else:
        row("change burst", "skipped: no 304s, so every pull is already a full document")

    kw = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{kw}} | value |")
    print(f"|{'-' * (kw + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{kw}} | {v} |")
    print()
    print("Wire samples (raw socket against v0):")
    print("  full request:       ", repr(full["req_text"]))
    print("  conditional request:", repr(cond["req_text"]))
    print(f"  {cond['status']} response head:  ", repr(cond["head_text"] + "\r\n\r\n"))
    print("  200 response head:  ", repr(full["head_text"] + "\r\n\r\n"))
    print("  target ids look like:", ", ".join(sample_ids))
    print(f"  /v1/status of one instance ({n:,} targets, {npeers} peers): {min(status_ms):.0f} ms")

    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rows": rows, "converged_at": conv_wall,
                       "steady_wire": {f"{r[0]}->{r[1]}": t for r, t in steady.items()},
                       "burst_wire": {f"{r[0]}->{r[1]}": t for r, t in (burst or {}).items()},
                       "steady_status": {f"{r[0]}->{r[1]}": v for r, v in pdelta.items()},
                       "burst_status": {f"{r[0]}->{r[1]}": v for r, v in (bdelta if burst else {}).items()},
                       "full": {k: full[k] for k in ("req", "head", "body")},
                       "cond": {k: cond[k] for k in ("status", "req", "head", "body")},
                       "down_body": down["body"] if burst else None}, fh, indent=1)

if __name__ == "__main__":
    main()
