#!/usr/bin/env python3
"""A data centre's web site in the Waypost lab: the target of its health check.

GET /health answers 200 "ok" (or 503 "failing" after POST /toggle); every other GET
names the site. Run inside the data centre's network namespace by lab.sh:

    site.py --name a --bind 10.99.0.21 --port 80
"""

import argparse
import http.server
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=80)
    args = ap.parse_args()
    state = {"healthy": True}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, body):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.split("?")[0] == "/health":
                with lock:
                    healthy = state["healthy"]
                self.reply(200, "ok\n") if healthy else self.reply(503, "failing\n")
            else:
                self.reply(200, f"site {args.name}\n")

        def do_POST(self):
            if self.path == "/toggle":
                with lock:
                    state["healthy"] = not state["healthy"]
                    healthy = state["healthy"]
                self.reply(200, "healthy\n" if healthy else "failing\n")
            else:
                self.reply(404, "not found\n")

        def log_message(self, fmt, *a):  # quiet: health checks arrive every second
            pass

    srv = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
