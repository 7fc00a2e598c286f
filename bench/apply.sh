#!/usr/bin/env bash
# Benchmark: 'kubeferry-install apply' into a fresh root (verify + unpack the
# bundle, install containerd, runc, CNI, crictl, kubeadm/kubelet/kubectl,
# helm, etcd and its PKI) against a no-change re-run on the same root.
# Target (issue 5): the re-run takes under 2% of the first run.
# The bundle is tests/node/make-bundle.sh's (Debian's real containerd, runc,
# etcd and CNI plugins, ~140 MB unpacked). --root mode: commands are
# planned, not run, so this measures the installer's own work.
# Environment: KF_BUILD (build dir), KF_BENCH_RUNS (hyperfine runs, default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry KFI=$KF_BUILD/kubeferry-install
RUNS=${KF_BENCH_RUNS:-5}
for t in hyperfine jq gzip tar; do
	command -v "$t" >/dev/null || { echo "bench/apply: $t is missing" >&2; exit 77; }
done
[ -x "$KFI" ] || { echo "bench/apply: build $KFI first (make)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/var/tmp}/kf-bench-apply.XXXXXX")
trap 'rm -rf "$W"' EXIT
KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$W/b"
R=$W/root
A="$KFI apply $W/b/bundle.tar.zst -p $W/b/keys/kf.pub --role control-plane --root $R --node-ip 10.0.0.5"
hyperfine --runs "$RUNS" --export-json "$W/fresh.json" \
	--prepare "rm -rf $R && mkdir -p $R/etc $R/var/lib" "$A" >/dev/null
rm -rf "$R" && mkdir -p "$R/etc" "$R/var/lib" && $A >/dev/null
hyperfine -N --runs $((RUNS * 4)) --warmup 1 --export-json "$W/rerun.json" "$A" >/dev/null
$A | tail -n 1 | grep -q ' changed=0 failed=0$' || { echo "bench/apply: re-run changed something" >&2; exit 1; }
fresh=$(jq '.results[0].mean' "$W/fresh.json")
rerun=$(jq '.results[0].mean' "$W/rerun.json")
python3 - "$fresh" "$rerun" <<'PY'
import sys
f, r = float(sys.argv[1]), float(sys.argv[2])
print(f"apply, fresh root:     {f*1000:8.1f} ms (mean)")
print(f"apply, no-change run:  {r*1000:8.1f} ms (mean)")
print(f"re-run / fresh:        {100*r/f:8.2f} %   (target < 2 %)")
PY
echo "reproduce: KF_BUILD=$KF_BUILD bash bench/apply.sh"
