#!/usr/bin/env bash
# The etcd PKI that apply generates runs a real etcd (Debian's 3.4, from the
# test bundle) on loopback with client-certificate auth; etcdctl and the
# installer's own TLS health check (status --etcd-endpoint) both pass with
# the admin certificate, and a certificate from another CA is refused.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar /usr/bin/etcd /usr/bin/etcdctl /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
R=$LAB/root
mkdir -p "$R/etc" "$R/var/lib"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role control-plane \
	--root "$R" --hostname etcd1 --node-ip 127.0.0.1
P=$R/etc/ssl/etcd/ssl
for c in member admin node; do
	! openssl x509 -in "$P/$c-etcd1.pem" -noout -ext keyUsage | has 'Key Encipherment' ||
		fail "$c certificate: an EC key with keyEncipherment"
done

note "start the bundled etcd with /etc/etcd.env (ports and paths moved into the lab)"
cp=$(kf_free_port) pp=$(kf_free_port)
while [ "$pp" = "$cp" ]; do pp=$(kf_free_port); done
(
	set -a
	# shellcheck disable=SC1091
	. "$R/etc/etcd.env"
	set +a
	for v in ETCD_TRUSTED_CA_FILE ETCD_CERT_FILE ETCD_KEY_FILE ETCD_PEER_TRUSTED_CA_FILE \
		ETCD_PEER_CERT_FILE ETCD_PEER_KEY_FILE; do
		export "$v=$R${!v}"
	done
	export ETCD_DATA_DIR=$LAB/etcd-data
	export ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:$cp ETCD_ADVERTISE_CLIENT_URLS=https://127.0.0.1:$cp
	export ETCD_LISTEN_PEER_URLS=https://127.0.0.1:$pp ETCD_INITIAL_ADVERTISE_PEER_URLS=https://127.0.0.1:$pp
	export ETCD_INITIAL_CLUSTER=etcd1=https://127.0.0.1:$pp
	exec "$R/usr/local/bin/etcd"
) >"$LAB/etcd.log" 2>&1 &
_kf_pids+=($!)
kf_wait_port "$cp" 30

note "etcdctl endpoint health with the admin certificate"
ok=0
for _ in $(seq 1 60); do
	if ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$cp" --cacert "$P/ca.pem" \
		--cert "$P/admin-etcd1.pem" --key "$P/admin-etcd1-key.pem" endpoint health >"$LAB/health" 2>&1; then
		ok=1; break
	fi
	sleep 0.5
done
[ $ok = 1 ] || { cat "$LAB/health" "$LAB/etcd.log"; fail "etcd not healthy"; }
grep -q 'is healthy' "$LAB/health" || fail "etcdctl says: $(cat "$LAB/health")"
ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$cp" --cacert "$P/ca.pem" \
	--cert "$P/node-etcd1.pem" --key "$P/node-etcd1-key.pem" put kubeferry ok >/dev/null
assert_eq "$(ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$cp" --cacert "$P/ca.pem" \
	--cert "$P/admin-etcd1.pem" --key "$P/admin-etcd1-key.pem" get kubeferry --print-value-only)" ok "etcd round trip"

note "the installer's TLS health check"
expect_exit 0 "$KFI" status --root "$R" --etcd-endpoint "127.0.0.1:$cp"
expect_output "^etcd https://127.0.0.1:$cp healthy$"

note "a client certificate from another CA is refused"
kf_ca "$LAB/other"
cp "$P/admin-etcd1.pem" "$LAB/admin.bak"; cp "$P/admin-etcd1-key.pem" "$LAB/admin-key.bak"
cp "$LAB/other/server.crt" "$P/admin-etcd1.pem"; cp "$LAB/other/server.key" "$P/admin-etcd1-key.pem"
rc=0; "$KFI" status --root "$R" --etcd-endpoint "127.0.0.1:$cp" >"$LAB/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a foreign client certificate passed the health check"
! grep -q " healthy$" "$LAB/out" || fail "reported healthy with a foreign certificate"
cp "$LAB/admin.bak" "$P/admin-etcd1.pem"; cp "$LAB/admin-key.bak" "$P/admin-etcd1-key.pem"

note "a server that is not our etcd (wrong CA) fails verification"
cp "$P/ca.pem" "$LAB/ca.bak"; cp "$LAB/other/ca.crt" "$P/ca.pem"
expect_exit 1 "$KFI" status --root "$R" --etcd-endpoint "127.0.0.1:$cp"
expect_output 'TLS handshake failed'
cp "$LAB/ca.bak" "$P/ca.pem"
echo "etcd PKI checks passed"
