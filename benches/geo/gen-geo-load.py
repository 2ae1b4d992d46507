#!/usr/bin/env python3
"""Generate the geo load-benchmark inputs: dnsperf binary query files with an
EDNS Client Subnet spread, and the subnet table both servers are set up from.

Usage: gen-geo-load.py OUTDIR [--queries N] [--seed S] [--static-queries FILE]
       gen-geo-load.py --ecs-hex SUBNET      (print dnsperf -E 8:<hex> value)

dnsperf 2.10 can add only one fixed ECS option to every query (-E 8:<hex>), so
the spread comes from its binary input mode instead: `dnsperf -B -d FILE` reads
length-prefixed wire-format queries (RFC 1035 4.2.2) and only rewrites the ID.
Each query here looks exactly like one dnsperf would build with
`-E 8:<ecs>` (RD set, OPT with UDP size 4096, DO clear unless --do), with its ECS option
drawn (seeded, uniformly) from SUBNETS.

Writes:
  OUTDIR/geo.bin         N x "web.load.test. A" with the ECS spread
  OUTDIR/a-ecs.bin       N x "h<random 0..999>.load.test. A" (static, same answer
                         shape as geo.bin) with the ECS spread
  OUTDIR/static-ecs.bin  (with --static-queries) the text mix, ECS spread added
  OUTDIR/subnets.tsv     subnet, region, expected data-centre order, expected A
  OUTDIR/gdnsd-nets.cfg  the same subnet -> data-centre map as gdnsd `nets`
"""

import argparse
import ipaddress
import os
import random
import struct

SERVICE = "web.load.test."

# Data centres and the service's A per data centre (as in waypost.toml).
DC_A = {"ams": "192.0.2.10", "iad": "198.51.100.10", "sin": "203.0.113.10"}
DEFAULT_ORDER = ["iad", "ams", "sin"]

# ECS subnets (networks of MaxMind's GeoIP2-City-Test.mmdb, one override network
# and a database miss) and the data-centre order waypost.toml's [geo] map gives
# them (checked independently with gdnsd_geoip_test against the same database).
SUBNETS = [
    ("81.2.69.160/27", "GB London (city map)", ["ams", "iad", "sin"]),
    ("89.160.20.128/25", "SE (EU)", ["ams", "iad", "sin"]),
    ("216.160.83.56/29", "US-WA (subdivision)", ["iad", "sin", "ams"]),
    ("175.16.199.0/24", "CN (AS)", ["sin", "ams", "iad"]),
    ("214.0.1.0/24", "AU (OC)", ["sin", "iad", "ams"]),
    ("2001:218::/48", "JP (country map)", ["sin", "iad", "ams"]),
    ("2a02:d180::/48", "DE (EU)", ["ams", "iad", "sin"]),
    ("2a02:e700::/48", "LY (AF)", ["ams", "sin", "iad"]),
    ("10.20.30.0/24", "override 10/8", ["ams", "iad"]),
    ("8.8.8.0/24", "not in DB (default)", DEFAULT_ORDER),
]


def ecs_option(net):
    """RFC 7871 option data: FAMILY, SOURCE PREFIX, SCOPE 0, truncated address."""
    n = ipaddress.ip_network(net)  # strict: host bits must be zero
    fam = 1 if n.version == 4 else 2
    nbytes = (n.prefixlen + 7) // 8
    return struct.pack("!HBB", fam, n.prefixlen, 0) + n.network_address.packed[:nbytes]


QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}


def qname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(name, qtype, ecs, do=False):
    hdr = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 1)  # ID (dnsperf rewrites), RD
    q = qname_wire(name) + struct.pack("!HH", QTYPES[qtype], 1)
    opt_data = struct.pack("!HH", 8, len(ecs)) + ecs
    flags = 0x8000 if do else 0  # the OPT TTL's DO bit (RFC 3225)
    opt = b"\0" + struct.pack("!HHIH", 41, 4096, flags, len(opt_data)) + opt_data
    msg = hdr + q + opt
    return struct.pack("!H", len(msg)) + msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--static-queries", help="dnsperf text file to convert (static-ecs.bin)")
    ap.add_argument("--do", action="store_true", help="set the DO bit (DNSSEC OK) in every query")
    ap.add_argument("--ecs-hex", metavar="SUBNET", help="print the -E 8:<hex> value and exit")
    a = ap.parse_args()
    if a.ecs_hex:
        print(ecs_option(a.ecs_hex).hex())
        return
    if not a.outdir:
        ap.error("OUTDIR is required")
    os.makedirs(a.outdir, exist_ok=True)
    opts = [ecs_option(net) for net, _, _ in SUBNETS]
    rng = random.Random(a.seed + 2)

    with open(os.path.join(a.outdir, "geo.bin"), "wb") as f:
        for _ in range(a.queries):
            f.write(query(SERVICE, "A", rng.choice(opts), a.do))

    with open(os.path.join(a.outdir, "a-ecs.bin"), "wb") as f:
        for _ in range(a.queries):
            f.write(query(f"h{rng.randrange(1000)}.load.test.", "A", rng.choice(opts), a.do))

    if a.static_queries:
        with open(a.static_queries) as src, open(os.path.join(a.outdir, "static-ecs.bin"), "wb") as f:
            for line in src:
                if line.strip():
                    name, qtype = line.split()
                    f.write(query(name, qtype, rng.choice(opts), a.do))

    with open(os.path.join(a.outdir, "subnets.tsv"), "w") as f:
        for net, region, order in SUBNETS:
            f.write(f"{net}\t{region}\t{','.join(order)}\t{DC_A[order[0]]}\n")

    with open(os.path.join(a.outdir, "gdnsd-nets.cfg"), "w") as f:
        for net, _, order in SUBNETS:
            if order != DEFAULT_ORDER:  # the map's default covers the rest
                f.write(f"        {net} => [ {', '.join(order)} ]\n")


if __name__ == "__main__":
    main()
