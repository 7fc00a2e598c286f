#!/usr/bin/env python3
"""A small registry for the cases distribution 2.8 cannot produce.

Usage: fake-registry.py REG_PORT STORE_PORT USER:PASS LOG

On 127.0.0.1:REG_PORT (plain HTTP, Basic auth USER:PASS on every /v2/ path):
  /v2/old/manifests/1.0    a Docker schema 1 manifest (prettyjws), which
                           distribution 2.8 no longer accepts on push
  /v2/redir/manifests/1.0  an OCI image manifest (linux/amd64) whose blobs
                           answer 307 to a storage host, as registry.k8s.io
                           and docker.io do
  /v2/chal/manifests/1.0   an OCI index whose linux/amd64 manifest answers
                           307 to the storage host, which answers with a
                           Bearer challenge of its own (realm on itself): a
                           client, already holding credentials, must not
                           answer a challenge from a host the registry
                           redirected it to
  /v2/huge/manifests/1.0   an OCI image manifest whose layer descriptor says
                           1000 bytes while the registry sends 300000 (with
                           the right digest): the descriptor bounds the
                           download
On localhost:STORE_PORT (another host name, so a client must not carry the
registry's credentials there): the blobs, with no auth.
Every request is appended to LOG as "NAME METHOD PATH AUTH", AUTH being the
Authorization scheme received or "-".
"""
import base64
import gzip
import hashlib
import io
import json
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REG_PORT, STORE_PORT, CREDS, LOG = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
lock = threading.Lock()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("hello")
        data = b"redirected layer\n"
        info.size, info.mtime = len(data), 0
        t.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as g:
        g.write(raw.getvalue())
    return raw.getvalue(), out.getvalue()


TAR, LAYER = layer()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [sha(TAR)]}},
                    sort_keys=True).encode()
BLOBS = {sha(LAYER): LAYER, sha(CONFIG): CONFIG}
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(LAYER), "size": len(LAYER)}]}, sort_keys=True).encode()
BIG = b"k" * 300000
HUGE = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(BIG), "size": 1000}]}, sort_keys=True).encode()
INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": sha(MANIFEST), "size": len(MANIFEST),
                   "platform": {"architecture": "amd64", "os": "linux"}}]},
    sort_keys=True).encode()
SCHEMA1 = json.dumps({
    "schemaVersion": 1, "name": "old", "tag": "1.0", "architecture": "amd64",
    "fsLayers": [{"blobSum": sha(LAYER)}],
    "history": [{"v1Compatibility": "{}"}],
    "signatures": []}, indent=3).encode()


def logline(name, handler):
    auth = handler.headers.get("Authorization", "")
    with lock, open(LOG, "a") as f:
        f.write("%s %s %s %s\n" % (name, handler.command, handler.path,
                                   auth.split(" ")[0] if auth else "-"))


class Reg(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        logline("reg", self)
        want = "Basic " + base64.b64encode(CREDS.encode()).decode()
        if self.headers.get("Authorization") != want:
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                       extra={"Www-Authenticate": 'Basic realm="fake"'})
        elif self.path == "/v2/old/manifests/1.0":
            self.reply(200, SCHEMA1,
                       "application/vnd.docker.distribution.manifest.v1+prettyjws")
        elif self.path == "/v2/redir/manifests/1.0":
            self.reply(200, MANIFEST, "application/vnd.oci.image.manifest.v1+json",
                       {"Docker-Content-Digest": sha(MANIFEST)})
        elif self.path == "/v2/huge/manifests/1.0":
            self.reply(200, HUGE, "application/vnd.oci.image.manifest.v1+json")
        elif self.path == "/v2/huge/blobs/" + sha(BIG):
            self.reply(200, BIG, "application/octet-stream")
        elif self.path == "/v2/huge/blobs/" + sha(CONFIG):
            self.reply(200, CONFIG, "application/octet-stream")
        elif self.path == "/v2/chal/manifests/1.0":
            self.reply(200, INDEX, "application/vnd.oci.image.index.v1+json")
        elif self.path == "/v2/chal/manifests/" + sha(MANIFEST):
            self.reply(307, extra={"Location": "http://localhost:%d/challenge" % STORE_PORT})
        elif self.path.startswith("/v2/redir/blobs/") and self.path[16:] in BLOBS:
            self.reply(307, extra={"Location": "http://localhost:%d/store/%s" %
                                   (STORE_PORT, self.path[16:])})
        else:
            self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    do_HEAD = do_GET


class Store(Reg):
    def do_GET(self):
        logline("store", self)
        d = self.path[len("/store/"):]
        if self.path.startswith("/store/") and d in BLOBS:
            self.reply(200, BLOBS[d], "application/octet-stream")
        elif self.path == "/challenge":
            self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                       extra={"Www-Authenticate": 'Bearer realm="http://localhost:%d/token",service="store"' % STORE_PORT})
        elif self.path.startswith("/token"):
            self.reply(200, b'{"token":"from-the-storage-host"}')
        else:
            self.reply(404)

    do_HEAD = do_GET


store = ThreadingHTTPServer(("127.0.0.1", STORE_PORT), Store)
threading.Thread(target=store.serve_forever, daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", REG_PORT), Reg).serve_forever()
