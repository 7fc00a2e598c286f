#!/usr/bin/env bash
# addons/flannel.yaml: kubeferry build renders the flannel CNI manifest
# from its own template when the spec (cni: flannel, the default) lists the
# flannel and flannel-cni-plugin images, with exactly those references and
# the spec's podSubnet; the file is listed in the signed lock, valid YAML,
# reproducible, and `cluster init` plans to apply it. cni: none, or missing
# images, give no addon (the latter with a warning).
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
need python3 zstd tar gzip openssl /usr/bin/containerd /usr/sbin/runc /usr/bin/etcd /usr/lib/cni/bridge
python3 -c 'import yaml' 2>/dev/null || { echo "skip: python3-yaml not installed"; exit 77; }
images_lab

FL=docker.io/flannel/flannel:v0.27.3
CP=docker.io/flannel/flannel-cni-plugin:v1.7.1-flannel1
note "the lab registry gets the two flannel images (from the test layouts)"
skopeo copy -q --all --dest-tls-verify=false --dest-creds kfuser:kfpass \
	"oci:$LAB/layouts/single:single" "docker://127.0.0.1:$UP_PORT/flannel/flannel:v0.27.3"
skopeo copy -q --all --dest-tls-verify=false --dest-creds kfuser:kfpass \
	"oci:$LAB/layouts/pause:pause" "docker://127.0.0.1:$UP_PORT/flannel/flannel-cni-plugin:v1.7.1-flannel1"

"$KF" keygen -W -s "$LAB/kf.key" -p "$LAB/kf.pub" >/dev/null
mkdir -p "$LAB/s/src"
printf 'a small local artifact\n' >"$LAB/s/src/tool"
TOOL_SHA=$(sha256sum "$LAB/s/src/tool" | cut -d' ' -f1)

# spec NAME INSTALL IMAGES...: a small spec with one local file source.
spec() {
	local name=$1 install=$2 i
	shift 2
	{
		printf 'apiVersion: kubeferry.io/v1\nkind: Bundle\n'
		printf 'metadata: {name: addons-test, version: "1.0.0"}\n'
		printf 'spec:\n  architectures: [amd64]\n'
		printf '  components:\n    - name: tool\n      version: "1"\n'
		printf '      url: src/tool\n      sha256: {amd64: %s}\n' "$TOOL_SHA"
		[ -z "$install" ] || printf '  install: %s\n' "$install"
		if [ $# -gt 0 ]; then
			printf '  images:\n'
			for i in "$@"; do printf '    - ref: %s\n' "$i"; done
		fi
	} >"$LAB/s/$name.yaml"
}

build() { # SPEC OUT
	HOME=$LAB/home "$KF" build "$LAB/s/$1.yaml" -s "$LAB/kf.key" -o "$2" --level 1 \
		--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --rewrite "docker.io=127.0.0.1:$UP_PORT"
}

lock_of() { tar -I zstd -xOf "$1" kubeferry/bundle.yaml; }

note "lint: cni none is accepted, another CNI is a spec error naming the line"
spec none '{cni: none}'
expect_exit 0 "$KF" lint "$LAB/s/none.yaml"
spec calico '{cni: calico}'
expect_exit 2 "$KF" lint "$LAB/s/calico.yaml"
expect_output 'calico\.yaml:11:18: install\.cni must be "flannel" or "none", not "calico"'

note "cni flannel (default) with both images: addons/flannel.yaml in the bundle"
spec fl '{podSubnet: 10.42.0.0/16}' "$CP" "$FL"
expect_exit 0 build fl "$LAB/fl.tar.zst"
! grep -q 'warning' "$LAB/out" || fail "warning with both images present"
lock_of "$LAB/fl.tar.zst" >"$LAB/fl.lock"
python3 - "$LAB/fl.lock" <<'EOF' || fail "lock entry for addons/flannel.yaml"
import sys, yaml
lock = yaml.safe_load(open(sys.argv[1]))
e = [x for x in lock["entries"] if x["path"] == "addons/flannel.yaml"]
assert len(e) == 1 and e[0]["mode"] == "0644", e
EOF
expect_exit 0 "$KFI" unpack "$LAB/fl.tar.zst" -p "$LAB/kf.pub" -d "$LAB/fl"
A=$LAB/fl/addons/flannel.yaml
[ -f "$A" ] || fail "addons/flannel.yaml not unpacked"
assert_eq "$(stat -c %a "$A")" 644 "addon mode"
python3 - "$A" "$FL" "$CP" 10.42.0.0/16 <<'EOF' || fail "rendered manifest"
import json, sys, yaml
path, fl, cp, net = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = [d["kind"] for d in docs]
assert kinds == ["Namespace", "ServiceAccount", "ClusterRole",
                 "ClusterRoleBinding", "ConfigMap", "DaemonSet"], kinds
for d in docs[1:]:
    if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
        assert d["metadata"]["namespace"] == "kube-flannel", d["metadata"]
cm = docs[4]
assert cm["metadata"]["name"] == "kube-flannel-cfg"
netconf = json.loads(cm["data"]["net-conf.json"])
assert netconf == {"Network": net, "Backend": {"Type": "vxlan"}}, netconf
cni = json.loads(cm["data"]["cni-conf.json"])
assert cni["name"] == "cbr0" and [p["type"] for p in cni["plugins"]] == ["flannel", "portmap"], cni
ds = docs[5]
assert ds["metadata"]["name"] == "kube-flannel-ds"
pod = ds["spec"]["template"]["spec"]
assert pod["hostNetwork"] is True and pod["priorityClassName"] == "system-node-critical"
assert pod["serviceAccountName"] == "flannel"
init = {c["name"]: c for c in pod["initContainers"]}
assert init["install-cni-plugin"]["image"] == cp, init
assert init["install-cni"]["image"] == fl, init
assert init["install-cni"]["args"][-1] == "/etc/cni/net.d/10-flannel.conflist"
(main,) = pod["containers"]
assert main["name"] == "kube-flannel" and main["image"] == fl, main
assert main["command"] == ["/opt/bin/flanneld"] and "--kube-subnet-mgr" in main["args"]
assert set(main["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
assert [e["name"] for e in main["env"]] == ["POD_NAME", "POD_NAMESPACE", "EVENT_QUEUE_DEPTH"]
vols = {v["name"]: v for v in pod["volumes"]}
assert vols["xtables-lock"]["hostPath"] == {"path": "/run/xtables.lock", "type": "FileOrCreate"}
assert vols["flannel-cfg"]["configMap"]["name"] == "kube-flannel-cfg"
imgs = {c["image"] for c in pod["initContainers"] + pod["containers"]}
assert imgs == {fl, cp}, imgs
EOF
# Both references are images the bundle carries, so nodes get them
# through the mirror.
for r in "$FL" "$CP"; do
	grep -qx "  - ref: \"$r\"" "$LAB/fl.lock" || fail "$r not in the lock's images"
done

note "reproducible: a second build is byte-identical"
expect_exit 0 build fl "$LAB/fl2.tar.zst"
cmp "$LAB/fl.tar.zst" "$LAB/fl2.tar.zst" || fail "bundles differ"

note "cni none: no addon"
spec none '{cni: none}' "$CP" "$FL"
expect_exit 0 build none "$LAB/none.tar.zst"
! lock_of "$LAB/none.tar.zst" | has addons/ || fail "cni none bundle has addons"
expect_exit 0 "$KFI" verify "$LAB/none.tar.zst" -p "$LAB/kf.pub"

note "flannel without the CNI plugin image: a warning, no addon, success"
spec half '' "$FL"
expect_exit 0 build half "$LAB/half.tar.zst"
expect_output 'warning: .*half\.yaml: install\.cni is flannel but the spec lists no \.\.\./flannel/flannel-cni-plugin image'
! lock_of "$LAB/half.tar.zst" | has addons/ || fail "half bundle has addons"

note "two flannel images: a spec error naming the second, no bundle"
skopeo copy -q --all --dest-tls-verify=false --dest-creds kfuser:kfpass \
	"oci:$LAB/layouts/single:single" "docker://127.0.0.1:$UP_PORT/flannel/flannel:v0.26.0"
spec two '' "$CP" "$FL" docker.io/flannel/flannel:v0.26.0
expect_exit 2 build two "$LAB/two.tar.zst"
expect_output 'two\.yaml:[0-9]+:[0-9]+: second flannel/flannel image "docker\.io/flannel/flannel:v0\.26\.0"'
[ ! -e "$LAB/two.tar.zst" ] || fail "bundle written despite the error"
[ -z "$(ls -d "$LAB"/two.tar.zst.* 2>/dev/null)" ] || fail "leftovers: $(ls -d "$LAB"/two.tar.zst.*)"

note "cluster init on a node applies the bundle's addon"
HOME=$LAB/home KF=$KF KF_TEST_IMAGES="$FL $CP" bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b" \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --rewrite "docker.io=127.0.0.1:$UP_PORT"
R=$LAB/cp
mkdir -p "$R/etc" "$R/var/lib"
echo cp1 >"$R/etc/hostname"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role control-plane \
	--root "$R" --node-ip 10.0.0.5
BD=/var/lib/kubeferry/bundles/k8s-test-1.33.3
grep -q '"Network": "10.244.0.0/16"' "$R$BD/addons/flannel.yaml" || fail "node addon: pod subnet"
expect_exit 0 "$KFI" cluster init --root "$R"
expect_output "^plan +run /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f $BD/addons/flannel.yaml\$"
! grep -q 'has no addons' "$LAB/out" || fail "init warned about missing addons"
assert_absent "$R/etc/kubernetes/addons/flannel.yaml"

note "EL10: flannel with EnableNFTables, from a copy of the bundle's manifest (issue 10, point 2)"
R10=$LAB/el10
mkdir -p "$R10/etc" "$R10/var/lib" "$R10/proc/sys/kernel"
printf 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="10.0"\n' >"$R10/etc/os-release"
echo 6.12.0-55.9.1.el10_0.x86_64 >"$R10/proc/sys/kernel/osrelease"
echo cp1 >"$R10/etc/hostname"
expect_exit 0 "$KFI" apply "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" --role control-plane \
	--root "$R10" --node-ip 10.0.0.5
expect_exit 0 "$KFI" cluster init --root "$R10"
expect_output "^plan +run /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/addons/flannel.yaml\$"
python3 - "$R10/etc/kubernetes/addons/flannel.yaml" "$R10$BD/addons/flannel.yaml" <<'EOF' || fail "EL10 flannel manifest"
import json, sys, yaml
nft, orig = ([d for d in yaml.safe_load_all(open(p)) if d] for p in sys.argv[1:])
netconf = json.loads([d for d in nft if d["kind"] == "ConfigMap"][0]["data"]["net-conf.json"])
assert netconf == {"Network": "10.244.0.0/16", "EnableNFTables": True, "Backend": {"Type": "vxlan"}}, netconf
# Nothing else differs from the bundle's manifest.
for docs in (nft, orig):
    for d in docs:
        if d["kind"] == "ConfigMap":
            d["data"]["net-conf.json"] = "x"
assert nft == orig
EOF
echo "addons checks passed"
