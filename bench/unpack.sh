#!/usr/bin/env bash
# Benchmark: 'kubeferry-install unpack' (single pass, full verification,
# fsync) against, on the same ~1 GB bundle of binaries and in the same run:
#   (a) zstd -dc B | tar -x                       no verification at all
#   (b) minisign -V, then tar -I zstd -x, then sha256sum -c
# Targets (issue 2): unpack <= 1.2x (a), and >= 2x faster than (b).
#
# The bundle is built once into $KF_BENCH_CACHE (default /var/tmp/kf-bench)
# from copies of /usr/lib/x86_64-linux-gnu/*.so* and /usr/bin/* (binary,
# moderately compressible, like kubelet or containerd), signed with the
# stock minisign so it is independent of kubeferry's own writer.
# Environment: KF_BUILD (build dir), KF_BENCH_BYTES (default 1000000000),
# KF_BENCH_RUNS (hyperfine runs, default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KFI=$KF_BUILD/kubeferry-install
CACHE=${KF_BENCH_CACHE:-/var/tmp/kf-bench}
BYTES=${KF_BENCH_BYTES:-1000000000}
RUNS=${KF_BENCH_RUNS:-3}

for t in zstd tar minisign sha256sum hyperfine python3 jq; do
	command -v "$t" >/dev/null || { echo "bench/unpack: $t is missing" >&2; exit 77; }
done
[ -x "$KFI" ] || { echo "bench/unpack: build $KFI first (make)" >&2; exit 2; }

B=$CACHE/bundle-$BYTES.tar.zst
SRC=$CACHE/src-$BYTES

build_bundle() {
	echo "bench/unpack: building the ~$BYTES byte bundle once in $CACHE"
	rm -rf "$SRC" "$B" "$B.minisig" "$CACHE/sums-$BYTES"
	mkdir -p "$SRC/kubeferry" "$CACHE"
	[ -f "$CACHE/k.key" ] || minisign -G -W -p "$CACHE/k.pub" -s "$CACHE/k.key" >/dev/null 2>&1
	# Copies of system binaries, in rounds, until the target size; the
	# lock (format of docs/bundle-format.md, appendix) and a sha256sum list for (b).
	python3 - "$SRC" "$BYTES" "$CACHE/sums-$BYTES" <<'EOF'
import glob, hashlib, os, shutil, sys
src, target, sums = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cands = sorted(p for p in glob.glob("/usr/lib/x86_64-linux-gnu/*.so*") + glob.glob("/usr/bin/*")
               if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK)
               and os.path.getsize(p) > 0)
total, entries, rnd = 0, [], 0
while total < target:
    for p in cands:
        if total >= target:
            break
        rel = "files/bench/%d/%s/%s" % (rnd, os.path.basename(os.path.dirname(p)), os.path.basename(p))
        dst = os.path.join(src, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(p, dst)
        h = hashlib.sha256()
        with open(dst, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        size = os.path.getsize(dst)
        mode = "0755" if os.access(p, os.X_OK) else "0644"
        os.chmod(dst, int(mode, 8))
        entries.append((rel, size, mode, h.hexdigest()))
        total += size
    rnd += 1
entries.sort()
with open(os.path.join(src, "kubeferry/bundle.yaml"), "w") as f:
    f.write('format: 1\nname: "bench"\nversion: "1.0.0"\nkubernetesVersion: "1.33.3"\n'
            'architectures: ["amd64"]\ncreated: "2023-11-14T22:13:20Z"\n'
            'builder: "bench/unpack.sh"\ncomponents: []\nimages: []\ninstall:\n'
            '  etcd: "host"\n  cni: "flannel"\n  podSubnet: "10.244.0.0/16"\n'
            '  serviceSubnet: "10.96.0.0/12"\n  mirror: null\nentries:\n')
    for rel, size, mode, sha in entries:
        f.write('  - path: "%s"\n    size: %d\n    mode: "%s"\n    sha256: "%s"\n' % (rel, size, mode, sha))
with open(sums, "w") as f:
    for rel, size, mode, sha in entries:
        f.write("%s  %s\n" % (sha, rel))
with open(os.path.join(src, "list"), "w") as f:
    f.write("kubeferry/bundle.yaml\nkubeferry/bundle.yaml.minisig\n")
    for e in entries:
        f.write(e[0] + "\n")
print("bench/unpack: %d files, %d bytes" % (len(entries), total))
EOF
	minisign -S -s "$CACHE/k.key" -m "$SRC/kubeferry/bundle.yaml" -t "bench" >/dev/null
	tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 \
		--no-recursion -T "$SRC/list" -cf - | zstd -q -3 -T0 -o "$B.tmp"
	mv "$B.tmp" "$B"
	minisign -S -s "$CACHE/k.key" -m "$B" -t "bench bundle" >/dev/null
	rm -rf "$SRC"  # the bundle and the sums are all the runs need
}
[ -f "$B" ] && [ -f "$B.minisig" ] && [ -f "$CACHE/sums-$BYTES" ] || build_bundle

W=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$W"' EXIT
PUB=$CACHE/k.pub
echo "bench/unpack: bundle $B ($(stat -c %s "$B") bytes compressed)"

# Each command starts from an absent destination (prepare, not timed).
KF_CMD="$KFI unpack $B -p $PUB -d $W/kf -q"
A_CMD="mkdir $W/a && zstd -dc $B | tar -x -C $W/a"
B_CMD="minisign -Vq -p $PUB -m $B && mkdir $W/b && tar -I zstd -x -C $W/b -f $B && cd $W/b && sha256sum -c --quiet $CACHE/sums-$BYTES"

hyperfine --style basic --runs "$RUNS" --export-json "$W/result.json" \
	--prepare "rm -rf $W/kf $W/a $W/b; sync" \
	-n kubeferry-install "$KF_CMD" -n zstd-tar "$A_CMD" -n minisign-tar-sha256sum "$B_CMD"

read -r kf a b < <(jq -r '[.results[].mean] | @tsv' "$W/result.json")
python3 - "$kf" "$a" "$b" <<'EOF'
import sys
kf, a, b = map(float, sys.argv[1:4])
print("bench/unpack: kubeferry-install unpack / (zstd -dc | tar -x)   = %.2fx (target <= 1.20x)" % (kf / a))
print("bench/unpack: (minisign; tar; sha256sum -c) / kubeferry-install = %.2fx (target >= 2.00x)" % (b / kf))
EOF
echo "bench/unpack: reproduce with: make BUILD=${KF_BUILD#$ROOT/} && KF_BUILD=${KF_BUILD#$ROOT/} bash bench/unpack.sh"
