#!/usr/bin/env python3
"""One query per TCP connection, as fast as it goes: connect, send one framed query,
read its answer, close (FIN), next. dnsperf 2.10's `-O num-queries-per-conn=1` paces
reconnections (~80 ms each: about 50 QPS for 4 clients), too slow to measure a server's
CPU per query, hence this.

Usage: tcp-oneshot.py -s ADDR -p PORT -d QUERYFILE -l SECONDS [-c CONCURRENT] [-t TIMEOUT]

QUERYFILE is a dnsperf query file ("name type" per line; read in order, wrapping).
Queries have RD set and no EDNS, like dnsperf's defaults. Prints dnsperf's summary lines
(sent, completed, lost, response codes, run time, QPS), which benches/load-lib.sh parses.
"""

import argparse
import errno
import random
import selectors
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255}
RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]


def wire_query(name, qtype):
    q = bytearray(struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0))
    for label in name.rstrip(".").split("."):
        if label:
            q.append(len(label))
            q += label.encode()
    q.append(0)
    q += struct.pack(">HH", TYPES.get(qtype.upper(), 1), 1)
    return bytes(q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-s", default="127.0.0.1")
    ap.add_argument("-p", type=int, default=53)
    ap.add_argument("-d", required=True)
    ap.add_argument("-l", type=float, required=True)
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("-t", type=float, default=5.0)
    a = ap.parse_args()

    queries = []
    with open(a.d) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                queries.append(wire_query(parts[0], parts[1]))
    if not queries:
        sys.exit("no queries in " + a.d)

    sel = selectors.DefaultSelector()
    server = (a.s, a.p)
    sent = completed = lost = 0
    rcodes = {}
    qi = 0
    # socket -> [phase, framed query, received bytes, started]
    state = {}

    def start():
        nonlocal qi, sent
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(server)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return False
        q = bytearray(queries[qi % len(queries)])
        qi += 1
        q[0:2] = struct.pack(">H", random.getrandbits(16))
        state[s] = [0, struct.pack(">H", len(q)) + bytes(q), b"", time.monotonic()]
        sel.register(s, selectors.EVENT_WRITE)
        sent += 1
        return True

    def finish(s):
        sel.unregister(s)
        del state[s]
        s.close()

    t0 = time.monotonic()
    end = t0 + a.l
    for _ in range(a.c):
        start()
    last_sweep = t0
    while state:
        now = time.monotonic()
        accepting = now < end
        for key, ev in sel.select(timeout=0.05):
            s = key.fileobj
            st = state[s]
            try:
                if st[0] == 0:
                    s.send(st[1])
                    st[0] = 1
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(65537)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                lost += 1
                finish(s)
                if accepting:
                    start()
                continue
            if not chunk:
                lost += 1
                finish(s)
                if accepting:
                    start()
                continue
            st[2] += chunk
            if len(st[2]) >= 2 and len(st[2]) >= 2 + struct.unpack(">H", st[2][:2])[0]:
                rc = st[2][5] & 0x0F if len(st[2]) >= 6 else 15
                name = RCODES[rc] if rc < len(RCODES) else "RCODE%d" % rc
                rcodes[name] = rcodes.get(name, 0) + 1
                completed += 1
                finish(s)
                if accepting:
                    start()
        if now - last_sweep > 0.5:
            last_sweep = now
            for s, st in list(state.items()):
                if now - st[3] > a.t:
                    lost += 1
                    finish(s)
                    if accepting:
                        start()
        if not accepting and time.monotonic() > end + a.t:
            lost += len(state)
            for s in list(state):
                finish(s)
    run = min(time.monotonic(), end) - t0 if completed else a.l
    run = max(run, a.l)
    pct = lambda n: 100.0 * n / sent if sent else 0.0
    print("Statistics:\n")
    print("  Queries sent:         %d" % sent)
    print("  Queries completed:    %d (%.2f%%)" % (completed, pct(completed)))
    print("  Queries lost:         %d (%.2f%%)" % (lost, pct(lost)))
    print()
    codes = ", ".join("%s %d (%.2f%%)" % (k, v, 100.0 * v / completed) for k, v in sorted(rcodes.items()))
    print("  Response codes:       %s" % codes)
    print("  Run time (s):         %.6f" % run)
    print("  Queries per second:   %.6f" % (completed / run if run > 0 else 0))


if __name__ == "__main__":
    main()
