#!/usr/bin/env bash
# A cluster plan applied host by host under --root (commands planned, the
# kubeadm stand-in tests/node/mock-kubeadm checks the configurations):
# apply --plan puts each host's share in place (planned PKI, etcd member
# files, every mirror in hosts.toml with the planned CA), needs nothing but
# hosts/NAME/, and changes nothing on a second run; cluster init --plan runs
# kubeadm with the planned configuration and refreshes the token and the
# uploaded certificates once they would have expired; cluster join --plan
# joins control planes and workers with the planned JoinConfiguration;
# mirror install --plan serves with the planned certificate, which the
# worker's pinned CA trusts.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
need openssl gzip tar curl /usr/bin/etcd /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge
images_lab

# A bundle with an image, so that it carries certs.d for registry.k8s.io.
HOME=$LAB/home KF=$KF KF_TEST_IMAGES="registry.k8s.io/pause:3.10" \
	bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --mirror https://mirror.invalid:5443
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
mport=$(kf_free_port)
cat >"$LAB/inventory.ini" <<EOF
cp1 ip=10.88.0.11
cp2 ip=10.88.0.12
cp3 ip=10.88.0.13
w1 ip=10.88.0.21
[kube_control_plane]
cp1
cp2
cp3
[etcd]
cp1
cp2
cp3
[kube_node]
w1
[all:vars]
kubeferry_mirror_port=$mport
EOF
P=$LAB/plan
expect_exit 0 "$KFI" cluster plan "$LAB/inventory.ini" "$B" -p "$PUB" -o "$P"
H=$P/hosts
root() { mkdir -p "$LAB/r/$1/etc" "$LAB/r/$1/var/lib"; echo "$LAB/r/$1"; }

note "apply --plan on every host"
for h in cp1 cp2 cp3 w1; do
	R=$(root $h)
	expect_exit 0 "$KFI" apply "$B" -p "$PUB" --plan "$P" --host "$h" --root "$R"
	cp "$LAB/out" "$LAB/apply-$h"
	cmp "$H/$h/mirror-ca.crt" "$R/etc/kubeferry/mirror-ca.crt" || fail "$h: mirror CA"
	T=$R/etc/containerd/certs.d/registry.k8s.io/hosts.toml
	diff <(grep -E '^server|^\[host|^ *ca =' "$T") - <<-EOF || fail "$h: hosts.toml: $(cat "$T")"
	server = "https://10.88.0.11:$mport"
	ca = "/etc/kubeferry/mirror-ca.crt"
	[host."https://10.88.0.11:$mport"]
	  ca = "/etc/kubeferry/mirror-ca.crt"
	[host."https://10.88.0.12:$mport"]
	  ca = "/etc/kubeferry/mirror-ca.crt"
	[host."https://10.88.0.13:$mport"]
	  ca = "/etc/kubeferry/mirror-ca.crt"
	EOF
	! grep -q mirror.invalid "$T" || fail "$h: the bundle's build-time mirror is still named"
	grep -qx "hostname: $h" "$R/var/lib/kubeferry/state/applied" || fail "$h: applied host name"
done
grep -q "^apply .*: role control-plane, host cp2 (10.88.0.12)" "$LAB/apply-cp2" || fail "cp2 identity: $(head -1 "$LAB/apply-cp2")"
grep -q "^apply .*: role worker, host w1 (10.88.0.21)" "$LAB/apply-w1" || fail "w1 identity"

note "the planned PKI, not a new one"
R=$LAB/r/cp2
for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub etcd/ca.crt \
	apiserver-etcd-client.crt apiserver-etcd-client.key; do
	cmp "$H/cp2/pki/$f" "$R/etc/kubernetes/pki/$f" || fail "cp2: /etc/kubernetes/pki/$f"
done
for f in ca.pem member-cp2.pem member-cp2-key.pem admin-cp2.pem admin-cp2-key.pem node-cp2.pem node-cp2-key.pem; do
	cmp "$H/cp2/etcd-ssl/$f" "$R/etc/ssl/etcd/ssl/$f" || fail "cp2: /etc/ssl/etcd/ssl/$f"
done
assert_absent "$R/etc/ssl/etcd/ssl/ca-key.pem"
cmp "$H/cp2/etcd.env" "$R/etc/etcd.env" || fail "cp2: etcd.env is not the planned one"
grep -qx 'ETCD_INITIAL_CLUSTER=etcd1=https://10.88.0.11:2380,etcd2=https://10.88.0.12:2380,etcd3=https://10.88.0.13:2380' \
	"$R/etc/etcd.env" || fail "cp2: initial cluster"
cmp "$H/cp2/kubeadm.yaml" "$R/etc/kubernetes/kubeadm-config.yaml" || fail "cp2: kubeadm configuration"
cmp "$P/shared/encryption-config.yaml" "$R/etc/kubernetes/kubeferry/encryption-config.yaml" || fail "encryption"
cmp "$P/shared/audit-policy.yaml" "$R/etc/kubernetes/kubeferry/audit-policy.yaml" || fail "audit policy"
for f in etc/kubernetes/pki/ca.key etc/kubernetes/pki/sa.key etc/ssl/etcd/ssl/member-cp2-key.pem \
	etc/kubernetes/kubeadm-config.yaml etc/kubernetes/kubeferry/encryption-config.yaml \
	var/lib/kubeferry/mirror-tls/server.key; do
	assert_eq "$(stat -c %a "$R/$f")" 600 "mode of /$f"
done
cmp "$H/cp2/mirror-tls/server.crt" "$R/var/lib/kubeferry/mirror-tls/server.crt" || fail "cp2: mirror certificate"
W=$LAB/r/w1
assert_absent "$W/etc/kubernetes/pki"
assert_absent "$W/etc/etcd.env"
assert_absent "$W/var/lib/kubeferry/mirror-tls"
cmp "$H/w1/kubeadm.yaml" "$W/etc/kubernetes/kubeadm-config.yaml" || fail "w1: kubeadm configuration"
grep -q 'etcd (host)' "$LAB/apply-w1" && fail "the worker got etcd"

note "a second apply changes nothing"
for h in cp1 w1; do
	expect_exit 0 "$KFI" apply "$B" -p "$PUB" --plan "$P" --host "$h" --root "$LAB/r/$h"
	expect_output ' changed=0 failed=0$'
done

note "hosts/NAME/ alone is enough"
mkdir -p "$LAB/carried/hosts"
cp -a "$H/cp3" "$LAB/carried/hosts/"
R3=$(root cp3-carried)
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --plan "$LAB/carried" --host cp3 --root "$R3"
diff -r "$LAB/r/cp3/etc/kubernetes" "$R3/etc/kubernetes" || fail "a carried share installs differently"

note "refused: plan and per-node flags together, a host the plan lacks, a mirror CA that does not match"
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --plan "$P" --host w1 --role worker --root "$(root x)"
expect_output 'drop --role'
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --plan "$P" --host w9 --root "$(root x)"
expect_output 'no share for host w9'
cp -a "$P" "$LAB/tampered"
cp "$LAB/ca/ca.crt" "$LAB/tampered/hosts/w1/mirror-ca.crt"
expect_exit 1 "$KFI" apply "$B" -p "$PUB" --plan "$LAB/tampered" --host w1 --root "$(root tampered)"
assert_absent "$LAB/r/tampered/var/lib/kubeferry"

note "cluster init --plan on the first control plane"
R=$LAB/r/cp1
C=$R/etc/kubernetes/kubeadm-config.yaml
token=$(cat "$P/shared/bootstrap-token") key=$(cat "$P/shared/certificate-key")
expect_exit 0 "$KFI" cluster init --plan "$P" --host cp1 --root "$R"
expect_output '^plan +run /usr/local/bin/kubeadm init --config /etc/kubernetes/kubeadm-config.yaml --upload-certs$'
expect_output 'cluster join --plan DIR --host NAME'
cmp "$H/cp1/kubeadm.yaml" "$C" || fail "cp1: the planned configuration is not the one kubeadm gets"
KF_MOCK_LOG=$LAB/mock.log PATH=$R/usr/local/bin:$PATH "$R/usr/local/bin/kubeadm" init --config "$C" --upload-certs >/dev/null ||
	fail "mock-kubeadm rejects the planned init configuration"
note "re-run right away: token and certificates still valid, nothing changes"
touch "$R/etc/kubernetes/admin.conf" # what a real kubeadm init leaves
expect_exit 0 "$KFI" cluster init --plan "$P" --host cp1 --root "$R"
expect_output '^ok +kubeadm init \(/etc/kubernetes/admin.conf exists\)$'
expect_output '^ok +bootstrap token [a-z0-9]{6}\. valid for'
expect_output ' changed=0 failed=0$'
! has 'token create\|upload-certs' "$LAB/out" || fail "refreshed what is still valid"
note "a day later: the planned token again, the certificates again with the planned key"
printf 'token: %s\ncerts: %s\n' $(( $(date +%s) - 86400 )) $(( $(date +%s) - 7200 )) \
	>"$R/var/lib/kubeferry/state/plan-secrets"
expect_exit 0 "$KFI" cluster init --plan "$P" --host cp1 --root "$R"
expect_output "^plan +run /usr/local/bin/kubeadm token create $token --ttl 24h0m0s --description kubeferry join token --kubeconfig /etc/kubernetes/admin.conf\$"
expect_output '^plan +run /usr/local/bin/kubeadm init phase upload-certs --upload-certs --config /etc/kubernetes/kubeadm-config.yaml$'
grep -qx "certificateKey: \"$key\"" "$C" || fail "the upload does not use the planned certificate key"
expect_exit 0 "$KFI" cluster init --plan "$P" --host cp1 --root "$R"
! has 'token create\|upload-certs' "$LAB/out" || fail "refreshed twice"
expect_exit 2 "$KFI" cluster init --plan "$P" --host cp2 --root "$LAB/r/cp2"
expect_output 'not the plan.s first control plane'

note "cluster join --plan: control planes and the worker"
for h in cp2 w1; do
	R=$LAB/r/$h
	expect_exit 0 "$KFI" cluster join --plan "$P" --host "$h" --root "$R"
	expect_output '^plan +run /usr/local/bin/kubeadm join --config /etc/kubernetes/kubeadm-config.yaml$'
	KF_MOCK_LOG=$LAB/mock.log PATH=$R/usr/local/bin:$PATH "$R/usr/local/bin/kubeadm" join --config "$R/etc/kubernetes/kubeadm-config.yaml" >/dev/null ||
		fail "mock-kubeadm rejects $h's join configuration"
	touch "$R/etc/kubernetes/kubelet.conf"
	expect_exit 0 "$KFI" cluster join --plan "$P" --host "$h" --root "$R"
	expect_output '^ok +kubeadm join'
	expect_output ' changed=0 failed=0$'
done
grep -q '^controlPlane:' "$LAB/r/cp2/etc/kubernetes/kubeadm-config.yaml" || fail "cp2 joins as a worker"
sed 's/caCertHashes:/caCertHashes: []\n    unsafeSkipCAVerification: true/' "$H/w1/kubeadm.yaml" >"$LAB/skip.yaml"
! KF_MOCK_LOG=$LAB/mock.log PATH=$W/usr/local/bin:$PATH sh "$ROOT/tests/node/mock-kubeadm" join --config "$LAB/skip.yaml" 2>/dev/null ||
	fail "mock-kubeadm accepts a join that skips CA verification"
expect_exit 2 "$KFI" cluster join --plan "$P" --host cp1 --root "$LAB/r/cp1"
expect_output 'first control plane'

note "mirror install --plan serves the planned certificate; the worker's pinned CA trusts it"
R=$LAB/r/cp1
expect_exit 0 "$KFI" mirror install --plan "$P" --host cp1 --root "$R"
fp=$(openssl x509 -in "$P/shared/mirror-ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)
expect_output "^mirror CA fingerprint \(sha256\): $fp\$"
U=$R/etc/systemd/system/kubeferry-mirror.service
grep -qx "ExecStart=/usr/local/bin/kubeferry-install mirror serve /var/lib/kubeferry/bundles/k8s-test-1.33.3 --listen 10.88.0.11:$mport --tls-cert /var/lib/kubeferry/mirror-tls/chain.crt --tls-key /var/lib/kubeferry/mirror-tls/server.key" "$U" ||
	fail "mirror unit: $(grep ExecStart "$U")"
expect_exit 0 "$KFI" mirror install --plan "$P" --host cp1 --root "$R"
expect_output ' changed=0 failed=0$'
expect_exit 2 "$KFI" mirror install --plan "$P" --host w1 --root "$LAB/r/w1"
expect_output 'not a mirror host'
# The unit's command with its paths under the root, on loopback (the
# planned certificate names 127.0.0.1 too).
port=$(kf_free_port)
kf_bg "$KFI" mirror serve "$R/var/lib/kubeferry/bundles/k8s-test-1.33.3" --listen "127.0.0.1:$port" \
	--tls-cert "$R/var/lib/kubeferry/mirror-tls/chain.crt" --tls-key "$R/var/lib/kubeferry/mirror-tls/server.key" \
	>"$LAB/serve.log" 2>&1
kf_wait_port "$port" 30
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/etc/kubeferry/mirror-ca.crt" \
	"https://127.0.0.1:$port/v2/")" 200 "the worker's pinned CA verifies the planned mirror"
curl -sf --cacert "$W/etc/kubeferry/mirror-ca.crt" -o /dev/null \
	"https://127.0.0.1:$port/v2/pause/manifests/3.10?ns=registry.k8s.io" ||
	fail "the planned mirror does not serve the bundle's image"
echo "apply --plan checks passed"
