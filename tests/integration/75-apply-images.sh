#!/usr/bin/env bash
# A bundle with images (pulled by kubeferry build from a lab registry):
# apply pins its pause image as sandbox and installs its hosts.toml; the
# control plane runs the mirror (mirror install's unit command), a
# worker applied with --mirror + the printed fingerprint gets hosts.toml and
# CA pointing there, and containerd pulls the pause image through exactly
# those files from `kubeferry-install mirror serve`. --no-mirror imports
# the images instead: the tar apply writes is imported by ctr.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
source "$ROOT/tests/oci.sh"
need containerd ctr runc gzip tar openssl /usr/bin/etcd /usr/lib/cni/bridge
[ "$(id -u)" = 0 ] || { echo "skip: containerd needs root"; exit 77; }
images_lab

HOME=$LAB/home KF=$KF KF_TEST_IMAGES="registry.k8s.io/pause:3.10" \
	bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --mirror https://mirror.invalid:5443
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
PAUSE=$(upstream_digest "127.0.0.1:$UP_PORT/pause:3.10")

note "control plane: sandbox image and hosts.toml from the bundle"
R=$LAB/cp
mkdir -p "$R/etc" "$R/var/lib"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role control-plane --root "$R" --node-ip 127.0.0.1 --hostname cp1
! grep -q 'holds no pause image' "$LAB/out" || fail "pause image not found in the lock"
grep -qx '  sandbox_image = "registry.k8s.io/pause:3.10"' "$R/etc/containerd/config.toml" || fail "sandbox image"
BD=$R/var/lib/kubeferry/bundles/k8s-test-1.33.3
cmp "$R/etc/containerd/certs.d/registry.k8s.io/hosts.toml" "$BD/certs.d/registry.k8s.io/hosts.toml" ||
	fail "bundle hosts.toml not installed"
grep -q 'mirror.invalid:5443' "$R/etc/containerd/certs.d/registry.k8s.io/hosts.toml" || fail "build-time mirror lost"

note "mirror install on the control plane, serving its bundle"
port=$(kf_free_port)
expect_exit 0 "$KFI" mirror install --root "$R" --listen "127.0.0.1:$port"
fp=$(sed -n 's/^mirror CA fingerprint (sha256): //p' "$LAB/out")
T=$R/var/lib/kubeferry/mirror-tls
# kubeferry-mirror.service's own command, its absolute paths moved under
# the root: plain `mirror serve` on the generated material.
read -ra unitcmd <<<"$(sed -n 's/^ExecStart=//p' "$R/etc/systemd/system/kubeferry-mirror.service")"
cmd=("$KFI")
for a in "${unitcmd[@]:1}"; do
	case $a in /*) cmd+=("$R$a") ;; *) cmd+=("$a") ;; esac
done
kf_bg "${cmd[@]}" --root "$R" >"$LAB/mirror.log" 2>&1
kf_wait_port "$port" 20

note "worker with --mirror and the printed fingerprint"
W=$LAB/w
mkdir -p "$W/etc" "$W/var/lib"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$W" --node-ip 127.0.0.2 --hostname w1 \
	--mirror "127.0.0.1:$port" --mirror-ca-fingerprint "$fp"
H=$W/etc/containerd/certs.d/registry.k8s.io/hosts.toml
grep -q "^server = \"https://127.0.0.1:$port\"" "$H" || fail "hosts.toml server: $(cat "$H")"
grep -q "\[host.\"https://127.0.0.1:$port\"\]" "$H" || fail "hosts.toml host table"
grep -q 'ca = "/etc/kubeferry/mirror-ca.crt"' "$H" || fail "hosts.toml ca"
! grep -q mirror.invalid "$H" || fail "build-time mirror still there"
cmp "$W/etc/kubeferry/mirror-ca.crt" "$T/ca.crt" || fail "pinned CA differs from the mirror's"

note "containerd pulls through the worker's hosts.toml from the mirror"
# The hosts.toml names the CA by its path on the node; here the node is a
# root directory, so the copy given to ctr points into it.
mkdir -p "$LAB/hosts/registry.k8s.io"
sed "s|\"/etc/kubeferry/mirror-ca.crt\"|\"$W/etc/kubeferry/mirror-ca.crt\"|" "$H" >"$LAB/hosts/registry.k8s.io/hosts.toml"
C=$LAB/ctrd
containerd_start "$C" "$W/usr/local/bin/containerd"
CTR=("$W/usr/local/bin/ctr" -a "$C/c.sock" -n k8s.io)
expect_exit 0 "${CTR[@]}" images pull --hosts-dir "$LAB/hosts" registry.k8s.io/pause:3.10
got=$("${CTR[@]}" images ls | awk '$1 == "registry.k8s.io/pause:3.10" {print $3}')
assert_eq "$got" "$PAUSE" "pulled pause digest"
grep -q 'pause/manifests/3.10?ns=registry.k8s.io' "$LAB/mirror.log" || { cat "$LAB/mirror.log"; fail "the mirror did not serve the pull"; }

note "--no-mirror: the images are imported instead"
N=$LAB/nomirror
mkdir -p "$N/etc" "$N/var/lib"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$N" --node-ip 127.0.0.3 --hostname n1 --no-mirror
expect_output '^plan +run /usr/local/bin/ctr -n k8s.io images import /var/lib/kubeferry/bundles/k8s-test-1.33.3.images.tar$'
assert_absent "$N/etc/containerd/certs.d"
TAR=$N/var/lib/kubeferry/bundles/k8s-test-1.33.3.images.tar
tar -tf "$TAR" | has -x index.json || fail "images tar lacks index.json"
"${CTR[@]}" images rm registry.k8s.io/pause:3.10 >/dev/null
"$N/usr/local/bin/ctr" -a "$C/c.sock" -n k8s.io images import "$TAR" >/dev/null ||
	fail "ctr cannot import the tar apply wrote"
got=$("${CTR[@]}" images ls | awk '$1 == "registry.k8s.io/pause:3.10" {print $3}')
assert_eq "$got" "$PAUSE" "imported pause digest"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$N" --node-ip 127.0.0.3 --hostname n1 --no-mirror
expect_output ' changed=0 failed=0$'
note "a link left at the tar's temporary name is replaced, not written through"
printf 'victim\n' >"$LAB/victim"
rm "$TAR"
ln -s "$LAB/victim" "$TAR.kf-tmp"
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$N" --node-ip 127.0.0.3 --hostname n1 --no-mirror
assert_eq "$(cat "$LAB/victim")" victim "file behind the link"
tar -tf "$TAR" | has -x index.json || fail "images tar not rewritten"
assert_absent "$TAR.kf-tmp"
echo "image checks passed"
