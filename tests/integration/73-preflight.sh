#!/usr/bin/env bash
# preflight BUNDLE --root: the table of checks, with the file-based ones
# (os-release, hostname, fstab swap, host tools) read from the root.
source "$(dirname "$0")/../lib.sh"
need gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B=$LAB/b/bundle.tar.zst
R=$LAB/root
mkdir -p "$R/etc" "$R/usr/sbin" "$R/usr/bin"
printf 'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.4"\n' >"$R/etc/os-release"
printf '/dev/mapper/rl-swap none swap defaults 0 0\n' >"$R/etc/fstab"
echo worker-1 >"$R/etc/hostname"
for t in conntrack socat mount modprobe nft; do printf '#!/bin/sh\n' >"$R/usr/sbin/$t"; chmod 755 "$R/usr/sbin/$t"; done

note "a prepared Rocky 9.4 root passes (warnings allowed)"
expect_exit 0 "$KFI" preflight "$B" -p "$LAB/b/keys/kf.pub" --role worker --root "$R"
expect_output '^os +pass +rocky 9\.4$'
expect_output '^arch +pass +node amd64, bundle amd64$'
expect_output '^hostname +pass +worker-1$'
expect_output '^swap +warn +swap listed in /etc/fstab$'
expect_output '^host tools +pass '
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
rm "$R/usr/sbin/conntrack" "$R/usr/sbin/nft"
echo localhost >"$R/etc/hostname"
expect_exit 1 "$KFI" preflight "$B" --role worker --root "$R"
expect_output '^host tools +fail +conntrack iptables\|nft$'
expect_output 'fix: dnf install conntrack-tools'
expect_output '^hostname +fail +localhost$'

note "a lock signed by another key is refused when a key is given"
"$KF" keygen -W -s "$LAB/o.key" -p "$LAB/o.pub" >/dev/null
expect_exit 1 "$KFI" preflight "$B" -p "$LAB/o.pub" --root "$R"
expect_exit 2 "$KFI" preflight "$B" --role master
echo "preflight checks passed"
