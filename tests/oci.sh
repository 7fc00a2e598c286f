# Hand-written OCI image layouts and a throwaway containerd, for the tests
# that serve or pull images without any network. Source after lib.sh.

# oci_layout DIR: start an empty image layout at DIR; later oci_* calls
# store their blobs there.
oci_layout() {
	OCI_L=$1
	mkdir -p "$OCI_L/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$OCI_L/oci-layout"
}

# oci_put FILE: store FILE as a blob, print its digest
oci_put() {
	local h
	h=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$OCI_L/blobs/sha256/$h"
	echo "sha256:$h"
}
oci_size() { stat -c %s "$1"; }

# oci_image NAME oci|docker [EXTRA_BYTES [BASE]]: a two-platform image
# (amd64, arm64) built under $LAB/img-NAME; prints "mediaType digest size"
# of its index. EXTRA_BYTES of random data go into the amd64 layer; BASE
# names a layer (BASE.tar and BASE.tgz) put under each platform's own.
oci_image() {
	local name=$1 style=$2 extra=${3:-0} base=${4:-} arch w=$LAB/img-$1 mt_m mt_i mt_c mt_l ents=""
	if [ "$style" = oci ]; then
		mt_m=application/vnd.oci.image.manifest.v1+json
		mt_i=application/vnd.oci.image.index.v1+json
		mt_c=application/vnd.oci.image.config.v1+json
		mt_l=application/vnd.oci.image.layer.v1.tar+gzip
	else
		mt_m=application/vnd.docker.distribution.manifest.v2+json
		mt_i=application/vnd.docker.distribution.manifest.list.v2+json
		mt_c=application/vnd.docker.container.image.v1+json
		mt_l=application/vnd.docker.image.rootfs.diff.tar.gzip
	fi
	for arch in amd64 arm64; do
		mkdir -p "$w/$arch/root"
		echo "$name for $arch" >"$w/$arch/root/hello"
		if [ "$extra" -gt 0 ] && [ "$arch" = amd64 ]; then head -c "$extra" /dev/urandom >"$w/$arch/root/big"; fi
		tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w/$arch/root" -cf "$w/$arch/layer.tar" .
		gzip -n -c "$w/$arch/layer.tar" >"$w/$arch/layer.tgz"
		local layers="" diffs="" l dc
		for l in ${base:+"$base"} "$w/$arch/layer"; do
			layers="$layers$(jq -cn --arg ml "$mt_l" --arg d "$(oci_put "$l.tgz")" --argjson s "$(oci_size "$l.tgz")" \
				'{mediaType:$ml,digest:$d,size:$s}'),"
			diffs="$diffs\"sha256:$(sha256sum <"$l.tar" | cut -d' ' -f1)\","
		done
		jq -cn --arg a "$arch" --argjson d "[${diffs%,}]" \
			'{architecture:$a,os:"linux",config:{Cmd:["/hello"]},rootfs:{type:"layers",diff_ids:$d}}' >"$w/$arch/config.json"
		dc=$(oci_put "$w/$arch/config.json")
		jq -cn --arg mm "$mt_m" --arg mc "$mt_c" --arg dc "$dc" --argjson cs "$(oci_size "$w/$arch/config.json")" \
			--argjson l "[${layers%,}]" \
			'{schemaVersion:2,mediaType:$mm,config:{mediaType:$mc,digest:$dc,size:$cs},layers:$l}' >"$w/$arch/manifest.json"
		ents="$ents$(jq -cn --arg mm "$mt_m" --arg d "$(oci_put "$w/$arch/manifest.json")" \
			--argjson s "$(oci_size "$w/$arch/manifest.json")" --arg a "$arch" \
			'{mediaType:$mm,digest:$d,size:$s,platform:{architecture:$a,os:"linux"}}'),"
	done
	jq -cn --arg mi "$mt_i" --argjson m "[${ents%,}]" '{schemaVersion:2,mediaType:$mi,manifests:$m}' >"$w/index.json"
	echo "$mt_i $(oci_put "$w/index.json") $(oci_size "$w/index.json")"
}

# containerd_start DIR [CONTAINERD]: containerd (without CRI) as a
# background process with all its state under DIR, socket DIR/c.sock;
# returns once it answers.
containerd_start() {
	local c=$1 bin=${2:-containerd}
	mkdir -p "$c"
	cat >"$c/config.toml" <<EOC
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$c/c.sock"
[ttrpc]
  address = "$c/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
EOC
	kf_bg "$bin" --config "$c/config.toml" >"$c/log" 2>&1
	for _ in $(seq 200); do [ -S "$c/c.sock" ] && break; sleep 0.1; done
	[ -S "$c/c.sock" ] || { cat "$c/log"; fail "containerd did not start"; }
	for _ in $(seq 100); do ctr -a "$c/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
}
