#!/usr/bin/env python3
"""A package index on loopback that serves files at a fixed rate per download, as a
remote registry (PyPI, npm) does for a CI runner: pkgserver.py DIR PORT RATE_MB_S.
Prints the port it listens on, then serves until killed."""
import http.server, os, socketserver, sys, time

root, port, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) * 1e6
CHUNK = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        start, sent = time.monotonic(), 0
        with open(path, "rb") as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    break
                self.wfile.write(b)
                sent += len(b)
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", port), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
