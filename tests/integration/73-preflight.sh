#!/usr/bin/env bash
# preflight BUNDLE --root: the table of checks, with the file-based ones
# (os-release, hostname, fstab swap, host tools, the kernel's modules.dep)
# read from the root. Host tools by Kubernetes release (issue 10, point 4):
# 1.33 requires mount and losetup, 1.32 ip, iptables, mount and nsenter;
# conntrack, socat, ethtool, tc and ebtables only warn; the fix names RPMs.
source "$(dirname "$0")/../lib.sh"
need gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst
R=$LAB/root
mkdir -p "$R/etc" "$R/usr/sbin" "$R/usr/bin"
printf 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.4"\n' >"$R/etc/os-release"
printf '/dev/mapper/rl-swap none swap defaults 0 0\n' >"$R/etc/fstab"
echo worker-1 >"$R/etc/hostname"
for t in conntrack socat mount losetup; do printf '#!/bin/sh\n' >"$R/usr/sbin/$t"; chmod 755 "$R/usr/sbin/$t"; done

note "a prepared Rocky 9.4 root passes (warnings allowed)"
expect_exit 0 "$KFI" preflight "$B" -p "$LAB/b/keys/kf.pub" --role worker --root "$R"
expect_output '^os +pass +rocky 9\.4$'
expect_output '^arch +pass +node amd64, bundle amd64$'
expect_output '^hostname +pass +worker-1$'
expect_output '^swap +warn +swap listed in /etc/fstab$'
expect_output '^host tools +pass +mount losetup$'
expect_output '^optional tools +warn +ethtool tc ebtables$'
expect_output 'fix: dnf install ethtool iproute-tc iptables-nft$'
expect_output '^ports +(pass|fail) '
expect_output 'fail=0$'

note "Rocky 10, AlmaLinux 9, Debian 12, Ubuntu 24.04 are supported; Fedora and Rocky 8 are not"
for osr in 'ID="rocky"\nVERSION_ID="10.0"' 'ID="almalinux"\nVERSION_ID="9.6"' \
	'ID=debian\nVERSION_ID="12"' 'ID=ubuntu\nVERSION_ID="24.04"'; do
	printf "$osr\n" >"$R/etc/os-release"
	expect_exit 0 "$KFI" preflight "$B" --role worker --root "$R"
	expect_output '^os +pass '
done
for osr in 'ID=fedora\nVERSION_ID=40' 'ID="rocky"\nVERSION_ID="8.10"'; do
	printf "$osr\n" >"$R/etc/os-release"
	expect_exit 1 "$KFI" preflight "$B" --role worker --root "$R"
	expect_output '^os +fail '
	expect_output 'fix: supported: Rocky'
done
printf 'ID="rocky"\nVERSION_ID="9.4"\n' >"$R/etc/os-release"

note "missing tools and a bad hostname fail, with the fix"
rm "$R/usr/sbin/conntrack" "$R/usr/sbin/losetup"
echo localhost >"$R/etc/hostname"
expect_exit 1 "$KFI" preflight "$B" --role worker --root "$R"
expect_output '^host tools +fail +losetup$'
expect_output 'fix: dnf install util-linux$'
expect_output '^optional tools +warn +conntrack ethtool tc ebtables$'
expect_output 'fix: dnf install conntrack-tools ethtool iproute-tc iptables-nft$'
expect_output '^hostname +fail +localhost$'
echo worker-1 >"$R/etc/hostname"

note "Kubernetes 1.32 requires ip, iptables, mount and nsenter instead"
KF=$KF KF_TEST_KUBE_VERSION=1.32.7 bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b132"
expect_exit 1 "$KFI" preflight "$LAB/b132/bundle.tar.zst" --role worker --root "$R"
expect_output '^host tools +fail +ip iptables nsenter$'
expect_output 'fix: dnf install iproute iptables-nft util-linux$'
for t in ip iptables nsenter losetup; do printf '#!/bin/sh\n' >"$R/usr/sbin/$t"; chmod 755 "$R/usr/sbin/$t"; done
expect_exit 0 "$KFI" preflight "$LAB/b132/bundle.tar.zst" --role worker --root "$R"
expect_output '^host tools +pass +ip iptables mount nsenter$'

note "kernel modules from the root's kernel release (ROOT/proc/sys/kernel/osrelease); EL10 needs nf_tables"
printf 'ID="rocky"\nVERSION_ID="10.0"\n' >"$R/etc/os-release"
k=6.12.0-55.9.1.el10_0.x86_64
mkdir -p "$R/proc/sys/kernel" "$R/lib/modules/$k"
echo "$k" >"$R/proc/sys/kernel/osrelease"
printf 'kernel/fs/overlayfs/overlay.ko.xz:\nkernel/net/bridge/br_netfilter.ko.xz:\nkernel/net/netfilter/nf_conntrack.ko.xz:\n' \
	>"$R/lib/modules/$k/modules.dep"
expect_exit 0 "$KFI" preflight "$B" --role worker --root "$R"
expect_output '^kernel modules +warn +nf_tables$'
echo 'kernel/net/netfilter/nf_tables.ko.xz:' >>"$R/lib/modules/$k/modules.dep"
expect_exit 0 "$KFI" preflight "$B" --role worker --root "$R"
expect_output '^kernel modules +pass +overlay br_netfilter nf_conntrack nf_tables$'
printf 'ID="rocky"\nVERSION_ID="9.4"\n' >"$R/etc/os-release"

note "a lock signed by another key is refused when a key is given"
"$KF" keygen -W -s "$LAB/o.key" -p "$LAB/o.pub" >/dev/null
expect_exit 1 "$KFI" preflight "$B" -p "$LAB/o.pub" --root "$R"
expect_exit 2 "$KFI" preflight "$B" --role master
echo "preflight checks passed"
