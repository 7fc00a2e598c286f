#!/usr/bin/env bash
# mirror kubespray-vars: the offline.yml it prints makes every download URL
# that Kubespray v2.29.1's offline templates produce for the bundle's
# versions answer 200 from `mirror serve` with the bundle's pinned sha256,
# for every architecture, and every image name formed from its
# *_image_repo variables resolve at the mirror. The templates come from
# the fact file tests/facts/kubespray-v2.29.1-checksums.yaml (taken from
# Kubespray's inventory/sample/group_vars/all/offline.yml).
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/nginx/lab.sh"
source "$ROOT/tests/registry/lib.sh"
need zstd tar skopeo python3 curl
fetch_lab_start
images_lab
W=https://127.0.0.1:$TLS_PORT
FACTS=$ROOT/tests/facts/kubespray-v2.29.1-checksums.yaml
kf_keypair "$LAB/k"

note "a bundle shaped like manifests/k8s-1.33.yaml, amd64 and arm64, with images"
shipped_spec_like 2000
cat >>"$LAB/spec.yaml" <<'EOF'
  images:
    - ref: registry.k8s.io/pause:3.10
    - ref: docker.io/library/nginx:1.28.0-alpine
EOF
HOME=$LAB/home "$KF" build "$LAB/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/k8s.tar.zst" -q \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --level 1 \
	--rewrite "https://dl.k8s.io=$W/dl.k8s.io" --rewrite "https://github.com=$W/github.com" \
	--rewrite "https://get.helm.sh=$W/get.helm.sh" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --rewrite "docker.io=127.0.0.1:$UP_PORT" \
	>"$LAB/build.log" 2>&1 || { cat "$LAB/build.log"; fail "build failed"; }
expect_exit 0 "$KFI" unpack "$LAB/k8s.tar.zst" -p "$LAB/k/kf.pub" -d "$LAB/b" -q

note "mirror serve on the unpacked bundle"
PORT=$(kf_free_port)
kf_bg "$KFI" mirror serve "$LAB/b" --listen "127.0.0.1:$PORT" --san 127.0.0.1 \
	--state "$LAB/mtls" --ca-out "$LAB/mirror-ca.crt" -q >"$LAB/mirror.log" 2>&1
kf_wait_port "$PORT" 30

note "kubespray-vars: refused input"
expect_exit 2 "$KFI" mirror kubespray-vars "$LAB/k8s.tar.zst" -p "$LAB/k/kf.pub"
expect_exit 2 "$KFI" mirror kubespray-vars "$LAB/k8s.tar.zst" -p "$LAB/k/kf.pub" --mirror '127.0.0.1:5443"x'
expect_output 'not HOST:PORT'
kf_keypair "$LAB/other"
expect_exit 1 "$KFI" mirror kubespray-vars "$LAB/k8s.tar.zst" -p "$LAB/other/kf.pub" --mirror "127.0.0.1:$PORT"

note "kubespray-vars: the offline.yml"
expect_exit 0 "$KFI" mirror kubespray-vars "$LAB/k8s.tar.zst" -p "$LAB/k/kf.pub" --mirror "127.0.0.1:$PORT"
cp "$LAB/out" "$LAB/offline.yml"
cat "$LAB/offline.yml"

# Render Kubespray's offline templates with the printed variables, the way
# Ansible would (only the few filters the templates use), for each arch;
# print "URL SHA256" for every download and "IMAGE" for every image name.
python3 - "$FACTS" "$LAB/offline.yml" "$LAB/k8s.tar.zst" >"$LAB/checks" <<'PY'
import re, subprocess, sys, yaml
facts = yaml.safe_load(open(sys.argv[1]))
off = yaml.safe_load(open(sys.argv[2]))
lock = yaml.safe_load(subprocess.run(["sh", "-c", "zstd -dc '%s' | tar -xO kubeferry/bundle.yaml" % sys.argv[3]],
                                     check=True, capture_output=True).stdout)
def render(t, env):
    def one(m):
        expr = m.group(1).strip()
        if expr == "ansible_system | lower":
            return "linux"
        if expr not in env:
            raise SystemExit("template needs %r, which offline.yml does not set" % expr)
        return str(env[expr])
    for _ in range(3):  # variables that hold templates (registry_host)
        t = re.sub(r"\{\{(.*?)\}\}", one, t)
    return t
# The variable each of our components' offline template is bound to.
names = {"kubeadm": "kubeadm", "kubelet": "kubelet", "kubectl": "kubectl",
         "containerd": "containerd", "runc": "runc", "etcd": "etcd",
         "cni-plugins": "cni_plugins", "crictl": "crictl", "helm": "helm"}
url_vars = {"kubeadm": "kubeadm_download_url", "kubelet": "kubelet_download_url",
            "kubectl": "kubectl_download_url", "containerd": "containerd_download_url",
            "runc": "runc_download_url", "etcd": "etcd_download_url",
            "cni-plugins": "cni_download_url", "crictl": "crictl_download_url",
            "helm": "helm_download_url"}
seen = set()
for c in lock["components"]:
    env = dict(off, image_arch=c["arch"])
    fact = facts["components"][names[c["name"]]]
    # Kubespray's own template, and the variable offline.yml sets.
    for t in (fact["offline_url_template"], off[url_vars[c["name"]]]):
        print("%s %s" % (render(t, env), c["sha256"]))
    # The checksum table Kubespray verifies with holds the pin.
    table = off[fact["checksum_table"]][c["arch"]]
    assert table[c["version"]] == "sha256:" + c["sha256"], (c["name"], table)
    seen.add(c["name"])
assert seen == set(names), seen
repos = {"registry.k8s.io": "kube_image_repo", "docker.io": "docker_image_repo",
         "quay.io": "quay_image_repo", "ghcr.io": "github_image_repo", "gcr.io": "gcr_image_repo"}
for i in lock["images"]:
    reg, rest = i["ref"].split("/", 1)
    print("IMAGE " + render("{{ %s }}/%s" % (repos[reg], rest), off))
PY
assert_eq "$(grep -vc '^IMAGE' "$LAB/checks")" 36 "download URLs checked (9 components x 2 arches x 2 templates)"
while read -r url want; do
	[ "$url" = IMAGE ] && continue
	case $url in "https://127.0.0.1:$PORT/files/"*) ;; *) fail "not a mirror URL: $url" ;; esac
	got=$(curl -fsS --cacert "$LAB/mirror-ca.crt" "$url" | sha256sum | cut -d' ' -f1) ||
		fail "the mirror does not serve $url"
	assert_eq "$got" "$want" "sha256 of $url"
done <"$LAB/checks"

note "every image name Kubespray would form resolves at the mirror"
mkdir -p "$LAB/certs"
cp "$LAB/mirror-ca.crt" "$LAB/certs/ca.crt"
assert_eq "$(grep -c '^IMAGE' "$LAB/checks")" 2 "images checked"
while read -r tag img; do
	[ "$tag" = IMAGE ] || continue
	case $img in "127.0.0.1:$PORT/"*) ;; *) fail "not a mirror image name: $img" ;; esac
	skopeo inspect --raw --cert-dir "$LAB/certs" "docker://$img" >"$LAB/manifest.json" ||
		fail "the mirror does not resolve $img"
	has mediaType "$LAB/manifest.json" || fail "no manifest for $img"
done <"$LAB/checks"
echo "kubespray vars ok"
