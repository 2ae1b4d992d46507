#!/usr/bin/env python3
"""The measuring half of benches/failover.sh (run by it, not by hand).

Owns the three site backends (benches/health/backend.py, one process per data
centre on 127.0.0.1), waits for waypost (started by failover.sh once the backends
are listening), then per trial:

  1. waits until London (ECS 81.2.69.160/27) gets ams with TTL 60 and ams's check
     target is `up`, sleeps a random part of one interval (so kills land at every
     phase of the probe schedule);
  2. kills ams's backend (SIGKILL, reaped): T0;
  3. polls DNS (a prebuilt ECS query over UDP) and GET /v1/status, each every
     POLL s in its own thread, until status says the target is `down` and DNS
     answers iad; records both times after T0 and the gap;
  4. starts the backend again on the same port; T1 = when it accepts connections;
     polls until status says `up` and DNS answers ams again.

Prints the per-trial table and the summary; exit 0 ok, 1 a trial over budget or an
anomaly (wrong answer, DNS timeout, flapping), 2 setup failure.
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

SITES = ["ams", "iad", "sin"]
ANSWER = {"ams": "192.0.2.10", "iad": "198.51.100.10", "sin": "203.0.113.10"}
BY_ADDR = {v: k for k, v in ANSWER.items()}
QNAME = "web.example.com."
ECS = ("81.2.69.160", 27)  # London: order ams, iad, sin


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ DNS
def build_query(qid):
    q = b"".join(bytes([len(l)]) + l.encode() for l in QNAME.rstrip(".").split(".")) + b"\0"
    addr, plen = ECS
    nbytes = (plen + 7) // 8
    ecs = struct.pack("!HBB", 1, plen, 0) + socket.inet_aton(addr)[:nbytes]
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 4 + len(ecs)) + struct.pack("!HH", 8, len(ecs)) + ecs
    # RD clear (an authoritative server), QDCOUNT 1, ARCOUNT 1
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + q + struct.pack("!HH", 1, 1) + opt


def skip_name(m, i):
    while True:
        n = m[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def parse_answer(m, qid):
    """(rcode, [A addresses], min TTL) of a response, or None if it is not ours."""
    if len(m) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", m[:12])
    if rid != qid or not flags & 0x8000:
        return None
    i = 12
    for _ in range(qd):
        i = skip_name(m, i) + 4
    addrs, ttl = [], None
    for _ in range(an):
        i = skip_name(m, i)
        t, _, rttl, rdlen = struct.unpack("!HHIH", m[i:i + 10])
        i += 10
        if t == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(m[i:i + 4]))
            ttl = rttl if ttl is None else min(ttl, rttl)
        i += rdlen
    return flags & 0xF, sorted(addrs), ttl


class Dns:
    def __init__(self, port):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.5)
        self.sock.connect(self.addr)
        self.queries = {}

    def ask(self):
        """("ams"|"iad"|"sin"|"other:..."|"timeout"|"rcode N", ttl)."""
        qid = random.randrange(65536)
        q = self.queries.get(qid) or self.queries.setdefault(qid, build_query(qid))
        if len(self.queries) > 4096:
            self.queries.clear()
        self.sock.send(q)
        deadline = time.monotonic() + 0.5
        while True:
            try:
                m = self.sock.recv(4096)
            except (socket.timeout, ConnectionRefusedError):
                return "timeout", None
            r = parse_answer(m, qid)
            if r is not None:
                break
            if time.monotonic() > deadline:
                return "timeout", None
        rcode, addrs, ttl = r
        if rcode != 0:
            return f"rcode {rcode}", None
        if len(addrs) == 1 and addrs[0] in BY_ADDR:
            return BY_ADDR[addrs[0]], ttl
        return "other:" + ",".join(addrs) if addrs else "NODATA", ttl


# ------------------------------------------------------------------ status
def status_states(http_port, target_ids):
    """{site: target state} from /v1/status (None for a site not listed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v1/status", timeout=2) as r:
        doc = json.load(r)
    by_id = {t.get("id"): t for t in doc.get("targets", [])}
    return {s: (by_id[i]["state"] if i in by_id else None) for s, i in target_ids.items()}, doc


# ------------------------------------------------------------------ backends
class Backends:
    def __init__(self, script, ports, workdir):
        self.script, self.ports, self.workdir = script, ports, workdir
        self.procs = {}

    def start(self, site):
        ready = os.path.join(self.workdir, f"backend-{site}.ready")
        try:
            os.unlink(ready)
        except FileNotFoundError:
            pass
        logf = open(os.path.join(self.workdir, f"backend-{site}.log"), "ab")
        p = subprocess.Popen([sys.executable, self.script, "--bind", f"127.0.0.1:{self.ports[site]}",
                              "--ready", ready], stdout=logf, stderr=logf, start_new_session=True)
        self.procs[site] = p
        deadline = time.monotonic() + 10
        while not os.path.exists(ready):
            if p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"backend {site} (port {self.ports[site]}) failed to start; see backend-{site}.log")
            time.sleep(0.002)
        # accepting connections now (the socket listens before the ready file is written)
        return time.monotonic()

    def kill(self, site):
        p = self.procs.pop(site)
        p.kill()
        p.wait()
        return time.monotonic()

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


# ------------------------------------------------------------------ polling
class Poller:
    """Two threads: DNS and status, each every `poll` s, recording
    (monotonic time of the reply, value) while running."""

    def __init__(self, dns, http_port, target_ids, poll):
        self.dns, self.http_port, self.target_ids, self.poll = dns, http_port, target_ids, poll
        self.obs = {"dns": [], "status": []}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def _loop(self, fn, out):
        nxt = time.monotonic()
        while not self.stop.is_set():
            try:
                v = fn()
            except Exception as e:  # noqa: BLE001 - status errors are observations too
                v = f"error: {e}"
            t = time.monotonic()
            with self.lock:
                out.append((t, v))
            nxt += self.poll
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()

    def start(self):
        self.obs = {"dns": [], "status": []}
        self.stop.clear()
        self.threads = [
            threading.Thread(target=self._loop, args=(self.dns.ask, self.obs["dns"]), daemon=True),
            threading.Thread(target=self._loop,
                             args=(lambda: status_states(self.http_port, self.target_ids)[0]["ams"], self.obs["status"]),
                             daemon=True),
        ]
        for th in self.threads:
            th.start()

    def first(self, which, pred, after):
        """(seconds after `after`, value) of the first matching observation after it."""
        with self.lock:
            for t, v in self.obs[which]:
                if t >= after and pred(v):
                    return t - after, v
        return None

    def since(self, which, t0):
        with self.lock:
            return [(t - t0, v) for t, v in self.obs[which]]

    def end(self):
        self.stop.set()
        for th in self.threads:
            th.join()


def wait_for(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = cond()
        if r:
            return r
        time.sleep(step)
    return None


def fmt(x):
    return "-" if x is None else f"{x:.3f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--ports", required=True, help="ams,iad,sin backend ports")
    ap.add_argument("--dns-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--waypost-pid-file", required=True)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--fall", type=int, default=3)
    ap.add_argument("--rise", type=int, default=2)
    ap.add_argument("--failover-ttl", type=int, default=10)
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--start-timeout", type=float, default=30)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    ports = dict(zip(SITES, (int(p) for p in a.ports.split(","))))
    target_ids = {s: f"http://127.0.0.1:{ports[s]}/health" for s in SITES}

    backends = Backends(a.backend, ports, a.workdir)

    def on_term(*_):
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(a, rng, ports, target_ids, backends)
    finally:
        backends.stop_all()


def run(a, rng, ports, target_ids, backends):
    for s in SITES:
        backends.start(s)
    open(os.path.join(a.workdir, "backends.ready"), "w").close()

    # waypost: started by failover.sh now
    pid = wait_for(lambda: open(a.waypost_pid_file).read().strip() if os.path.exists(a.waypost_pid_file) else None,
                   a.start_timeout)
    if not pid:
        log("failover: waypost was not started")
        return 2
    wpid = int(pid)

    def alive():
        try:
            os.kill(wpid, 0)
            return True
        except ProcessLookupError:
            return False

    dns = Dns(a.dns_port)
    if not wait_for(lambda: dns.ask()[0] != "timeout", a.start_timeout):
        log("failover: waypost does not answer DNS")
        return 2

    def all_up():
        try:
            st, _ = status_states(a.http_port, target_ids)
        except Exception:  # noqa: BLE001
            return False
        return all(v == "up" for v in st.values())

    t = time.monotonic()
    if not wait_for(all_up, a.start_timeout):
        try:
            st, doc = status_states(a.http_port, target_ids)
            log(f"failover: targets not all up within {a.start_timeout}s: {st}; /v1/status targets: "
                + json.dumps(doc.get("targets"), indent=1)[:3000])
        except Exception as e:  # noqa: BLE001
            log(f"failover: /v1/status failed: {e}")
        return 2
    log(f"failover: all three check targets up after {time.monotonic() - t:.1f}s")

    budget = a.interval * a.fall + a.interval
    rbudget = a.interval * a.rise + a.interval
    rows, problems = [], []
    poller = Poller(dns, a.http_port, target_ids, a.poll)
    trial_timeout = 2 * budget + 10

    hdr = ("| trial | kill delay | failing seen | down (status) | answer → iad |   gap | iad TTL "
           "| first short TTL | restore: up (status) | answer → ams |   gap | ams TTL | verdict |")
    print(hdr)
    print("|" + "|".join("-" * (len(c) - 1) + ":" for c in hdr.strip("|").split("|")) + "|")

    for trial in range(1, a.trials + 1):
        # 1. steady state: London -> ams, TTL 60, target up
        def steady():
            who, ttl = dns.ask()
            if who != "ams" or ttl != 60:
                return False
            return status_states(a.http_port, target_ids)[0]["ams"] == "up"

        if not wait_for(steady, trial_timeout):
            who, ttl = dns.ask()
            problems.append(f"trial {trial}: never steady (London -> ams TTL 60, ams up): got {who} TTL {ttl}")
            log(problems[-1])
            break
        delay = rng.uniform(0, a.interval)
        time.sleep(delay)

        # 2. kill
        poller.start()
        time.sleep(2 * a.poll)
        t0 = backends.kill("ams")

        # 3. wait for status down and the iad answer
        ok = wait_for(lambda: poller.first("status", lambda v: v == "down", t0) and
                      poller.first("dns", lambda v: v[0] == "iad", t0), trial_timeout, 0.01)
        down = poller.first("status", lambda v: v == "down", t0)
        failing = poller.first("status", lambda v: v == "failing", t0)
        iad = poller.first("dns", lambda v: v[0] == "iad", t0)
        short = poller.first("dns", lambda v: v[0] == "ams" and v[1] is not None and v[1] < 60, t0)

        # 4. restore, at a random phase of the probe schedule too
        time.sleep(rng.uniform(0, a.interval))
        t1 = backends.start("ams")
        ok2 = wait_for(lambda: poller.first("status", lambda v: v == "up", t1) and
                       poller.first("dns", lambda v: v[0] == "ams", t1), trial_timeout, 0.01)
        up = poller.first("status", lambda v: v == "up", t1)
        ams = poller.first("dns", lambda v: v[0] == "ams", t1)
        time.sleep(0.3)
        poller.end()

        # anomalies: anything but ams/iad, timeouts, status errors, ams coming back
        # before the restore, iad after ams returned
        dns_obs = poller.since("dns", t0)  # seconds after T0
        st_obs = poller.since("status", t0)
        bad = []
        odd = [(t, v) for t, v in dns_obs if v[0] not in ("ams", "iad")]
        if odd:
            bad.append(f"{len(odd)} DNS answers neither ams nor iad (first at {odd[0][0]:+.3f}s: {odd[0][1][0]})")
        serr = [(t, v) for t, v in st_obs if isinstance(v, str) and v.startswith("error")]
        if serr:
            bad.append(f"{len(serr)} /v1/status errors (first: {serr[0][1]})")
        if iad:
            back = [(t, v) for t, v in dns_obs if iad[0] < t < t1 - t0 and v[0] == "ams"]
            if back:
                bad.append(f"answer flapped back to ams at {back[0][0]:+.3f}s before the restore")
            wrong_ttl = [(t, v) for t, v in dns_obs if t >= iad[0] and v[0] == "iad" and v[1] != a.failover_ttl]
            if wrong_ttl:
                bad.append(f"iad answered with TTL {wrong_ttl[0][1][1]} (expected failover TTL {a.failover_ttl})")
        if ams and ams[1][1] != 60:
            bad.append(f"ams came back with TTL {ams[1][1]} (expected 60)")
        if ams:
            after = [(t, v) for t, v in dns_obs if t > ams[0] + (t1 - t0) and v[0] != "ams"]
            if after:
                bad.append(f"answer went back to iad at {after[0][0]:+.3f}s after ams returned")
        if not alive():
            bad.append("waypost exited")
        if not ok:
            bad.append(f"no failover within {trial_timeout:.0f}s (status down: {fmt(down and down[0])}, "
                       f"iad answer: {fmt(iad and iad[0])})")
        if not ok2:
            bad.append(f"no recovery within {trial_timeout:.0f}s after the restore")

        det = down[0] if down else None
        chg = iad[0] if iad else None
        gap = chg - det if det is not None and chg is not None else None
        rup = up[0] if up else None
        rams = ams[0] if ams else None
        rgap = rams - rup if rup is not None and rams is not None else None
        verdict = []
        if chg is None or chg > budget:
            verdict.append(f"OVER budget {budget:g}s")
        if rams is None or rams > rbudget:
            verdict.append(f"restore OVER {rbudget:g}s")
        if bad:
            verdict.append("anomaly")
        rows.append(dict(trial=trial, delay=delay, failing=failing and failing[0], det=det, chg=chg, gap=gap,
                         iad_ttl=iad and iad[1][1], short=short and short[0], short_ttl=short and short[1][1],
                         rup=rup, rams=rams, rgap=rgap, ams_ttl=ams and ams[1][1], bad=bad, verdict=verdict))
        r = rows[-1]
        print(f"| {trial:5d} | {delay:10.3f} | {fmt(r['failing']):>12} | {fmt(det):>13} | {fmt(chg):>12} "
              f"| {fmt(gap):>5} | {str(r['iad_ttl']):>7} "
              f"| {(fmt(r['short']) + ' (TTL ' + str(r['short_ttl']) + ')') if r['short'] is not None else '-':>15} "
              f"| {fmt(rup):>20} | {fmt(rams):>12} | {fmt(rgap):>5} | {str(r['ams_ttl']):>7} "
              f"| {'; '.join(verdict) or 'ok':7} |", flush=True)
        for b in bad:
            problems.append(f"trial {trial}: {b}")
            log(f"== trial {trial}: {b}")
        with open(os.path.join(a.workdir, f"trial-{trial}.json"), "w") as f:
            json.dump({"kill_to_restore_s": t1 - t0, "dns": dns_obs, "status": st_obs}, f)
        if not alive():
            break

    print()
    done = [r for r in rows]

    def stat(key):
        v = [r[key] for r in done if r[key] is not None]
        return (statistics.median(v), max(v), len(v)) if v else (None, None, 0)

    print(f"Summary over {len(done)} trials (seconds; polls every {a.poll * 1000:.0f} ms, so each time is "
          f"an upper bound within {a.poll * 1000:.0f} ms):")
    print()
    print("| measure | median | max | budget / target |")
    print("|---|---:|---:|---|")
    for key, name, tgt in [
        ("det", "detection: ams target `down` in /v1/status after the kill", f"≤ {budget:g} (interval × fall + interval)"),
        ("chg", "answer change: London gets iad after the kill", f"≤ {budget:g} (interval × fall + interval)"),
        ("gap", "answer change − detection", "≈ publish coalescing (50 ms) + poll resolution"),
        ("rup", "restore: target `up` after the backend listens again", f"≤ {rbudget:g} (interval × rise + interval)"),
        ("rams", "restore: London gets ams again", f"≤ {rbudget:g} (interval × rise + interval)"),
        ("rgap", "restore answer change − status up", "≈ publish coalescing (50 ms) + poll resolution"),
    ]:
        med, mx, n = stat(key)
        print(f"| {name} | {fmt(med)} | {fmt(mx)} | {tgt} |")
    print()
    print(f"Settings: interval {a.interval:g}s, fall {a.fall}, rise {a.rise}, HTTP check GET /health on each "
          f"site's backend (127.0.0.1), timeout 500ms; a killed backend refuses connections at once, so each "
          f"probe after the kill fails immediately. Expected detection: between (fall − 1) × interval and "
          f"fall × interval after the kill, plus probe latency.")
    print()
    print("Reference defaults of other servers (documented defaults, not measured here):")
    print("- gdnsd 3.x service_types (http_status, tcp_connect): interval 10 s, DOWN after down_thresh 10 "
          "failures → ~100 s to fail over; up_thresh 20 successes in a row → ~200 s to come back (gdnsd.config(5)).")
    print("- PowerDNS Authoritative LUA `ifurlup`/`ifportup`: checks every 5 s (`lua-health-checks-interval`), "
          "a target is down after one failed check (check timeout 2 s) → ~5–7 s to fail over.")
    print(f"- waypost here: interval {a.interval:g} s × fall {a.fall} (+ one interval of phase) = budget {budget:g} s; "
          f"waypost's own defaults 2 s × 3 → ~6–8 s.")
    print()

    fail = 0
    over = [r["trial"] for r in done if r["chg"] is None or r["chg"] > budget]
    rover = [r["trial"] for r in done if r["rams"] is None or r["rams"] > rbudget]
    gmax = stat("gap")[1]
    gap_limit = 0.05 + a.poll + 0.05
    if over:
        print(f"- FAIL: failover over the {budget:g}s budget in trial(s) {over}")
        fail = 1
    else:
        print(f"- failover within the {budget:g}s budget in every trial")
    if rover:
        print(f"- FAIL: recovery over the {rbudget:g}s budget in trial(s) {rover}")
        fail = 1
    else:
        print(f"- recovery within the {rbudget:g}s budget in every trial")
    if gmax is not None:
        met = "met" if gmax <= gap_limit else "MISSED"
        print(f"- answers change with the state (max gap {gmax * 1000:.0f} ms; target ≤ {gap_limit * 1000:.0f} ms = "
              f"50 ms coalescing + {a.poll * 1000:.0f} ms poll + 50 ms slack): {met}")
    if len(done) < a.trials:
        print(f"- FAIL: only {len(done)} of {a.trials} trials ran")
        fail = 1
    for p in problems:
        print(f"- FAIL: {p}")
        fail = 1
    if not problems:
        print("- no anomalies (every answer was ams or iad, no timeouts, no flapping, TTLs as expected)")
    return fail


if __name__ == "__main__":
    sys.exit(main())
