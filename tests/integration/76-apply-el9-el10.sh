#!/usr/bin/env bash
# EL9- and EL10-shaped roots (os-release, the kernel release in
# ROOT/proc/sys/kernel/osrelease, firewalld installed) under --root: what
# changes between them (issue 10, point 2). EL10 has no legacy iptables
# kernel modules: kube-proxy in nftables mode, nf_tables loaded; every EL
# release loads nf_conntrack; EL9 keeps iptables; the spec's
# install.kubeProxyMode overrides the choice. firewalld (point 1): ports in
# the zone the root's configuration puts the interface in, pod and
# service subnets as trusted sources.
source "$(dirname "$0")/../lib.sh"
need openssl gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub

# el_root DIR MAJOR.MINOR KERNEL: a Rocky root of that release.
el_root() {
	local r=$1 v=$2 k=$3
	mkdir -p "$r/etc/selinux" "$r/etc/firewalld" "$r/usr/lib/systemd/system" "$r/var/lib" \
		"$r/proc/sys/kernel"
	printf 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="%s"\nPLATFORM_ID="platform:el%s"\n' \
		"$v" "${v%%.*}" >"$r/etc/os-release"
	echo "$k" >"$r/proc/sys/kernel/osrelease"
	printf 'SELINUX=enforcing\n' >"$r/etc/selinux/config"
	printf '[Unit]\nDescription=firewalld\n' >"$r/usr/lib/systemd/system/firewalld.service"
	echo cp1 >"$r/etc/hostname"
}
mods() { grep -v '^#' "$1/etc/modules-load.d/kubeferry.conf" | tr '\n' ' '; }
C=/etc/kubernetes/kubeadm-config.yaml

note "EL9 (Rocky 9.4, kernel 5.14): iptables mode, nf_conntrack, no nf_tables"
R9=$LAB/el9
el_root "$R9" 9.4 5.14.0-427.13.1.el9_4.x86_64
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R9" --node-ip 10.0.0.5
expect_output '^node +rocky 9\.4 \(EL9\), kernel 5\.14\.0-427\.13\.1\.el9_4\.x86_64: kube-proxy mode iptables$'
assert_eq "$(mods "$R9")" "overlay br_netfilter nf_conntrack " "EL9 modules"
expect_output '^plan +run modprobe nf_conntrack$'
! grep -q 'modprobe nf_tables' "$LAB/out" || fail "nf_tables loaded on EL9"
grep -qx 'kube_proxy_mode: iptables' "$R9/var/lib/kubeferry/state/applied" || fail "EL9 state"
expect_exit 0 "$KFI" cluster init --root "$R9"
grep -qx 'mode: iptables' "$R9$C" || fail "EL9 kube-proxy mode"

note "firewalld: the interface's zone from the root's zone files, subnets trusted"
mkdir -p "$R9/etc/firewalld/zones"
printf 'DefaultZone=public\n' >"$R9/etc/firewalld/firewalld.conf"
printf '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <short>Internal</short>\n  <interface name="eth0"/>\n</zone>\n' \
	>"$R9/etc/firewalld/zones/internal.xml"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R9" --node-ip 10.0.0.5
for p in 6443/tcp 2379-2380/tcp 10250/tcp 10257/tcp 10259/tcp 8472/udp; do
	expect_output "^plan +run firewall-offline-cmd --zone=internal --add-port=$p\$"
done
expect_output '^plan +run firewall-offline-cmd --zone=trusted --add-source=10\.244\.0\.0/16$'
expect_output '^plan +run firewall-offline-cmd --zone=trusted --add-source=10\.96\.0\.0/12$'
! grep -q -- '--zone=public' "$LAB/out" || fail "ports opened in the default zone, not the interface's"
rm "$R9/etc/firewalld/zones/internal.xml"
printf 'DefaultZone=work\n' >"$R9/etc/firewalld/firewalld.conf"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R9" --node-ip 10.0.0.5
expect_output '^plan +run firewall-offline-cmd --zone=work --add-port=30000-32767/tcp$'
expect_output '^plan +run firewall-offline-cmd --zone=trusted --add-source=10\.244\.0\.0/16$'

note "EL10 (Rocky 10.0, kernel 6.12): nftables mode, nf_conntrack and nf_tables"
R10=$LAB/el10
el_root "$R10" 10.0 6.12.0-55.9.1.el10_0.x86_64
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R10" --node-ip 10.0.0.5
expect_output '^node +rocky 10\.0 \(EL10\), kernel 6\.12\.0-55\.9\.1\.el10_0\.x86_64: kube-proxy mode nftables$'
assert_eq "$(mods "$R10")" "overlay br_netfilter nf_conntrack nf_tables " "EL10 modules"
expect_output '^plan +run modprobe nf_conntrack$'
expect_output '^plan +run modprobe nf_tables$'
expect_exit 0 "$KFI" status --root "$R10"
expect_output '^  kube_proxy_mode: nftables$'
expect_exit 0 "$KFI" cluster init --root "$R10"
grep -qx 'mode: nftables' "$R10$C" || fail "EL10 kube-proxy mode: $(grep '^mode:' "$R10$C")"
KF_MOCK_LOG=$LAB/mock.log PATH=$R10/usr/local/bin:$PATH "$R10/usr/local/bin/kubeadm" init --config "$R10$C" >/dev/null ||
	fail "the stand-in kubeadm rejects the EL10 configuration"

note "the spec's install.kubeProxyMode overrides the choice on EL10"
KF=$KF KF_INSTALL_EXTRA=", kubeProxyMode: iptables" bash "$ROOT/tests/node/make-bundle.sh" "$LAB/bi"
tar -I zstd -xOf "$LAB/bi/bundle.tar.zst" kubeferry/bundle.yaml | has '^  kubeProxyMode: "\?iptables"\?$' ||
	fail "kubeProxyMode not carried into the lock"
R10i=$LAB/el10-iptables
el_root "$R10i" 10.0 6.12.0-55.9.1.el10_0.x86_64
expect_exit 0 "$KFI" apply "$LAB/bi/bundle.tar.zst" -p "$LAB/bi/keys/kf.pub" --role control-plane \
	--root "$R10i" --node-ip 10.0.0.5
expect_output '\(EL10\), kernel 6\.12\.0-55\.9\.1\.el10_0\.x86_64: kube-proxy mode iptables$'
# The kernel has nothing but nf_tables either way (iptables-nft).
assert_eq "$(mods "$R10i")" "overlay br_netfilter nf_conntrack nf_tables " "EL10 modules with iptables mode"
expect_exit 0 "$KFI" cluster init --root "$R10i"
grep -qx 'mode: iptables' "$R10i$C" || fail "override not honoured"
note "a bad kubeProxyMode is a spec error"
KF=$KF KF_SPEC_ONLY=1 KF_INSTALL_EXTRA=", kubeProxyMode: ipvs" bash "$ROOT/tests/node/make-bundle.sh" "$LAB/bad"
expect_exit 2 "$KF" lint "$LAB/bad/spec.yaml"
expect_output 'install\.kubeProxyMode must be "iptables" or "nftables", not "ipvs"'
echo "EL9/EL10 checks passed"
