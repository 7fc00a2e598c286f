#!/usr/bin/env bash
# Delta bundles: from two specs that share most artifacts, the delta holds
# only what the base lacks (much smaller than the full bundle) while its
# signed lock lists the whole tree and names the base by its lock's
# sha256; inspect says so. Unpacked on top of its base (a bundle file, or
# an unpacked directory with its lock beside it) it gives a tree
# byte-identical to the full bundle's; a changed or missing base entry is
# a verification failure naming it, with nothing committed.
source "$(dirname "$0")/../lib.sh"
need zstd tar diff

kf_keypair "$LAB/keys"
PUB=$LAB/keys/kf.pub KEY=$LAB/keys/kf.key
S=$LAB/spec
mkdir -p "$S/src/v1" "$S/src/v2" "$S/src/a" "$S/src/b" "$LAB/bun"
for f in containerd kubelet-common cni; do head -c 1500000 /dev/urandom >"$S/src/$f"; done
head -c 300000 /dev/urandom >"$S/src/v1/kubeadm"
head -c 300000 /dev/urandom >"$S/src/v2/kubeadm"
head -c 200000 /dev/urandom >"$S/src/a/crictl"
cp "$S/src/a/crictl" "$S/src/b/crictl"   # same content, another path
sha() { sha256sum <"$1" | cut -d' ' -f1; }
spec() { # VERSION KUBEADM CRICTL
	cat <<-YAML
	apiVersion: kubeferry.io/v1
	kind: Bundle
	metadata: {name: deltatest, version: "$1"}
	spec:
	  kubernetesVersion: "1.33.3"
	  architectures: [amd64]
	  components:
	YAML
	local n p
	for n in containerd kubelet-common cni "$2" "$3"; do
		p=src/$n
		printf '    - name: %s\n      version: "1"\n      url: %s\n      sha256: {amd64: %s}\n' \
			"$(basename "$n")" "$p" "$(sha "$S/$p")"
	done
}
spec 1.0.0 v1/kubeadm a/crictl >"$S/v1.yaml"
spec 1.0.1 v2/kubeadm b/crictl >"$S/v2.yaml"
B1=$LAB/bun/b1.tar.zst B2=$LAB/bun/b2.tar.zst D=$LAB/bun/d.tar.zst
expect_exit 0 "$KF" build "$S/v1.yaml" -s "$KEY" -o "$B1" -q
expect_exit 0 "$KF" build "$S/v2.yaml" -s "$KEY" -o "$B2" -q
# Every bundle also carries the playbooks (ansible/): count the full
# bundle's entries and bytes from its lock rather than assume them.
zstd -dc "$B2" | tar -xO kubeferry/bundle.yaml >"$LAB/flock"
N=$(grep -c '^  - path: ' "$LAB/flock")
TOTAL=$(awk '$1 == "size:" {t += $2} END {print t}' "$LAB/flock")
[ "$N" -ge 5 ] && [ "$TOTAL" -ge 5000000 ] || fail "full bundle: $N entries, $TOTAL bytes"
expect_exit 0 "$KF" build "$S/v2.yaml" -s "$KEY" -o "$D" --base "$B1"
expect_output "delta of deltatest 1.0.0 \([0-9a-f]{64}\): 1 of $N entries"

note "the delta carries only the new kubeadm; its lock lists every entry and names the base"
zstd -dc "$D" | tar -t >"$LAB/list"
assert_eq "$(tail -n +3 "$LAB/list")" "files/local/src/v2/kubeadm" "delta entries"
zstd -dc "$D" | tar -xO kubeferry/bundle.yaml >"$LAB/dlock"
assert_eq "$(grep -c '^  - path: ' "$LAB/dlock")" "$N" "entries in the delta's lock"
diff <(grep -A3 '^  - path: ' "$LAB/dlock") <(grep -A3 '^  - path: ' "$LAB/flock") ||
	fail "the delta's lock lists other entries than the full bundle's"
base_sha=$(zstd -dc "$B1" | tar -xO kubeferry/bundle.yaml | sha256sum | cut -d' ' -f1)
has -F "  lock: \"$base_sha\"" "$LAB/dlock" || fail "base not named by its lock's sha256"
! has '^base:' "$LAB/flock" || fail "a full bundle's lock names a base"
dsize=$(stat -c %s "$D") fsize=$(stat -c %s "$B2")
[ $((dsize * 100 / fsize)) -lt 15 ] || fail "delta is $dsize bytes, the full bundle $fsize"
echo "delta $dsize bytes, full $fsize bytes"

note "inspect names the base and the share carried"
expect_exit 0 "$KF" inspect "$D"
expect_output "^delta of deltatest 1\.0\.0 \($base_sha\)$"
pct=$(awk -v t="$TOTAL" 'BEGIN {printf "%.1f", 300000 * 100 / t}')
expect_output "^carries: +1 of $N entries, 300000 of $TOTAL bytes \(${pct/./\\.}% of the full size\)$"
expect_exit 0 "$KF" inspect "$B2"
! has 'delta of' "$LAB/out" || fail "inspect calls a full bundle a delta"
expect_exit 0 "$KF" verify "$D" -p "$PUB"
expect_output "^delta of: +deltatest 1\.0\.0 \(lock sha256 $base_sha\)$"
expect_output "^OK: lock signature and every entry it carries verified; the entries it leaves out are checked"
expect_exit 0 "$KFI" verify "$D" -p "$PUB" --base "$B1"
expect_output "^OK: lock signature, every entry it carries and every entry taken from the base verified$"

note "unpacked on top of the base bundle: byte-identical to the full unpack"
expect_exit 0 "$KFI" unpack "$B2" -p "$PUB" -d "$LAB/full" -q
expect_exit 0 "$KFI" unpack "$D" -p "$PUB" -d "$LAB/fromfile" --base "$B1"
expect_output "delta of deltatest 1\.0\.0 .*came from $B1"
diff -r "$LAB/full" "$LAB/fromfile" || fail "delta on the base bundle differs from the full unpack"
assert_no_match "$LAB/bun" '.kf-base-*'
assert_no_match "$LAB" '.kf-base-*'

note "on top of an unpacked base directory (lock beside it, as apply leaves it)"
expect_exit 0 "$KFI" unpack "$B1" -p "$PUB" -d "$LAB/base" -q
cp "$LAB/base" -r "$LAB/base.keep"
zstd -dc "$B1" | tar -xO kubeferry/bundle.yaml >"$LAB/base.bundle.yaml"
expect_exit 0 "$KFI" unpack "$D" -p "$PUB" -d "$LAB/fromdir" --base "$LAB/base"
diff -r "$LAB/full" "$LAB/fromdir" || fail "delta on the base directory differs from the full unpack"
diff -r "$LAB/base" "$LAB/base.keep" || fail "the base directory changed"

note "without its base a delta does not unpack"
expect_exit 2 "$KFI" unpack "$D" -p "$PUB" -d "$LAB/nobase"
expect_output "is a delta of deltatest 1\.0\.0 \(lock sha256 $base_sha\): name its base"
assert_absent "$LAB/nobase"

note "a changed base entry: verification failure naming it, nothing committed"
cp -r "$LAB/base" "$LAB/tampered"
cp "$LAB/base.bundle.yaml" "$LAB/tampered.bundle.yaml"
printf 'X' | dd of="$LAB/tampered/files/local/src/cni" bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_exit 1 "$KFI" unpack "$D" -p "$PUB" -d "$LAB/bad1" --base "$LAB/tampered"
expect_output "delta on the base $LAB/tampered: $D: files/local/src/cni: sha256 mismatch: lock says [0-9a-f]{64}, content is [0-9a-f]{64}"
assert_absent "$LAB/bad1"
assert_no_match "$LAB" 'bad1.kf-staging*'

note "a missing base entry (the moved crictl without the base's lock to find it)"
expect_exit 1 "$KFI" unpack "$D" -p "$PUB" -d "$LAB/bad2" --base "$LAB/base.keep"
expect_output "files/local/src/b/crictl is not in the delta and not in the base $LAB/base.keep"
assert_absent "$LAB/bad2"
assert_no_match "$LAB" 'bad2.kf-staging*'
expect_exit 1 "$KFI" verify "$D" -p "$PUB" --base "$LAB/tampered"

note "a delta is built only against a full bundle signed by the same key"
kf_keypair "$LAB/other"
expect_exit 1 "$KF" build "$S/v2.yaml" -s "$LAB/other/kf.key" -o "$LAB/bun/x.tar.zst" --base "$B1"
expect_output "a delta's base must be signed by the same key"
expect_exit 2 "$KF" build "$S/v2.yaml" -s "$KEY" -o "$LAB/bun/x.tar.zst" --base "$D"
expect_output "is itself a delta"
(cd "$LAB/bun" && "$KF" build "$S/v2.yaml" -s "$KEY" --base "$B1" -q) || fail "build with the default name"
assert_file "$LAB/bun/deltatest-1.0.1-linux-amd64.delta-from-1.0.0.tar.zst"
echo "delta checks passed"
