#!/usr/bin/env bash
# rootfs.sh: print the path of a cached Debian 12 (bookworm) root file
# system for systemd-nspawn nodes, creating it with debootstrap the first
# time (about a minute). Cached in /var/cache/kubeferry-test/ between runs;
# the archive URL comes from this machine's apt sources, so no host name is
# written here. Concurrent callers wait on a lock.
set -euo pipefail
CACHE=${KF_NODE_CACHE:-/var/cache/kubeferry-test}
ROOTFS=$CACHE/bookworm-node
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
echo "$ROOTFS"
