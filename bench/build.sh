#!/usr/bin/env bash
# Benchmark: 'kubeferry build' of about 400 MB in 90 ELF-like entries whose
# sources are already local (as from a warm download cache: only stat'ed
# before the write, hashed once while they are written and checked against
# the lock at the end of each entry, plus the BLAKE2b of the output for the
# detached signature) against, in the same run,
#   tar -cf - DIR | zstd -3 -T0              the same bytes, nothing checked
# Goal (issue 13): at most 1.00x. Ratios of mean wall time and of CPU time
# (user + system; the steadier figure on this shared two-core machine).
# One row with sources and output in tmpfs (/dev/shm: the work itself),
# then one on disk (KF_BENCH_DISK_DIR, default /var/tmp: throttled and
# noisy here). Everything is removed at the end.
# Environment: KF_BUILD (build dir), KF_BENCH_OTHER (another kubeferry
# binary measured in the same runs, e.g. an older build), KF_BENCH_RUNS
# (hyperfine runs, default 3), KF_BENCH_TMPFS (default /dev/shm),
# KF_BENCH_DISK_DIR (default /var/tmp), KF_BENCH_WHERE (default "tmpfs
# disk"), KF_BENCH_LARGE (bytes, default 400000000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry
RUNS=${KF_BENCH_RUNS:-3}
TMPFS=${KF_BENCH_TMPFS:-/dev/shm}
DISKD=${KF_BENCH_DISK_DIR:-/var/tmp}
WHERE=${KF_BENCH_WHERE:-tmpfs disk}
LARGE=${KF_BENCH_LARGE:-400000000}
OTHER=${KF_BENCH_OTHER:-}
GOAL=1.00

for t in zstd tar hyperfine python3 jq; do
	command -v "$t" >/dev/null || { echo "bench/build: $t is missing" >&2; exit 77; }
done
[ -x "$KF" ] || { echo "bench/build: build $KF first (make)" >&2; exit 2; }
[ -z "$OTHER" ] || [ -x "$OTHER" ] || { echo "bench/build: $OTHER is not executable" >&2; exit 2; }
DIRS=()
trap 'rm -rf "${DIRS[@]}"' EXIT

# row WHERE DIR: the corpus under DIR, kubeferry build (and OTHER) against
# tar | zstd, one line of figures.
row() {
	local where=$1 W=$2
	python3 "$ROOT/bench/corpus.py" large "$LARGE" "$W/src" >&2
	"$KF" keygen -W -s "$W/k.key" -p "$W/k.pub" >/dev/null
	mkdir -p "$W/out"
	local kf_cmd="$KF build $W/src/spec.yaml -s $W/k.key -o $W/out/b.tar.zst -q"
	local base_cmd="tar -C $W/src -cf - files | zstd -q -3 -T0 -f -o $W/out/t.tar.zst"
	local cmds=(-n kubeferry-build "$kf_cmd" -n tar-zstd "$base_cmd")
	[ -z "$OTHER" ] || cmds+=(-n other "$OTHER build $W/src/spec.yaml -s $W/k.key -o $W/out/o.tar.zst -q")
	# Warm: one untimed build (page cache, the output path's directory).
	$kf_cmd
	hyperfine --style none --runs "$RUNS" --export-json "$W/r.json" \
		--prepare "rm -f $W/out/*.tar.zst $W/out/*.minisig" "${cmds[@]}" >/dev/null
	python3 - "$where" "$LARGE" "$GOAL" "$OTHER" \
		$(jq -r '[.results[] | .mean, .user + .system] | @tsv' "$W/r.json") <<'PY'
import sys
where, mb, goal, other = sys.argv[1], int(sys.argv[2]) // 1000000, float(sys.argv[3]), sys.argv[4]
v = list(map(float, sys.argv[5:]))
wk, ck, wb, cb = v[0:4]
met = lambda r: "met" if r <= goal else "missed"
print("bench/build: %-5s %d MB in 90 entries: kubeferry build %.2f s / (tar -cf - | zstd -3 -T0) %.2f s = wall ratio %.2fx (goal <= %.2fx): %s; cpu %.2f s / %.2f s = ratio %.2fx (goal <= %.2fx): %s"
      % (where, mb, wk, wb, wk / wb, goal, met(wk / wb), ck, cb, ck / cb, goal, met(ck / cb)))
if other:
    wo, co = v[4:6]
    print("bench/build: %-5s %s: %.2f s = %.2fx wall, cpu ratio %.2fx" % (where, other, wo, wo / wb, co / cb))
PY
	rm -rf "$W/src" "$W/out"
}

for where in $WHERE; do
	if [ "$where" = tmpfs ]; then
		[ "$(stat -f -c %T "$TMPFS" 2>/dev/null)" = tmpfs ] ||
			{ echo "bench/build: $TMPFS is not tmpfs; tmpfs row skipped" >&2; continue; }
		W=$(mktemp -d "$TMPFS/kf-bench-build.XXXXXX")
	else
		W=$(mktemp -d "$DISKD/kf-bench-build.XXXXXX")
	fi
	DIRS+=("$W")
	row "$where" "$W"
done
echo "bench/build: reproduce with: make BUILD=${KF_BUILD#"$ROOT"/} && KF_BUILD=${KF_BUILD#"$ROOT"/}${OTHER:+ KF_BENCH_OTHER=$OTHER} bash bench/build.sh   (or make bench, pattern build: bench/run build)"
