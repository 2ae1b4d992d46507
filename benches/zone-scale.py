#!/usr/bin/env python3
"""Zone scale (issue 29): load time, resident memory and reload peak of Waypost and knotd
for generated zones of 10k, 100k and 1M records with 0, 1% and 10% delegations, in one
run, printed as a table; and the signing time of the 1M zone with a P-256 CSK (NSEC and
NSEC3).

    cargo build --release
    benches/zone-scale.py                     # every size and mix
    SIZES=10000,100000 MIXES=0,10 benches/zone-scale.py
    SIGN=0 benches/zone-scale.py              # skip the signing runs
    REPEAT=5 benches/zone-scale.py            # best of 5 (default 3), servers alternated

Measured (times: the best of REPEAT runs; memory: the largest):
- knotd: start to the first answer of the zone's SOA (the zone is loaded then), and its
  resident memory (VmRSS) once it answers.
- waypost check: wall time and peak resident memory (the child's ru_maxrss).
- waypost serve: start to the first SOA answer, VmRSS then; a reload of the same file
  with a comment added (POST /v1/reload returns once it is published): its time and the
  peak resident memory during it (VmHWM, reset just before through clear_refs).
Only 127.0.0.1 is used; files go to a temporary directory removed at the end.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYPOST = os.environ.get("WAYPOST", os.path.join(ROOT, "target/release/waypost"))
KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
ORIGIN = "big.test."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def soa_answers(port):
    q = struct.pack(">HHHHHH", 0x1234, 0, 1, 0, 0, 0)
    for label in ORIGIN.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            r = s.recv(2048)
            return len(r) > 12 and (r[3] & 0x0F) == 0 and struct.unpack(">H", r[6:8])[0] > 0
        except OSError:
            return False


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_answer(proc, port, limit=900):
    t0 = time.monotonic()
    while not soa_answers(port):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.returncode}")
        if time.monotonic() - t0 > limit:
            raise SystemExit("no answer in time")
        time.sleep(0.02)


def knot_run(work, zone_file):
    port = free_port()
    run = os.path.join(work, "knot")
    os.makedirs(run, exist_ok=True)
    conf = os.path.join(run, "knot.conf")
    with open(conf, "w") as f:
        f.write(
            f'server:\n    rundir: "{run}"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n'
            f'database:\n    storage: "{run}"\nlog:\n  - target: stderr\n    any: error\n'
            f'zone:\n  - domain: {ORIGIN}\n    file: "{zone_file}"\n    journal-content: none\n    zonefile-sync: -1\n'
        )
    t0 = time.monotonic()
    p = subprocess.Popen([KNOTD, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answer(p, port)
        took = time.monotonic() - t0
        rss = status_kb(p.pid, "VmRSS")
    finally:
        p.kill()
        p.wait()
    shutil.rmtree(run, ignore_errors=True)
    return took, rss


def waypost_check(config):
    """Wall time, peak resident memory (KiB, of `check` alone: measured by a wrapper
    process, whose only child it is) and the output."""
    wrapper = "import resource,subprocess,sys; r=subprocess.run(sys.argv[1:]); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", wrapper, WAYPOST, "check", "--config", config], capture_output=True, text=True, env={**os.environ, "RUST_LOG": "info"})
    took = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"waypost check failed:\n{out.stdout}{out.stderr}")
    peak = int(out.stderr.strip().splitlines()[-1])
    return took, peak, out.stdout + out.stderr


def waypost_serve(work, config, zone_file):
    port, http = free_port(), free_port()
    t0 = time.monotonic()
    p = subprocess.Popen(
        [WAYPOST, "serve", "--config", config, "--dns-listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{http}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_answer(p, port)
        took = time.monotonic() - t0
        rss = status_kb(p.pid, "VmRSS")
        with open(zone_file, "a") as f:
            f.write("; a comment\n")
        with open(f"/proc/{p.pid}/clear_refs", "w") as f:
            f.write("5")
        t1 = time.monotonic()
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{http}/v1/reload", method="POST"), timeout=900).read()
        reload_s = time.monotonic() - t1
        peak = status_kb(p.pid, "VmHWM")
    finally:
        p.kill()
        p.wait()
    return took, rss, reload_s, peak


def main():
    sizes = [int(x) for x in os.environ.get("SIZES", "10000,100000,1000000").split(",")]
    mixes = [int(x) for x in os.environ.get("MIXES", "0,1,10").split(",")]
    work = tempfile.mkdtemp(prefix="waypost-zone-scale-")
    rows = []
    try:
        for size in sizes:
            for pct in mixes:
                deleg = size * pct // 100 // 2
                names = max(1, (size - 2 * deleg) * 10 // 17)
                zdir = os.path.join(work, "zones")
                shutil.rmtree(zdir, ignore_errors=True)
                os.makedirs(zdir)
                zone_file = os.path.join(zdir, ORIGIN + "zone")
                with open(zone_file, "w") as f:
                    subprocess.run([sys.executable, os.path.join(ROOT, "benches/gen-big-zone.py"), ORIGIN, str(names), str(deleg)], stdout=f, check=True)
                records = sum(1 for line in open(zone_file) if line[0] not in "$;")
                config = os.path.join(work, "waypost.toml")
                with open(config, "w") as f:
                    f.write(f'version = 1\n[server]\nzones-dir = "zones"\nmax-zone-records = 10000000\n')
                # Best of REPEAT, the two servers alternated: this VM's timings vary by a
                # fifth from run to run.
                k_runs, c_runs, s_runs = [], [], []
                for _ in range(int(os.environ.get("REPEAT", "3"))):
                    k_runs.append(knot_run(work, zone_file))
                    c_runs.append(waypost_check(config)[:2])
                    s_runs.append(waypost_serve(work, config, zone_file))
                k_load, k_rss = min(r[0] for r in k_runs), max(r[1] for r in k_runs)
                c_time, c_peak = min(r[0] for r in c_runs), max(r[1] for r in c_runs)
                s_load, s_rss = min(r[0] for r in s_runs), max(r[1] for r in s_runs)
                r_time, r_peak = min(r[2] for r in s_runs), max(r[3] for r in s_runs)
                rows.append((records, pct, k_load, k_rss, c_time, c_peak, s_load, s_rss, r_time, r_peak))
                print(f"{records} records, {pct}% delegations: knotd {k_load:.2f} s {k_rss // 1024} MB; waypost check {c_time:.2f} s, serve {s_load:.2f} s {s_rss // 1024} MB, reload {r_time:.2f} s peak {r_peak // 1024} MB", flush=True)
        print()
        print("| records | delegations | knotd load | knotd RSS | waypost check | check peak | waypost load | waypost RSS | RSS vs knotd | reload | reload peak |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            records, pct, kl, kr, ct, cp, sl, sr, rt, rp = r
            cpk = f"{cp // 1024} MB"
            print(f"| {records:,} | {pct}% | {kl:.2f} s | {kr // 1024} MB | {ct:.2f} s | {cpk} | {sl:.2f} s | {sr // 1024} MB | {sr / max(kr, 1):.2f}x | {rt:.2f} s | {rp // 1024} MB |")
        if os.environ.get("SIGN", "1") != "0" and sizes:
            size = max(sizes)
            print()
            for denial in ["nsec", "nsec3"]:
                config = os.path.join(work, "signed.toml")
                with open(config, "w") as f:
                    f.write(f'version = 1\n[server]\nzones-dir = "zones"\nmax-zone-records = 10000000\n[dnssec]\nkey-dir = "keys"\ndenial = "{denial}"\n')
                if not os.path.isdir(os.path.join(work, "keys")):
                    subprocess.run([WAYPOST, "dnssec", "keygen", ORIGIN, "--config", config], check=True, capture_output=True)
                took, peak, log = waypost_check(config)
                ms = [l for l in log.splitlines() if "zone signed" in l]
                print(f"signing the last zone ({records:,} records), P-256 CSK, {denial}: check {took:.2f} s, peak {peak // 1024} MB; {ms[-1].split('zone signed')[-1].strip() if ms else ''}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
