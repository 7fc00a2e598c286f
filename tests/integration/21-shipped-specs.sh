#!/usr/bin/env bash
# The shipped specs (manifests/k8s-*.yaml) against Kubespray's pinned data
# (tests/facts/kubespray-v2.29.1-checksums.yaml, kept in the repo): every URL
# template, sha256 and image must equal the data file's, Rocky 9 and 10
# carry admin: [ansible-core], and kubeferry lint must accept both specs. Deliberately altered copies of a spec and of the
# data file must be caught, proving the check itself works.
source "$(dirname "$0")/../lib.sh"
need python3
python3 -c 'import yaml' 2>/dev/null || { echo "skip: python3-yaml not installed"; exit 77; }

DATA=$ROOT/tests/facts/kubespray-v2.29.1-checksums.yaml
[ -f "$DATA" ] || fail "data file $DATA missing"

cat >"$LAB/check.py" <<'PY'
import sys, yaml

spec_path, data_path, kube, crictl = sys.argv[1:5]
spec = yaml.safe_load(open(spec_path))
data = yaml.safe_load(open(data_path))
errors = []

def err(msg):
    errors.append(msg)

comps = data["components"]
# component name in the spec -> (key in the data file, version)
want = {
    "kubeadm": ("kubeadm", kube), "kubelet": ("kubelet", kube),
    "kubectl": ("kubectl", kube), "containerd": ("containerd", "2.1.5"),
    "runc": ("runc", "1.3.4"), "etcd": ("etcd", "3.5.25"),
    "cni-plugins": ("cni_plugins", "1.8.0"), "crictl": ("crictl", crictl),
    "helm": ("helm", "3.18.4"),
}
if spec["apiVersion"] != "kubeferry.io/v1" or spec["kind"] != "Bundle":
    err("apiVersion/kind")
if spec["metadata"]["version"] != kube or spec["spec"].get("kubernetesVersion", kube) != kube:
    err("metadata.version/kubernetesVersion is not %s" % kube)
archs = spec["spec"]["architectures"]
if archs != ["amd64", "arm64"]:
    err("architectures %r" % archs)
# Rocky 9 and 10 carry the node set and the admin host's Ansible.
sets = {p["distro"]: p for p in spec["spec"].get("packages", [])}
for d in ("rocky-9", "rocky-10"):
    if d not in sets:
        err("packages: no %s set" % d)
    elif sets[d].get("admin") != ["ansible-core"]:
        err("packages %s: admin is %r, not [ansible-core]" % (d, sets[d].get("admin")))
seen = set()
for c in spec["spec"]["components"]:
    name = c["name"]
    seen.add(name)
    if name not in want:
        err("unexpected component %s" % name)
        continue
    key, ver = want[name]
    d = comps[key]
    if c["version"] != ver:
        err("%s: version %s, want %s" % (name, c["version"], ver))
    if c["url"] != d["url"]:
        err("%s: url %s, want %s" % (name, c["url"], d["url"]))
    sums = d["versions"].get(ver)
    if not sums:
        err("%s: version %s not in the data file" % (name, ver))
        continue
    if c["sha256"] != {a: sums[a] for a in archs}:
        err("%s: sha256 %r, want %r" % (name, c["sha256"], sums))
for name in want:
    if name not in seen:
        err("missing component %s" % name)

# images: everything the data file lists for 1.33.3 that is on by default,
# with the 1.32.10 differences applied for that release
imgs = data["images"]["kubernetes_1_33_3"]
expected = {k: v["image"] for k, v in imgs.items()
            if "(default false)" not in v["enabled_when"]}
if kube == "1.32.10":
    for k, v in data["images"]["kubernetes_1_32_10_differences"].items():
        if k != "note":
            expected[k] = v.split()[0]
elif kube != "1.33.3":
    err("no image data for %s" % kube)
got = [i["ref"] for i in spec["spec"].get("images", [])]
if sorted(got) != sorted(expected.values()):
    err("images %r, want %r" % (sorted(got), sorted(expected.values())))
for i in spec["spec"].get("images", []):
    if i.get("digest"):
        err("image %s has a digest, but kubespray pins none" % i["ref"])

for e in errors:
    print("%s: %s" % (spec_path, e))
sys.exit(1 if errors else 0)
PY

check() { python3 "$LAB/check.py" "$1" "${CHECK_DATA:-$DATA}" "$2" "$3"; }

for s in "k8s-1.33.yaml 1.33.3 1.33.0" "k8s-1.32.yaml 1.32.10 1.32.0"; do
	set -- $s
	note "$1 against the data file"
	expect_exit 0 check "$ROOT/manifests/$1" "$2" "$3"
	note "$1 passes lint"
	expect_exit 0 "$KF" lint "$ROOT/manifests/$1"
	expect_output "^$ROOT/manifests/$1: ok \(9 components, 11 images, amd64 arm64\)$"
done

note "the check catches an altered checksum, URL or image"
sed 's/baaa1f7621c9c239cd4ac3be5b7e427df329d7e1e15430db5f6ea5bb7a15a02b/caaa1f7621c9c239cd4ac3be5b7e427df329d7e1e15430db5f6ea5bb7a15a02b/' \
	"$ROOT/manifests/k8s-1.33.yaml" >"$LAB/sum.yaml"
expect_exit 1 check "$LAB/sum.yaml" 1.33.3 1.33.0
expect_output 'kubeadm: sha256'
sed 's#get.helm.sh/helm-v#get.helm.sh/helm-#' "$ROOT/manifests/k8s-1.33.yaml" >"$LAB/url.yaml"
expect_exit 1 check "$LAB/url.yaml" 1.33.3 1.33.0
expect_output 'helm: url'
sed 's#coredns/coredns:v1.12.0#coredns/coredns:v1.11.3#' "$ROOT/manifests/k8s-1.33.yaml" >"$LAB/img.yaml"
expect_exit 1 check "$LAB/img.yaml" 1.33.3 1.33.0
expect_output 'images'
sed 's#admin: \[ansible-core\]#admin: [ansible]#' "$ROOT/manifests/k8s-1.33.yaml" >"$LAB/adm.yaml"
expect_exit 1 check "$LAB/adm.yaml" 1.33.3 1.33.0
expect_output 'packages rocky-9: admin is'

note "the check catches a changed data file"
sed 's/baaa1f7621c9c239cd4ac3be5b7e427df329d7e1e15430db5f6ea5bb7a15a02b/caaa1f7621c9c239cd4ac3be5b7e427df329d7e1e15430db5f6ea5bb7a15a02b/' \
	"$DATA" >"$LAB/data.yaml"
! cmp -s "$DATA" "$LAB/data.yaml" || fail "the altered data file is unchanged"
CHECK_DATA=$LAB/data.yaml expect_exit 1 check "$ROOT/manifests/k8s-1.33.yaml" 1.33.3 1.33.0
expect_output 'kubeadm: sha256'
sed 's#registry.k8s.io/coredns/coredns:v1.11.3#registry.k8s.io/coredns/coredns:v1.11.4#' \
	"$DATA" >"$LAB/data.yaml"
! cmp -s "$DATA" "$LAB/data.yaml" || fail "the altered data file is unchanged"
CHECK_DATA=$LAB/data.yaml expect_exit 1 check "$ROOT/manifests/k8s-1.32.yaml" 1.32.10 1.32.0
expect_output 'images'
echo "shipped specs match the data file"
