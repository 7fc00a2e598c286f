#!/usr/bin/env bash
# Benchmark: 'kubeferry-install cluster plan' for 3, 30 and 300 hosts
# (three control planes that are etcd members and mirrors, the rest
# workers), each into a fresh plan directory, plus a no-change re-run of
# the 300-host plan. Every run verifies the bundle first (a constant), so
# growth is judged by the marginal cost per added host between 3 and 30
# and between 30 and 300: linear when the two agree within a factor of 2.
# Environment: KF_BUILD (build dir), KF_BENCH_RUNS (hyperfine runs, default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry KFI=$KF_BUILD/kubeferry-install
RUNS=${KF_BENCH_RUNS:-3}
for t in hyperfine jq gzip tar python3; do
	command -v "$t" >/dev/null || { echo "bench/plan: $t is missing" >&2; exit 77; }
done
[ -x "$KFI" ] || { echo "bench/plan: build $KFI first (make)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/var/tmp}/kf-bench-plan.XXXXXX")
trap 'rm -rf "$W"' EXIT
KF=$KF bash "$ROOT/tests/node/make-bundle.sh" "$W/b"

inventory() { # N: an INI inventory of N hosts
	local n=$1 i
	{
		for i in $(seq 1 "$n"); do echo "h$i ip=10.$((i / 250)).$((i % 250)).1"; done
		printf '[kube_control_plane]\nh1\nh2\nh3\n[etcd]\nh1\nh2\nh3\n[kube_node]\n'
		for i in $(seq 4 "$n"); do echo "h$i"; done
		printf '[k8s_cluster:children]\nkube_control_plane\nkube_node\n'
	} >"$W/inv-$n.ini"
}
for n in 3 30 300; do
	inventory "$n"
	hyperfine --runs "$RUNS" --export-json "$W/plan-$n.json" --prepare "rm -rf $W/plan-$n" \
		"$KFI cluster plan $W/inv-$n.ini $W/b/bundle.tar.zst -p $W/b/keys/kf.pub -o $W/plan-$n" >/dev/null
done
P300="$KFI cluster plan $W/inv-300.ini $W/b/bundle.tar.zst -p $W/b/keys/kf.pub -o $W/plan-300"
$P300 | tail -n 1 | grep -q '^files written 0,' || { echo "bench/plan: re-run wrote files" >&2; exit 1; }
hyperfine --runs "$RUNS" --export-json "$W/rerun-300.json" "$P300" >/dev/null
# The constant: verifying this bundle alone.
hyperfine --runs "$RUNS" --export-json "$W/verify.json" \
	"$KFI verify $W/b/bundle.tar.zst -p $W/b/keys/kf.pub -q" >/dev/null
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
m = lambda f: json.load(open(f"{w}/{f}"))["results"][0]["mean"]
t = {n: m(f"plan-{n}.json") for n in (3, 30, 300)}
r, v = m("rerun-300.json"), m("verify.json")
for n in (3, 30, 300):
    print(f"cluster plan, {n:3d} hosts:     {t[n]*1000:8.1f} ms (mean)")
print(f"re-run, 300 hosts, no change: {r*1000:8.1f} ms")
print(f"bundle verification alone:    {v*1000:8.1f} ms")
a = (t[30] - t[3]) / 27
b = (t[300] - t[30]) / 270
print(f"per added host, 3 -> 30:      {a*1000:8.2f} ms")
print(f"per added host, 30 -> 300:    {b*1000:8.2f} ms")
ratio = b / a if a > 0 else float("inf")
print(f"marginal cost ratio:          {ratio:8.2f}   "
      + ("(linear: within 2x)" if 0.5 <= ratio <= 2 else "(NOT linear)"))
PY
echo "reproduce: KF_BUILD=$KF_BUILD bash bench/plan.sh"
