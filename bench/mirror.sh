#!/usr/bin/env bash
# Benchmark: 'kubeferry-install mirror serve' against nginx and
# docker-registry (distribution) serving the same files, in the same run,
# all over TLS with the same certificate and key: ten clients (curl, one
# connection each) fetch every blob of a ~500 MB image set at once. Reports
# the throughput of each, the mirror's ratio to each, and each server's peak
# RSS (VmHWM from /proc), and each server's own CPU time per GB sent
# (user + system from /proc: less shaken by other load than wall clock).
# Targets: issue 13, throughput >= 1.0x nginx over TLS; issue 4, >= the
# registry's, with lower peak memory.
#
# nginx serves the layout's blob files as static files (worker_processes
# auto, Debian's default; KF_BENCH_NGINX_WORKERS=1 matches the mirror's one
# event loop; sendfile on, which nginx cannot use under TLS without kernel
# TLS, nor can the mirror). Both negotiate the same TLS 1.3 suite
# (TLS_AES_256_GCM_SHA384, OpenSSL's default order).
#
# Then the scaling rows: the mirror alone at 10, 100 and 500 concurrent
# clients (loopback; every client fetches an equal share, by Range, of a
# fixed volume, so each row moves the same bytes), a fresh server per row so
# its peak RSS is that row's; the mirror's CPU per GB shows what each
# connection adds (its TLS handshake).
#
# The image set (an OCI layout of gzip layers of random bytes) is built once
# into $KF_BENCH_CACHE (default /var/tmp/kf-bench) and pushed into the
# registry with skopeo. Environment: KF_BUILD (build dir), KF_BENCH_MIRROR_MB
# (default 512), KF_BENCH_CLIENTS (default 10), KF_BENCH_SERVERS (default
# "mirror nginx registry"; the mirror is always run), KF_BENCH_SCALING
# (client counts of the scaling rows, default "10 100 500"; empty: none),
# KF_BENCH_SCALING_MB (volume of each scaling row, default 512),
# KF_BENCH_NGINX_WORKERS (default auto), KF_BENCH_NGINX_EXTRA (directives
# added to nginx's http block, to try other settings).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KFI=$KF_BUILD/kubeferry-install
CACHE=${KF_BENCH_CACHE:-/var/tmp/kf-bench}
MB=${KF_BENCH_MIRROR_MB:-512}
CLIENTS=${KF_BENCH_CLIENTS:-10}
SERVERS=${KF_BENCH_SERVERS-mirror nginx registry}
SCALING=${KF_BENCH_SCALING-10 100 500}
SCALING_MB=${KF_BENCH_SCALING_MB:-512}
NGINX_WORKERS=${KF_BENCH_NGINX_WORKERS:-auto}
NGINX_EXTRA=${KF_BENCH_NGINX_EXTRA:-}
has() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
ORDER=mirror
for n in nginx registry; do has "$n" && ORDER="$ORDER $n"; done

need="curl jq sha256sum gzip python3"
has registry && need="$need skopeo docker-registry"
has nginx && need="$need nginx"
for t in $need; do
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

# ---- the servers, same certificate ----
start_mirror() {
	MPORT=$(free_port)
	"$KFI" mirror serve "$SET/bundle" --listen "127.0.0.1:$MPORT" --state "$LAB/tls" \
		--ca-out "$LAB/ca.crt" --san 127.0.0.1 -q >"$LAB/mirror.log" 2>&1 &
	MPID=$!; pids+=("$MPID")
	wait_port "$MPORT"
}
start_mirror
PIDS_mirror=$MPID
if has nginx; then
	NPORT=$(free_port)
	mkdir -p "$LAB/nginx/tmp"
	cat >"$LAB/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $LAB/nginx/nginx.pid;
error_log $LAB/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
	default_type application/octet-stream;
	access_log off;
	client_body_temp_path $LAB/nginx/tmp/body;
	proxy_temp_path $LAB/nginx/tmp/proxy;
	fastcgi_temp_path $LAB/nginx/tmp/fastcgi;
	uwsgi_temp_path $LAB/nginx/tmp/uwsgi;
	scgi_temp_path $LAB/nginx/tmp/scgi;
	sendfile on;
	$NGINX_EXTRA
	server {
		listen 127.0.0.1:$NPORT ssl;
		ssl_certificate $LAB/tls/chain.crt;
		ssl_certificate_key $LAB/tls/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $L;
	}
}
EOF
	nginx -e "$LAB/nginx/error.log" -c "$LAB/nginx.conf" >"$LAB/nginx.log" 2>&1 &
	NGINX_MASTER=$!; pids+=("$NGINX_MASTER")
	wait_port "$NPORT"
fi
if has registry; then
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
	PIDS_registry=$!; pids+=("$PIDS_registry")
	wait_port "$RPORT"
	mkdir -p "$LAB/certs"; cp "$LAB/ca.crt" "$LAB/certs/ca.crt"
	echo "bench/mirror: pushing the set into docker-registry (skopeo, from the mirror)"
	for i in 1 2 3 4; do
		skopeo copy --quiet --src-cert-dir "$LAB/certs" --dest-cert-dir "$LAB/certs" \
			"docker://127.0.0.1:$MPORT/bench.local/img$i:1" "docker://127.0.0.1:$RPORT/bench.local/img$i:1" >/dev/null
	done
fi

# Every blob (configs and layers) of every image, as URL lists per server.
: >"$LAB/urls-mirror"; : >"$LAB/urls-nginx"; : >"$LAB/urls-registry"
total=0
layers=()
for i in 1 2 3 4; do
	d=$(jq -r --arg n "bench.local/img$i:1" '.manifests[] | select(.annotations."io.containerd.image.name" == $n) | .digest' "$L/index.json")
	m=$L/blobs/sha256/${d#sha256:}
	for b in $(jq -r '.config.digest, .layers[].digest' "$m"); do
		echo "url = \"https://127.0.0.1:$MPORT/v2/bench.local/img$i/blobs/$b\"" >>"$LAB/urls-mirror"
		echo "url = \"https://127.0.0.1:${NPORT:-0}/blobs/sha256/${b#sha256:}\"" >>"$LAB/urls-nginx"
		echo "url = \"https://127.0.0.1:${RPORT:-0}/v2/bench.local/img$i/blobs/$b\"" >>"$LAB/urls-registry"
		echo "output = \"/dev/null\"" | tee -a "$LAB/urls-mirror" "$LAB/urls-nginx" >>"$LAB/urls-registry"
		total=$((total + $(stat -c %s "$L/blobs/sha256/${b#sha256:}")))
		[ "$b" = "$(jq -r .config.digest "$m")" ] || layers+=("img$i/blobs/$b")
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
# hwm PID...: the largest peak RSS (kB); cpu PID...: user+system clock ticks
hwm() { local p m=0 v; for p in "$@"; do v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status"); [ "$v" -le "$m" ] || m=$v; done; echo "$m"; }
cpu() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
sys() { local p t=0; for p in "$@"; do t=$((t + $(awk '{print $15}' "/proc/$p/stat"))); done; echo "$t"; }

echo "bench/mirror: warm-up (page cache) ..."
CLIENTS_SAVE=$CLIENTS; CLIENTS=1
for n in $ORDER; do run "$n" >/dev/null; done
CLIENTS=$CLIENTS_SAVE
# nginx's workers serve, the master only watches them; all are up by now
! has nginx || PIDS_nginx=$(ps -o pid= --ppid "$NGINX_MASTER" | tr -d ' ' | tr '\n' ' ')
echo "bench/mirror: $CLIENTS clients x $((total / 1000000)) MB, one server after the other"
results=""
for n in $ORDER; do
	pid_var=PIDS_$n
	r0=$(hwm ${!pid_var})
	c0=$(cpu ${!pid_var})
	s0=$(sys ${!pid_var})
	t=$(run "$n")
	results="$results $n $t $(hwm ${!pid_var}) $r0 $(( $(cpu ${!pid_var}) - c0 )) $(( $(sys ${!pid_var}) - s0 ))"
done
python3 - "$total" "$CLIENTS" "$(getconf CLK_TCK)" $results <<'EOF'
import sys
total, clients, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
a = sys.argv[4:]
rows = {a[i]: (float(a[i + 1]), int(a[i + 2]), int(a[i + 3]), int(a[i + 4]) / hz,
               int(a[i + 5]) / hz)
        for i in range(0, len(a), 6)}
mb = total * clients / 1e6
label = {"mirror": "mirror serve", "nginx": "nginx (TLS)", "registry": "docker-registry"}
# CPU seconds per GB sent: the server's own cost, less shaken by what else
# runs on the machine than the wall-clock throughput.
for n, (t, rss, rss0, c, sy) in rows.items():
    print(f"{label[n] + ':':17s}{mb / t:8.1f} MB/s  ({t:.2f} s)  CPU {c / (mb / 1e3):5.2f} s/GB "
          f"({sy / (mb / 1e3):4.2f} system)  "
          f"peak RSS {rss / 1024:6.1f} MiB (after warm-up {rss0 / 1024:.1f})")
tm, rm, cm = rows["mirror"][0], rows["mirror"][1], rows["mirror"][3]
if "nginx" in rows:
    r = rows['nginx'][0] / tm
    print(f"throughput ratio mirror/nginx:    {r:.2f}x (goal >= 1.00x, issue 13): {'met' if r >= 1.0 else 'missed'}")
    print(f"CPU per byte, nginx/mirror:       {rows['nginx'][3] / cm:.2f}x (> 1: the mirror spends less)")
if "registry" in rows:
    r = rows['registry'][0] / tm
    print(f"throughput ratio mirror/registry: {r:.2f}x (goal >= 1.00x, issue 4): {'met' if r >= 1.0 else 'missed'}")
    r = rm / rows['registry'][1]
    print(f"peak RSS ratio mirror/registry:   {r:.2f}x (goal < 1.00x, issue 4): {'met' if r < 1.0 else 'missed'}")
EOF

# ---- scaling: the mirror alone at N concurrent clients ----
# N connections at once (curl --parallel; at most 50 curl processes, as
# one process per connection would measure 500 processes, not the server);
# each fetches an equal Range share of SCALING_MB, spread over the blobs.
scale_row() {
	local n=$1 share per procs p i cps=() t0 t1 got want
	share=$((SCALING_MB * 1000000 / n))
	procs=$(( n < 50 ? n : 50 ))
	for p in $(seq 0 $((procs - 1))); do : >"$LAB/scale-$p"; done
	want=0
	for i in $(seq 0 $((n - 1))); do
		local b=${layers[$((i % ${#layers[@]}))]} f sz from
		f=$L/blobs/sha256/${b##*sha256:}
		sz=$(stat -c %s "$f")
		per=$share; [ "$per" -le "$sz" ] || per=$sz
		from=$(( (i / ${#layers[@]}) * per % (sz - per + 1) ))
		# one operation each ("next" between them): curl's options are
		# per operation
		[ ! -s "$LAB/scale-$((i % procs))" ] || echo next >>"$LAB/scale-$((i % procs))"
		printf 'url = "https://127.0.0.1:%s/v2/bench.local/%s"\nrange = "%s-%s"\noutput = "/dev/null"\ncacert = "%s"\nfail\nsilent\nshow-error\nwrite-out = "%%{size_download}\\n"\n' \
			"$MPORT" "$b" "$from" $((from + per - 1)) "$LAB/ca.crt" >>"$LAB/scale-$((i % procs))"
		want=$((want + per))
	done
	c0=$(cpu "$MPID")
	t0=$(date +%s.%N)
	for p in $(seq 0 $((procs - 1))); do
		# stderr: curl's parallel progress meter is not per operation
		curl --parallel --parallel-immediate --parallel-max 100 -K "$LAB/scale-$p" \
			>"$LAB/scale-out-$p" 2>"$LAB/scale-err-$p" &
		cps+=($!)
	done
	for p in "${cps[@]}"; do
		wait "$p" || { grep -a 'curl:' "$LAB"/scale-err-* | head -5 >&2; echo "bench/mirror: a scaling client failed" >&2; exit 3; }
	done
	t1=$(date +%s.%N)
	got=$(cat "$LAB"/scale-out-* | awk '{s += $1} END {printf "%.0f\n", s}')
	rm -f "$LAB"/scale-out-*
	[ "$got" = "$want" ] || { echo "bench/mirror: $n clients got $got bytes, want $want" >&2; exit 3; }
	python3 - "$n" "$want" "$t1" "$t0" "$(hwm "$MPID")" "$(( $(cpu "$MPID") - c0 ))" "$(getconf CLK_TCK)" <<'EOF'
import sys
n, b, t, r, c = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) - float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]) / int(sys.argv[7])
print(f"| {n:4d} | {b / 1e6:5.0f} MB | {t:6.2f} s | {b / 1e6 / t:7.1f} MB/s | {c / (b / 1e9):5.2f} s/GB | {r / 1024:6.1f} MiB |")
EOF
}
if [ -n "$SCALING" ]; then
	echo "bench/mirror: scaling, the mirror alone (fresh server per row)"
	echo "| clients | volume | time | throughput | mirror CPU | peak RSS |"
	echo "|---|---|---|---|---|---|"
	for n in $SCALING; do
		kill "$MPID"; wait "$MPID" 2>/dev/null || true
		start_mirror
		scale_row "$n"
	done
fi
echo "bench/mirror: reproduce with: KF_BUILD=$KF_BUILD bash bench/mirror.sh   (or make bench, pattern mirror: bench/run mirror)"
