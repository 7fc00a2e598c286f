#!/usr/bin/env bash
# cluster plan: a Kubespray inventory (YAML and the same in INI) with three
# control planes that are etcd members and one worker, planned offline from
# a verified bundle. Checks the modes, that every certificate chains to the
# planned CA with the host's names, the discovery hash as kubeadm computes
# it, the kubeadm configurations, a real three-member etcd started from the
# planned etcd.env and member certificates on 127.0.0.1, refused
# inventories (nothing written), and that re-running keeps every secret
# while an added host gets its share.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar base64 /usr/bin/etcd /usr/bin/etcdctl /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
I=$LAB/inv
mkdir -p "$I/yaml" "$I/ini"
cat >"$I/yaml/hosts.yaml" <<'EOF'
all:
  hosts:
    cp1: {ansible_host: 10.88.0.11, ip: 10.88.0.11}
    cp2: {ansible_host: 10.88.0.12, ip: 10.88.0.12}
    cp3: {ansible_host: 10.88.0.13, ip: 10.88.0.13}
    w1: {ansible_host: 10.88.0.21, ip: 10.88.0.21}
  children:
    kube_control_plane:
      hosts: {cp1: , cp2: , cp3: }
    kube_node:
      hosts: {w1: }
    etcd:
      hosts: {cp1: , cp2: , cp3: }
    k8s_cluster:
      children: {kube_control_plane: , kube_node: }
EOF
cat >"$I/ini/inventory.ini" <<'EOF'
[all]
cp1 ansible_host=10.88.0.11 ip=10.88.0.11
cp2 ansible_host=10.88.0.12 ip=10.88.0.12
cp3 ansible_host=10.88.0.13 ip=10.88.0.13
w1 ansible_host=10.88.0.21 ip=10.88.0.21

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

[k8s_cluster:children]
kube_control_plane
kube_node
EOF

note "plan from the YAML inventory"
P=$LAB/plan
expect_exit 0 "$KFI" cluster plan "$I/yaml/hosts.yaml" "$B" -p "$PUB" -o "$P"
expect_output '^plan .*: 4 hosts \(3 control planes, 3 etcd members, 1 workers, 3 mirrors\)'
expect_output '^first control plane cp1, API endpoint 10.88.0.11:6443$'
S=$P/shared H=$P/hosts

note "modes: directories 0700, secrets 0600"
[ -z "$(find "$P" -type d ! -perm 0700)" ] || fail "directories not 0700: $(find "$P" -type d ! -perm 0700)"
for f in "$S"/*.key "$S/bootstrap-token" "$S/certificate-key" "$S/encryption-config.yaml" \
	"$H"/*/kubeadm.yaml "$H"/cp1/pki/*.key "$H"/cp1/etcd-ssl/*-key.pem "$H"/cp1/mirror-tls/server.key \
	"$H"/cp1/encryption-config.yaml; do
	assert_eq "$(stat -c %a "$f")" 600 "mode of $f"
done
# Nothing else may be readable by others but certificates and plain texts.
while read -r f; do
	case $f in
	*.crt | *.pub | *.env | */host.yaml | */plan.yaml | */audit-policy.yaml | */discovery-hash) ;;
	*.pem) case $f in *-key.pem) fail "$f readable by others" ;; esac ;;
	*) fail "$f readable by others" ;;
	esac
done < <(find "$P" -type f -perm /044)

note "every host gets only its share: a worker holds no key"
[ -z "$(find "$H/w1" -name '*.key' -o -name '*-key.pem')" ] || fail "worker share holds keys"
assert_absent "$H/w1/pki"
assert_absent "$H/w1/etcd.env"
for h in cp1 cp2 cp3 w1; do
	cmp "$S/mirror-ca.crt" "$H/$h/mirror-ca.crt" || fail "$h: mirror CA differs"
	! has -r 'mirror-ca.key\|BEGIN.*PRIVATE' "$H/$h/mirror-ca.crt" || fail "$h: mirror CA key shipped"
done
[ -z "$(find "$H" -name 'mirror-ca.key' -o -name 'etcd-ca.key')" ] || fail "a CA key the hosts do not need is in a share"

note "certificates chain to the planned CAs with each host's names and addresses"
for n in 1 2 3; do
	h=cp$n ip=10.88.0.1$n
	for k in member admin node; do
		c=$H/$h/etcd-ssl/$k-$h.pem
		openssl verify -CAfile "$S/etcd-ca.crt" "$c" >/dev/null || fail "$c does not chain to the etcd CA"
		cmp "$S/etcd-ca.crt" "$H/$h/etcd-ssl/ca.pem" || fail "$h: etcd-ssl/ca.pem is not the planned CA"
		san=$(openssl x509 -in "$c" -noout -ext subjectAltName)
		for want in "IP Address:$ip" "DNS:$h" "IP Address:127.0.0.1" "DNS:localhost"; do
			has -F "$want" <<<"$san" || fail "$c lacks $want: $san"
		done
		for other in 1 2 3; do
			[ $other = $n ] || ! has -F "IP Address:10.88.0.1$other" <<<"$san" || fail "$c names another host"
		done
		openssl x509 -in "$c" -noout -text | has 'id-ecPublicKey' || fail "$c: not an EC key"
		! openssl x509 -in "$c" -noout -ext keyUsage | has 'Key Encipherment' || fail "$c has keyEncipherment"
		openssl x509 -in "$c" -noout -ext extendedKeyUsage | has 'TLS Web Server Authentication' || fail "$c: no serverAuth"
	done
	m=$H/$h/mirror-tls/server.crt
	openssl verify -CAfile "$S/mirror-ca.crt" "$m" >/dev/null || fail "$m does not chain to the mirror CA"
	openssl x509 -in "$m" -noout -ext subjectAltName | has -F "IP Address:$ip" || fail "$m lacks $ip"
	! openssl x509 -in "$m" -noout -ext keyUsage | has 'Key Encipherment' || fail "$m has keyEncipherment"
	assert_eq "$(grep -c 'BEGIN CERTIFICATE' "$H/$h/mirror-tls/chain.crt")" 2 "$h chain"
	openssl verify -CAfile "$S/etcd-ca.crt" "$H/$h/pki/apiserver-etcd-client.crt" >/dev/null || fail "etcd client cert"
	for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub; do
		cmp "$S/$f" "$H/$h/pki/$f" || fail "$h: pki/$f is not the planned one"
	done
	cmp "$S/etcd-ca.crt" "$H/$h/pki/etcd/ca.crt" || fail "$h: pki/etcd/ca.crt"
	cmp "$S/encryption-config.yaml" "$H/$h/encryption-config.yaml" || fail "$h: encryption config differs"
	cmp "$S/audit-policy.yaml" "$H/$h/audit-policy.yaml" || fail "$h: audit policy differs"
done
openssl x509 -in "$S/apiserver-etcd-client.crt" -noout -ext extendedKeyUsage | has 'TLS Web Client Authentication' ||
	fail "etcd client cert is not a client certificate"
for ca in ca front-proxy-ca etcd-ca mirror-ca; do
	openssl x509 -in "$S/$ca.crt" -noout -ext basicConstraints | has 'CA:TRUE' || fail "$ca is not a CA"
	openssl verify -CAfile "$S/$ca.crt" "$S/$ca.crt" >/dev/null || fail "$ca does not verify"
done
openssl rsa -in "$S/sa.key" -pubout 2>/dev/null | cmp - "$S/sa.pub" || fail "sa.pub is not sa.key's public half"

note "discovery hash as kubeadm computes it; the CA pinned everywhere"
hash=$(openssl x509 -in "$S/ca.crt" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
assert_eq "$(cat "$S/discovery-hash")" "sha256:$hash" "shared/discovery-hash"
grep -qx "  discovery_hash: sha256:$hash" "$P/plan.yaml" || fail "plan.yaml discovery hash"
fp=$(openssl x509 -in "$S/mirror-ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)
grep -qx "  ca_fingerprint_sha256: \"$fp\"" "$P/plan.yaml" || fail "plan.yaml mirror fingerprint"
token=$(cat "$S/bootstrap-token") key=$(cat "$S/certificate-key")
[[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "token format: $token"
[[ $key =~ ^[0-9a-f]{64}$ ]] || fail "certificate key format: $key"
! grep -rq unsafeSkipCAVerification "$P" || fail "a configuration skips CA verification"
for h in cp2 cp3 w1; do
	grep -qx '    - sha256:'"$hash" "$H/$h/kubeadm.yaml" || fail "$h: caCertHashes"
	grep -qx "    token: \"$token\"" "$H/$h/kubeadm.yaml" || fail "$h: token"
	grep -qx '    apiServerEndpoint: 10.88.0.11:6443' "$H/$h/kubeadm.yaml" || fail "$h: endpoint"
	grep -qx '^kind: JoinConfiguration' "$H/$h/kubeadm.yaml" || fail "$h: JoinConfiguration"
done
for n in 1 2 3; do
	diff <(sed -n '/^mirror_endpoints:/,/^files:/p' "$H/cp$n/host.yaml") - <<-EOF || fail "cp$n: mirror endpoints"
	mirror_endpoints:
	  - "10.88.0.11:5443"
	  - "10.88.0.12:5443"
	  - "10.88.0.13:5443"
	files:
	EOF
done

note "kubeadm configurations: init on cp1, control-plane joins, a worker join"
K1=$H/cp1/kubeadm.yaml
grep -qx 'kind: InitConfiguration' "$K1" || fail "cp1: InitConfiguration"
grep -qx -- "- token: \"$token\"" "$K1" || fail "cp1: planned token"
grep -qx "certificateKey: \"$key\"" "$K1" || fail "cp1: certificate key"
grep -qx '  advertiseAddress: 10.88.0.11' "$K1" || fail "cp1: advertiseAddress"
for h in cp2 cp3; do
	grep -qx "  certificateKey: \"$key\"" "$H/$h/kubeadm.yaml" || fail "$h: controlPlane.certificateKey"
	grep -qx "    advertiseAddress: 10.88.0.1${h#cp}" "$H/$h/kubeadm.yaml" || fail "$h: advertiseAddress"
done
grep -q '^controlPlane:' "$H/w1/kubeadm.yaml" && fail "the worker joins as a control plane"
grep -q 'ClusterConfiguration' "$H/w1/kubeadm.yaml" && fail "the worker's file holds a ClusterConfiguration"
grep -qx '    value: 10.88.0.21' "$H/w1/kubeadm.yaml" || fail "w1: node-ip"
for h in cp1 cp2 cp3; do
	sed -n '/^kind: ClusterConfiguration$/,/^---$/p' "$H/$h/kubeadm.yaml" | grep -vx -- --- >"$LAB/cc-$h"
	[ -s "$LAB/cc-$h" ] || fail "$h: no ClusterConfiguration"
done
cmp "$LAB/cc-cp1" "$LAB/cc-cp2" && cmp "$LAB/cc-cp1" "$LAB/cc-cp3" || fail "ClusterConfigurations differ"
C=$LAB/cc-cp1
for ep in 10.88.0.11 10.88.0.12 10.88.0.13; do
	grep -qx "    - https://$ep:2379" "$C" || fail "external etcd endpoint $ep"
done
for want in '    caFile: /etc/kubernetes/pki/etcd/ca.crt' \
	'    certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt' \
	'    keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key' \
	'  - name: encryption-provider-config' '  - name: audit-policy-file' \
	'  - name: audit-log-path' '  - name: audit-log-maxage' '  - name: audit-log-maxbackup' \
	'  - name: audit-log-maxsize' '  extraVolumes:' '    hostPath: /etc/kubernetes/kubeferry' \
	'controlPlaneEndpoint: 10.88.0.11:6443' 'kubernetesVersion: v1.33.3' '  podSubnet: 10.244.0.0/16'; do
	grep -qxF -- "$want" "$C" || fail "ClusterConfiguration lacks: $want"
done
# The stand-in wants a kubelet on PATH, as kubeadm does.
mkdir -p "$LAB/bin"
ln -s "$ROOT/tests/node/mock-kubeadm" "$LAB/bin/kubelet"
KF_MOCK_LOG=$LAB/mock.log PATH=$LAB/bin:$PATH sh "$ROOT/tests/node/mock-kubeadm" init --config "$K1" >/dev/null ||
	fail "mock-kubeadm rejects the planned init configuration"
KF_MOCK_LOG=$LAB/mock.log PATH=$LAB/bin:$PATH sh "$ROOT/tests/node/mock-kubeadm" join --config "$H/cp2/kubeadm.yaml" >/dev/null ||
	fail "mock-kubeadm rejects the planned join configuration"

note "encryption at rest: secretbox with a 32-byte key, identity last"
E=$S/encryption-config.yaml
grep -qx 'kind: EncryptionConfiguration' "$E" || fail "encryption kind"
assert_eq "$(sed -n 's/^ *secret: //p' "$E" | base64 -d | wc -c)" 32 "encryption key length"
assert_eq "$(grep -E '^      - [a-z]+:' "$E" | tail -n 1 | tr -d ' ')" "-identity:{}" "identity last"
grep -qx 'kind: Policy' "$S/audit-policy.yaml" || fail "audit policy kind"

note "the same cluster from the INI inventory"
P2=$LAB/plan-ini
expect_exit 0 "$KFI" cluster plan "$I/ini/inventory.ini" "$B" -p "$PUB" -o "$P2"
diff <(cd "$P" && find . | sort) <(cd "$P2" && find . | sort) || fail "INI plan has other files"
# Secrets differ between two plans; everything else is the same.
norm() { sed -e 's/sha256:[0-9a-f]\{64\}/sha256:H/g' -e 's/"[0-9A-F:]\{95\}"/"FP"/' \
	-e 's/"[a-z0-9]\{6\}\.[a-z0-9]\{16\}"/"TOKEN"/' -e 's/"[0-9a-f]\{64\}"/"KEY"/' "$1"; }
for f in plan.yaml hosts/cp1/host.yaml hosts/w1/host.yaml hosts/cp2/etcd.env hosts/cp1/kubeadm.yaml \
	hosts/cp3/kubeadm.yaml hosts/w1/kubeadm.yaml shared/audit-policy.yaml; do
	diff <(norm "$P/$f") <(norm "$P2/$f") || fail "$f differs between the YAML and the INI plan"
done

note "a real etcd cluster from the planned etcd.env and member certificates (127.0.0.1)"
ports=()
while [ ${#ports[@]} -lt 6 ]; do
	p=$(kf_free_port)
	[[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
cluster=
for n in 1 2 3; do
	m=$(sed -n 's/^ETCD_NAME=//p' "$H/cp$n/etcd.env")
	cluster="$cluster${cluster:+,}$m=https://127.0.0.1:${ports[$((n + 2))]}"
done
grep -qx 'ETCD_INITIAL_CLUSTER=etcd1=https://10.88.0.11:2380,etcd2=https://10.88.0.12:2380,etcd3=https://10.88.0.13:2380' \
	"$H/cp1/etcd.env" || fail "initial cluster: $(grep INITIAL_CLUSTER= "$H/cp1/etcd.env")"
for v in 'ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true' 'ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s' \
	'ETCD_SNAPSHOT_COUNT=100000' 'ETCD_CLIENT_CERT_AUTH=true' 'ETCD_PEER_CLIENT_CERT_AUTH=true'; do
	grep -qx "$v" "$H/cp2/etcd.env" || fail "etcd.env lacks $v"
done
for n in 1 2 3; do
	cp_=${ports[$((n - 1))]} pp=${ports[$((n + 2))]}
	(
		set -a
		# shellcheck disable=SC1090
		. "$H/cp$n/etcd.env"
		set +a
		# Moved into the lab: the share's files, loopback ports, a data dir.
		for v in ETCD_TRUSTED_CA_FILE ETCD_CERT_FILE ETCD_KEY_FILE ETCD_PEER_TRUSTED_CA_FILE \
			ETCD_PEER_CERT_FILE ETCD_PEER_KEY_FILE; do
			export "$v=$H/cp$n/etcd-ssl/$(basename "${!v}")"
		done
		export ETCD_DATA_DIR=$LAB/etcd-$n
		export ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:$cp_ ETCD_ADVERTISE_CLIENT_URLS=https://127.0.0.1:$cp_
		export ETCD_LISTEN_PEER_URLS=https://127.0.0.1:$pp ETCD_INITIAL_ADVERTISE_PEER_URLS=https://127.0.0.1:$pp
		export ETCD_INITIAL_CLUSTER=$cluster
		exec /usr/bin/etcd
	) >"$LAB/etcd-$n.log" 2>&1 &
	_kf_pids+=($!)
done
ctl() { ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:${ports[0]}" --cacert "$H/cp1/etcd-ssl/ca.pem" \
	--cert "$H/cp1/etcd-ssl/admin-cp1.pem" --key "$H/cp1/etcd-ssl/admin-cp1-key.pem" "$@"; }
ok=0
for _ in $(seq 1 120); do
	# A member that has not published its client URL yet is not listed:
	# wait for all three.
	if ctl endpoint health --cluster >"$LAB/health" 2>&1 &&
		[ "$(grep -c 'is healthy' "$LAB/health")" = 3 ]; then ok=1; break; fi
	sleep 0.5
done
[ $ok = 1 ] || { cat "$LAB/health" "$LAB"/etcd-*.log | tail -n 60; fail "planned etcd cluster not healthy"; }
assert_eq "$(grep -c 'is healthy' "$LAB/health")" 3 "healthy members"
assert_eq "$(ctl member list | wc -l)" 3 "etcd members"
ctl put kubeferry planned >/dev/null
assert_eq "$(ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:${ports[2]}" --cacert "$H/cp3/etcd-ssl/ca.pem" \
	--cert "$H/cp3/etcd-ssl/node-cp3.pem" --key "$H/cp3/etcd-ssl/node-cp3-key.pem" get kubeferry --print-value-only)" \
	planned "read through another member with its own certificate"
ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:${ports[0]}" --cacert "$H/cp1/etcd-ssl/ca.pem" \
	--cert "$H/cp1/pki/apiserver-etcd-client.crt" --key "$H/cp1/pki/apiserver-etcd-client.key" \
	get kubeferry --print-value-only | has -x planned || fail "the apiserver's etcd client certificate is refused"

note "re-run: every file kept"
sums() { (cd "$1" && find . -type f | sort | xargs sha256sum; find . -printf '%p %i %m\n' | sort); }
sums "$P" >"$LAB/before"
expect_exit 0 "$KFI" cluster plan "$I/yaml/hosts.yaml" "$B" -p "$PUB" -o "$P"
expect_output '^files written 0, unchanged [0-9]+$'
sums "$P" | diff "$LAB/before" - || fail "a re-run changed the plan"

note "an added worker gets its share; shared/ and the existing shares stay as they are"
sed -e 's/^    w1: .*/&\n    w2: {ip: 10.88.0.22}/' -e 's/hosts: {w1: }/hosts: {w1: , w2: }/' \
	"$I/yaml/hosts.yaml" >"$I/yaml/hosts2.yaml"
(cd "$S" && find . -type f | sort | xargs sha256sum) >"$LAB/shared-before"
(cd "$H" && find . -type f | sort | xargs sha256sum) >"$LAB/shares-before"
expect_exit 0 "$KFI" cluster plan "$I/yaml/hosts2.yaml" "$B" -p "$PUB" -o "$P"
expect_output '^plan .*: 5 hosts'
(cd "$S" && find . -type f | sort | xargs sha256sum) | diff "$LAB/shared-before" - || fail "shared/ changed"
(cd "$H" && find . -type f | sort | xargs sha256sum) | grep -v '^[0-9a-f]*  \./w2/' |
	diff "$LAB/shares-before" - || fail "an existing share changed"
grep -qx "    token: \"$token\"" "$H/w2/kubeadm.yaml" || fail "w2: planned token"
grep -qx '    value: 10.88.0.22' "$H/w2/kubeadm.yaml" || fail "w2: node-ip"
has -x '  - name: w2' "$P/plan.yaml" || fail "plan.yaml lists w2"

note "a re-run keeps the etcd members and the first control plane, or refuses and writes nothing"
sums "$P" >"$LAB/before-guard"
sed '/^    etcd:/{n;s/.*/      hosts: {cp1: , cp2: , cp3: , w1: , w2: }/}' "$I/yaml/hosts2.yaml" >"$I/yaml/more-etcd.yaml"
expect_exit 2 "$KFI" cluster plan "$I/yaml/more-etcd.yaml" "$B" -p "$PUB" -o "$P"
expect_output 'plan\.yaml: the etcd members would change \(added: w1, w2; removed: none\)'
sed '/^    kube_control_plane:/{n;s/.*/      hosts: {cp2: , cp1: , cp3: }/}' "$I/yaml/hosts2.yaml" >"$I/yaml/reorder.yaml"
expect_exit 2 "$KFI" cluster plan "$I/yaml/reorder.yaml" "$B" -p "$PUB" -o "$P"
expect_output 'the first control plane would change from cp1 to cp2'
sums "$P" | diff "$LAB/before-guard" - || fail "a refused re-run changed the plan"

note "refused inventories name the file and line and write nothing"
bad() { # FILE EXPECTED-REGEX
	local d=$LAB/refused
	rm -rf "$d"
	expect_exit 2 "$KFI" cluster plan "$1" "$B" -p "$PUB" -o "$d"
	expect_output "$2"
	assert_absent "$d"
}
mkdir -p "$I/bad"
sed -e '/^    etcd:/,/^    k8s_cluster:/s/hosts: {cp1: , cp2: , cp3: }/hosts: {cp1: , cp2: }/' \
	"$I/yaml/hosts.yaml" >"$I/bad/even.yaml"
bad "$I/bad/even.yaml" "even.yaml:[0-9]+: the etcd group has 2 members"
sed 's/^cp3 ansible_host=10.88.0.13 ip=10.88.0.13$/cp3 ansible_host=10.88.0.13 ip=10.88.0.12/' \
	"$I/ini/inventory.ini" >"$I/bad/dup.ini"
bad "$I/bad/dup.ini" "dup.ini:4: host cp3 has the same ip 10.88.0.12 as host cp2"
mkdir -p "$I/bad/jinja/group_vars"
cp "$I/ini/inventory.ini" "$I/bad/jinja/inventory.ini"
printf 'kube_pods_subnet: 10.233.64.0/18\nregistry_host: "{{ files_repo }}:5000"\n' >"$I/bad/jinja/group_vars/all.yml"
bad "$I/bad/jinja/inventory.ini" "group_vars/all.yml:2: .*needs Jinja"
sed 's/ip=10.88.0.21$/ip="{{ ansible_default_ipv4.address }}"/' "$I/ini/inventory.ini" >"$I/bad/jinja2.ini"
bad "$I/bad/jinja2.ini" "jinja2.ini:5: .*needs Jinja"

note "a bundle that does not verify writes nothing"
kf_keypair "$LAB/other"
rm -rf "$LAB/refused"
expect_exit 1 "$KFI" cluster plan "$I/yaml/hosts.yaml" "$B" -p "$LAB/other/kf.pub" -o "$LAB/refused"
assert_absent "$LAB/refused"

note "a CA key lost from shared/ stops the plan instead of minting a new CA"
mv "$S/ca.key" "$LAB/ca.key"
expect_exit 2 "$KFI" cluster plan "$I/yaml/hosts.yaml" "$B" -p "$PUB" -o "$P"
expect_output 'ca.crt without .*ca.key'
mv "$LAB/ca.key" "$S/ca.key"
note "a certificate within 90 days of its end, or naming an old address, is issued anew from the same CA"
P3=$LAB/plan-renew
cp -a "$P" "$P3"
m=$P3/hosts/cp2/etcd-ssl/member-cp2.pem
openssl req -new -key "$P3/hosts/cp2/etcd-ssl/member-cp2-key.pem" -subj /CN=etcd-member-cp2 \
	-out "$LAB/old.csr" 2>/dev/null
printf 'subjectAltName=IP:10.88.0.12,IP:127.0.0.1,IP:::1,DNS:cp2,DNS:localhost\n' >"$LAB/old.ext"
openssl x509 -req -in "$LAB/old.csr" -CA "$P3/shared/etcd-ca.crt" -CAkey "$P3/shared/etcd-ca.key" \
	-set_serial 4242 -days 60 -extfile "$LAB/old.ext" -out "$m" 2>/dev/null
cp "$m" "$LAB/old.pem"
sed 's/10\.88\.0\.13/10.88.0.33/g' "$I/yaml/hosts.yaml" >"$I/yaml/hosts3.yaml"
expect_exit 0 "$KFI" cluster plan "$I/yaml/hosts3.yaml" "$B" -p "$PUB" -o "$P3"
! cmp -s "$LAB/old.pem" "$m" || fail "a certificate 60 days from its end was kept (due within 90, as etcd renew-certs counts)"
openssl verify -CAfile "$P3/shared/etcd-ca.crt" "$m" >/dev/null || fail "renewed certificate does not chain"
openssl x509 -in "$m" -noout -checkend $((365 * 86400)) >/dev/null || fail "renewed certificate is short-lived"
san=$(openssl x509 -in "$P3/hosts/cp3/etcd-ssl/member-cp3.pem" -noout -ext subjectAltName)
has -F 'IP Address:10.88.0.33' <<<"$san" && ! has -F 'IP Address:10.88.0.13' <<<"$san" ||
	fail "cp3's certificate names its old address: $san"
cmp "$P/hosts/cp1/etcd-ssl/member-cp1.pem" "$P3/hosts/cp1/etcd-ssl/member-cp1.pem" || fail "cp1 was re-issued"
(cd "$P3/shared" && find . -type f | sort | xargs sha256sum) | diff "$LAB/shared-before" - || fail "shared/ changed"

note "stacked etcd (install.etcd: kubeadm): the etcd CA key for kubeadm, no host etcd files"
# An air-gapped stacked init needs kubeadm's etcd image in the bundle (lint
# refuses the spec otherwise): the lab registry serves a test image under
# that name.
source "$ROOT/tests/registry/lib.sh"
images_lab
skopeo copy -q --all --dest-tls-verify=false --dest-creds kfuser:kfpass \
	"oci:$LAB/layouts/pause:pause" "docker://127.0.0.1:$UP_PORT/etcd:3.5.21-0"
HOME=$LAB/home ETCD_MODE=kubeadm KF=$KF KF_TEST_IMAGES="registry.k8s.io/etcd:3.5.21-0" \
	bash "$ROOT/tests/node/make-bundle.sh" "$LAB/bk" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT"
PK=$LAB/plan-stacked
expect_exit 0 "$KFI" cluster plan "$I/yaml/hosts.yaml" "$LAB/bk/bundle.tar.zst" -p "$LAB/bk/keys/kf.pub" -o "$PK"
cmp "$PK/shared/etcd-ca.key" "$PK/hosts/cp2/pki/etcd/ca.key" || fail "stacked: etcd CA key for kubeadm"
for f in etcd.env etcd-ssl pki/apiserver-etcd-client.crt; do assert_absent "$PK/hosts/cp1/$f"; done
assert_absent "$PK/shared/apiserver-etcd-client.key"
grep -qx '  local:' "$PK/hosts/cp1/kubeadm.yaml" || fail "stacked: etcd.local"
! grep -q 'external:' "$PK/hosts/cp1/kubeadm.yaml" || fail "stacked: external etcd named"
grep -qx 'etcd_member_name: null' "$PK/hosts/cp1/host.yaml" || fail "stacked: host etcd member named"
echo "cluster plan checks passed"
