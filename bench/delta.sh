#!/usr/bin/env bash
# Benchmark: a delta bundle for a Kubernetes patch release (issue 12).
#
# Two specs shaped like 1.33.3 and 1.33.4 that differ only where a patch
# release differs: kubeadm, kubelet and kubectl (Go binaries, stood in by
# slices of this machine's own binaries: compressible the way they are),
# and the top layers of four control-plane images (kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy: gzip layers, stood
# in by incompressible bytes). Everything else is shared, as in the shipped
# manifests/k8s-1.33.yaml (host etcd, flannel): containerd, runc, CNI
# plugins, crictl, etcd, helm archives, the images' base layers, pause,
# coredns, node-local DNS, the DNS autoscaler, nginx (Kubespray's API
# load balancer), flannel. Image layers are carried as plain files
# here (their entries are compared by sha256 exactly as images/blobs are),
# so no registry is needed. Sizes are those of the upstream 1.33 amd64
# artifacts times KF_BENCH_SCALE (default 0.25).
#
# Reports, measured in this run:
#   - the delta's file size as a share of the full bundle's (aim < 40%), and
#     the share of the full tree's bytes it carries;
#   - the time of `unpack DELTA --base DIR` against `unpack FULL` (hyperfine).
# Environment: KF_BUILD, KF_BENCH_CACHE (default /var/tmp/kf-bench-delta),
# KF_BENCH_SCALE, KF_BENCH_RUNS (default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry
KFI=$KF_BUILD/kubeferry-install
CACHE=${KF_BENCH_CACHE:-/var/tmp/kf-bench-delta}
SCALE=${KF_BENCH_SCALE:-0.25}
RUNS=${KF_BENCH_RUNS:-3}
export SOURCE_DATE_EPOCH=1700000000

for t in hyperfine python3 jq zstd tar; do
	command -v "$t" >/dev/null || { echo "bench/delta: $t is missing" >&2; exit 77; }
done
[ -x "$KF" ] && [ -x "$KFI" ] || { echo "bench/delta: build first (make)" >&2; exit 2; }

S=$CACHE/spec2-$SCALE
mkdir -p "$CACHE"
if [ ! -f "$S/done" ]; then
	echo "bench/delta: writing the artifacts once in $S"
	rm -rf "$S"
	mkdir -p "$S"
	python3 - "$S" "$SCALE" <<'EOF'
import glob, hashlib, os, random, sys
out, scale = sys.argv[1], float(sys.argv[2])
MB = 1 << 20
# A pool of this machine's binaries: the stand-in for Go binaries.
pool = bytearray()
for p in sorted(glob.glob("/usr/bin/*") + glob.glob("/usr/lib/x86_64-linux-gnu/*.so*")):
    if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK):
        with open(p, "rb") as f:
            pool += f.read()
    if len(pool) > 200 * MB:
        break
def binary(seed, size):
    r = random.Random(seed)
    b = bytearray()
    while len(b) < size:
        at = r.randrange(0, len(pool) - MB)
        b += pool[at:at + MB]
    return bytes(b[:size])
def gz(seed, size):
    return random.Random(seed).randbytes(size)
# name: (kind, MB at scale 1, changes with the patch release)
arts = {
    "kubeadm": ("bin", 72, True), "kubelet": ("bin", 78, True), "kubectl": ("bin", 57, True),
    "containerd.tar.gz": ("gz", 38, False), "runc": ("bin", 12, False),
    "cni-plugins.tgz": ("gz", 50, False), "crictl.tar.gz": ("gz", 19, False),
    "etcd.tar.gz": ("gz", 22, False), "helm.tar.gz": ("gz", 17, False),
    "img/kube-apiserver.layer": ("gz", 28, True), "img/kube-controller-manager.layer": ("gz", 26, True),
    "img/kube-scheduler.layer": ("gz", 20, True), "img/kube-proxy.layer": ("gz", 29, True),
    "img/distroless-base.layer": ("gz", 2, False), "img/pause.layer": ("gz", 0.3, False),
    "img/coredns.layer": ("gz", 22, False), "img/k8s-dns-node-cache.layer": ("gz", 40, False),
    "img/cluster-proportional-autoscaler.layer": ("gz", 10, False),
    "img/nginx-alpine.layer": ("gz", 20, False),
    "img/flannel.layer": ("gz", 30, False), "img/flannel-cni-plugin.layer": ("gz", 5, False),
}
for ver in ("1.33.3", "1.33.4"):
    comps = []
    for i, (name, (kind, mb, changes)) in enumerate(sorted(arts.items())):
        size = max(1, int(mb * MB * scale))
        seed = "%s-%s" % (name, ver if changes else "shared")
        rel = "src/%s/%s" % (ver if changes else "shared", name)
        path = os.path.join(out, rel)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(binary(seed, size) if kind == "bin" else gz(seed, size))
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        comps.append((name.replace("/", "-").replace(".", "-"), rel, sha))
    with open(os.path.join(out, "k8s-%s.yaml" % ver), "w") as f:
        f.write('apiVersion: kubeferry.io/v1\nkind: Bundle\nmetadata: {name: k8s, version: "%s"}\n'
                'spec:\n  kubernetesVersion: "%s"\n  architectures: [amd64]\n  components:\n' % (ver, ver))
        for name, rel, sha in comps:
            f.write('    - name: %s\n      version: "%s"\n      url: %s\n      sha256: {amd64: %s}\n'
                    % (name, ver, rel, sha))
EOF
	touch "$S/done"
fi

W=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$KF" keygen -W -s "$W/k.key" -p "$W/k.pub" >/dev/null
B1=$W/k8s-1.33.3.tar.zst B2=$W/k8s-1.33.4.tar.zst D=$W/k8s-1.33.4.delta.tar.zst
"$KF" build "$S/k8s-1.33.3.yaml" -s "$W/k.key" -o "$B1" -q
"$KF" build "$S/k8s-1.33.4.yaml" -s "$W/k.key" -o "$B2" -q
"$KF" build "$S/k8s-1.33.4.yaml" -s "$W/k.key" -o "$D" --base "$B1" -q
"$KFI" unpack "$B1" -p "$W/k.pub" -d "$W/base" -q
zstd -dc "$B1" | tar -xO kubeferry/bundle.yaml >"$W/base.bundle.yaml"
"$KF" inspect "$D" | grep -E '^(delta of|carries:)' | sed 's/^/bench\/delta: /'
# The delta on its base must give the full bundle's tree.
"$KFI" unpack "$B2" -p "$W/k.pub" -d "$W/full" -q
"$KFI" unpack "$D" -p "$W/k.pub" -d "$W/delta" -q --base "$W/base"
diff -r "$W/full" "$W/delta" >/dev/null || { echo "bench/delta: trees differ" >&2; exit 1; }

hyperfine --style basic --runs "$RUNS" --export-json "$W/result.json" \
	--prepare "rm -rf $W/full $W/delta; sync" \
	-n "unpack full" "$KFI unpack $B2 -p $W/k.pub -d $W/full -q" \
	-n "unpack delta --base DIR" "$KFI unpack $D -p $W/k.pub -d $W/delta -q --base $W/base"

read -r full delta < <(jq -r '[.results[].mean] | @tsv' "$W/result.json")
python3 - "$(stat -c %s "$D")" "$(stat -c %s "$B2")" "$full" "$delta" <<'EOF'
import sys
d, f = int(sys.argv[1]), int(sys.argv[2])
tf, td = float(sys.argv[3]), float(sys.argv[4])
print("bench/delta: delta file / full bundle file = %d / %d bytes = %.1f%% (goal < 40%%): %s" % (d, f, 100.0 * d / f, "met" if 100.0 * d / f < 40 else "missed"))
print("bench/delta: unpack delta --base DIR / unpack full = %.2fx (%.2f s / %.2f s)" % (td / tf, td, tf))
EOF
echo "bench/delta: reproduce with: make && KF_BENCH_SCALE=$SCALE bash bench/delta.sh"
