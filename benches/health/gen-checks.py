#!/usr/bin/env python3
"""Generate the config pieces of load-geo.sh's `waypost-hc` server: ~N unique health
checks, all against one local backend (benches/health/backend.py).

Usage: gen-checks.py OUTDIR --checks N --port P [--type http|tcp] [--interval 1s]
                     [--timeout 500ms] [--zone load.test.]

Waypost allows at most 64 data centres and folds identical checks into one, so the
checks come from services: N - 3 services s0..s(N-4).ZONE, each served by one of the
data centres ams/iad/sin (round robin) with one address 127.10.X.Y, and a service
check with `per-address = true` (probing that address on port P), plus one check per
data centre (the queried geo name follows those) on 127.9.0.1..3:P. Every target is a
distinct address, so the backend listens on N loopback sockets (nothing on 0.0.0.0).

Writes:
  OUTDIR/dc-ams.toml, dc-iad.toml, dc-sin.toml  lines for [datacenters.X.services]
  OUTDIR/services.toml   [services."sK.ZONE"] tables (TTL 60, failover)
  OUTDIR/checks.toml     [health] and every check (only the checked server gets it)
  OUTDIR/binds.txt       HOST:PORT per line for backend.py --bind-file
  OUTDIR/expect.tsv      name, expected A (a sample, for answer checks)
"""

import argparse
import os

DCS = ["ams", "iad", "sin"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--type", choices=["http", "tcp"], default="http")
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--timeout", default="500ms")
    ap.add_argument("--zone", default="load.test.")
    a = ap.parse_args()
    if not 4 <= a.checks <= 3 + 250 * 250:
        raise SystemExit("--checks must be between 4 and 62503")
    nsvc = a.checks - len(DCS)
    os.makedirs(a.outdir, exist_ok=True)

    def addr(i):
        return f"127.10.{i // 250}.{i % 250 + 1}"

    dc_lines = {d: [] for d in DCS}
    svc, chk, binds, expect = [], [], [], []
    for i in range(nsvc):
        name = f"s{i}.{a.zone}"
        dc_lines[DCS[i % len(DCS)]].append(f'"{name}" = ["{addr(i)}"]')
        svc.append(f'[services."{name}"]\nttl = 60\npolicy = "failover"\n')
        c = [f'[services."{name}".check]', f'type = "{a.type}"', f"port = {a.port}", "per-address = true"]
        if a.type == "http":
            c += ['path = "/health"', 'expect-body = "ok"']
        chk.append("\n".join(c) + "\n")
        binds.append(f"{addr(i)}:{a.port}")
        if i < 3 or i == nsvc - 1:
            expect.append(f"{name}\t{addr(i)}")

    head = [
        "[health]",
        f'interval = "{a.interval}"',
        f'timeout = "{a.timeout}"',
        "fall = 3",
        "rise = 2",
        "max-concurrent = 64",
        "",
    ]
    for k, d in enumerate(DCS):
        head += [f"[datacenters.{d}.check]", f'type = "{a.type}"', f'address = "127.9.0.{k + 1}"', f"port = {a.port}"]
        if a.type == "http":
            head += ['path = "/health"', 'expect-body = "ok"']
        head.append("")
        binds.append(f"127.9.0.{k + 1}:{a.port}")

    for d in DCS:
        with open(os.path.join(a.outdir, f"dc-{d}.toml"), "w") as f:
            f.write("\n".join(dc_lines[d]) + "\n")
    with open(os.path.join(a.outdir, "services.toml"), "w") as f:
        f.write("\n".join(svc))
    with open(os.path.join(a.outdir, "checks.toml"), "w") as f:
        f.write("\n".join(head) + "\n" + "\n".join(chk))
    with open(os.path.join(a.outdir, "binds.txt"), "w") as f:
        f.write("\n".join(binds) + "\n")
    with open(os.path.join(a.outdir, "expect.tsv"), "w") as f:
        f.write("\n".join(expect) + "\n")


if __name__ == "__main__":
    main()
