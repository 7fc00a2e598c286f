#!/usr/bin/env bash
# apply of a delta bundle under --root: by default its base is the bundle
# apply unpacked before (/var/lib/kubeferry/bundles/<base>-<version>, its
# lock beside it); the new bundle directory is byte-identical to a full
# unpack of the same release. A base entry changed on the node is a
# verification failure naming it, and the new bundle is not committed.
source "$(dirname "$0")/../lib.sh"
need diff gzip tar /usr/bin/containerd /usr/sbin/runc /usr/lib/cni/bridge /usr/bin/etcd

KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b"
B1=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
note "a patch release: only kubeadm changes"
mkdir -p "$LAB/b/src/v2"
{ cat "$LAB/b/src/kubeadm"; echo "# 1.33.4"; } >"$LAB/b/src/v2/kubeadm"
python3 - "$LAB/b" <<'PY'
import hashlib, re, sys
d = sys.argv[1]
s = open(d + "/spec.yaml").read()
new = hashlib.sha256(open(d + "/src/v2/kubeadm", "rb").read()).hexdigest()
s = s.replace('version: "1.33.3"}', 'version: "1.33.4"}', 1)
s, n = re.subn(r'(url: )src/kubeadm(\n      sha256: \{amd64: )[0-9a-f]{64}', r'\1src/v2/kubeadm\g<2>' + new, s)
assert n == 1
open(d + "/spec2.yaml", "w").write(s)
PY
B2=$LAB/b/full2.tar.zst D=$LAB/b/delta.tar.zst
expect_exit 0 "$KF" build "$LAB/b/spec2.yaml" -s "$LAB/b/keys/kf.key" -o "$B2" --level 1 -q
expect_exit 0 "$KF" build "$LAB/b/spec2.yaml" -s "$LAB/b/keys/kf.key" -o "$D" --level 1 --base "$B1" -q
expect_exit 0 "$KFI" unpack "$B2" -p "$PUB" -d "$LAB/full2" -q

apply_root() { # ROOT BUNDLE
	"$KFI" apply "$2" -p "$PUB" --role worker --root "$1" --node-ip 10.0.0.6
}
R=$LAB/root
BD=$R/var/lib/kubeferry/bundles
mkdir -p "$R/etc" "$R/var/lib"
expect_exit 0 apply_root "$R" "$B1"
expect_exit 0 apply_root "$R" "$D"
expect_output "^note +delta of k8s-test 1\.33\.3: entries it leaves out come from $BD/k8s-test-1\.33\.3$"
expect_output "^changed +bundle k8s-test-1\.33\.4 unpacked into $BD/k8s-test-1\.33\.4$"
diff -r "$LAB/full2" "$BD/k8s-test-1.33.4" || fail "the delta's tree differs from the full bundle's"
assert_file "$BD/k8s-test-1.33.4.bundle.yaml"
expect_exit 0 apply_root "$R" "$D"
expect_output "^ok +bundle k8s-test-1\.33\.4 already unpacked"

note "a base entry changed on the node: refused by name, nothing committed"
R2=$LAB/root2
mkdir -p "$R2/etc" "$R2/var/lib"
expect_exit 0 apply_root "$R2" "$B1"
printf 'X' >>"$R2/var/lib/kubeferry/bundles/k8s-test-1.33.3/files/local/src/runc.amd64"
expect_exit 1 apply_root "$R2" "$D"
expect_output "files/local/src/runc.amd64: the base.s copy .*k8s-test-1\.33\.3/files/local/src/runc.amd64 is not a regular file of [0-9]+ bytes"
assert_absent "$R2/var/lib/kubeferry/bundles/k8s-test-1.33.4"
assert_absent "$R2/var/lib/kubeferry/bundles/k8s-test-1.33.4.bundle.yaml"
assert_no_match "$R2/var/lib/kubeferry/bundles" '*.kf-staging*'

note "no base on the node and none given"
R3=$LAB/root3
mkdir -p "$R3/etc" "$R3/var/lib"
expect_exit 2 apply_root "$R3" "$D"
expect_output "is a delta of k8s-test 1\.33\.3, which is not unpacked on this node .*and no bundle of that name is applied"
note "--base BUNDLE on a fresh node"
expect_exit 0 "$KFI" apply "$D" -p "$PUB" --role worker --root "$R3" --node-ip 10.0.0.6 --base "$B1"
diff -r "$LAB/full2" "$R3/var/lib/kubeferry/bundles/k8s-test-1.33.4" || fail "delta on --base BUNDLE differs"

note "the named base gone, another applied bundle of the same name serves (entries checked)"
R4=$LAB/root4
mkdir -p "$R4/etc" "$R4/var/lib"
expect_exit 0 apply_root "$R4" "$B1"
mv "$R4/var/lib/kubeferry/bundles/k8s-test-1.33.3" "$R4/var/lib/kubeferry/bundles/k8s-test-1.33.2"
mv "$R4/var/lib/kubeferry/bundles/k8s-test-1.33.3.bundle.yaml" "$R4/var/lib/kubeferry/bundles/k8s-test-1.33.2.bundle.yaml"
sed -i 's|^bundle_dir: .*|bundle_dir: /var/lib/kubeferry/bundles/k8s-test-1.33.2|' "$R4/var/lib/kubeferry/state/applied"
expect_exit 0 apply_root "$R4" "$D"
expect_output "^note +the base k8s-test 1\.33\.3 is not unpacked here: using the applied bundle k8s-test-1\.33\.3$"
diff -r "$LAB/full2" "$R4/var/lib/kubeferry/bundles/k8s-test-1.33.4" || fail "delta on the applied bundle differs"
echo "delta apply checks passed"
