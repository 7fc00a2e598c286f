#!/usr/bin/env python3
"""A Docker registry token endpoint for tests (distribution "auth: token").

Usage: token-server.py PORT TLS_CERT TLS_KEY SIGN_KEY SERVICE ISSUER USER:PASS LOG [PLAN]

Serves GET /token?service=...&scope=... over TLS on 127.0.0.1:PORT. With
valid Basic credentials it grants every requested action; without any it
answers 401 (this registry has no anonymous access). Tokens are JWTs signed
with ES256 by SIGN_KEY (a P-256 key whose certificate is the registry's
rootcertbundle); the header's "kid" is the libtrust key id of that key,
which is how distribution finds the key among its trusted ones. Every
request is appended to LOG as "METHOD PATH AUTH" (AUTH: basic or none).

PLAN (default "ok") says what the Nth token granted is, as a comma-separated
list whose last entry repeats: "ok" (valid 600 s, expires_in 600), "short"
(valid 600 s but expires_in 1, so a client renews it at once), "expired"
(exp an hour ago, past the registry's leeway, while expires_in claims 600:
a token that expired or was revoked on the way). Tests use it to make a
token run out mid-pull deterministically, with no clocks involved.
"""
import base64
import hashlib
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PORT, CERT, KEY, SIGN_KEY, SERVICE, ISSUER, CREDS, LOG = sys.argv[1:9]
PLAN = (sys.argv[9] if len(sys.argv) > 9 else "ok").split(",")
granted = [0]
granted_lock = threading.Lock()

with open(SIGN_KEY, "rb") as f:
    signer = serialization.load_pem_private_key(f.read(), password=None)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(pub):
    """libtrust: base32 of the first 240 bits of SHA-256(DER SPKI), in
    twelve colon-separated groups of four."""
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


KID = libtrust_kid(signer.public_key())


def make_token(scopes, subject, kind):
    access = []
    for sc in scopes:
        parts = sc.split(":")
        if len(parts) < 3:
            continue
        access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                       "actions": parts[-1].split(",")})
    now = int(time.time())
    if kind == "expired":
        now -= 3600 + 600
    header = {"typ": "JWT", "alg": "ES256", "kid": KID}
    claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 600,
              "nbf": now - 60, "iat": now, "jti": "kf-%d" % now,
              "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    der = signer.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        kind = "basic" if auth.startswith("Basic ") else "none"
        with open(LOG, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, kind))
        url = urlparse(self.path)
        q = parse_qs(url.query)
        ok = kind == "basic" and \
            base64.b64decode(auth[6:]).decode(errors="replace") == CREDS
        if url.path != "/token" or q.get("service", [""])[0] != SERVICE:
            self.send_error(404)
            return
        if not ok:
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"details":"credentials required"}')
            return
        with granted_lock:
            kind = PLAN[min(granted[0], len(PLAN) - 1)]
            granted[0] += 1
        body = json.dumps({"token": make_token(q.get("scope", []), CREDS.split(":")[0], kind),
                           "expires_in": 1 if kind == "short" else 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
