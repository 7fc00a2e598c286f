#!/usr/bin/env bash
# apply --root against a Rocky-shaped root: the files written (content), the
# commands planned, changed=0 on a re-run, --dry-run changes nothing, reset
# restores the root exactly, the worker role, a bundle that fails
# verification leaves the root untouched.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar sha256sum cmp /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub

# rocky_root DIR: os-release of Rocky 9.4, SELinux enforcing, a swap line in
# fstab, firewalld installed.
rocky_root() {
	local r=$1
	mkdir -p "$r/etc/selinux" "$r/etc/firewalld" "$r/usr/lib/systemd/system" "$r/var/lib"
	cat >"$r/etc/os-release" <<-'EOF'
	NAME="Rocky Linux"
	VERSION="9.4 (Blue Onyx)"
	ID="rocky"
	ID_LIKE="rhel centos fedora"
	VERSION_ID="9.4"
	PLATFORM_ID="platform:el9"
	EOF
	printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' >"$r/etc/selinux/config"
	printf 'UUID=0a1b / xfs defaults 0 0\n/dev/mapper/rl-swap none swap defaults 0 0\n' >"$r/etc/fstab"
	printf '[Unit]\nDescription=firewalld\n' >"$r/usr/lib/systemd/system/firewalld.service"
	echo node1 >"$r/etc/hostname"
}
# listing DIR: every path with its type, mode and content digest.
listing() {
	(cd "$1" && find . -printf '%p %y %m %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum)
}
R=$LAB/root
rocky_root "$R"
cp -a "$R" "$LAB/root.orig"
APPLY=("$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R" --node-ip 10.0.0.5)

note "dry run changes nothing"
listing "$R" >"$LAB/before"
expect_exit 0 "${APPLY[@]}" --dry-run
expect_output '^changed +file /etc/containerd/config.toml \(dry run\)'
expect_output 'ok=[0-9]+ changed=[1-9][0-9]* failed=0'
listing "$R" >"$LAB/after"
cmp "$LAB/before" "$LAB/after" || fail "--dry-run changed the root"

note "first apply"
expect_exit 0 "${APPLY[@]}"
cp "$LAB/out" "$LAB/apply1"
expect_output '^changed +bundle k8s-test-1.33.3 unpacked'
expect_output 'ok=[0-9]+ changed=[1-9][0-9]* failed=0$'
# Commands are planned, not run, under --root.
for c in 'setenforce 0' 'swapoff -a' 'modprobe overlay' 'modprobe br_netfilter' \
	'sysctl --system' 'firewall-offline-cmd --zone=public --add-port=6443/tcp' \
	'firewall-offline-cmd --zone=public --add-port=2379-2380/tcp' 'firewall-offline-cmd --zone=public --add-port=8472/udp' \
	'firewall-offline-cmd --zone=trusted --add-source=10.244.0.0/16' \
	'firewall-offline-cmd --zone=trusted --add-source=10.96.0.0/12' \
	'systemctl daemon-reload' 'systemctl restart containerd.service' 'systemctl restart etcd.service'; do
	expect_output "^plan +run $c\$"
done
expect_output '^plan +check https://127.0.0.1:2379/health'
! grep -q -- '--add-port=30000-32767/tcp' "$LAB/out" || fail "worker ports opened on a control plane"

note "host files"
grep -qx 'SELINUX=permissive' "$R/etc/selinux/config" || fail "SELinux not permissive"
grep -qx 'SELINUXTYPE=targeted' "$R/etc/selinux/config" || fail "SELINUXTYPE lost"
grep -q '^# swap disabled by kubeferry-install: /dev/mapper/rl-swap none swap' "$R/etc/fstab" || fail "swap line not commented"
grep -qx 'UUID=0a1b / xfs defaults 0 0' "$R/etc/fstab" || fail "root line changed"
assert_eq "$(readlink "$R/etc/systemd/system/swap.target")" /dev/null "swap.target mask"
# Rocky 9: nf_conntrack as on every EL release, no nf_tables (76-apply-el9-el10).
assert_eq "$(grep -v '^#' "$R/etc/modules-load.d/kubeferry.conf" | tr '\n' ' ')" "overlay br_netfilter nf_conntrack " modules
for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
	grep -qx "$s = 1" "$R/etc/sysctl.d/99-kubeferry.conf" || fail "sysctl $s"
done

note "runtime files"
for b in containerd containerd-shim-runc-v2 ctr; do
	cmp "$R/usr/local/bin/$b" "/usr/bin/$b" || fail "$b differs"
	assert_eq "$(stat -c %a "$R/usr/local/bin/$b")" 755 "$b mode"
done
cmp "$R/usr/local/sbin/runc" /usr/sbin/runc || fail "runc differs"
assert_eq "$(stat -c %a "$R/usr/local/sbin/runc")" 755 "runc mode"
for p in bridge host-local loopback portmap; do cmp "$R/opt/cni/bin/$p" "/usr/lib/cni/$p" || fail "cni $p"; done
# The CNI archive's LICENSE and README.md are not plugins (point 12).
assert_eq "$(ls "$R/opt/cni/bin" | tr '\n' ' ')" "bridge host-local loopback portmap " "/opt/cni/bin holds only the plugins"
assert_file "$R/usr/local/bin/crictl"
cfg=$R/etc/containerd/config.toml
grep -qx 'version = 2' "$cfg" || fail "containerd 1.6 needs config version 2"
grep -q '^  \[plugins."io.containerd.grpc.v1.cri".registry\]$' "$cfg" || fail "registry table"
grep -q '^    config_path = "/etc/containerd/certs.d"$' "$cfg" || fail "config_path"
grep -q '^        SystemdCgroup = true$' "$cfg" || fail "SystemdCgroup"
grep -q '^  sandbox_image = "registry.k8s.io/pause:' "$cfg" || fail "sandbox image"
grep -qx 'runtime-endpoint: unix:///run/containerd/containerd.sock' "$R/etc/crictl.yaml" || fail crictl.yaml
grep -qx 'ExecStart=/usr/local/bin/containerd' "$R/etc/systemd/system/containerd.service" || fail unit
for u in containerd kubelet etcd; do
	assert_eq "$(readlink "$R/etc/systemd/system/multi-user.target.wants/$u.service")" \
		"/etc/systemd/system/$u.service" "$u enabled"
done

note "kubernetes files"
for b in kubeadm kubelet kubectl; do cmp "$R/usr/local/bin/$b" "$ROOT/tests/node/mock-kubeadm" || fail "$b"; done
"$R/usr/local/bin/helm" | has 'helm stand-in' || fail helm
grep -q '^ExecStart=/usr/local/bin/kubelet \$KUBELET_KUBECONFIG_ARGS' \
	"$R/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" || fail "kubeadm drop-in"

note "etcd files and PKI"
cmp "$R/usr/local/bin/etcd" /usr/bin/etcd || fail etcd
cmp "$R/usr/local/bin/etcdctl" /usr/bin/etcdctl || fail etcdctl
assert_file "$R/usr/local/bin/etcdutl"
assert_absent "$R/usr/local/bin/README.md"
P=$R/etc/ssl/etcd/ssl
for k in ca-key member-node1-key admin-node1-key node-node1-key; do
	assert_eq "$(stat -c %a "$P/$k.pem")" 600 "$k mode"
done
for c in member admin node; do
	openssl verify -CAfile "$P/ca.pem" "$P/$c-node1.pem" >/dev/null || fail "$c cert does not chain to ca.pem"
	openssl x509 -in "$P/$c-node1.pem" -noout -subject | has "CN *= *etcd-$c-node1" || fail "$c subject"
	san=$(openssl x509 -in "$P/$c-node1.pem" -noout -ext subjectAltName)
	for n in 'DNS:localhost' 'DNS:node1' 'IP Address:127.0.0.1' 'IP Address:10.0.0.5'; do
		grep -q "$n" <<<"$san" || fail "$c SAN lacks $n"
	done
	openssl x509 -in "$P/$c-node1.pem" -noout -ext extendedKeyUsage | has 'TLS Web Client Authentication' || fail "$c EKU"
	# EC leaves sign only: keyEncipherment is for RSA keys (issue 10, point 12).
	ku=$(openssl x509 -in "$P/$c-node1.pem" -noout -ext keyUsage)
	grep -q 'Digital Signature' <<<"$ku" || fail "$c key usage lacks digitalSignature"
	! grep -q 'Key Encipherment' <<<"$ku" || fail "$c EC certificate has keyEncipherment"
	# key and certificate belong together
	assert_eq "$(openssl x509 -in "$P/$c-node1.pem" -noout -pubkey | sha256sum)" \
		"$(openssl pkey -in "$P/$c-node1-key.pem" -pubout | sha256sum)" "$c key pair"
done
openssl x509 -in "$P/ca.pem" -noout -subject | has 'CN *= *etcd-ca' || fail "CA subject"
grep -qx 'ETCD_NAME=node1' "$R/etc/etcd.env" || fail etcd.env
grep -qx 'ETCD_LISTEN_CLIENT_URLS=https://10.0.0.5:2379,https://127.0.0.1:2379' "$R/etc/etcd.env" || fail etcd.env
grep -qx 'ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-node1.pem' "$R/etc/etcd.env" || fail etcd.env
grep -qx 'Type=notify' "$R/etc/systemd/system/etcd.service" || fail etcd.service
grep -qx 'EnvironmentFile=/etc/etcd.env' "$R/etc/systemd/system/etcd.service" || fail etcd.service

note "second apply changes nothing"
cert_before=$(sha256sum "$P/ca.pem")
expect_exit 0 "${APPLY[@]}"
expect_output '^ok +bundle k8s-test-1.33.3 already unpacked'
expect_output ' changed=0 failed=0$'
! grep -q '^changed' "$LAB/out" || fail "second apply changed something"
assert_eq "$(sha256sum "$P/ca.pem")" "$cert_before" "CA regenerated"

note "a binary changed behind apply's back is detected and put back"
printf 'tampered' >>"$R/usr/local/bin/etcd"
touch "$R/usr/local/bin/ctr"
expect_exit 0 "${APPLY[@]}"
expect_output '^changed +file /usr/local/bin/etcd$'
expect_output '^ok +file /usr/local/bin/ctr$'
expect_output ' changed=1 failed=0$'
cmp "$R/usr/local/bin/etcd" /usr/bin/etcd || fail "etcd not restored"

if [ "$(id -u)" = 0 ]; then
	note "a file with the right bytes but another owner is replaced"
	chown 1000:1000 "$R/usr/local/sbin/runc"
	expect_exit 0 "${APPLY[@]}"
	expect_output '^changed +file /usr/local/sbin/runc$'
	assert_eq "$(stat -c %u:%g "$R/usr/local/sbin/runc")" 0:0 "runc owner"
fi

note "a file of the unpacked bundle changed on disk is refused, not installed"
BD=$R/var/lib/kubeferry/bundles/k8s-test-1.33.3
runc_src=$(ls "$BD"/files/*/src/runc.amd64)
cp "$runc_src" "$LAB/runc.good"
printf 'tampered' >>"$runc_src"
rm "$R/usr/local/sbin/runc"
expect_exit 1 "${APPLY[@]}"
expect_output "runc.amd64: sha256 [0-9a-f]{64}, but the bundle's lock says"
assert_absent "$R/usr/local/sbin/runc"
cp "$LAB/runc.good" "$runc_src"
etcd_src=$(ls "$BD"/files/*/src/etcd-*.tar.gz)
cp "$etcd_src" "$LAB/etcd.good"
printf 'tampered' >>"$etcd_src"
rm "$R/usr/local/bin/etcd"
expect_exit 1 "${APPLY[@]}"
expect_output "etcd-v[0-9.]+-linux-amd64.tar.gz: sha256 [0-9a-f]{64}, but the bundle's lock says"
assert_absent "$R/usr/local/bin/etcd"
cp "$LAB/etcd.good" "$etcd_src"
expect_exit 0 "${APPLY[@]}"
expect_output ' failed=0$'
cmp "$R/usr/local/bin/etcd" /usr/bin/etcd || fail "etcd not reinstalled"

note "status"
expect_exit 0 "$KFI" status --root "$R"
expect_output 'bundle: k8s-test-1.33.3'
expect_output 'containerd +1\.6\.20'
expect_output 'etcd\.service +installed'
expect_output 'member-node1\.pem +expires .* \(36[0-9][0-9] days\)'

note "reset restores the root, keeps the bundle"
expect_exit 0 "$KFI" reset --root "$R"
expect_output '^restored file /etc/selinux/config'
assert_file "$R/var/lib/kubeferry/bundles/k8s-test-1.33.3.bundle.yaml"
[ -d "$R/var/lib/kubeferry/bundles/k8s-test-1.33.3/files" ] || fail "bundle removed by reset"
assert_absent "$R/var/lib/kubeferry/state"
rm -rf "$R/var/lib/kubeferry"
diff -r --no-dereference "$LAB/root.orig" "$R" || fail "reset left differences"

note "an apply killed halfway re-runs to completion"
R2=$LAB/root2
rocky_root "$R2"
cp -a "$R2" "$LAB/root2.orig"
rc=0
KUBEFERRY_TEST_CRASH_AFTER=12 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R2" \
	--node-ip 10.0.0.5 >"$LAB/killed" 2>&1 || rc=$?
assert_eq "$rc" 137 "apply was not killed"
assert_file "$R2/var/lib/kubeferry/state/journal"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R2" --node-ip 10.0.0.5
expect_output ' failed=0$'
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R2" --node-ip 10.0.0.5
expect_output ' changed=0 failed=0$'
expect_exit 0 "$KFI" reset --root "$R2"
rm -rf "$R2/var/lib/kubeferry"
diff -r --no-dereference "$LAB/root2.orig" "$R2" || fail "reset after a killed apply left differences"

note "worker role: worker ports, no etcd"
R3=$LAB/root3
rocky_root "$R3"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R3" --node-ip 10.0.0.6
expect_output '^plan +run firewall-offline-cmd --zone=public --add-port=30000-32767/tcp$'
! grep -q -- '--add-port=6443/tcp' "$LAB/out" || fail "control-plane port opened on a worker"
assert_absent "$R3/etc/etcd.env"
assert_absent "$R3/usr/local/bin/etcd"
assert_file "$R3/usr/local/bin/kubelet"

note "a bundle that fails verification leaves the root untouched"
R4=$LAB/root4
rocky_root "$R4"
listing "$R4" >"$LAB/before4"
cp "$B" "$LAB/bad.tar.zst"
size=$(stat -c %s "$LAB/bad.tar.zst")
printf '\xff\xff\xff\xff' | dd of="$LAB/bad.tar.zst" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
rc=0
"$KFI" apply "$LAB/bad.tar.zst" -p "$PUB" --role control-plane --root "$R4" >"$LAB/out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a tampered bundle was applied"
[ "$rc" -eq 1 ] || [ "$rc" -eq 3 ] || { cat "$LAB/out"; fail "tampered bundle: exit $rc"; }
expect_output 'bad\.tar\.zst'
listing "$R4" >"$LAB/after4"
cmp "$LAB/before4" "$LAB/after4" || { diff "$LAB/before4" "$LAB/after4"; fail "a failed bundle changed the root"; }
note "wrong key"
"$KF" keygen -W -s "$LAB/other.key" -p "$LAB/other.pub" >/dev/null
expect_exit 1 "$KFI" apply "$B" -p "$LAB/other.pub" --role control-plane --root "$R4"
listing "$R4" >"$LAB/after4"
cmp "$LAB/before4" "$LAB/after4" || fail "a wrongly signed bundle changed the root"
note "symbolic links in the root never lead reads or writes out of it"
O=$LAB/outside
mkdir -p "$O/var" "$O/containerd"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$O/secret-key.pem" 2>/dev/null
openssl req -x509 -key "$O/secret-key.pem" -subj /CN=host-ca -days 10 -out "$O/host-ca.pem" 2>/dev/null
printf 'SELINUX=enforcing\n' >"$O/selinux-config"
printf 'host config\n' >"$O/containerd/config.toml"
cp -a "$O" "$LAB/outside.orig"
R5=$LAB/root5
rocky_root "$R5"
mkdir -p "$R5/etc/ssl/etcd/ssl"
ln -s "$O/secret-key.pem" "$R5/etc/ssl/etcd/ssl/ca-key.pem"
ln -s "$O/host-ca.pem" "$R5/etc/ssl/etcd/ssl/ca.pem"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R5" --node-ip 10.0.0.5
[ -f "$R5/etc/ssl/etcd/ssl/ca-key.pem" ] && [ ! -L "$R5/etc/ssl/etcd/ssl/ca-key.pem" ] || fail "CA key link kept"
! cmp -s "$R5/etc/ssl/etcd/ssl/ca-key.pem" "$O/secret-key.pem" || fail "a key outside the root was copied in"
! openssl verify -CAfile "$O/host-ca.pem" "$R5/etc/ssl/etcd/ssl/member-node1.pem" >/dev/null 2>&1 ||
	fail "etcd certificates issued by a CA outside the root"
expect_exit 0 "$KFI" reset --root "$R5"
assert_eq "$(readlink "$R5/etc/ssl/etcd/ssl/ca-key.pem")" "$O/secret-key.pem" "reset restores the link"
R6=$LAB/root6
rocky_root "$R6"
rm -rf "$R6/var" && ln -s "$O/var" "$R6/var"
expect_exit 3 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R6" --node-ip 10.0.0.6
expect_output "$R6/var is a symbolic link; refusing to follow it"
expect_exit 3 "$KFI" reset --root "$R6"
R7=$LAB/root7
rocky_root "$R7"
ln -sf "$O/selinux-config" "$R7/etc/selinux/config"
expect_exit 3 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R7" --node-ip 10.0.0.6
expect_output "$R7/etc/selinux/config is not a regular file"
R8=$LAB/root8
rocky_root "$R8"
ln -s "$O/containerd" "$R8/etc/containerd"
expect_exit 3 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R8" --node-ip 10.0.0.6
expect_output "$R8/etc/containerd is a symbolic link"
rm "$R8/etc/containerd"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R8" --node-ip 10.0.0.6
mv "$R8/etc/containerd" "$LAB/r8-containerd"
ln -s "$O/containerd" "$R8/etc/containerd"
expect_exit 3 "$KFI" reset --root "$R8"
expect_output "$R8/etc/containerd is a symbolic link"
diff -r "$LAB/outside.orig" "$O" || fail "something outside the root changed"
note "host name and address are checked before they reach file names and SANs"
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R4" --hostname 'n1,IP:10.9.9.9'
expect_output "unusable host name 'n1,IP:10.9.9.9'"
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R4" --node-ip '10.0.0.5,DNS:evil'
expect_output "node-ip 10.0.0.5,DNS:evil: not an IPv4 address"
note "host names are RFC 1123 (point 17): refused before the first change"
l63=$(printf 'a%.0s' $(seq 63)) l64=$(printf 'a%.0s' $(seq 64))
long=$(printf "$l63.%.0s" 1 2 3)$(printf 'b%.0s' $(seq 62)) # 254 characters
for h in Node1 localhost localhost.localdomain -n1 n1- n1..x n1. "$l64" "$long" 'n_1' 'n 1'; do
	expect_exit 2 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R4" --hostname "$h"
	expect_output "unusable host name '$h' \\(RFC 1123"
done
# The longest names RFC 1123 allows still pass this check (dry run).
ok253=$(printf "$l63.%.0s" 1 2 3)$(printf 'b%.0s' $(seq 61))
for h in "$l63" "$ok253" n-1.example 1node; do
	expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R4" --hostname "$h" --dry-run
done
listing "$R4" >"$LAB/after4"
cmp "$LAB/before4" "$LAB/after4" || fail "a refused host name changed the root"
note "usage errors"
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --root "$R4"
expect_output 'role'
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R4" --mirror 127.0.0.1:1
expect_output 'fingerprint'
echo "all apply --root checks passed"
