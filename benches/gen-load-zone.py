#!/usr/bin/env python3
"""Generate the load-benchmark zone and dnsperf query file (deterministic).

Usage: gen-load-zone.py OUTDIR [--queries N] [--seed S]

Writes:
  OUTDIR/load.test.zone   zone `load.test.` in RFC 1035 master-file format
  OUTDIR/queries.txt      dnsperf input ("name type" per line)

Zone contents (~1,190 owner names):
  h0..h999        A (every name), AAAA on every 4th (h0, h4, ...)
  c0..c49         CNAME -> an h name (in-zone, so the answer chains)
  m0..m29         MX 10 -> an h name (additional-section A/AAAA)
  t0..t29         TXT
  *.w             wildcard A + TXT
  d1..d10         delegation: NS ns1.dN / ns2.dN with A glue below the cut
  @               SOA, NS ns1/ns2, A

Query mix (per line, drawn with a fixed seed):
  70%  A     on h*          (positive answer)
  10%  AAAA  on h* that have AAAA
  10%  A     on nx<random>  (NXDOMAIN)
  10%  other: 2% CNAME chain (A on c*), 2% MX, 2% TXT,
              2% wildcard (A on <random>.w), 2% referral (A on www.dN)
"""

import argparse
import os
import random

ORIGIN = "load.test."
N_HOSTS = 1000
N_CNAME = 50
N_MX = 30
N_TXT = 30
N_DELEG = 10
TTL = 3600


def ip4(i, net=10):
    return f"{net}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def ip6(i):
    return f"2001:db8::{i:x}"


def fq(label):
    return f"{label}.{ORIGIN}" if label else ORIGIN


def write_zone(path, rng):
    out = []

    def rr(owner, rtype, rdata):
        out.append(f"{fq(owner)}\t{TTL}\tIN\t{rtype}\t{rdata}")

    out.append(f"$ORIGIN {ORIGIN}")
    out.append(f"$TTL {TTL}")
    rr("", "SOA", f"ns1.{ORIGIN} hostmaster.{ORIGIN} 2024010101 7200 3600 1209600 300")
    rr("", "NS", f"ns1.{ORIGIN}")
    rr("", "NS", f"ns2.{ORIGIN}")
    rr("", "A", "192.0.2.1")
    rr("ns1", "A", "192.0.2.53")
    rr("ns2", "A", "192.0.2.54")

    for i in range(N_HOSTS):
        rr(f"h{i}", "A", ip4(i))
        if i % 4 == 0:
            rr(f"h{i}", "AAAA", ip6(i))
    for i in range(N_CNAME):
        rr(f"c{i}", "CNAME", fq(f"h{rng.randrange(N_HOSTS)}"))
    for i in range(N_MX):
        rr(f"m{i}", "MX", f"10 {fq(f'h{rng.randrange(N_HOSTS)}')}")
    for i in range(N_TXT):
        rr(f"t{i}", "TXT", f'"v=waypost-load-{i}" "token={rng.getrandbits(64):016x}"')
    rr("*.w", "A", "192.0.2.80")
    rr("*.w", "TXT", '"wildcard"')
    for d in range(1, N_DELEG + 1):
        rr(f"d{d}", "NS", fq(f"ns1.d{d}"))
        rr(f"d{d}", "NS", fq(f"ns2.d{d}"))
        rr(f"ns1.d{d}", "A", ip4(d, net=172))
        rr(f"ns2.d{d}", "A", ip4(256 + d, net=172))

    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_queries(path, n, rng):
    aaaa_hosts = list(range(0, N_HOSTS, 4))
    lines = []
    for _ in range(n):
        r = rng.random()
        if r < 0.70:
            q = (f"h{rng.randrange(N_HOSTS)}", "A")
        elif r < 0.80:
            q = (f"h{rng.choice(aaaa_hosts)}", "AAAA")
        elif r < 0.90:
            q = (f"nx{rng.getrandbits(32):08x}", "A")
        elif r < 0.92:
            q = (f"c{rng.randrange(N_CNAME)}", "A")
        elif r < 0.94:
            q = (f"m{rng.randrange(N_MX)}", "MX")
        elif r < 0.96:
            q = (f"t{rng.randrange(N_TXT)}", "TXT")
        elif r < 0.98:
            q = (f"x{rng.getrandbits(24):06x}.w", "A")
        else:
            q = (f"www.d{rng.randrange(1, N_DELEG + 1)}", "A")
        lines.append(f"{fq(q[0])} {q[1]}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20240101)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    # Separate streams so changing --queries never changes the zone.
    write_zone(os.path.join(a.outdir, "load.test.zone"), random.Random(a.seed))
    write_queries(os.path.join(a.outdir, "queries.txt"), a.queries,
                  random.Random(a.seed + 1))


if __name__ == "__main__":
    main()
