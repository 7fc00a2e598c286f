#!/usr/bin/env bash
# Benchmark: the transfer engine against curl, in the same run, on the same
# 16 files of 64 MiB served by a local nginx over TLS (HTTP/2):
#   kubeferry fetch  -j 8: parallel download, SHA-256 while streaming,
#                          fsync + rename into the cache (cold cache)
#   baseline         curl --parallel --parallel-max 8, then sha256sum -c
#   warm cache       kubeferry build of a spec listing the 16 files, twice:
#                    the second build must send no request (access log
#                    unchanged); its time is hashing the cache + compression
# Target (issue 3): kubeferry <= 1.0x the baseline.
# Environment: KF_BUILD (build dir), KF_BENCH_FILES (16), KF_BENCH_MIB (64),
# KF_BENCH_ROUNDS (2; the best round counts), KF_BENCH_DIR (scratch parent).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TMPDIR=${KF_BENCH_DIR:-${TMPDIR:-/var/tmp}}
source "$ROOT/tests/lib.sh"
source "$ROOT/tests/nginx/lab.sh"
need curl sha256sum nginx openssl python3 zstd
[ -x "$KF" ] || { echo "bench/fetch: build $KF first (make)" >&2; exit 2; }
NFILES=${KF_BENCH_FILES:-16}
MIB=${KF_BENCH_MIB:-64}
ROUNDS=${KF_BENCH_ROUNDS:-2}
fetch_lab_start
B=https://127.0.0.1:$TLS_PORT

now() { date +%s.%N; }
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }

echo "bench/fetch: $NFILES files of $MIB MiB in $LAB/www (random, incompressible)"
: >"$LAB/list"
: >"$LAB/curl.cfg"
for i in $(seq -w 1 "$NFILES"); do
	p=dl.k8s.io/release/v1.33.3/bench/file-$i.bin
	mkdir -p "$(dirname "$LAB/www/$p")"
	openssl rand -out "$LAB/www/$p" $((MIB * 1024 * 1024))
	h=$(sha "$LAB/www/$p")
	echo "$h  $B/$p" >>"$LAB/list"
	echo "$h  $LAB/curl/file-$i.bin" >>"$LAB/curl.sums"
	printf 'url = "%s"\noutput = "%s"\n' "$B/$p" "$LAB/curl/file-$i.bin" >>"$LAB/curl.cfg"
done

kf_times=() curl_times=()
for r in $(seq 1 "$ROUNDS"); do
	rm -rf "$LAB/cache" "$LAB/curl"; mkdir -p "$LAB/curl"; sync
	t0=$(now)
	curl -sS --fail --parallel --parallel-max 8 --cacert "$LAB/ca/ca.crt" -K "$LAB/curl.cfg" \
		2>"$LAB/curl.err" || { cat "$LAB/curl.err"; fail "curl"; }
	sha256sum --quiet -c "$LAB/curl.sums"
	t1=$(now)
	curl_times+=("$(secs "$t0" "$t1")")
	rm -rf "$LAB/curl"; sync
	t0=$(now)
	"$KF" fetch -q -j 8 --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" -i "$LAB/list" >/dev/null
	t1=$(now)
	kf_times+=("$(secs "$t0" "$t1")")
	echo "round $r: curl+sha256sum ${curl_times[-1]} s, kubeferry fetch ${kf_times[-1]} s" \
		"(ratio $(ratio "${kf_times[-1]}" "${curl_times[-1]}")x)"
done
kf=$(best "${kf_times[@]}")
cu=$(best "${curl_times[@]}")

echo "bench/fetch: warm-cache rebuild"
kf_keypair "$LAB/k"
{
	echo "apiVersion: kubeferry.io/v1"
	echo "kind: Bundle"
	echo "metadata: {name: bench, version: \"1.0\"}"
	echo "spec:"
	echo "  architectures: [amd64]"
	echo "  components:"
	n=0
	while read -r h url; do
		n=$((n + 1))
		echo "    - {name: file$n, version: \"1.0\", url: \"$url\", sha256: {amd64: $h}}"
	done <"$LAB/list"
} >"$LAB/spec.yaml"
mkdir -p "$LAB/out"
rm -rf "$LAB/cache"; sync
t0=$(now)
"$KF" build "$LAB/spec.yaml" -q -s "$LAB/k/kf.key" -o "$LAB/out/cold.tar.zst" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt"
t1=$(now)
cold=$(secs "$t0" "$t1")
rm -f "$LAB/out/cold.tar.zst"
before=$(wc -l <"$NGINX_LOG")
t0=$(now)
"$KF" build "$LAB/spec.yaml" -q -s "$LAB/k/kf.key" -o "$LAB/out/warm.tar.zst" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt"
t1=$(now)
warm=$(secs "$t0" "$t1")
after=$(wc -l <"$NGINX_LOG")
t0=$(now)
"$KF" fetch -q --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" -i "$LAB/list" >/dev/null
t1=$(now)
warmfetch=$(secs "$t0" "$t1")

echo
echo "bench/fetch results ($NFILES x $MIB MiB over TLS, best of $ROUNDS):"
echo "  curl --parallel-max 8 + sha256sum -c : $cu s"
echo "  kubeferry fetch -j 8 (cold cache)     : $kf s   ratio $(ratio "$kf" "$cu")x (target <= 1.0x)"
echo "  kubeferry build, cold cache           : $cold s"
echo "  kubeferry build, warm cache           : $warm s   requests during it: $((after - before))"
echo "  kubeferry fetch, warm cache (re-hash) : $warmfetch s"
[ "$after" -eq "$before" ] || fail "the warm-cache rebuild sent requests"
