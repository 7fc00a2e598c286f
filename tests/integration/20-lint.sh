#!/usr/bin/env bash
# kubeferry lint: a valid spec passes; each kind of spec error exits 2 and
# names FILE:LINE:COL of the fault.
source "$(dirname "$0")/../lib.sh"

H=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cd "$LAB"

# spec NAME: writes NAME.yaml from a fixed head (lines 1-5) and stdin.
spec() {
	{
		printf 'apiVersion: kubeferry.io/v1\nkind: Bundle\n'
		printf 'metadata: {name: demo, version: "1.0.0"}\n'
		printf 'spec:\n  architectures: [amd64, arm64]\n'
		cat
	} >"$1.yaml"
}

# bad NAME LINE:COL MESSAGE-REGEX: lint NAME.yaml fails with exit 2 and the
# error names the exact position.
bad() {
	expect_exit 2 "$KF" lint "$1.yaml"
	expect_output "^kubeferry lint: error: $1\.yaml:$2: $3"
	grep -q ': ok (' "$LAB/out" && fail "$1 reported ok"
	true
}

note "valid spec"
mkdir -p src
spec good <<EOF2
  components:
    - name: kubeadm
      version: "1.33.3"
      url: https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubeadm
      sha256: {amd64: $H, arm64: $H}
    - name: tool
      version: "1"
      url: src/tool-{arch}
      sha256:
        amd64: $H
        arm64: $H
  images:
    - ref: registry.k8s.io/pause:3.10
    - ref: docker.io/library/nginx:1.28
      digest: sha256:$H
  install: {etcd: host, cni: flannel, mirror: "https://10.0.0.1:5000"}
EOF2
expect_exit 0 "$KF" lint good.yaml
expect_output '^good\.yaml: ok \(2 components, 2 images, amd64 arm64\)$'

note "not YAML (a binary file)"
printf 'ustar\000\001\002\003' >notyaml.yaml
bad notyaml '1:6' 'not valid YAML'
printf 'spec: [unclosed\n' >broken.yaml
bad broken '2:1' 'not valid YAML'

note "unknown key"
spec unknown <<EOF2
  components: []
  imgaes: []
EOF2
bad unknown '7:3' 'unknown key "imgaes" in spec'

note "wrong type"
spec wrongtype <<EOF2
  components:
    name: kubeadm
EOF2
bad wrongtype '7:5' 'spec.components must be a sequence, not a mapping'
spec wrongtype2 <<EOF2
  components:
    - name: [kubeadm]
EOF2
bad wrongtype2 '7:13' 'component.name must be a scalar, not a sequence'

note "missing required key"
spec missing <<EOF2
  components:
    - name: kubeadm
      version: "1"
      sha256: {amd64: $H, arm64: $H}
EOF2
bad missing '7:7' 'missing required key "url" in component kubeadm'

note "duplicate key"
spec dupkey <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      version: "2"
      sha256: {amd64: $H, arm64: $H}
EOF2
bad dupkey '10:7' 'duplicate key "version" \(first at line 8\)'

note "duplicate component"
spec dupcomp <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      sha256: {amd64: $H, arm64: $H}
    - name: kubeadm
      version: "2"
      url: https://dl.k8s.io/{arch}/kubeadm2
      sha256: {amd64: $H, arm64: $H}
EOF2
bad dupcomp '11:13' 'duplicate component "kubeadm" \(first at line 7\)'

note "bad placeholder"
spec placeholder <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/v{version}/{os}/{arch}/kubeadm
      sha256: {amd64: $H, arm64: $H}
EOF2
bad placeholder '9:12' 'bad placeholder "\{os\}"'

note "bad hex and uppercase hex"
spec badhex <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      sha256:
        amd64: $H
        arm64: 0123456789abcdefg
EOF2
bad badhex '12:16' 'sha256 of component kubeadm for arm64 is not 64 lowercase hex digits'
spec upperhex <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      sha256:
        amd64: ${H^^}
        arm64: $H
EOF2
bad upperhex '11:16' 'sha256 of component kubeadm for amd64 has uppercase hex digits'

note "missing checksum for a listed architecture"
spec nosum <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      sha256:
        amd64: $H
EOF2
bad nosum '11:9' 'missing sha256 for architecture arm64 in component kubeadm'

note "a checksum for an architecture that is not built"
spec extrasum <<EOF2
  components:
    - name: kubeadm
      version: "1"
      url: https://dl.k8s.io/{arch}/kubeadm
      sha256:
        amd64: $H
        arm64: $H
        s390x: $H
EOF2
bad extrasum '13:9' 'sha256 of component kubeadm names architecture "s390x", which is not in spec.architectures'

note "unknown architecture"
{
	printf 'apiVersion: kubeferry.io/v1\nkind: Bundle\nmetadata: {name: demo, version: "1"}\n'
	printf 'spec:\n  architectures: [amd64, x86_64]\n  components: []\n'
} >arch.yaml
bad arch '5:26' 'unknown architecture "x86_64"'

note "bad image reference and digest"
spec shortref <<EOF2
  components: []
  images:
    - ref: nginx:1.28
EOF2
bad shortref '8:12' 'bad image reference "nginx:1.28": no registry host'
spec baddigest <<EOF2
  components: []
  images:
    - ref: docker.io/library/nginx:1.28
      digest: sha256:${H:0:10}
EOF2
bad baddigest '9:15' 'bad digest'

note "a source that would escape files/"
spec escape <<EOF2
  components:
    - name: tool
      version: "1"
      url: ../outside/{arch}
      sha256: {amd64: $H, arm64: $H}
EOF2
bad escape '9:12' 'url of component tool: \.\./outside/amd64: unsafe path'

note "spec.packages: a valid set for Rocky 9 and AlmaLinux 10, a captured base"
printf 'bash\ncoreutils\n' >rpm-qa.txt
spec pkgs <<EOF2
  components: []
  packages:
    - distro: rocky-9
      repos:
        - {name: baseos, url: "https://mirror.test/9/BaseOS/{arch}/os/"}
        - {name: appstream, url: "https://mirror.test/9/AppStream/{arch}/os/"}
      gpgkey: {url: "https://mirror.test/RPM-GPG-KEY-Rocky-9", sha256: $H}
      install: [socat, "conntrack-tools = 1.4.7-2.el9"]
      admin: [ansible-core]
      base: minimal
    - distro: almalinux-10
      repos: [{name: baseos, url: "https://mirror.test/10/{arch}/"}]
      gpgkey: {url: "https://mirror.test/KEY-10", sha256: $H}
      install: [ethtool]
      base: rpm-qa.txt
EOF2
expect_exit 0 "$KF" lint pkgs.yaml

# pkgbad NAME LINE:COL REGEX: a packages: section (stdin, from line 7) that
# fails lint at LINE:COL.
pkgbad() {
	spec "$1" <<EOF2
  components: []
  packages:
$(cat)
EOF2
	bad "$@"
}
note "spec.packages errors"
pkgbad pkgdistro '8:15' 'packages.distro "debian-12" is not one of rocky-9' <<EOF2
    - distro: debian-12
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
EOF2
pkgbad pkgsame '12:15' 'package set el9: rocky-9 and rhel-9 are the same release family' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
    - distro: rhel-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
EOF2
pkgbad pkgplace '9:30' 'bad placeholder in repository url' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/{version}/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
EOF2
pkgbad pkgnokey '8:7' 'missing required key "gpgkey" in packages rocky-10' <<EOF2
    - distro: rocky-10
      repos: [{name: b, url: "https://m/"}]
      install: [x]
EOF2
pkgbad pkghex '11:32' 'packages.gpgkey.sha256 is not 64 lowercase hex digits' <<EOF2
    - distro: rocky-9
      repos:
        - {name: b, url: "https://m/"}
      gpgkey: {url: k, sha256: abc}
      install: [x]
EOF2
pkgbad pkgpin '13:11' 'bad version pin "socat = 1.7 beta"' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install:
        - socat
        - "socat = 1.7 beta"
EOF2
pkgbad pkgbase '12:13' 'packages.base "missing.txt" is neither none, minimal nor a readable file' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      base: missing.txt
EOF2
pkgbad pkgadmindup '12:29' 'duplicate package "ansible-core" in packages.admin' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      admin: [ansible-core, "ansible-core"]
EOF2
pkgbad pkgadminname '12:15' 'bad package "ansible core" in packages.admin' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      admin: ["ansible core"]
EOF2
pkgbad pkgadminempty '12:14' 'packages.admin is empty' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      admin: []
EOF2
pkgbad pkgadminmap '12:14' 'packages.admin' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      admin: {ansible-core: true}
EOF2
pkgbad pkgkey '12:7' 'unknown key "gpgcheck" in a package set' <<EOF2
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
      gpgcheck: false
EOF2
spec pkgarch <<EOF2
  components: []
  packages:
    - distro: rocky-9
      repos: [{name: b, url: "https://m/"}]
      gpgkey: {url: k, sha256: $H}
      install: [x]
EOF2
sed -i 's/\[amd64, arm64\]/[amd64, riscv64]/' pkgarch.yaml
bad pkgarch '8:15' 'packages for rocky-9: architecture riscv64 has no RPM architecture'
note "install.etcd: kubeadm without the etcd image kubeadm runs for the release"
spec stacked <<EOF2
  kubernetesVersion: "1.33.3"
  components: []
  images:
    - ref: registry.k8s.io/pause:3.10
  install:
    etcd: kubeadm
EOF2
bad stacked '11:11' 'install\.etcd: kubeadm runs etcd from registry\.k8s\.io/etcd:3\.5\.21-0 \(kubeadm.s image for Kubernetes 1\.33\.3\), which is not in spec\.images'
expect_output 'add "- ref: registry\.k8s\.io/etcd:3\.5\.21-0", or use install\.etcd: host'
note "build refuses it the same way, before fetching anything"
kf_keypair "$LAB/k"
expect_exit 2 "$KF" build stacked.yaml -q -s "$LAB/k/kf.key" -o "$LAB/stacked.tar.zst" --cache "$LAB/cache"
expect_output 'stacked\.yaml:11:11: install\.etcd: kubeadm runs etcd from registry\.k8s\.io/etcd:3\.5\.21-0'
assert_absent "$LAB/cache"
note "with the image (and for 1.32.10 its own tag) the spec is valid"
sed 's#registry.k8s.io/pause:3.10#registry.k8s.io/etcd:3.5.21-0#' stacked.yaml >stacked-ok.yaml
expect_exit 0 "$KF" lint stacked-ok.yaml
sed 's#"1.33.3"#"1.32.10"#' stacked-ok.yaml >stacked-132.yaml
bad stacked-132 '11:11' 'install\.etcd: kubeadm runs etcd from registry\.k8s\.io/etcd:3\.5\.24-0 \(kubeadm.s image for Kubernetes 1\.32\.10\)'
sed 's#etcd:3.5.21-0#etcd:3.5.24-0#' stacked-132.yaml >stacked-132-ok.yaml
expect_exit 0 "$KF" lint stacked-132-ok.yaml

note "several specs: every one is reported, exit 2 when any fails"
expect_exit 2 "$KF" lint good.yaml unknown.yaml
expect_output '^good\.yaml: ok'
expect_output '^kubeferry lint: error: unknown\.yaml:7:3: unknown key'

note "usage and unreadable files"
expect_exit 2 "$KF" lint
expect_exit 3 "$KF" lint "$LAB/nonexistent.yaml"
expect_output 'nonexistent\.yaml'
expect_exit 0 "$KF" lint --help
expect_output 'Usage: kubeferry lint SPEC'
echo "lint: all cases passed"
