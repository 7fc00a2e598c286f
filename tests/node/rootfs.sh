#!/usr/bin/env bash
# rootfs.sh [--ssh]: print the path of a cached Debian 12 (bookworm) root
# file system for systemd-nspawn nodes, creating it with debootstrap the
# first time (about a minute). With --ssh, the root also has openssh-server
# and python3 (the multi-node lab: sshd and Ansible's interpreter), built
# once from the plain root (about 15 s); it carries no ssh host keys, each
# lab node gets its own. Cached in /var/cache/kubeferry-test/ between runs;
# the archive URL comes from this machine's apt sources, so no host name is
# written here. Concurrent callers wait on a lock.
set -euo pipefail
CACHE=${KF_NODE_CACHE:-/var/cache/kubeferry-test}
ROOTFS=$CACHE/bookworm-node
SSHROOT=$CACHE/bookworm-ssh
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ ! -x "$ROOTFS/lib/systemd/systemd" ]; then
	url=
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		url=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' "$f")
		[ -n "$url" ] && break
	done
	if [ -z "$url" ] && [ -f /etc/apt/sources.list ]; then
		url=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
	fi
	[ -n "$url" ] || { echo "rootfs.sh: no bookworm archive in the apt sources" >&2; exit 77; }
	tmp=$CACHE/bookworm-node.tmp
	rm -rf "$tmp"
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates,kmod,procps,iproute2 \
		bookworm "$tmp" "$url" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
	mv "$tmp" "$ROOTFS"
fi
if [ "${1:-}" != --ssh ]; then
	echo "$ROOTFS"
	exit 0
fi
if [ ! -x "$SSHROOT/usr/sbin/sshd" ]; then
	tmp=$SSHROOT.tmp
	rm -rf "$tmp"
	cp -a "$ROOTFS" "$tmp"
	# No service may start inside the chroot (it would run on this host).
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/usr/sbin/policy-rc.d"
	{ chroot "$tmp" apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -q --no-install-recommends \
			openssh-server python3 iputils-ping; } >"$CACHE/ssh-root.log" 2>&1 ||
		{ tail -n 20 "$CACHE/ssh-root.log" >&2; rm -rf "$tmp"; exit 1; }
	chroot "$tmp" apt-get clean
	rm -f "$tmp/usr/sbin/policy-rc.d" "$tmp"/etc/ssh/ssh_host_*
	rm -rf "$tmp"/var/lib/apt/lists/*
	mv "$tmp" "$SSHROOT"
fi
echo "$SSHROOT"
