#!/usr/bin/env bash
# containerd 1.6 pulls registry.k8s.io/pause and a docker.io image through
# hosts.toml files written by `kubeferry-install mirror hosts`, over TLS with
# the mirror's generated CA, with nothing but the mirror to answer.
source "$(dirname "$0")/../lib.sh"
need containerd ctr runc jq sha256sum tar gzip curl
[ "$(id -u)" = 0 ] || { echo "skip: containerd needs root"; exit 77; }

# ---- an unpacked bundle with two hand-written two-platform images ----
B=$LAB/bundle
L=$B/images
mkdir -p "$L/blobs/sha256" "$B/files"
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
put() {
	local h
	h=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$L/blobs/sha256/$h"
	echo "sha256:$h"
}
size() { stat -c %s "$1"; }
# image NAME oci|docker: prints "mediaType digest size" of its index
image() {
	local name=$1 style=$2 arch w=$LAB/img-$1 mt_m mt_i mt_c mt_l ents=""
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
		tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w/$arch/root" -cf "$w/$arch/layer.tar" .
		gzip -n -c "$w/$arch/layer.tar" >"$w/$arch/layer.tgz"
		local dl dc
		dl=$(put "$w/$arch/layer.tgz")
		jq -cn --arg a "$arch" --arg d "sha256:$(sha256sum <"$w/$arch/layer.tar" | cut -d' ' -f1)" \
			'{architecture:$a,os:"linux",config:{Cmd:["/hello"]},rootfs:{type:"layers",diff_ids:[$d]}}' >"$w/$arch/config.json"
		dc=$(put "$w/$arch/config.json")
		jq -cn --arg mm "$mt_m" --arg mc "$mt_c" --arg ml "$mt_l" \
			--arg dc "$dc" --argjson cs "$(size "$w/$arch/config.json")" \
			--arg dl "$dl" --argjson ls "$(size "$w/$arch/layer.tgz")" \
			'{schemaVersion:2,mediaType:$mm,config:{mediaType:$mc,digest:$dc,size:$cs},layers:[{mediaType:$ml,digest:$dl,size:$ls}]}' \
			>"$w/$arch/manifest.json"
		ents="$ents$(jq -cn --arg mm "$mt_m" --arg d "$(put "$w/$arch/manifest.json")" \
			--argjson s "$(size "$w/$arch/manifest.json")" --arg a "$arch" \
			'{mediaType:$mm,digest:$d,size:$s,platform:{architecture:$a,os:"linux"}}'),"
	done
	jq -cn --arg mi "$mt_i" --argjson m "[${ents%,}]" '{schemaVersion:2,mediaType:$mi,manifests:$m}' >"$w/index.json"
	echo "$mt_i $(put "$w/index.json") $(size "$w/index.json")"
}
entries=""
read -r mt PAUSE sz < <(image pause oci)
entries="$entries$(jq -cn --arg mt "$mt" --arg d "$PAUSE" --argjson s "$sz" \
	'{mediaType:$mt,digest:$d,size:$s,annotations:{"io.containerd.image.name":"registry.k8s.io/pause:3.10","org.opencontainers.image.ref.name":"registry.k8s.io/pause:3.10"}}'),"
read -r mt BUSY sz < <(image busybox docker)
entries="$entries$(jq -cn --arg mt "$mt" --arg d "$BUSY" --argjson s "$sz" \
	'{mediaType:$mt,digest:$d,size:$s,annotations:{"io.containerd.image.name":"docker.io/library/busybox:1.36","org.opencontainers.image.ref.name":"docker.io/library/busybox:1.36"}}')"
jq -n --argjson m "[$entries]" '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:$m}' >"$L/index.json"

# ---- the mirror, TLS with its generated CA ----
PORT=$(kf_free_port)
MIRROR=https://127.0.0.1:$PORT
kf_bg "$KFI" mirror serve "$B" --listen "127.0.0.1:$PORT" --root "$LAB/root" >"$LAB/mirror.log" 2>&1
kf_wait_port "$PORT" 30
CA=$LAB/root/etc/kubeferry/mirror-ca.crt
assert_file "$CA"

# ---- hosts.toml for both registries, written by kubeferry ----
expect_exit 0 "$KFI" mirror hosts --mirror "$MIRROR" --ca "$CA" --out "$LAB/certs.d" registry.k8s.io docker.io
assert_file "$LAB/certs.d/registry.k8s.io/hosts.toml"
assert_file "$LAB/certs.d/docker.io/hosts.toml"
grep -qx "server = \"$MIRROR\"" "$LAB/certs.d/docker.io/hosts.toml" || fail "server is not the mirror"
expect_exit 2 "$KFI" mirror hosts --mirror "$MIRROR" --out "$LAB/certs.d" ../evil
assert_absent "$LAB/evil"

# ---- containerd 1.6 as a plain background process under $LAB ----
C=$LAB/ctrd
mkdir -p "$C"
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/c.sock"
[ttrpc]
  address = "$C/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
kf_bg containerd --config "$C/config.toml" >"$C/log" 2>&1
for i in $(seq 200); do [ -S "$C/c.sock" ] && break; sleep 0.1; done
[ -S "$C/c.sock" ] || { cat "$C/log"; fail "containerd did not start"; }
for i in $(seq 100); do ctr -a "$C/c.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
CTR=(ctr -a "$C/c.sock" -n kf)

note "pull registry.k8s.io/pause through the mirror"
expect_exit 0 "${CTR[@]}" images pull --hosts-dir "$LAB/certs.d" registry.k8s.io/pause:3.10
assert_eq "$("${CTR[@]}" images ls -q | grep -c pause)" 1 "pause listed"
got=$("${CTR[@]}" images ls | awk '$1 == "registry.k8s.io/pause:3.10" {print $3}')
assert_eq "$got" "$PAUSE" "pause digest"
grep -q "GET /v2/pause/manifests/3.10?ns=registry.k8s.io 200\|HEAD /v2/pause/manifests/3.10?ns=registry.k8s.io 200" "$LAB/mirror.log" ||
	{ cat "$LAB/mirror.log"; fail "the mirror did not see ?ns=registry.k8s.io"; }

note "pull a docker.io image (library/, ?ns=docker.io), all platforms"
expect_exit 0 "${CTR[@]}" images pull --all-platforms --hosts-dir "$LAB/certs.d" docker.io/library/busybox:1.36
got=$("${CTR[@]}" images ls | awk '$1 == "docker.io/library/busybox:1.36" {print $3}')
assert_eq "$got" "$BUSY" "busybox digest"
grep -q "/v2/library/busybox/manifests/1.36?ns=docker.io 200" "$LAB/mirror.log" || fail "the mirror did not see ?ns=docker.io"
"${CTR[@]}" content ls -q >"$LAB/content"
for f in "$LAB"/img-busybox/index.json "$LAB"/img-busybox/*/{manifest.json,config.json,layer.tgz}; do
	d=sha256:$(sha256sum <"$f" | cut -d' ' -f1)
	grep -qx "$d" "$LAB/content" || fail "containerd lacks busybox blob $d"
done

note "an image the bundle lacks fails at the mirror, with no fallback elsewhere"
expect_exit 1 "${CTR[@]}" images pull --hosts-dir "$LAB/certs.d" registry.k8s.io/coredns:v1.0
expect_output "127.0.0.1:$PORT|not found"
grep -q "/v2/coredns/manifests/v1.0?ns=registry.k8s.io 404" "$LAB/mirror.log" || fail "missing image not asked of the mirror"

note "a mirror certificate from another CA is refused"
kf_ca "$LAB/other"
expect_exit 0 "$KFI" mirror hosts --mirror "$MIRROR" --ca "$LAB/other/ca.crt" --out "$LAB/certs2.d" registry.k8s.io
"${CTR[@]}" images rm registry.k8s.io/pause:3.10 >/dev/null
expect_exit 1 "${CTR[@]}" images pull --hosts-dir "$LAB/certs2.d" registry.k8s.io/pause:3.10
expect_output "certificate|x509"
echo "containerd pulled through the mirror"
