#!/usr/bin/env bash
# Benchmark: 'kubeferry-install unpack' (single pass, full verification,
# durable) against, on the same bundle and in the same run:
#   zstd -dc B | tar -x                       no verification at all
#   minisign -V; tar -I zstd -x; sha256sum -c  the manual way (large corpus)
# Corpora (bench/corpus.py, made from this machine's own files, signed with
# the stock minisign so they are independent of kubeferry's writer):
#   large  about 400 MB in 90 ELF-like entries   goal: <= 0.80x the baseline
#   small  60,000 entries of 464 bytes           goal: <= 1.20x the baseline
# Each row unpacks into tmpfs (/dev/shm, the work itself) and then onto the
# disk (second line; the disks here are throttled and noisy). Ratios are of
# mean wall time and of CPU time (user + system), both from this run. Then
# a scaling table: the small corpus at 1,000, 10,000 and 60,000 entries.
#
# Bundles are built once into $KF_BENCH_CACHE (default /var/tmp/kf-bench);
# every unpacked tree is removed at the end. Environment: KF_BUILD (build dir),
# KF_BENCH_RUNS (hyperfine runs, default 3), KF_BENCH_TMPFS (default
# /dev/shm), KF_BENCH_LARGE (bytes, default 400000000), KF_BENCH_WHERE
# (destinations, default "tmpfs disk").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KFI=$KF_BUILD/kubeferry-install
CACHE=${KF_BENCH_CACHE:-/var/tmp/kf-bench}
RUNS=${KF_BENCH_RUNS:-3}
TMPFS=${KF_BENCH_TMPFS:-/dev/shm}
LARGE=${KF_BENCH_LARGE:-400000000}
WHERE=${KF_BENCH_WHERE:-tmpfs disk}

for t in zstd tar minisign sha256sum hyperfine python3 jq; do
	command -v "$t" >/dev/null || { echo "bench/unpack: $t is missing" >&2; exit 77; }
done
[ -x "$KFI" ] || { echo "bench/unpack: build $KFI first (make)" >&2; exit 2; }
mkdir -p "$CACHE"
[ -f "$CACHE/k.key" ] || minisign -G -W -p "$CACHE/k.pub" -s "$CACHE/k.key" >/dev/null 2>&1
PUB=$CACHE/k.pub

# bundle KIND AMOUNT: path of the cached bundle (built on first use).
bundle() {
	local b=$CACHE/$1-$2.tar.zst src=$CACHE/src-$1-$2
	if ! [ -f "$b" ] || ! [ -f "$b.sums" ]; then
		echo "bench/unpack: building the $1 corpus ($2) once in $CACHE" >&2
		rm -rf "$src" "$b" "$b.sums"
		python3 "$ROOT/bench/corpus.py" "$1" "$2" "$src" >&2
		minisign -S -s "$CACHE/k.key" -m "$src/kubeferry/bundle.yaml" -t "bench" >/dev/null
		tar -C "$src" --format=pax --numeric-owner --owner=0 --group=0 \
			--no-recursion -T "$src/list" -cf - | zstd -q -3 -T0 -o "$b.tmp"
		(cd "$src" && tail -n +3 list | xargs -d '\n' sha256sum) >"$b.sums.tmp"
		mv "$b.sums.tmp" "$b.sums"
		mv "$b.tmp" "$b"
		minisign -S -s "$CACHE/k.key" -m "$b" -t bench >/dev/null
		rm -rf "$src"   # the bundle, its sums and signature are all the runs need
	fi
	echo "$b"
}

TMPW=
if [ "$(stat -f -c %T "$TMPFS" 2>/dev/null)" = tmpfs ]; then
	TMPW=$(mktemp -d "$TMPFS/kf-bench-unpack.XXXXXX")
else
	echo "bench/unpack: $TMPFS is not tmpfs; tmpfs rows skipped" >&2
fi
DISKW=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$DISKW" ${TMPW:+"$TMPW"}' EXIT

# measure W BUNDLE [EXTRA]: hyperfine kubeferry-install against zstd | tar
# (and the manual way when EXTRA is set), unpacking under W; prints
# "wall_kf wall_base cpu_kf cpu_base [wall_manual]".
measure() {
	local w=$1 b=$2 extra=${3:-}
	local cmds=(-n kubeferry-install "$KFI unpack $b -p $PUB -d $w/kf -q"
	            -n zstd-tar "mkdir $w/a && zstd -dc $b | tar -x -C $w/a")
	[ -n "$extra" ] && cmds+=(-n manual "minisign -Vq -p $PUB -m $b && mkdir $w/m && tar -I zstd -x -C $w/m -f $b && cd $w/m && sha256sum -c --quiet $b.sums")
	# Clean before, not after: the caller reads the figures through a
	# process substitution and may start the next run at once.
	rm -rf "$w/kf" "$w/a" "$w/m" "$w/r.json"
	hyperfine --style none --runs "$RUNS" --export-json "$w/r.json" \
		--prepare "rm -rf $w/kf $w/a $w/m; sync" "${cmds[@]}" >/dev/null
	jq -r '[.results[0].mean, .results[1].mean, .results[0].user + .results[0].system,
	        .results[1].user + .results[1].system, (.results[2].mean // 0)] | @tsv' "$w/r.json"
}

# row LABEL GOAL BUNDLE [EXTRA]: one line per destination.
row() {
	local label=$1 goal=$2 b=$3 extra=${4:-} where w
	for where in $WHERE; do
		if [ $where = tmpfs ]; then w=$TMPW; else w=$DISKW; fi
		[ -n "$w" ] || continue
		read -r wk wb ck cb wm < <(measure "$w" "$b" "$([ $where = tmpfs ] && echo "$extra")")
		python3 - "$label" "$where" "$goal" "$wk" "$wb" "$ck" "$cb" "$wm" <<'EOF'
import sys
label, where, goal = sys.argv[1:4]
wk, wb, ck, cb, wm = map(float, sys.argv[4:9])
g = float(goal.rstrip("x"))
met = lambda r, ok: "met" if ok(r) else "missed"
print("bench/unpack: %-34s %-5s kubeferry-install %.2f s / zstd -dc | tar -x %.2f s = wall ratio %.2fx (goal <= %s): %s; cpu ratio %.2fx (goal <= %s): %s"
      % (label, where, wk, wb, wk / wb, goal, met(wk / wb, lambda r: r <= g), ck / cb, goal, met(ck / cb, lambda r: r <= g)))
if wm:
    print("bench/unpack: %-34s %-5s (minisign -V; tar -x; sha256sum -c) %.2f s / kubeferry-install = ratio %.2fx (goal >= 2.00x): %s"
          % (label, where, wm, wm / wk, met(wm / wk, lambda r: r >= 2.0)))
EOF
	done
}

BL=$(bundle large "$LARGE")
BS=$(bundle small 60000)
row "large: 90 entries, $((LARGE / 1000000)) MB" 0.80x "$BL" manual
row "small: 60,000 entries of 464 B" 1.20x "$BS"

# Scaling: how the cost grows with the entry count (tmpfs when present).
if [ -n "$TMPW" ]; then where=tmpfs; else where=disk; fi
echo "bench/unpack: scaling, small entries of 464 B, into $where"
printf 'bench/unpack: %8s %12s %12s %8s %14s\n' entries kubeferry-s baseline-s ratio us/entry-kf
for n in 1000 10000 60000; do
	b=$(bundle small $n)
	read -r wk wb ck cb _ < <(measure "${TMPW:-$DISKW}" "$b")
	python3 - "$n" "$wk" "$wb" <<'EOF'
import sys
n = int(sys.argv[1]); wk, wb = map(float, sys.argv[2:4])
print("bench/unpack: %8d %12.3f %12.3f %7.2fx %14.1f" % (n, wk, wb, wk / wb, 1e6 * wk / n))
EOF
done
echo "bench/unpack: reproduce with: make BUILD=${KF_BUILD#"$ROOT"/} && KF_BUILD=${KF_BUILD#"$ROOT"/} bash bench/unpack.sh"
