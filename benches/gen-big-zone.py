#!/usr/bin/env python3
"""A big zone for benches/zone-scale.sh: NAMES names with an A record, half of them with
an AAAA, a fifth with a TXT, and DELEG delegations (NS + in-bailiwick glue), in the mix
issue 29 measured (870,005 records = 500,000 names and 10,000 delegations).

usage: gen-big-zone.py ORIGIN NAMES DELEGATIONS > FILE
"""
import sys


def main():
    origin, names, deleg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = sys.stdout
    w = out.write
    w(f"$ORIGIN {origin}\n$TTL 3600\n")
    w("@ SOA ns1 hostmaster 2026120801 3600 600 864000 300\n")
    w("  NS ns1\n  NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n")
    lines = []
    for i in range(names):
        a = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        lines.append(f"h{i} A {a}\n")
        if i % 2 == 0:
            lines.append(f"h{i} AAAA 2001:db8:{(i >> 16) & 0xffff:x}::{i & 0xffff:x}\n")
        if i % 5 == 0:
            lines.append(f'h{i} TXT "host {i}"\n')
        if len(lines) > 100000:
            w("".join(lines))
            lines.clear()
    for i in range(deleg):
        lines.append(f"d{i} NS ns.d{i}\nns.d{i} A 198.51.{(i >> 8) & 255}.{i & 255}\n")
        if len(lines) > 100000:
            w("".join(lines))
            lines.clear()
    w("".join(lines))


if __name__ == "__main__":
    main()
