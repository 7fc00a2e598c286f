#!/usr/bin/env bash
# Benchmark: 'kubeferry-install mirror serve' against docker-registry
# (distribution) serving the same images, in the same run, both over TLS
# with the same certificate: ten clients (curl, one connection each) fetch
# every blob of a ~500 MB image set at once. Reports the throughput of each,
# their ratio, and each server's peak RSS (VmHWM from /proc).
# Target (issue 4): throughput >= the registry's, with lower peak memory.
#
# The image set (an OCI layout of gzip layers of random bytes) is built once
# into $KF_BENCH_CACHE (default /var/tmp/kf-bench) and pushed into the
# registry with skopeo. Environment: KF_BUILD (build dir), KF_BENCH_MIRROR_MB
# (default 512), KF_BENCH_CLIENTS (default 10).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KFI=$KF_BUILD/kubeferry-install
CACHE=${KF_BENCH_CACHE:-/var/tmp/kf-bench}
MB=${KF_BENCH_MIRROR_MB:-512}
CLIENTS=${KF_BENCH_CLIENTS:-10}

for t in curl skopeo docker-registry jq sha256sum gzip python3; do
	command -v "$t" >/dev/null || { echo "bench/mirror: $t is missing" >&2; exit 77; }
done
[ -x "$KFI" ] || { echo "bench/mirror: build $KFI first (make)" >&2; exit 2; }

SET=$CACHE/mirror-set-$MB
L=$SET/bundle/images
LAB=$(mktemp -d "${TMPDIR:-/tmp}/kf-bench-mirror.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]+"${pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$LAB"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	local n=600
	while [ $n -gt 0 ]; do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05; n=$((n - 1))
	done
	echo "bench/mirror: nothing listens on $1" >&2; exit 3
}
put() {
	local h
	h=$(sha256sum "$1" | cut -d' ' -f1)
	mv "$1" "$L/blobs/sha256/$h"
	echo "sha256:$h"
}

# Four images of two layers each: 8 layers of MB/8 each.
build_set() {
	echo "bench/mirror: building the ~$MB MB image set once in $SET"
	rm -rf "$SET"
	mkdir -p "$L/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
	local i j ents="" per=$((MB / 8))
	for i in 1 2 3 4; do
		local layers="" diffs=""
		for j in 1 2; do
			head -c "${per}M" /dev/urandom >"$SET/raw"
			diffs="$diffs\"sha256:$(sha256sum <"$SET/raw" | cut -d' ' -f1)\","
			gzip -1 -n -c "$SET/raw" >"$SET/layer"
			local sz d
			sz=$(stat -c %s "$SET/layer")
			d=$(put "$SET/layer")
			layers="$layers{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$sz},"
		done
		rm -f "$SET/raw"
		printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${diffs%,}" >"$SET/config"
		local csz cd msz md
		csz=$(stat -c %s "$SET/config"); cd=$(put "$SET/config")
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
			"$cd" "$csz" "${layers%,}" >"$SET/manifest"
		msz=$(stat -c %s "$SET/manifest"); md=$(put "$SET/manifest")
		ents="$ents{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$md\",\"size\":$msz,\"annotations\":{\"io.containerd.image.name\":\"bench.local/img$i:1\",\"org.opencontainers.image.ref.name\":\"bench.local/img$i:1\"}},"
	done
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "${ents%,}" >"$L/index.json"
}
[ -f "$L/index.json" ] || build_set

# ---- both servers, same certificate ----
MPORT=$(free_port)
"$KFI" mirror serve "$SET/bundle" --listen "127.0.0.1:$MPORT" --state "$LAB/tls" \
	--ca-out "$LAB/ca.crt" --san 127.0.0.1 -q >"$LAB/mirror.log" 2>&1 &
MPID=$!; pids+=("$MPID")
wait_port "$MPORT"
RPORT=$(free_port)
mkdir -p "$LAB/reg"
cat >"$LAB/reg.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $LAB/reg}
  delete: {enabled: false}
http:
  addr: 127.0.0.1:$RPORT
  tls: {certificate: $LAB/tls/server.crt, key: $LAB/tls/server.key}
EOF
docker-registry serve "$LAB/reg.yml" >"$LAB/reg.log" 2>&1 &
RPID=$!; pids+=("$RPID")
wait_port "$RPORT"
mkdir -p "$LAB/certs"; cp "$LAB/ca.crt" "$LAB/certs/ca.crt"

echo "bench/mirror: pushing the set into docker-registry (skopeo, from the mirror)"
for i in 1 2 3 4; do
	skopeo copy --quiet --src-cert-dir "$LAB/certs" --dest-cert-dir "$LAB/certs" \
		"docker://127.0.0.1:$MPORT/bench.local/img$i:1" "docker://127.0.0.1:$RPORT/bench.local/img$i:1" >/dev/null
done

# Every blob (configs and layers) of every image, as URL lists per server.
: >"$LAB/urls-mirror"; : >"$LAB/urls-registry"
total=0
for i in 1 2 3 4; do
	d=$(jq -r --arg n "bench.local/img$i:1" '.manifests[] | select(.annotations."io.containerd.image.name" == $n) | .digest' "$L/index.json")
	m=$L/blobs/sha256/${d#sha256:}
	for b in $(jq -r '.config.digest, .layers[].digest' "$m"); do
		echo "url = \"https://127.0.0.1:$MPORT/v2/bench.local/img$i/blobs/$b\"" >>"$LAB/urls-mirror"
		echo "url = \"https://127.0.0.1:$RPORT/v2/bench.local/img$i/blobs/$b\"" >>"$LAB/urls-registry"
		echo "output = \"/dev/null\"" | tee -a "$LAB/urls-mirror" >>"$LAB/urls-registry"
		total=$((total + $(stat -c %s "$L/blobs/sha256/${b#sha256:}")))
	done
done

# run NAME: CLIENTS curls at once, each over every blob; prints seconds.
run() {
	local name=$1 t0 t1 p cps=()
	t0=$(date +%s.%N)
	for p in $(seq "$CLIENTS"); do
		curl -sS --fail --cacert "$LAB/ca.crt" -K "$LAB/urls-$name" -w '%{size_download}\n' >"$LAB/out-$name-$p" &
		cps+=($!)
	done
	for p in "${cps[@]}"; do wait "$p" || { echo "bench/mirror: a $name client failed" >&2; exit 3; }; done
	t1=$(date +%s.%N)
	got=$(cat "$LAB"/out-"$name"-* | awk '{s += $1} END {printf "%.0f\n", s}')
	[ "$got" = $((total * CLIENTS)) ] || { echo "bench/mirror: $name sent $got bytes, want $((total * CLIENTS))" >&2; exit 3; }
	python3 -c "print($t1 - $t0)"
}
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

echo "bench/mirror: warm-up (page cache) ..."
CLIENTS_SAVE=$CLIENTS; CLIENTS=1
run mirror >/dev/null; run registry >/dev/null
CLIENTS=$CLIENTS_SAVE
rss_m0=$(hwm "$MPID"); rss_r0=$(hwm "$RPID")
echo "bench/mirror: $CLIENTS clients x $((total / 1000000)) MB, mirror then registry"
tm=$(run mirror)
tr=$(run registry)
rss_m=$(hwm "$MPID"); rss_r=$(hwm "$RPID")
python3 - "$total" "$CLIENTS" "$tm" "$tr" "$rss_m" "$rss_r" "$rss_m0" "$rss_r0" <<'EOF'
import sys
total, clients = int(sys.argv[1]), int(sys.argv[2])
tm, tr = float(sys.argv[3]), float(sys.argv[4])
rm, rr, rm0, rr0 = (int(x) for x in sys.argv[5:9])
mb = total * clients / 1e6
print(f"mirror serve:    {mb / tm:8.1f} MB/s  ({tm:.2f} s)  peak RSS {rm / 1024:6.1f} MiB (after warm-up {rm0 / 1024:.1f})")
print(f"docker-registry: {mb / tr:8.1f} MB/s  ({tr:.2f} s)  peak RSS {rr / 1024:6.1f} MiB (after warm-up {rr0 / 1024:.1f})")
print(f"throughput ratio mirror/registry: {tr / tm:.2f}x (target >= 1.0)")
print(f"peak RSS ratio mirror/registry:   {rm / rr:.2f}x (target < 1.0)")
EOF
echo "reproduce: KF_BUILD=$KF_BUILD bash bench/mirror.sh"
