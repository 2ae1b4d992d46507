#!/usr/bin/env python3
"""A tiny health-check backend for the benchmarks: answers every HTTP request with
200 "ok" (Connection: close) and accepts bare TCP connects, on one or many
loopback addresses.

Usage: backend.py --bind 127.0.0.1:18081 [--bind HOST:PORT ...] [--bind-file FILE]
                  [--ready FILE]

--bind-file: one HOST:PORT per line (e.g. 1,000 addresses 127.10.x.y:PORT: one
listening socket each, so nothing listens on 0.0.0.0). --ready: written (with the
pid) once every socket is listening. Only loopback addresses are accepted.
Stops on SIGTERM/SIGINT; "killing" a site in benches/failover.sh is stopping this
process.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import sys

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nok")


async def handle(reader, writer):
    try:
        # Read the request head (or EOF for a bare TCP connect); answer 200 "ok".
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            if not chunk:
                break
            head += chunk
        if head:
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def parse(hp):
    host, _, port = hp.strip().rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"backend.py: {host} is not a loopback address")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", action="append", default=[])
    ap.add_argument("--bind-file")
    ap.add_argument("--ready")
    a = ap.parse_args()
    binds = [parse(b) for b in a.bind]
    if a.bind_file:
        with open(a.bind_file) as f:
            binds += [parse(l) for l in f if l.strip()]
    if not binds:
        sys.exit("backend.py: nothing to bind")
    servers = []
    for host, port in binds:
        servers.append(await asyncio.start_server(handle, host, port, reuse_address=True, backlog=512))
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, a.ready)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
