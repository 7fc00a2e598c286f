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
print(f"re-run / fresh:        {100*r/f:8.2f} %   (goal < 2 %): {'met' if 100*r/f < 2 else 'missed'}")
PY
echo "bench/apply: reproduce with: KF_BUILD=$KF_BUILD bash bench/apply.sh   (or bench/run apply)"

# The same on a real systemd node (systemd-nspawn, tests/node/): the first
# apply on a fresh node until containerd and etcd run (etcd health-checked),
# then no-change re-runs. Skipped without root, nspawn or the cached rootfs
# tools (tests/node/rootfs.sh builds the rootfs with debootstrap).
if [ "$(id -u)" = 0 ] && command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null &&
	[ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ]; then
	rootfs=$(bash "$ROOT/tests/node/rootfs.sh")
	(
		source "$ROOT/tests/lib.sh"
		source "$ROOT/tests/node/nspawn.sh"
		cp -a "$rootfs" "$LAB/node"
		echo node1 >"$LAB/node/etc/hostname"
		mkdir -p "$LAB/node/root/kf"
		cp "$KFI" "$W/b/bundle.tar.zst" "$W/b/keys/kf.pub" "$LAB/node/root/kf/"
		node_boot "$LAB/node"
		NA=(/root/kf/kubeferry-install apply /root/kf/bundle.tar.zst -p /root/kf/kf.pub
			--role control-plane --node-ip 127.0.0.1)
		t0=$(date +%s.%N)
		"${IN[@]}" "${NA[@]}" >"$LAB/first" 2>&1 || { cat "$LAB/first"; exit 1; }
		t1=$(date +%s.%N)
		"${IN[@]}" systemctl is-active --quiet containerd etcd || { echo "bench/apply: services not active" >&2; exit 1; }
		hyperfine -N --runs $((RUNS * 4)) --warmup 1 --export-json "$LAB/node-rerun.json" \
			"${IN[*]} ${NA[*]}" >/dev/null
		python3 - "$t0" "$t1" "$(jq '.results[0].mean' "$LAB/node-rerun.json")" <<'PY'
import sys
t0, t1, r = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
f = t1 - t0
print(f"nspawn node, first apply (to containerd + etcd running): {f*1000:8.1f} ms (one run)")
print(f"nspawn node, no-change re-run:                           {r*1000:8.1f} ms (mean)")
print(f"re-run / first:                                          {100*r/f:8.2f} %   (goal < 2 %): {'met' if 100*r/f < 2 else 'missed'}")
PY
	)
else
	echo "bench/apply: nspawn node part skipped (needs root, systemd-nspawn, debootstrap, hybrid cgroups)"
fi
