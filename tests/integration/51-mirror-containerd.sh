#!/usr/bin/env bash
# containerd 1.6 pulls registry.k8s.io/pause and a docker.io image through
# hosts.toml files written by `kubeferry-install mirror hosts`, over TLS with
# the mirror's generated CA, with nothing but the mirror to answer.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/oci.sh"
need containerd ctr runc jq sha256sum tar gzip curl
[ "$(id -u)" = 0 ] || { echo "skip: containerd needs root"; exit 77; }

# ---- an unpacked bundle with two hand-written two-platform images ----
B=$LAB/bundle
L=$B/images
mkdir -p "$B/files"
oci_layout "$L"
entries=""
read -r mt PAUSE sz < <(oci_image pause oci)
entries="$entries$(jq -cn --arg mt "$mt" --arg d "$PAUSE" --argjson s "$sz" \
	'{mediaType:$mt,digest:$d,size:$s,annotations:{"io.containerd.image.name":"registry.k8s.io/pause:3.10","org.opencontainers.image.ref.name":"registry.k8s.io/pause:3.10"}}'),"
read -r mt BUSY sz < <(oci_image busybox docker)
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
containerd_start "$C"
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
