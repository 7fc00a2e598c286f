#!/usr/bin/env bash
# cluster init / join and mirror install under --root: the kubeadm
# configuration (checked by the stand-in kubeadm, tests/node/mock-kubeadm),
# the commands planned, the join secrets (CA hash as kubeadm computes it),
# the renewal timer, kubeferry-mirror.service whose CA fingerprint another
# node pins; reset restores the root.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
R=$LAB/cp
mkdir -p "$R/etc/selinux" "$R/var/lib"
printf 'SELINUX=enforcing\n' >"$R/etc/selinux/config"
echo cp1 >"$R/etc/hostname"
cp -a "$R" "$LAB/cp.orig"

note "cluster init before apply is refused"
expect_exit 2 "$KFI" cluster init --root "$R"
expect_output 'run .kubeferry-install apply. on this node first'

expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R" --node-ip 10.0.0.5

note "cluster init"
expect_exit 0 "$KFI" cluster init --root "$R"
cp "$LAB/out" "$LAB/init1"
expect_output '^plan +run /usr/local/bin/kubeadm init --config /etc/kubernetes/kubeadm-config.yaml --upload-certs$'
expect_output '^plan +run systemctl restart kubeferry-certs-renew.timer$'
C=$R/etc/kubernetes/kubeadm-config.yaml
assert_eq "$(stat -c %a "$C")" 600 "kubeadm config mode"
grep -qx 'kubernetesVersion: v1.33.3' "$C" || fail "kubernetesVersion"
grep -qx '  podSubnet: 10.244.0.0/16' "$C" || fail podSubnet
grep -qx '  serviceSubnet: 10.96.0.0/12' "$C" || fail serviceSubnet
grep -qx '    - https://10.0.0.5:2379' "$C" || fail "external etcd endpoint"
grep -qx '    certFile: /etc/ssl/etcd/ssl/node-cp1.pem' "$C" || fail "etcd client cert"
grep -qx 'cgroupDriver: systemd' "$C" || fail cgroupDriver
note "the stand-in kubeadm accepts the configuration and records the call"
KF_MOCK_LOG=$LAB/mock.log PATH=$R/usr/local/bin:$PATH "$R/usr/local/bin/kubeadm" init --config "$C" --upload-certs >/dev/null ||
	fail "mock-kubeadm rejected the configuration"
grep -qx "kubeadm init --config $C --upload-certs" "$LAB/mock.log" || fail "mock log: $(cat "$LAB/mock.log")"
sed 's/^cgroupDriver: systemd$/cgroupDriver: cgroupfs/' "$C" >"$LAB/bad.yaml"
! KF_MOCK_LOG=$LAB/mock.log PATH=$R/usr/local/bin:$PATH "$R/usr/local/bin/kubeadm" init --config "$LAB/bad.yaml" 2>/dev/null ||
	fail "mock-kubeadm accepts anything"

note "join command: token from the config, CA hash as kubeadm computes it"
token=$(sed -n 's/^- token: "\(.*\)"$/\1/p' "$C")
hash=$(openssl x509 -in "$R/etc/kubernetes/pki/ca.crt" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
grep -q "cluster join --api-server 10.0.0.5:6443 --token $token --discovery-token-ca-cert-hash sha256:$hash\$" "$LAB/init1" ||
	fail "join command wrong: $(grep 'cluster join' "$LAB/init1")"
grep -qx 'OnCalendar=monthly' "$R/etc/systemd/system/kubeferry-certs-renew.timer" || fail timer
grep -qx 'ExecStart=/usr/local/bin/kubeferry-install cluster renew-certs' "$R/etc/systemd/system/kubeferry-certs-renew.service" || fail renew
! grep -q 'restart-control-plane\|certs renew all' "$R/etc/systemd/system/kubeferry-certs-renew.service" || fail "renewal still parks manifests"
assert_eq "$(readlink "$R/etc/systemd/system/timers.target.wants/kubeferry-certs-renew.timer")" \
	/etc/systemd/system/kubeferry-certs-renew.timer "timer enabled"
"$R/usr/local/bin/kubeferry-install" --version >/dev/null || fail "installer not copied to /usr/local/bin"

note "second init: same secrets, nothing changed"
expect_exit 0 "$KFI" cluster init --root "$R"
expect_output ' changed=0 failed=0$'
grep -q -- "--token $token " "$LAB/out" || fail "token changed on re-run"

note "a re-run after kubeadm init: a new token, certificates uploaded again under the same key (point 5)"
certkey=$(sed -n 's/^certificateKey: "\(.*\)"$/\1/p' "$C")
cp "$C" "$LAB/config-before"
touch "$R/etc/kubernetes/admin.conf" # what kubeadm init leaves
expect_exit 0 "$KFI" cluster init --root "$R"
t2=$(sed -En 's#^plan +run /usr/local/bin/kubeadm token create ([a-z0-9]{6}\.[a-z0-9]{16}) --ttl 24h0m0s --description kubeferry join token --kubeconfig /etc/kubernetes/admin.conf$#\1#p' "$LAB/out")
[ -n "$t2" ] || fail "no kubeadm token create planned: $(cat "$LAB/out")"
[ "$t2" != "$token" ] || fail "the old token was printed again"
expect_output '^plan +run /usr/local/bin/kubeadm init phase upload-certs --upload-certs --config /etc/kubernetes/kubeadm-config.yaml$'
expect_output "cluster join --api-server 10\.0\.0\.5:6443 --token $t2 --discovery-token-ca-cert-hash sha256:$hash\$"
expect_output "cluster join --api-server 10\.0\.0\.5:6443 --token $t2 --discovery-token-ca-cert-hash sha256:$hash --certificate-key $certkey\$"
! grep -q 'kubeadm init --config' "$LAB/out" || fail "kubeadm init planned again"
cmp "$C" "$LAB/config-before" || fail "the configuration changed"
rm "$R/etc/kubernetes/admin.conf"

note "renew-certs: only what is near expiry, then crictl restarts; manifests stay (point 7)"
mkdir -p "$R/etc/kubernetes/pki" "$R/etc/kubernetes/manifests"
crt() { # OUT DAYS
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kf-test \
		-days "$2" -keyout "$LAB/k.pem" -out "$1" 2>/dev/null
}
crt "$R/etc/kubernetes/pki/apiserver.crt" 10
crt "$R/etc/kubernetes/pki/front-proxy-client.crt" 300
crt "$LAB/admin.crt" 5
printf 'apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: %s\n' \
	"$(base64 -w0 "$LAB/admin.crt")" >"$R/etc/kubernetes/admin.conf"
for p in kube-apiserver kube-controller-manager kube-scheduler; do printf 'kind: Pod\n' >"$R/etc/kubernetes/manifests/$p.yaml"; done
listing() { (cd "$1" && find . -printf '%p %y %m\n' | sort); }
listing "$R/etc/kubernetes/manifests" >"$LAB/manifests-before"
expect_exit 0 "$KFI" cluster renew-certs --root "$R"
expect_output '^plan +run /usr/local/bin/kubeadm certs renew apiserver$'
expect_output '^plan +run /usr/local/bin/kubeadm certs renew admin\.conf$'
expect_output '^ok +front-proxy-client expires in (29[0-9]|300) days$'
! grep -q 'certs renew front-proxy-client' "$LAB/out" || fail "renewed a certificate far from expiry"
for p in kube-apiserver kube-controller-manager kube-scheduler; do
	expect_output "^plan +restart $p: crictl ps --name \\^$p\\\$ -q, then crictl stop each\$"
done
! grep -q 'restart etcd' "$LAB/out" || fail "restarts an etcd this node does not run"
listing "$R/etc/kubernetes/manifests" >"$LAB/manifests-after"
cmp "$LAB/manifests-before" "$LAB/manifests-after" || fail "manifests moved"
assert_absent "$R/etc/kubernetes/kubeferry-parked"
note "nothing near expiry: nothing renewed, no restart"
expect_exit 0 "$KFI" cluster renew-certs --root "$R" --days 3
expect_output '^ok +nothing expires within 3 days; no restart$'
! grep -q 'crictl\|certs renew' "$LAB/out" || fail "renewed or restarted with nothing near expiry"
expect_exit 2 "$KFI" cluster renew-certs --root "$R" --days 0
rm -r "$R/etc/kubernetes/pki/apiserver.crt" "$R/etc/kubernetes/pki/front-proxy-client.crt" \
	"$R/etc/kubernetes/admin.conf" "$R/etc/kubernetes/manifests"

note "mirror install"
port=$(kf_free_port)
expect_exit 0 "$KFI" mirror install --root "$R" --listen "127.0.0.1:$port"
fp=$(sed -n 's/^mirror CA fingerprint (sha256): //p' "$LAB/out")
assert_eq "$fp" "$(openssl x509 -in "$R/etc/kubeferry/mirror-ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)" "printed fingerprint"
U=$R/etc/systemd/system/kubeferry-mirror.service
grep -qx "ExecStart=/usr/local/bin/kubeferry-install mirror serve /var/lib/kubeferry/bundles/k8s-test-1.33.3 --listen 127.0.0.1:$port --state /var/lib/kubeferry/mirror-tls --san 127.0.0.1 --san localhost" "$U" ||
	fail "mirror unit: $(grep ExecStart "$U")"
grep -qx "ReadWritePaths=/var/lib/kubeferry/mirror-tls" "$U" || fail "mirror unit cannot renew its certificate"
! grep -q "tls-cert\|chain.crt" "$U" || fail "mirror unit still names a hand-made chain"
assert_eq "$(readlink "$R/etc/systemd/system/multi-user.target.wants/kubeferry-mirror.service")" \
	/etc/systemd/system/kubeferry-mirror.service "mirror enabled"

note "cluster init after mirror install tells other nodes the mirror and its fingerprint"
expect_exit 0 "$KFI" cluster init --root "$R"
expect_output "^  kubeferry-install apply BUNDLE -p KEY --role ROLE --mirror 127.0.0.1:$port --mirror-ca-fingerprint $fp\$"
# Listening on every address, the mirror is announced at the node IP.
expect_exit 0 "$KFI" mirror install --root "$R" --listen "0.0.0.0:$port" --san 10.0.0.5
expect_output "^on other nodes: .* --mirror 10.0.0.5:$port --mirror-ca-fingerprint $fp\$"
expect_exit 0 "$KFI" cluster init --root "$R"
expect_output "^  kubeferry-install apply BUNDLE -p KEY --role ROLE --mirror 10.0.0.5:$port "
expect_exit 0 "$KFI" mirror install --root "$R" --listen "127.0.0.1:$port"

note "the unit's command, run against the root, serves the chain and lets a second node pin the printed fingerprint"
# The test bundle holds no images, which 'mirror serve' needs: the unit's
# own arguments are used with an empty image layout in the bundle's place,
# its absolute paths moved under the root.
T=$R/var/lib/kubeferry/mirror-tls
E=$LAB/empty-bundle
mkdir -p "$E/images/blobs/sha256" "$E/files"
printf '{"imageLayoutVersion":"1.0.0"}' >"$E/images/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' >"$E/images/index.json"
read -ra unitcmd <<<"$(sed -n 's/^ExecStart=//p' "$U")"
cmd=("$KFI")
for a in "${unitcmd[@]:1}"; do
	case $a in
	/var/lib/kubeferry/bundles/*) cmd+=("$E") ;;
	/*) cmd+=("$R$a") ;;
	*) cmd+=("$a") ;;
	esac
done
cp "$T/server.crt" "$LAB/server-before.crt"
stat -c %i "$R/etc/kubeferry/mirror-ca.crt" >"$LAB/ca-inode"
kf_bg "${cmd[@]}" --root "$R" >"$LAB/unit-serve.log" 2>&1
kf_wait_port "$port" 30
cmp "$LAB/server-before.crt" "$T/server.crt" || fail "the unit's command issued a new certificate"
assert_eq "$(stat -c %i "$R/etc/kubeferry/mirror-ca.crt")" "$(cat "$LAB/ca-inode")" "the unit's command rewrote the CA copy"
grep -q "fingerprint (sha256): $fp" "$LAB/unit-serve.log" || { cat "$LAB/unit-serve.log"; fail "the unit serves another CA"; }
n=$(openssl s_client -connect "127.0.0.1:$port" -showcerts </dev/null 2>/dev/null | grep -c 'BEGIN CERTIFICATE')
assert_eq "$n" 2 "certificates in the mirror's handshake"
W=$LAB/worker
mkdir -p "$W/etc" "$W/var/lib"
echo w1 >"$W/etc/hostname"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$W" --node-ip 10.0.0.6 \
	--mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp"
cmp "$W/etc/kubeferry/mirror-ca.crt" "$R/etc/kubeferry/mirror-ca.crt" || fail "worker got another CA"

note "cluster join on the worker"
expect_exit 0 "$KFI" cluster join --root "$W" --api-server 10.0.0.5:6443 --token "$token" \
	--discovery-token-ca-cert-hash "sha256:$hash"
expect_output "^plan +run /usr/local/bin/kubeadm join --config /etc/kubernetes/kubeadm-join.yaml\$"
J=$W/etc/kubernetes/kubeadm-join.yaml
assert_eq "$(stat -c %a "$J")" 600 "join config mode"
# v1beta4 JoinConfiguration with kubelet's node-ip (issue 10, point 6).
python3 - "$J" "$token" "sha256:$hash" <<'EOF' || fail "worker join configuration: $(cat "$J")"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["apiVersion"] == "kubeadm.k8s.io/v1beta4" and d["kind"] == "JoinConfiguration", d
bt = d["discovery"]["bootstrapToken"]
assert bt == {"apiServerEndpoint": "10.0.0.5:6443", "token": sys.argv[2], "caCertHashes": [sys.argv[3]]}, bt
nr = d["nodeRegistration"]
assert nr["name"] == "w1" and nr["criSocket"] == "unix:///run/containerd/containerd.sock", nr
assert nr["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.0.6"}], nr
assert "controlPlane" not in d, d
EOF
KF_MOCK_LOG=$LAB/mock.log PATH=$W/usr/local/bin:$PATH "$W/usr/local/bin/kubeadm" join --config "$J" >/dev/null ||
	fail "the stand-in kubeadm rejects the join configuration"
expect_exit 2 "$KFI" cluster join --root "$W" --api-server 10.0.0.5:6443 --token BAD \
	--discovery-token-ca-cert-hash "sha256:$hash"
note "a control plane needs the certificate key"
expect_exit 2 "$KFI" cluster join --root "$R" --api-server 10.0.0.5:6443 --token "$token" \
	--discovery-token-ca-cert-hash "sha256:$hash"
expect_output 'certificate-key'
note "a control plane joins advertising its own address"
certkey=$(sed -n 's/^certificateKey: "\(.*\)"$/\1/p' "$C")
expect_exit 0 "$KFI" cluster join --root "$R" --api-server 10.0.0.5:6443 --token "$token" \
	--discovery-token-ca-cert-hash "sha256:$hash" --certificate-key "$certkey"
python3 - "$R/etc/kubernetes/kubeadm-join.yaml" "$certkey" <<'EOF' || fail "control-plane join configuration"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": "10.0.0.5"}], d
assert d["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "10.0.0.5", "bindPort": 6443},
                             "certificateKey": sys.argv[2]}, d
EOF
expect_exit 2 "$KFI" cluster join --root "$W" --api-server '10.0.0.5:6443"' --token "$token" \
	--discovery-token-ca-cert-hash "sha256:$hash"

note "reset undoes apply, cluster init and mirror install"
expect_exit 0 "$KFI" reset --root "$R"
rm -rf "$R/var/lib/kubeferry"
diff -r --no-dereference "$LAB/cp.orig" "$R" || fail "reset left differences"
echo "cluster checks passed"
