#!/usr/bin/env bash
# make-bundle.sh OUT: a signed test bundle OUT/bundle.tar.zst (key OUT/keys/kf.pub)
# whose artifacts are packed the way upstream publishes them, from Debian's
# real binaries where Debian has them (containerd, runc, CNI plugins, etcd)
# and from stand-ins where it has none (kubeadm/kubelet/kubectl: mock-kubeadm;
# crictl and helm: one-line scripts).
#   ETCD_MODE=kubeadm  writes install.etcd: kubeadm instead of host (the spec
#                  then needs registry.k8s.io/etcd:3.5.21-0 in KF_TEST_IMAGES).
#   KF_TEST_IMAGES="REF..."  adds spec.images (pulled by kubeferry build:
#                  pass --rewrite/--cacert/--mirror as further arguments).
#   KF_UPSTREAM_WWW=DIR  lays the artifacts out in DIR/<host>/<path> as
#                  the upstream hosts publish them (dl.k8s.io, github.com,
#                  get.helm.sh) and writes the upstream https URLs into the
#                  spec: serve DIR over TLS and pass --rewrite per host.
#   KF_TEST_PACKAGES=FILE  appends FILE (a "  packages:" block) to the spec.
#   KF_SPEC_ONLY=1 stops after writing OUT/spec.yaml (the caller builds).
#   KF_INSTALL_EXTRA=", key: value"  more spec.install settings.
#   KF_TEST_KUBE_VERSION=X.Y.Z  Kubernetes (and bundle) version (1.33.3); the
#                  kubeadm/kubelet/kubectl stand-ins report it.
#   KF_TEST_CONTAINERD_LABEL=X.Y.Z  the containerd version the spec names
#                  (default 1.6.20, what Debian's binary is): the upgrade
#                  tests name one Kubernetes 1.33 supports, for the same binary.
#   KF, SOURCE_DATE_EPOCH as in tests/lib.sh.
set -euo pipefail
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
src=$out/src
mkdir -p "$src/stage" "$out/keys"
kv=${KF_TEST_KUBE_VERSION:-1.33.3} cv=${KF_TEST_CONTAINERD_LABEL:-1.6.20} rv=1.1.5 ev=3.4.23 nv=1.1.1 crv=1.33.0 hv=3.18.4
arch=amd64

# Upstream layouts (as the release archives ship them): fixed owner and mtime so the
# archives, hence the bundle, are reproducible.
tgz() { # OUT DIR PATHS...
	local o=$1 d=$2; shift 2
	tar -C "$d" --owner=0 --group=0 --numeric-owner --mtime=@1700000000 --sort=name \
		-cf - "$@" | gzip -n -1 >"$o"
}
s=$src/stage
mkdir -p "$s/containerd/bin" "$s/etcd/etcd-v$ev-linux-$arch" "$s/cni" "$s/crictl" "$s/helm/linux-$arch"
cp /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr "$s/containerd/bin/"
tgz "$src/containerd-$cv-linux-$arch.tar.gz" "$s/containerd" bin
cp /usr/bin/etcd /usr/bin/etcdctl "$s/etcd/etcd-v$ev-linux-$arch/"
# etcdutl stand-in (not packaged in Debian 12): what kubeferry asks of it,
# `snapshot status`, is etcdctl's own command in 3.4.
printf '#!/bin/sh\n# etcdutl stand-in (not packaged in Debian 12): etcd 3.4 has these in etcdctl\nETCDCTL_API=3 exec "$(dirname "$0")/etcdctl" "$@"\n' >"$s/etcd/etcd-v$ev-linux-$arch/etcdutl"
printf 'etcd test archive\n' >"$s/etcd/etcd-v$ev-linux-$arch/README.md"
chmod 0755 "$s/etcd/etcd-v$ev-linux-$arch/etcdutl"
tgz "$src/etcd-v$ev-linux-$arch.tar.gz" "$s/etcd" "etcd-v$ev-linux-$arch"
for p in bridge host-local loopback portmap; do cp "/usr/lib/cni/$p" "$s/cni/"; done
# As upstream publishes it: the plugins and their LICENSE and README.md.
printf 'Apache License 2.0 (test copy)\n' >"$s/cni/LICENSE"
printf '# CNI plugins (test copy)\n' >"$s/cni/README.md"
chmod 0644 "$s/cni/LICENSE" "$s/cni/README.md"
tgz "$src/cni-plugins-linux-$arch-v$nv.tgz" "$s/cni" ./LICENSE ./README.md ./bridge ./host-local ./loopback ./portmap
printf '#!/bin/sh\necho "crictl stand-in"\n' >"$s/crictl/crictl"
chmod 0755 "$s/crictl/crictl"
tgz "$src/crictl-v$crv-linux-$arch.tar.gz" "$s/crictl" crictl
printf '#!/bin/sh\necho "helm stand-in"\n' >"$s/helm/linux-$arch/helm"
chmod 0755 "$s/helm/linux-$arch/helm"
tgz "$src/helm-v$hv-linux-$arch.tar.gz" "$s/helm" "linux-$arch"
cp /usr/sbin/runc "$src/runc.$arch"
# The stand-in, as the bundle's version of each program.
for b in kubeadm kubelet kubectl; do
	sed "s/^MOCK_VERSION=.*/MOCK_VERSION=$kv/" "$here/mock-kubeadm" >"$src/$b"
	chmod 0755 "$src/$b"
done
rm -rf "$s"

sum() { sha256sum "$src/$1" | cut -d' ' -f1; }
comp() { # name version file upstream-url
	local url=src/$3
	if [ -n "${KF_UPSTREAM_WWW:-}" ]; then
		url=$4
		mkdir -p "$(dirname "$KF_UPSTREAM_WWW/${4#https://}")"
		cp "$src/$3" "$KF_UPSTREAM_WWW/${4#https://}"
	fi
	printf '    - name: %s\n      version: "%s"\n      url: %s\n      sha256: {%s: %s}\n' \
		"$1" "$2" "$url" "$arch" "$(sum "$3")"
}
gh=https://github.com
{
	printf 'apiVersion: kubeferry.io/v1\nkind: Bundle\n'
	printf 'metadata: {name: k8s-test, version: "%s"}\n' "$kv"
	printf 'spec:\n  kubernetesVersion: "%s"\n  architectures: [%s]\n' "$kv" "$arch"
	printf '  install: {etcd: %s, podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12%s}\n' \
		"${ETCD_MODE:-host}" "${KF_INSTALL_EXTRA:-}"
	printf '  components:\n'
	comp containerd "$cv" "containerd-$cv-linux-$arch.tar.gz" \
		"$gh/containerd/containerd/releases/download/v$cv/containerd-$cv-linux-$arch.tar.gz"
	comp runc "$rv" "runc.$arch" "$gh/opencontainers/runc/releases/download/v$rv/runc.$arch"
	comp cni-plugins "$nv" "cni-plugins-linux-$arch-v$nv.tgz" \
		"$gh/containernetworking/plugins/releases/download/v$nv/cni-plugins-linux-$arch-v$nv.tgz"
	comp crictl "$crv" "crictl-v$crv-linux-$arch.tar.gz" \
		"$gh/kubernetes-sigs/cri-tools/releases/download/v$crv/crictl-v$crv-linux-$arch.tar.gz"
	comp etcd "$ev" "etcd-v$ev-linux-$arch.tar.gz" \
		"$gh/etcd-io/etcd/releases/download/v$ev/etcd-v$ev-linux-$arch.tar.gz"
	comp helm "$hv" "helm-v$hv-linux-$arch.tar.gz" "https://get.helm.sh/helm-v$hv-linux-$arch.tar.gz"
	for b in kubeadm kubelet kubectl; do
		comp "$b" "$kv" "$b" "https://dl.k8s.io/release/v$kv/bin/linux/$arch/$b"
	done
	# A spec.packages block (tests/rpm/lab.sh rpm_packages) from this file.
	[ -z "${KF_TEST_PACKAGES:-}" ] || cat "$KF_TEST_PACKAGES"
	if [ -n "${KF_TEST_IMAGES:-}" ]; then
		printf '  images:\n'
		for i in $KF_TEST_IMAGES; do printf '    - ref: %s\n' "$i"; done
	fi
} >"$out/spec.yaml"
[ -z "${KF_SPEC_ONLY:-}" ] || exit 0
[ -f "$out/keys/kf.key" ] || "$KF" keygen -W -s "$out/keys/kf.key" -p "$out/keys/kf.pub" >/dev/null
"$KF" build "$out/spec.yaml" -s "$out/keys/kf.key" -o "$out/bundle.tar.zst" --level 1 "$@" >/dev/null 2>"$out/build.log" ||
	{ cat "$out/build.log" >&2; exit 1; }
