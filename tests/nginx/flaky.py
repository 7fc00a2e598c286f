#!/usr/bin/env python3
"""A deliberately misbehaving HTTP/1.1 file server for the transfer engine's
tests. Serves files under ROOT; the first path segment picks the fault:

  /reset/F     first request: full Content-Length, half the body, then the
               connection is closed; later requests honour Range (206)
  /norange/F   like reset, but later requests ignore Range (200, full file)
  /503twice/F  503 for the first two requests, then the file
  /always503/F 503 every time
  /429/F       429 with Retry-After: 1 first, then the file
  /plain/F     the file (Range honoured); HEAD answers its headers
  /auth        401 with a Bearer challenge (Www-Authenticate)
  PUT|POST /echo  201 echoing the body, its Content-Type, a
               Docker-Content-Digest of it and a Location header

A query string (?2) gives a path its own request counter.
Every request is appended to LOG as: <monotonic> <method> <path> range=<v>
<status>.  Usage: flaky.py PORT ROOT LOG
"""
import http.server
import os
import sys
import threading
import time

PORT, ROOT, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def note(self, status):
        with lock, open(LOG, "a") as f:
            f.write("%.3f %s %s range=%s %d\n" % (
                time.monotonic(), self.command, self.path,
                self.headers.get("Range", "-"), status))

    def simple(self, status, extra=None):
        self.note(status)
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self):
        import hashlib
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.note(201)
        self.send_response(201)
        self.send_header("Content-Type", self.headers.get("Content-Type", "-"))
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.send_header("Location", "/v2/x/blobs/uploads/1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT

    def do_HEAD(self):
        path = os.path.join(ROOT, self.path.split("/", 2)[-1].split("?", 1)[0])
        if not os.path.isfile(path):
            return self.simple(404)
        self.note(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()

    def do_GET(self):
        if self.path == "/auth":
            return self.simple(401, {"Www-Authenticate":
                                     'Bearer realm="http://127.0.0.1/token",service="t"'})
        parts = self.path.split("/", 2)
        if len(parts) < 3:
            return self.simple(404)
        # The query string only makes a fresh counter (?2, ?3 ...).
        mode, rel = parts[1], parts[2].split("?", 1)[0]
        path = os.path.join(ROOT, rel)
        if ".." in rel or not os.path.isfile(path):
            return self.simple(404)
        with lock:
            n = counts.get(self.path, 0) + 1
            counts[self.path] = n
        data = open(path, "rb").read()
        if mode in ("503twice", "always503") and (mode == "always503" or n <= 2):
            return self.simple(503)
        if mode == "429" and n == 1:
            return self.simple(429, {"Retry-After": "1"})
        if mode in ("reset", "norange") and n == 1:
            self.note(200)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        rng = self.headers.get("Range")
        if rng and mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self.simple(416, {"Content-Range": "bytes */%d" % len(data)})
            self.note(206)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])
            return
        self.note(200)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients cut off on purpose are not news


Server(("127.0.0.1", PORT), Handler).serve_forever()
