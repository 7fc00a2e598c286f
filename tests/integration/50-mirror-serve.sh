#!/usr/bin/env bash
# kubeferry-install mirror serve: the OCI pull API over an unpacked bundle,
# checked with curl (headers, ranges, errors, hostile paths) and skopeo
# (every image copied out with --all, digests equal to the layout's).
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/oci.sh"
need curl skopeo jq openssl sha256sum tar gzip

# ---- an unpacked bundle with hand-written multi-arch images (no network) ----
B=$LAB/bundle
L=$B/images
mkdir -p "$B/files/dl.k8s.io/release/v1.33.3/bin/linux/amd64"
oci_layout "$L"
# Every image shares one base layer.
mkdir -p "$LAB/base/etc"
echo "shared base" >"$LAB/base/etc/base"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$LAB/base" -cf "$LAB/base.tar" .
gzip -n -c "$LAB/base.tar" >"$LAB/base.tgz"
entries=""
for spec in "registry.k8s.io/pause:3.10 oci 0" "docker.io/library/busybox:1.0 docker 0" \
            "registry.k8s.io/big:1.0 oci 8000000"; do
	set -- $spec
	read -r mt dg sz < <(oci_image "$(echo "$1" | tr '/:' '__')" "$2" "$3" "$LAB/base")
	echo "$dg" >"$LAB/digest-$(echo "$1" | tr '/:' '__')"
	entries="$entries$(jq -cn --arg n "$1" --arg mt "$mt" --arg d "$dg" --argjson s "$sz" \
		'{mediaType:$mt,digest:$d,size:$s,annotations:{"io.containerd.image.name":$n,"org.opencontainers.image.ref.name":$n}}'),"
done
jq -n --argjson m "[${entries%,}]" '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:$m}' >"$L/index.json"
PAUSE=$(cat "$LAB/digest-registry.k8s.io_pause_3.10")
BUSY=$(cat "$LAB/digest-docker.io_library_busybox_1.0")
echo "kubeadm binary" >"$B/files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm"
echo "secret" >"$LAB/outside"
ln -s "$LAB/outside" "$B/files/escape"

# ---- serve with a generated CA ----
PORT=$(kf_free_port)
M=https://127.0.0.1:$PORT
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT" --san 127.0.0.1 --san localhost \
	--root "$LAB/root" >"$LAB/mirror.log" 2>&1
MPID=$!
kf_wait_port "$PORT" 30
CA=$LAB/root/etc/kubeferry/mirror-ca.crt
assert_file "$CA"
assert_file "$LAB/mirror-tls/ca.key"
assert_eq "$(stat -c %a "$LAB/mirror-tls/ca.key")" 600 "CA key mode"
assert_eq "$(stat -c %a "$LAB/mirror-tls/server.key")" 600 "server key mode"
want_fp=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | cut -d= -f2)
grep -q "fingerprint (sha256): $want_fp" "$LAB/mirror.log" || { cat "$LAB/mirror.log"; fail "CA fingerprint not printed"; }
openssl x509 -in "$LAB/mirror-tls/server.crt" -noout -ext subjectAltName | has 'IP Address:127.0.0.1, DNS:localhost' ||
	fail "server certificate SANs"
C=(curl -sS --cacert "$CA")

# served_certs PORT: the fingerprints of the certificates the server at PORT
# presents in its handshake, one a line, in order.
served_certs() {
	openssl s_client -connect "127.0.0.1:$1" -servername localhost -showcerts </dev/null 2>/dev/null |
		awk '/-----BEGIN CERTIFICATE-----/{f="'"$LAB"'/sc-" ++n ".pem"} f{print >f} /-----END CERTIFICATE-----/{f=""}'
	for f in "$LAB"/sc-*.pem; do
		[ -f "$f" ] && openssl x509 -in "$f" -noout -fingerprint -sha256 | cut -d= -f2
	done
	rm -f "$LAB"/sc-*.pem
}
fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }

note "generated TLS: the handshake carries the server certificate, then the CA"
# Nodes pin the CA they find in the chain (apply --mirror-ca-fingerprint).
served_certs "$PORT" >"$LAB/served"
assert_eq "$(wc -l <"$LAB/served")" 2 "certificates in the handshake"
assert_eq "$(sed -n 1p "$LAB/served")" "$(fp_of "$LAB/mirror-tls/server.crt")" "first: the server certificate"
assert_eq "$(sed -n 2p "$LAB/served")" "$want_fp" "second: the CA"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$LAB/mirror-tls/chain.crt")" 2 "chain.crt holds two certificates"
openssl verify -CAfile "$CA" -untrusted "$LAB/mirror-tls/chain.crt" "$LAB/mirror-tls/server.crt" >/dev/null ||
	fail "chain.crt does not verify with the CA"

note "ping"
"${C[@]}" -D "$LAB/h" -o /dev/null "$M/v2/"
grep -qi '^HTTP/1.1 200' "$LAB/h" || fail "ping status"
grep -qi '^Docker-Distribution-Api-Version: registry/2.0' "$LAB/h" || fail "api version header"

# hdr NAME: value of a header in $LAB/h
hdr() { grep -i "^$1:" "$LAB/h" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

note "manifests by tag (?ns= and path-prefixed), HEAD and GET"
"${C[@]}" -I -D "$LAB/h" -o /dev/null "$M/v2/pause/manifests/3.10?ns=registry.k8s.io"
grep -q '^HTTP/1.1 200' "$LAB/h" || fail "HEAD manifest status"
assert_eq "$(hdr Content-Type)" application/vnd.oci.image.index.v1+json "HEAD content type"
assert_eq "$(hdr Docker-Content-Digest)" "$PAUSE" "HEAD digest"
assert_eq "$(hdr Content-Length)" "$(oci_size "$L/blobs/sha256/${PAUSE#sha256:}")" "HEAD length"
"${C[@]}" -D "$LAB/h" -o "$LAB/body" "$M/v2/registry.k8s.io/pause/manifests/3.10"
assert_eq "sha256:$(sha256sum <"$LAB/body" | cut -d' ' -f1)" "$PAUSE" "GET body digest"
assert_eq "$(hdr Docker-Content-Digest)" "$PAUSE" "GET digest"
assert_eq "$(hdr Content-Length)" "$(oci_size "$LAB/body")" "GET length"
child=$(jq -r '.manifests[0].digest' "$LAB/body")
"${C[@]}" -D "$LAB/h" -o "$LAB/child" "$M/v2/pause/manifests/$child?ns=registry.k8s.io"
assert_eq "$(hdr Content-Type)" application/vnd.oci.image.manifest.v1+json "child content type"
assert_eq "$(hdr Docker-Content-Digest)" "$child" "child digest"
for u in "/v2/library/busybox/manifests/1.0?ns=docker.io" "/v2/busybox/manifests/1.0?ns=docker.io" \
         "/v2/busybox/manifests/1.0" "/v2/docker.io/library/busybox/manifests/$BUSY"; do
	"${C[@]}" -I -D "$LAB/h" -o /dev/null "$M$u"
	assert_eq "$(hdr Content-Type)" application/vnd.docker.distribution.manifest.list.v2+json "busybox type for $u"
	assert_eq "$(hdr Docker-Content-Digest)" "$BUSY" "busybox digest for $u"
done

note "tags/list, and the same API on IPv6 loopback"
assert_eq "$("${C[@]}" "$M/v2/pause/tags/list?ns=registry.k8s.io")" '{"name":"pause","tags":["3.10"]}' "tags/list"
mkdir -p "$LAB/pki0"; cp "$CA" "$LAB/pki0/ca.crt"
assert_eq "$(skopeo list-tags --cert-dir "$LAB/pki0" "docker://127.0.0.1:$PORT/library/busybox" | jq -c .Tags)" '["1.0"]' "skopeo list-tags"
if [ -e /proc/net/if_inet6 ] && ip -6 addr show dev lo 2>/dev/null | has '::1'; then
	P6=$(kf_free_port)
	kf_bg "$KFI" mirror serve "$B" --listen "[::1]:$P6" --state "$LAB/tls6" --ca-out "$LAB/ca6.crt" -q >"$LAB/mirror6.log" 2>&1
	for i in $(seq 300); do curl -s -o /dev/null -g --cacert "$LAB/ca6.crt" "https://[::1]:$P6/v2/" && break; sleep 0.1; done
	assert_eq "$(curl -sS -g --cacert "$LAB/ca6.crt" "https://[::1]:$P6/v2/registry.k8s.io/pause/manifests/3.10" | sha256sum | cut -d' ' -f1)" \
		"${PAUSE#sha256:}" "manifest over IPv6 (default SANs include ::1)"
fi

note "blobs: full, Range 206, 416"
layer=$(jq -r '.layers[1].digest' "$LAB/child")
lpath=$L/blobs/sha256/${layer#sha256:}
"${C[@]}" -D "$LAB/h" -o "$LAB/blob" "$M/v2/registry.k8s.io/pause/blobs/$layer"
cmp "$LAB/blob" "$lpath" || fail "blob body"
assert_eq "$(hdr Docker-Content-Digest)" "$layer" "blob digest header"
"${C[@]}" -D "$LAB/h" -o "$LAB/part" -r 10-19 "$M/v2/pause/blobs/$layer?ns=registry.k8s.io"
grep -q '^HTTP/1.1 206' "$LAB/h" || fail "range status"
assert_eq "$(hdr Content-Range)" "bytes 10-19/$(oci_size "$lpath")" "Content-Range"
cmp "$LAB/part" <(tail -c +11 "$lpath" | head -c 10) || fail "range body"
"${C[@]}" -o "$LAB/part" -r -5 "$M/v2/pause/blobs/$layer?ns=registry.k8s.io"
cmp "$LAB/part" <(tail -c 5 "$lpath") || fail "suffix range body"
code=$("${C[@]}" -o /dev/null -w '%{http_code}' -r 999999-1000000 "$M/v2/pause/blobs/$layer?ns=registry.k8s.io")
assert_eq "$code" 416 "unsatisfiable range"
# A Range with a sign or blanks is malformed: ignored, the whole blob (200).
for r in "bytes=-+5" "bytes=--5" "bytes=- 5" "bytes=+5-" "bytes=5-+7" "bytes=+0-4"; do
	code=$("${C[@]}" -o "$LAB/part" -w '%{http_code}' -H "Range: $r" "$M/v2/pause/blobs/$layer?ns=registry.k8s.io")
	assert_eq "$code" 200 "status for Range: $r"
	cmp "$LAB/part" "$lpath" || fail "Range: $r should get the whole blob"
done

# err METHOD URL STATUS CODE: status and OCI error code of a request
err() {
	local out status
	out=$("${C[@]}" --path-as-is -X "$1" -o "$LAB/ebody" -w '%{http_code}' "$M$2")
	status=$out
	assert_eq "$status" "$3" "status of $1 $2"
	[ -z "${4:-}" ] || jq -e --arg c "$4" '.errors[0].code == $c and (.errors[0].message | length > 0)' "$LAB/ebody" >/dev/null ||
		{ cat "$LAB/ebody"; fail "error body of $1 $2 should carry $4"; }
}
note "errors"
err GET "/v2/pause/manifests/9.9?ns=registry.k8s.io" 404 MANIFEST_UNKNOWN
err GET "/v2/nothere/manifests/1?ns=registry.k8s.io" 404 NAME_UNKNOWN
err GET "/v2/nothere/tags/list?ns=registry.k8s.io" 404 NAME_UNKNOWN
err GET "/v2/pause/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000?ns=registry.k8s.io" 404 MANIFEST_UNKNOWN
busylayer=$(jq -r '.manifests[0].digest' "$L/blobs/sha256/${BUSY#sha256:}")
err GET "/v2/pause/blobs/$busylayer?ns=registry.k8s.io" 404 BLOB_UNKNOWN
err GET "/v2/pause/blobs/sha256:xyz?ns=registry.k8s.io" 400 DIGEST_INVALID
err GET "/v2/pause/blobs/sha256:$(printf '%064d' 0)/../../../index.json?ns=registry.k8s.io" 404
err GET "/v2/Pause/manifests/3.10?ns=registry.k8s.io" 400 NAME_INVALID
err GET "/v2/../images/manifests/3.10" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=evil/../x" 400 NAME_INVALID
err GET "/v2/pause/manifests/-bad?ns=registry.k8s.io" 400 TAG_INVALID
# ns is checked as decoded: a NUL would cut it short to a valid name.
err GET "/v2/pause/manifests/3.10?ns=registry.k8s.io%00evil" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=registry.k8s.io%2Fx" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=registry+k8s.io" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=%ZZ" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?x=1&ns=reg_istry.io" 400 NAME_INVALID
err GET "/v2/pause/manifests/3.10?ns=registry%2Ek8s%2Eio" 200
err GET "/v2/pause/manifests/3.10?x=%00&ns=registry.k8s.io" 200
for m in PUT DELETE POST PATCH; do
	err "$m" "/v2/pause/manifests/3.10?ns=registry.k8s.io" 405 UNSUPPORTED
done
err POST "/v2/pause/blobs/uploads/" 405 UNSUPPORTED
err GET "/images/index.json" 404
"${C[@]}" -X PUT --data-binary @"$lpath" -o /dev/null "$M/v2/pause/manifests/3.11?ns=registry.k8s.io" || true
err GET "/v2/pause/manifests/3.11?ns=registry.k8s.io" 404 MANIFEST_UNKNOWN

note "files/ and hostile paths"
assert_eq "$("${C[@]}" "$M/files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm")" "kubeadm binary" "files/ content"
err GET "/files/../images/index.json" 400
err GET "/files/%2e%2e/images/index.json" 400
err GET "/files/dl.k8s.io/%2e%2e/%2e%2e/images/index.json" 400
err GET "/files/escape" 404
# $LAB/ebody holds the body of the last request only: check it right here.
! grep -q secret "$LAB/ebody" || fail "the symlink to a file outside files/ was followed"
err GET "/files/dl.k8s.io" 404
err GET "/files/nothere" 404
err GET "/files/dl.k8s.io%00x" 400

note "a slow client does not stall the others; a client that leaves mid-body is logged"
big=$(jq -r '.manifests[0].digest' "$L/blobs/sha256/$(cat "$LAB/digest-registry.k8s.io_big_1.0" | cut -d: -f2)")
bigm=$(cat "$L/blobs/sha256/${big#sha256:}")
bigl=$(echo "$bigm" | jq -r '.layers[1].digest')
# A client that reads nothing, with a tiny receive window: the server
# cannot finish its 8 MB while it waits.
cat >"$LAB/slow.py" <<'EOF'
import socket, ssl, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
t = ssl.create_default_context(cafile=sys.argv[3]).wrap_socket(s, server_hostname="127.0.0.1")
t.sendall(("GET %s HTTP/1.1\r\nHost: mirror\r\n\r\n" % sys.argv[2]).encode())
print(t.recv(64).decode(errors="replace").splitlines()[0], flush=True)
time.sleep(600)
EOF
python3 "$LAB/slow.py" "$PORT" "/v2/registry.k8s.io/big/blobs/$bigl" "$CA" >"$LAB/slow.out" &
slow=$!
for i in $(seq 300); do [ -s "$LAB/slow.out" ] && break; sleep 0.1; done
grep -q "HTTP/1.1 200" "$LAB/slow.out" || fail "slow client got no response"
for i in 1 2 3 4 5; do
	"${C[@]}" -o "$LAB/blob" "$M/v2/registry.k8s.io/pause/blobs/$layer"
	cmp "$LAB/blob" "$lpath" || fail "blob body while a slow client runs"
done
kill -0 "$slow" 2>/dev/null || fail "the slow client should still be connected"
# The server holds descriptors of the blob for the stalled body: none of
# them may leak into a child process.
nblobfd=0
for f in /proc/$MPID/fdinfo/*; do
	n=${f##*/}
	case $(readlink "/proc/$MPID/fd/$n" 2>/dev/null) in "$L"/blobs/*) ;; *) continue ;; esac
	fl=$(awk '/^flags:/ {print $2}' "$f" 2>/dev/null) || continue
	[ -n "$fl" ] || continue
	nblobfd=$((nblobfd + 1))
	[ $((8#$fl & 8#2000000)) -ne 0 ] || fail "blob descriptor $n is not close-on-exec"
done
[ "$nblobfd" -ge 2 ] || fail "expected the stalled body's blob descriptors, found $nblobfd"
! grep -q "big/blobs/$bigl 200" "$LAB/mirror.log" || fail "the slow client's body cannot be complete"
kill "$slow"; wait "$slow" 2>/dev/null || true
"${C[@]}" -o /dev/null "$M/v2/"
for i in $(seq 300); do grep -q " 499 " "$LAB/mirror.log" && break; sleep 0.1; done
grep -q "GET /v2/registry.k8s.io/big/blobs/$bigl 499 " "$LAB/mirror.log" || fail "early close not logged"

note "skopeo copies every image out with --all; digests equal the layout's"
mkdir -p "$LAB/certs"; cp "$CA" "$LAB/certs/ca.crt"
# dir: keeps every manifest byte for byte (oci: would have to convert the
# Docker manifest list); blobs land as files named by their hex digest.
n=0
for ref in registry.k8s.io/pause:3.10 library/busybox:1.0 registry.k8s.io/big:1.0; do
	n=$((n + 1))
	skopeo copy --quiet --all --preserve-digests --src-cert-dir "$LAB/certs" \
		"docker://127.0.0.1:$PORT/$ref" "dir:$LAB/copy$n" >/dev/null
	full=$ref; case $ref in library/*) full=docker.io/$ref ;; esac
	assert_eq "sha256:$(sha256sum <"$LAB/copy$n/manifest.json" | cut -d' ' -f1)" \
		"$(cat "$LAB/digest-$(echo "$full" | tr '/:' '__')")" "skopeo digest of $ref"
	nb=0
	for f in "$LAB/copy$n/"*; do
		h=$(basename "$f" .manifest.json)
		kf_is_hex=$(echo "$h" | grep -Ec '^[0-9a-f]{64}$' || true)
		[ "$kf_is_hex" = 1 ] || continue
		cmp "$f" "$L/blobs/sha256/$h" || fail "copied blob or manifest differs: $f"
		nb=$((nb + 1))
	done
	# 2 x (manifest, config, own layer) and the shared base layer once
	assert_eq "$nb" 7 "blobs and manifests copied for $ref"
done
raw=$(skopeo inspect --raw --cert-dir "$LAB/certs" "docker://127.0.0.1:$PORT/registry.k8s.io/pause:3.10" | sha256sum | cut -d' ' -f1)
assert_eq "sha256:$raw" "$PAUSE" "skopeo inspect --raw digest"

note "request log"
grep -Eq '^127\.0\.0\.1 HEAD /v2/pause/manifests/3\.10\?ns=registry\.k8s\.io 200 0 [0-9.]+ms$' "$LAB/mirror.log" ||
	{ cat "$LAB/mirror.log"; fail "request log line"; }
grep -Eq ' PUT /v2/pause/manifests/3\.10\?ns=registry\.k8s\.io 405 ' "$LAB/mirror.log" || fail "405 logged"

note "SIGTERM stops cleanly, also in the middle of a body; a restart reuses the CA"
: >"$LAB/slow.out"
python3 "$LAB/slow.py" "$PORT" "/v2/registry.k8s.io/big/blobs/$bigl" "$CA" >"$LAB/slow.out" &
slow=$!
kf_on_exit "kill $slow 2>/dev/null"
for i in $(seq 300); do [ -s "$LAB/slow.out" ] && break; sleep 0.1; done
grep -q "HTTP/1.1 200" "$LAB/slow.out" || fail "second slow client got no response"
kill -TERM "$MPID"
rc=0; wait "$MPID" || rc=$?
assert_eq "$rc" 0 "exit status after SIGTERM"
kill "$slow"; wait "$slow" 2>/dev/null || true
grep -q "mirror: stopped" "$LAB/mirror.log" || fail "no clean shutdown message"
cp "$LAB/mirror-tls/ca.crt" "$LAB/ca-before.crt"
PORT2=$(kf_free_port)
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT2" --san 127.0.0.1 --san localhost \
	--root "$LAB/root" >"$LAB/mirror2.log" 2>&1
kf_wait_port "$PORT2" 30
cmp "$LAB/ca-before.crt" "$LAB/mirror-tls/ca.crt" || fail "CA replaced on restart"
grep -q "fingerprint (sha256): $want_fp" "$LAB/mirror2.log" || fail "fingerprint changed"
"${C[@]}" -o /dev/null "https://127.0.0.1:$PORT2/v2/"

note "given certificate; plain HTTP only when asked, loudly"
kf_ca "$LAB/pki"
PORT3=$(kf_free_port)
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT3" --tls-cert "$LAB/pki/server.crt" \
	--tls-key "$LAB/pki/server.key" -q >"$LAB/mirror3.log" 2>&1
kf_wait_port "$PORT3" 30
curl -sS --cacert "$LAB/pki/ca.crt" -o /dev/null "https://127.0.0.1:$PORT3/v2/"
note "a lone leaf certificate is served, with a warning that nodes cannot pin its CA"
assert_eq "$(served_certs "$PORT3" | wc -l)" 1 "certificates from a leaf-only --tls-cert"
grep -q "warning: $LAB/pki/server.crt holds only the server certificate" "$LAB/mirror3.log" ||
	{ cat "$LAB/mirror3.log"; fail "no warning for a leaf-only --tls-cert"; }

note "--tls-cert with a chain file (leaf, then CA): the whole chain is served"
cat "$LAB/pki/server.crt" "$LAB/pki/ca.crt" >"$LAB/pki/chain.pem"
PORT6=$(kf_free_port)
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT6" --tls-cert "$LAB/pki/chain.pem" \
	--tls-key "$LAB/pki/server.key" -q >"$LAB/mirror6.log" 2>&1
kf_wait_port "$PORT6" 30
served_certs "$PORT6" >"$LAB/served6"
assert_eq "$(cat "$LAB/served6")" "$(fp_of "$LAB/pki/server.crt")
$(fp_of "$LAB/pki/ca.crt")" "chain served from --tls-cert"
! grep -q warning "$LAB/mirror6.log" || fail "warning for a full chain: $(cat "$LAB/mirror6.log")"
curl -sS --cacert "$LAB/pki/ca.crt" -o /dev/null "https://127.0.0.1:$PORT6/v2/"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT3/v2/" || true)
[ "$code" != 200 ] || fail "a TLS mirror answered plain HTTP"
PORT4=$(kf_free_port)
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT4" --plain-http >"$LAB/mirror4.log" 2>&1
kf_wait_port "$PORT4" 30
grep -q "WARNING: --plain-http" "$LAB/mirror4.log" || fail "plain HTTP not announced"
assert_eq "$(curl -s "http://127.0.0.1:$PORT4/v2/registry.k8s.io/pause/manifests/3.10" | sha256sum | cut -d' ' -f1)" "${PAUSE#sha256:}" "plain manifest"

note "ambiguous message length: 400, and the connection closes"
# Each case is one request with a second one pipelined behind it: the
# server must answer the first with 400 and close, never answer the second.
python3 - "$PORT4" <<'EOF' || fail "ambiguous message length"
import socket, sys
port = int(sys.argv[1])
nxt = b"GET /v2/ HTTP/1.1\r\nHost: m\r\n\r\n"
cases = {
    "two Content-Length": b"GET /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    "two different Content-Length": b"GET /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 2\r\ncontent-length: 0\r\n\r\nab",
    "Content-Length and Transfer-Encoding": b"GET /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "HEAD with both": b"HEAD /v2/ HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
}

def exchange(req, want):
    s = socket.create_connection(("127.0.0.1", port))
    # Not a timing check: a server that keeps the connection open is
    # caught by the timeout instead of hanging the test.
    s.settimeout(20)
    s.sendall(req)
    data, closed = b"", False
    try:
        while data.count(b"HTTP/1.1 ") < want or want == 1:
            got = s.recv(65536)
            if not got:
                closed = True
                break
            data += got
    except socket.timeout:
        pass
    s.close()
    return data, closed

bad = 0
for name, req in cases.items():
    data, closed = exchange(req + nxt, 1)
    status = data.split(b"\r\n", 1)[0]
    n = data.count(b"HTTP/1.1 ")
    if not status.startswith(b"HTTP/1.1 400") or n != 1 or not closed:
        print(f"{name}: got {status!r}, {n} responses, closed={closed}")
        bad += 1
# One Content-Length is fine, and the connection serves the next request.
data, closed = exchange(b"GET /v2/ HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n" + nxt, 2)
if data.count(b"HTTP/1.1 200") != 2:
    print(f"one Content-Length: {data[:300]!r}")
    bad += 1
sys.exit(1 if bad else 0)
EOF

note "out of descriptors: the server pauses accepting instead of spinning, then serves again"
PORT5=$(kf_free_port)
kf_bg prlimit --nofile=32 "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT5" --plain-http -q \
	>"$LAB/mirror5.log" 2>"$LAB/mirror5.err"
kf_wait_port "$PORT5" 30
# 60 idle connections exceed the 32 descriptors; the kernel queues them.
python3 - "$PORT5" <<'EOF'
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
time.sleep(2)
EOF
n=$(grep -c "cannot accept a connection: Too many open files" "$LAB/mirror5.err" || true)
[ "$n" -ge 1 ] || { head "$LAB/mirror5.err"; fail "accept failure not reported"; }
# libevent alone retries accept() in a busy loop: hundreds of thousands of
# lines in two seconds.
[ "$n" -lt 200 ] || fail "accept retried in a busy loop ($n lines)"
assert_eq "$(curl -sS -m 30 "http://127.0.0.1:$PORT5/v2/")" "{}" "served again after the idle clients left"

note "usage errors and a bundle that does not verify"
expect_exit 2 "$KFI" mirror serve "$B" --listen localhost:5000 --plain-http
expect_output "numeric"
expect_exit 2 "$KFI" mirror serve "$B" --plain-http
expect_exit 2 "$KFI" mirror serve "$B" --listen 127.0.0.1:1 --tls-cert "$LAB/pki/server.crt"
expect_exit 2 "$KFI" mirror tls --state "$LAB/t2" --san 'a,DNS:evil'
expect_output "invalid --san"
assert_absent "$LAB/t2/server.crt"
cp -a "$B" "$LAB/bad"
echo tampered >>"$LAB/bad/images/blobs/sha256/${PAUSE#sha256:}"
expect_exit 1 "$KFI" mirror serve "$LAB/bad" --listen "127.0.0.1:$(kf_free_port)" --plain-http
expect_output "${PAUSE#sha256:}: content does not match its digest"
rm "$LAB/bad/images/blobs/sha256/${PAUSE#sha256:}"
expect_exit 3 "$KFI" mirror serve "$LAB/bad" --listen "127.0.0.1:$(kf_free_port)" --plain-http
expect_output "cannot read manifest .*${PAUSE#sha256:}"
echo "all mirror serve checks passed"
