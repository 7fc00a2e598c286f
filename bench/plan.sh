#!/usr/bin/env bash
# Benchmark: 'kubeferry-install cluster plan' for 3, 30 and 300 hosts
# (three control planes that are etcd members and mirrors, the rest
# workers), plus a no-change re-run of the 300-host plan. A fresh plan
# (every CA drawn) is timed too, but RSA key generation takes a random
# time, so growth is judged on plans whose shared/ (the CAs and secrets,
# copied from one plan) exists already: only the hosts' shares are made.
# Every run verifies the bundle first (a constant); growth is linear when
# the CPU time per added host between 30 and 300 is at most twice that
# between 3 and 30. Wall times are printed too, but the durable writes (an
# fsync per file and directory) dominate them, so a busy disk makes them
# noisy.
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
inventory 3
hyperfine --runs "$RUNS" --export-json "$W/fresh-3.json" --prepare "rm -rf $W/fresh" \
	"$KFI cluster plan $W/inv-3.ini $W/b/bundle.tar.zst -p $W/b/keys/kf.pub -o $W/fresh" >/dev/null
for n in 3 30 300; do
	inventory "$n"
	hyperfine --runs "$RUNS" --export-json "$W/plan-$n.json" \
		--prepare "rm -rf $W/plan-$n && mkdir -m 0700 $W/plan-$n && cp -a $W/fresh/shared $W/plan-$n/" \
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
def load(f):
    r = json.load(open(f"{w}/{f}"))["results"][0]
    return r["mean"], r["user"] + r["system"]
t = {n: load(f"plan-{n}.json") for n in (3, 30, 300)}
(r, rc), (v, vc), (f, fc) = load("rerun-300.json"), load("verify.json"), load("fresh-3.json")
print("                               wall (mean)   CPU user+sys")
print(f"fresh plan, 3 hosts (all CAs): {f*1000:8.1f} ms   {fc*1000:8.1f} ms")
for n in (3, 30, 300):
    print(f"plan, {n:3d} hosts (shared/ kept): {t[n][0]*1000:7.1f} ms   {t[n][1]*1000:8.1f} ms")
print(f"re-run, 300 hosts, no change:  {r*1000:8.1f} ms   {rc*1000:8.1f} ms")
print(f"bundle verification alone:     {v*1000:8.1f} ms   {vc*1000:8.1f} ms")
# Growth is judged on CPU time: the wall time is mostly fsync waits, which
# a disk shared with other work makes noisy.
a = (t[30][1] - t[3][1]) / 27
b = (t[300][1] - t[30][1]) / 270
print(f"CPU per added host, 3 -> 30:   {a*1000:8.2f} ms")
print(f"CPU per added host, 30 -> 300: {b*1000:8.2f} ms")
ratio = b / a if a > 0 else float("inf")
print(f"marginal cost ratio:           {ratio:8.2f}   (goal <= 2.00: linear or better): "
      + ("met (the cost per host does not grow)" if ratio <= 2
         else "missed (worse than linear: the cost per host grows)"))
PY
echo "bench/plan: reproduce with: KF_BUILD=$KF_BUILD bash bench/plan.sh   (or bench/run plan)"
