#!/usr/bin/env bash
# Benchmark: 'kubeferry build' of about 400 MB in 90 ELF-like entries whose
# sources are already local (as from a warm download cache: hashed in
# place, then hashed again while they are written, plus the BLAKE2b of the
# output for the detached signature) against, in the same run,
#   tar -cf - DIR | zstd -3 -T0              the same bytes, nothing checked
# Goal (issue 13): at most 1.00x. Ratios of mean wall time and of CPU time
# (user + system). Sources and outputs live in tmpfs (/dev/shm) when it is
# there, so the disk's noise stays out; everything is removed at the end.
# Environment: KF_BUILD (build dir), KF_BENCH_RUNS (hyperfine runs,
# default 3), KF_BENCH_TMPFS (default /dev/shm), KF_BENCH_LARGE (bytes,
# default 400000000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry
RUNS=${KF_BENCH_RUNS:-3}
TMPFS=${KF_BENCH_TMPFS:-/dev/shm}
LARGE=${KF_BENCH_LARGE:-400000000}

for t in zstd tar hyperfine python3 jq; do
	command -v "$t" >/dev/null || { echo "bench/build: $t is missing" >&2; exit 77; }
done
[ -x "$KF" ] || { echo "bench/build: build $KF first (make)" >&2; exit 2; }
if [ "$(stat -f -c %T "$TMPFS" 2>/dev/null)" = tmpfs ]; then
	W=$(mktemp -d "$TMPFS/kf-bench-build.XXXXXX")
else
	W=$(mktemp -d "${TMPDIR:-/var/tmp}/kf-bench-build.XXXXXX")
fi
trap 'rm -rf "$W"' EXIT

python3 "$ROOT/bench/corpus.py" large "$LARGE" "$W/src" >&2
"$KF" keygen -W -s "$W/k.key" -p "$W/k.pub" >/dev/null
mkdir -p "$W/out"
KF_CMD="$KF build $W/src/spec.yaml -s $W/k.key -o $W/out/b.tar.zst -q"
BASE_CMD="tar -C $W/src -cf - files | zstd -q -3 -T0 -f -o $W/out/t.tar.zst"
# Warm: one untimed build (page cache, the output path's directory).
$KF_CMD
hyperfine --style none --runs "$RUNS" --export-json "$W/r.json" \
	--prepare "rm -f $W/out/b.tar.zst $W/out/b.tar.zst.minisig $W/out/t.tar.zst" \
	-n kubeferry-build "$KF_CMD" -n tar-zstd "$BASE_CMD" >/dev/null
read -r wk wb ck cb < <(jq -r '[.results[0].mean, .results[1].mean,
	.results[0].user + .results[0].system, .results[1].user + .results[1].system] | @tsv' "$W/r.json")
python3 - "$wk" "$wb" "$ck" "$cb" "$LARGE" <<'PY'
import sys
wk, wb, ck, cb = map(float, sys.argv[1:5])
mb = int(sys.argv[5]) // 1000000
print("bench/build: %d MB in 90 entries: kubeferry build %.2f s / (tar -cf - | zstd -3 -T0) %.2f s = %.2fx wall, %.2fx cpu (goal <= 1.00x)"
      % (mb, wk, wb, wk / wb, ck / cb))
PY
echo "bench/build: reproduce with: make BUILD=${KF_BUILD#"$ROOT"/} && KF_BUILD=${KF_BUILD#"$ROOT"/} bash bench/build.sh"
