#!/usr/bin/env bash
# Rollback (issue 10, point 8): apply refuses a validly signed bundle whose
# Kubernetes version is older than the applied one, or that has the same
# name and version but an older creation time, unless --allow-downgrade:
# exit 1, a message naming both versions, nothing changed. A kubelet of a
# newer minor than the running control plane is refused either way.
source "$(dirname "$0")/../lib.sh"
need gzip tar /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge

# Two bundles of different Kubernetes versions, signed by the same key,
# and a rebuild of the newer one made later (another creation time).
KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/new"
mkdir -p "$LAB/old" "$LAB/later"
cp -r "$LAB/new/keys" "$LAB/old/"
cp -r "$LAB/new/keys" "$LAB/later/"
KF=$KF KF_TEST_KUBE_VERSION=1.32.7 bash "$ROOT/tests/node/make-bundle.sh" "$LAB/old"
KF=$KF SOURCE_DATE_EPOCH=1750000000 bash "$ROOT/tests/node/make-bundle.sh" "$LAB/later"
PUB=$LAB/new/keys/kf.pub
listing() {
	(cd "$1" && find . -printf '%p %y %m %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum)
}
R=$LAB/root
mkdir -p "$R/etc" "$R/var/lib"
echo w1 >"$R/etc/hostname"
APPLY=("$KFI" apply -p "$PUB" --role worker --root "$R" --node-ip 10.0.0.6)

note "1.33.3 applied; 1.32.7 is refused and changes nothing"
expect_exit 0 "${APPLY[@]}" "$LAB/new/bundle.tar.zst"
listing "$R" >"$LAB/before"
expect_exit 1 "${APPLY[@]}" "$LAB/old/bundle.tar.zst"
expect_output 'Kubernetes 1\.32\.7 is older than the applied 1\.33\.3 \(bundle k8s-test-1\.33\.3\)'
expect_output 'allow-downgrade'
listing "$R" >"$LAB/after"
cmp "$LAB/before" "$LAB/after" || fail "a refused downgrade changed the root"
expect_exit 1 "${APPLY[@]}" "$LAB/old/bundle.tar.zst" --dry-run

note "the same name and version built earlier is refused too"
expect_exit 0 "${APPLY[@]}" "$LAB/later/bundle.tar.zst" --dry-run
R2=$LAB/root2
mkdir -p "$R2/etc" "$R2/var/lib"
echo w2 >"$R2/etc/hostname"
expect_exit 0 "$KFI" apply -p "$PUB" --role worker --root "$R2" --node-ip 10.0.0.7 "$LAB/later/bundle.tar.zst"
listing "$R2" >"$LAB/before2"
expect_exit 1 "$KFI" apply -p "$PUB" --role worker --root "$R2" --node-ip 10.0.0.7 "$LAB/new/bundle.tar.zst"
expect_output 'bundle k8s-test-1\.33\.3 built 2023-11-14T22:13:20Z is older than the applied build of 2025-06-15T15:06:40Z'
listing "$R2" >"$LAB/after2"
cmp "$LAB/before2" "$LAB/after2" || fail "a refused rebuild changed the root"

note "--allow-downgrade applies the older bundle and records it"
expect_exit 0 "${APPLY[@]}" "$LAB/old/bundle.tar.zst" --allow-downgrade
grep -qx 'kubernetes: 1.32.7' "$R/var/lib/kubeferry/state/applied" || fail "downgrade not recorded"
expect_exit 0 "${APPLY[@]}" "$LAB/new/bundle.tar.zst"

note "a kubelet newer than the running control plane is refused, even with --allow-downgrade"
R3=$LAB/root3
mkdir -p "$R3/etc/kubernetes/manifests" "$R3/var/lib"
echo cp1 >"$R3/etc/hostname"
printf 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.32.7\n' \
	>"$R3/etc/kubernetes/manifests/kube-apiserver.yaml"
listing "$R3" >"$LAB/before3"
expect_exit 1 "$KFI" apply -p "$PUB" --role worker --root "$R3" --node-ip 10.0.0.8 "$LAB/new/bundle.tar.zst" --allow-downgrade
expect_output 'kubelet 1\.33\.3 would be a newer minor than the running control plane \(v1\.32\.7\)'
listing "$R3" >"$LAB/after3"
cmp "$LAB/before3" "$LAB/after3" || fail "a refused kubelet changed the root"
# The same minor is fine.
expect_exit 0 "$KFI" apply -p "$PUB" --role worker --root "$R3" --node-ip 10.0.0.8 "$LAB/old/bundle.tar.zst"
echo "downgrade checks passed"
