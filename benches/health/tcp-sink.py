#!/usr/bin/env python3
"""A bare-TCP check backend that keeps up with several instances' probes: listens on
many loopback addresses and closes every connection the moment it is accepted (a TCP
check only needs the connect to succeed). One epoll loop, no per-connection task, so
thousands of connects per second cost a few percent of a core; benches/health/backend.py
(asyncio, reads each connection to EOF) falls behind at 6 x 1,000 probes/s and runs out
of file descriptors.

Usage: tcp-sink.py --bind-file FILE [--bind HOST:PORT ...] [--ready FILE]

--bind-file: one HOST:PORT per line (gen-checks.py's binds.txt). --ready: written (with
the pid) once every socket listens. Only loopback addresses. Stops on SIGTERM/SIGINT,
closing every socket (probes are then refused at once).
"""

import argparse
import errno
import ipaddress
import os
import select
import signal
import socket
import sys


def parse(hp):
    host, _, port = hp.strip().rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"tcp-sink.py: {host} is not a loopback address")
    return host, int(port)


def main():
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
        sys.exit("tcp-sink.py: nothing to bind")
    class Stop(Exception):
        pass

    def on_signal(*_):
        raise Stop  # out of epoll.poll at once (a flag would wait for the poll timeout)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ep = select.epoll()
    socks = {}
    for host, port in binds:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(512)
        s.setblocking(False)
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, a.ready)
    try:
        while True:
            for fd, _ in ep.poll():
                s = socks[fd]
                while True:
                    try:
                        c, _ = s.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            break
                        raise
                    c.close()
    except Stop:
        pass
    for s in socks.values():
        s.close()
    ep.close()


if __name__ == "__main__":
    main()
