#!/usr/bin/env bash
# apply --mirror HOST:PORT --mirror-ca-fingerprint: the mirror's CA is taken
# from its TLS chain only when its SHA-256 fingerprint matches the pin, and
# installed for containerd; a wrong pin stops apply before the node changes.
# The mirror is openssl s_server sending its CA in the chain, then
# kubeferry-install mirror serve with its generated TLS material.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
kf_ca "$LAB/tls"
port=$(kf_free_port)
kf_bg openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$LAB/tls/server.crt" \
	-key "$LAB/tls/server.key" -cert_chain "$LAB/tls/ca.crt" -www >"$LAB/s_server.log" 2>&1
kf_wait_port "$port"
fp=$(openssl x509 -in "$LAB/tls/ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)
leaf=$(openssl x509 -in "$LAB/tls/server.crt" -noout -fingerprint -sha256 | cut -d= -f2)

R=$LAB/root
mkdir -p "$R/etc" "$R/var/lib"
listing() { (cd "$1" && find . -printf '%p %y %m\n' | sort); }

note "wrong pin: nothing changes"
listing "$R" >"$LAB/before"
bad=sha256:$(printf '%064d' 0)
expect_exit 1 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$bad"
expect_output "mirror 127.0.0.1:$port: no certificate in its chain has the pinned fingerprint"
listing "$R" >"$LAB/after"
cmp "$LAB/before" "$LAB/after" || fail "a wrong pin changed the root"

note "pinning the leaf is refused: containerd needs the CA"
expect_exit 1 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$leaf"
expect_output 'is not a CA'

note "right pin (openssl's colon form): the CA is installed"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp"
expect_output 'changed +file /etc/kubeferry/mirror-ca.crt'
cmp <(openssl x509 -in "$R/etc/kubeferry/mirror-ca.crt" -outform DER) \
	<(openssl x509 -in "$LAB/tls/ca.crt" -outform DER) || fail "installed CA differs"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "sha256:$(tr -d : <<<"$fp" | tr A-F a-f)"
expect_output ' changed=0 failed=0$'

note "--mirror HOST:PORT is checked before it reaches hosts.toml"
expect_exit 2 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1\"]
[x]:$port" --mirror-ca-fingerprint "$fp" --mirror-ca "$LAB/tls/ca.crt"
expect_output 'is not a host name or address'
expect_exit 2 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:${port}x" --mirror-ca-fingerprint "$fp" --mirror-ca "$LAB/tls/ca.crt"
expect_output 'want HOST:PORT'
note "--mirror and --no-mirror exclude each other"
expect_exit 2 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp" --no-mirror
note "--mirror-ca FILE carried by hand is checked against the pin too"
R2=$LAB/root2
mkdir -p "$R2/etc" "$R2/var/lib"
expect_exit 1 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R2" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$bad" --mirror-ca "$LAB/tls/ca.crt"
expect_output 'pinned sha256:0000'
assert_absent "$R2/etc/kubeferry"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R2" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp" --mirror-ca "$LAB/tls/ca.crt"
cmp "$R2/etc/kubeferry/mirror-ca.crt" "$LAB/tls/ca.crt" || fail "--mirror-ca not installed"
note "--mirror-ca FILE: only the pinned certificate is installed, not a CA appended to it"
kf_ca "$LAB/rogue"
cat "$LAB/tls/ca.crt" "$LAB/rogue/ca.crt" >"$LAB/two-cas.crt"
R2b=$LAB/root2b
mkdir -p "$R2b/etc" "$R2b/var/lib"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R2b" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp" --mirror-ca "$LAB/two-cas.crt"
assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$R2b/etc/kubeferry/mirror-ca.crt")" 1 "certificates installed"
cmp "$R2b/etc/kubeferry/mirror-ca.crt" "$LAB/tls/ca.crt" || fail "installed CA is not the pinned one"
note "--mirror-ca FILE holding a pinned leaf is refused"
expect_exit 1 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R2" --mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$leaf" --mirror-ca "$LAB/tls/server.crt"
expect_output "--mirror-ca $LAB/tls/server.crt: the certificate with fingerprint .* is not a CA"

note "a plain 'mirror serve' with generated TLS is pinned the same way"
# No s_server here: kubeferry-install's own mirror, with nothing but
# --listen (and --root, so that its CA copy stays in the lab), must hand
# nodes its CA in the handshake.
M=$LAB/mirror-bundle
mkdir -p "$M/images/blobs/sha256" "$M/files"
printf '{"imageLayoutVersion":"1.0.0"}' >"$M/images/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' >"$M/images/index.json"
mport=$(kf_free_port)
kf_bg "$KFI" mirror serve "$M" --listen "127.0.0.1:$mport" --root "$LAB/mroot" >"$LAB/mirror.log" 2>&1
kf_wait_port "$mport" 30
mfp=$(sed -n 's/^mirror CA fingerprint (sha256): //p' "$LAB/mirror.log")
[ -n "$mfp" ] || { cat "$LAB/mirror.log"; fail "mirror serve printed no fingerprint"; }
assert_eq "$mfp" "$(openssl x509 -in "$LAB/mirror-tls/ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)" \
	"printed fingerprint is the generated CA's"
R3=$LAB/root3
mkdir -p "$R3/etc" "$R3/var/lib"
listing "$R3" >"$LAB/before3"
expect_exit 1 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R3" --mirror "127.0.0.1:$mport" --mirror-ca-fingerprint "$fp"
expect_output "mirror 127.0.0.1:$mport: no certificate in its chain has the pinned fingerprint"
listing "$R3" >"$LAB/after3"
cmp "$LAB/before3" "$LAB/after3" || fail "a wrong pin against mirror serve changed the root"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role worker \
	--root "$R3" --mirror "127.0.0.1:$mport" --mirror-ca-fingerprint "$mfp"
expect_output 'changed +file /etc/kubeferry/mirror-ca.crt'
cmp "$R3/etc/kubeferry/mirror-ca.crt" "$LAB/mirror-tls/ca.crt" || fail "pinned CA is not the mirror's CA"
echo "mirror pin checks passed"
