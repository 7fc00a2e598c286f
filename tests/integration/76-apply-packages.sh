#!/usr/bin/env bash
# Host packages on the node: apply --root on a Rocky-9-shaped root installs
# the bundle's set with the real dnf (dnf --installroot; the packages are
# tests/rpm/make-repos.sh's, served as the distribution's mirror at build
# time), a second run reports ok, --dry-run prints the dnf command, reset
# leaves the packages and says so, --selinux enforcing keeps SELinux and
# plans restorecon (and needs container-selinux in the bundle), a Rocky 10 node gets the failure with
# the fix from apply and preflight, a bundle whose RPM was altered after
# signing is refused by the reader, and dnf's own gpgcheck (the installer's
# very command) refuses a package signed by another key. The admin host's
# set (admin: mock-ansible-core, a stand-in with real dependencies) goes
# onto a Rocky-9-shaped root with `host packages --admin`, the same way:
# dry run, changed, ok, no set for Rocky 10, a bundle without one, an
# altered bundle, gpgcheck on with the bundle's key.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/rpm/lab.sh"
need dnf zstd tar python3 openssl gzip sha256sum cmp /usr/bin/containerd /usr/sbin/runc \
	/usr/bin/etcd /usr/lib/cni/bridge
rpm_lab_start
RPM_ADMIN=mock-ansible-core rpm_packages minimal kf-app conntrack-tools container-selinux \
	>"$LAB/packages.yaml"
KF=$KF KF_TEST_PACKAGES=$LAB/packages.yaml bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b" \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --rewrite "$RPM_REWRITE"
B=$LAB/b/bundle.tar.zst PUB=$LAB/b/keys/kf.pub
SET="conntrack-tools container-selinux kf-app kf-core kf-libfoo kf-shell kf-tool"
ASET="kf-core kf-libfoo kf-python3 mock-ansible-core"

rocky_root() { # DIR VERSION_ID
	mkdir -p "$1/etc/selinux" "$1/var/lib"
	printf 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="%s"\n' "$2" \
		>"$1/etc/os-release"
	printf 'SELINUX=enforcing\nSELINUXTYPE=targeted\n' >"$1/etc/selinux/config"
	printf 'UUID=0a1b / xfs defaults 0 0\n' >"$1/etc/fstab"
	echo node1 >"$1/etc/hostname"
}
mkdir -p "$LAB/home"
printf '%%_dbpath /var/lib/rpm\n' >"$LAB/home/.rpmmacros"
# installed ROOT: the kf-* packages rpm finds in ROOT, one line.
installed() {
	HOME=$LAB/home rpm -qa --root "$1" --dbpath /var/lib/rpm --qf '%{NAME}\n' 2>/dev/null |
		grep -v '^gpg-pubkey' | sort | tr '\n' ' ' | sed 's/ $//'
}
R=$LAB/root
rocky_root "$R" 9.4
APPLY=("$KFI" apply "$B" -p "$PUB" --role worker --root "$R" --node-ip 10.0.0.5)

note "dry run: the dnf command from the bundle's repository, gpgcheck on; nothing installed"
expect_exit 0 "${APPLY[@]}" --dry-run
expect_output "^plan +run dnf -y --installroot=$R --config=[^ ]*/dnf.conf --releasever=9 --disablerepo=\* --repofrompath=kf,file:///[^ ]*/rpms/el9/x86_64 --setopt=kf.gpgcheck=1 --setopt=kf.gpgkey=file:///[^ ]*/rpms/el9/x86_64/RPM-GPG-KEY install $SET\$"
grep '^plan .* run dnf ' "$LAB/out" | head -1 >"$LAB/plan"
assert_eq "$(installed "$R")" "" "dry run installed packages"

note "apply: dnf installs the set into the root, before the container runtime"
expect_exit 0 "${APPLY[@]}"
expect_output "^changed +host packages el9 x86_64: installed $SET\$"
assert_eq "$(installed "$R")" "$SET" "installed set"
pk=$(grep -n 'host packages el9' "$LAB/out" | head -1 | cut -d: -f1)
rt=$(grep -n '^== container runtime' "$LAB/out" | head -1 | cut -d: -f1)
[ "$pk" -lt "$rt" ] || fail "host packages did not come before the container runtime"
conf=$(sed -n 's/.* --config=\([^ ]*\) .*/\1/p' "$LAB/plan")
cp "$conf" "$LAB/dnf.conf"
# dnf imported the bundle's copy of the distribution key into the root.
HOME=$LAB/home rpm -q --root "$R" --dbpath /var/lib/rpm gpg-pubkey >/dev/null || fail "key not imported"

note "a second run: ok"
expect_exit 0 "${APPLY[@]}"
expect_output "^ok +host packages el9 x86_64: all 7 installed$"

note "reset leaves the packages and says so"
expect_exit 0 "$KFI" reset --root "$R"
expect_output 'host packages .*left installed.*kf-app'
assert_eq "$(installed "$R")" "$SET" "packages after reset"

note "--selinux enforcing: SELinux stays enforcing, restorecon is planned at the end"
R4=$LAB/root4
rocky_root "$R4" 9.4
expect_exit 0 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R4" --node-ip 10.0.0.5 --selinux enforcing
expect_output '^ok +selinux left as configured'
expect_output '^plan +run restorecon -R -F /usr/local/bin /usr/local/sbin /opt/cni/bin .*/var/lib/kubelet'
grep -q setenforce "$LAB/out" && fail "setenforce planned under --selinux enforcing"
assert_eq "$(cat "$R4/etc/selinux/config")" "$(printf 'SELINUX=enforcing\nSELINUXTYPE=targeted')" "selinux config"
rl=$(grep -n 'run restorecon' "$LAB/out" | cut -d: -f1)
kb=$(grep -n '^== kubernetes' "$LAB/out" | cut -d: -f1)
[ "$rl" -gt "$kb" ] || fail "restorecon planned before the binaries are installed"
note "an upgrade keeps the SELinux mode apply recorded (no --selinux given)"
grep -qx 'selinux: enforcing' "$R4/var/lib/kubeferry/state/applied" || fail "apply did not record enforcing"
mkdir -p "$LAB/b4"
cp -r "$LAB/b/keys" "$LAB/b4/"
# containerd named as a version 1.33 supports (the binary is Debian's either way).
KF=$KF KF_TEST_KUBE_VERSION=1.33.4 KF_TEST_CONTAINERD_LABEL=1.7.24 KF_TEST_PACKAGES=$LAB/packages.yaml bash "$ROOT/tests/node/make-bundle.sh" \
	"$LAB/b4" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --rewrite "$RPM_REWRITE"
# The API server already on 1.33.4 (as after upgrade apply elsewhere).
mkdir -p "$R4/etc/kubernetes/manifests"
printf 'spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:v1.33.4\n' \
	>"$R4/etc/kubernetes/manifests/kube-apiserver.yaml"
expect_exit 0 "$KFI" upgrade node "$LAB/b4/bundle.tar.zst" -p "$PUB" --root "$R4"
expect_output '^ok +selinux left as configured'
grep -q setenforce "$LAB/out" && fail "the upgrade planned setenforce: it did not keep enforcing"
grep -qx 'selinux: enforcing' "$R4/var/lib/kubeferry/state/applied" || fail "the upgrade lost enforcing"
note "upgrade plan --plan lists a planned host the API server does not report"
mkdir -p "$LAB/plan9/hosts/w9"
expect_exit 0 "$KFI" upgrade plan "$LAB/b4/bundle.tar.zst" -p "$PUB" --root "$R4" --plan "$LAB/plan9"
expect_output '^w9 +worker +kubelet +\? '
rpm_packages minimal kf-app >"$LAB/packages2.yaml"
KF=$KF KF_TEST_PACKAGES=$LAB/packages2.yaml bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b2" \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" --rewrite "$RPM_REWRITE"
R5=$LAB/root5
rocky_root "$R5" 9.4
expect_exit 2 "$KFI" apply "$LAB/b2/bundle.tar.zst" -p "$LAB/b2/keys/kf.pub" --role worker --root "$R5" \
	--node-ip 10.0.0.5 --selinux enforcing
expect_output 'selinux enforcing needs container-selinux in the bundle.s el9 set'

note "a Rocky 10 node: no set in the bundle, apply and preflight fail with the fix"
R10=$LAB/root10
rocky_root "$R10" 10.0
expect_exit 2 "$KFI" apply "$B" -p "$PUB" --role worker --root "$R10" --node-ip 10.0.0.5
expect_output 'this node runs rocky 10.0 \(el10\), but the bundle has no el10 set .*fix: add a spec.packages entry with distro: rocky-10'
assert_eq "$(installed "$R10")" "" "rocky 10 root"
expect_exit 1 "$KFI" preflight "$B" -p "$PUB" --root "$R10" --role worker
expect_output '^host packages +fail .*el10'

note "admin host: host packages --admin, dry run: dnf from the admin repository, gpgcheck on; nothing installed"
RA=$LAB/admin
rocky_root "$RA" 9.4
ADMIN=("$KFI" host packages --admin "$B" -p "$PUB" --root "$RA")
expect_exit 0 "${ADMIN[@]}" --dry-run
expect_output "^plan +run dnf -y --installroot=$RA --config=[^ ]*/dnf.conf --releasever=9 --disablerepo=\* --repofrompath=kf,file:///[^ ]*/rpms/el9-admin/x86_64 --setopt=kf.gpgcheck=1 --setopt=kf.gpgkey=file:///[^ ]*/rpms/el9-admin/x86_64/RPM-GPG-KEY install $ASET\$"
expect_output '^ok=0 changed=1 failed=0$'
grep '^plan .* run dnf ' "$LAB/out" | head -1 >"$LAB/aplan"
assert_eq "$(installed "$RA")" "" "admin dry run installed packages"
assert_absent "$RA/var/lib/kubeferry/bundles/k8s-test-1.33.3"

note "admin host: the bundle is verified and unpacked once, dnf installs the admin set (not the nodes')"
expect_exit 0 "${ADMIN[@]}"
expect_output "^changed +bundle [^ ]* unpacked into $RA/var/lib/kubeferry/bundles/"
expect_output "^changed +admin packages el9 x86_64: installed $ASET\$"
assert_eq "$(installed "$RA")" "$ASET" "admin set installed"
HOME=$LAB/home rpm -q --root "$RA" --dbpath /var/lib/rpm gpg-pubkey >/dev/null || fail "admin: key not imported"
HOME=$LAB/home rpm -q --root "$RA" --dbpath /var/lib/rpm --qf '%{NAME} %{VERSION}\n' mock-ansible-core |
	has -x 'mock-ansible-core 2.14.18' || fail "admin: rpm does not know mock-ansible-core"
[ -f "$RA/usr/bin/python3.11" ] || fail "admin: the dependency's file is not in the root"

note "admin host: a second run is ok, the unpack is skipped"
expect_exit 0 "${ADMIN[@]}"
expect_output '^ok +bundle .* already unpacked'
expect_output "^ok +admin packages el9 x86_64: all 4 installed$"
expect_output '^ok=2 changed=0 failed=0$'

note "admin host: no set for Rocky 10, a bundle without admin:, an altered bundle, no key"
RA10=$LAB/admin10
rocky_root "$RA10" 10.0
expect_exit 2 "$KFI" host packages --admin "$B" -p "$PUB" --root "$RA10"
expect_output 'admin packages: this host runs rocky 10.0 \(el10\), but the bundle has no el10 set .*fix: add a spec.packages entry with distro: rocky-10 and admin: \[ansible-core\]'
assert_eq "$(installed "$RA10")" "" "admin rocky 10 root"
RA2=$LAB/admin2
rocky_root "$RA2" 9.4
expect_exit 2 "$KFI" host packages --admin "$LAB/b2/bundle.tar.zst" -p "$LAB/b2/keys/kf.pub" --root "$RA2"
expect_output 'carries no admin packages; fix: add admin: \[ansible-core\]'
assert_eq "$(installed "$RA2")" "" "admin root from a bundle without admin set"
expect_exit 2 "$KFI" host packages --admin "$B" --root "$RA2"
expect_output 'give the trusted public key'
expect_exit 2 "$KFI" host packages --admin "$B" -p "$PUB" extra
expect_exit 0 "$KFI" host packages --help
expect_output '^       kubeferry-install host packages --admin BUNDLE'

note "preflight names the bundle package for each missing host tool"
R1=$LAB/root1
rocky_root "$R1" 9.4
expect_exit 1 "$KFI" preflight "$B" -p "$PUB" --root "$R1" --role worker
expect_output '^host packages +pass +rocky 9.4 el9 x86_64: 7 packages'
# conntrack and socat are among the tools kubeadm only warns about.
expect_output '^optional tools .*conntrack \(bundle: conntrack-tools\)'
expect_output '^optional tools .* socat( |$)'
# After apply the bundle's conntrack is there.
expect_exit 1 "$KFI" preflight "$B" -p "$PUB" --root "$R" --role worker
grep -q 'conntrack (bundle' "$LAB/out" && fail "conntrack still missing after apply"

note "a bundle whose RPM was altered after signing is refused by the reader"
python3 - "$B" "$LAB/altered.tar" <<'PY'
import io, subprocess, sys, tarfile
raw = subprocess.run(["zstd", "-dc", sys.argv[1]], check=True, capture_output=True).stdout
src = tarfile.open(fileobj=io.BytesIO(raw))
dst = tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT)
for m in src.getmembers():
    data = src.extractfile(m).read() if m.isfile() else None
    if m.name.endswith("/kf-tool-2.0-1.x86_64.rpm"):
        data = data[:300] + bytes([data[300] ^ 1]) + data[301:]
    dst.addfile(m, io.BytesIO(data) if data is not None else None)
dst.close()
PY
zstd -q -f "$LAB/altered.tar" -o "$LAB/altered.tar.zst"
expect_exit 1 "$KFI" verify "$LAB/altered.tar.zst" -p "$PUB"
expect_output 'rpms/el9/x86_64/Packages/kf-tool-2.0-1.x86_64.rpm'
R2=$LAB/root2
rocky_root "$R2" 9.4
expect_exit 1 "$KFI" apply "$LAB/altered.tar.zst" -p "$PUB" --role worker --root "$R2" --node-ip 10.0.0.5
assert_eq "$(installed "$R2")" "" "altered bundle installed packages"
expect_exit 1 "$KFI" host packages --admin "$LAB/altered.tar.zst" -p "$PUB" --root "$R2"
assert_eq "$(installed "$R2")" "" "altered bundle installed admin packages"
assert_absent "$R2/var/lib/kubeferry/bundles/k8s-test-1.33.3"

note "dnf's own gpgcheck, with the installer's command, refuses a package signed by another key"
mkdir -p "$LAB/x"
zstd -dc "$B" | tar -x -C "$LAB/x" rpms
cp "$LAB/fix/www/repo1/Packages/kf-otherkey-1.0-1.noarch.rpm" "$LAB/x/rpms/el9/x86_64/Packages/"
createrepo_c -q --no-database "$LAB/x/rpms/el9/x86_64" >/dev/null
cp "$LAB/fix/www/repo1/Packages/kf-otherkey-1.0-1.noarch.rpm" "$LAB/x/rpms/el9-admin/x86_64/Packages/"
createrepo_c -q --no-database "$LAB/x/rpms/el9-admin/x86_64" >/dev/null
# The planned commands (the node's, then the admin host's), pointed at
# these repositories, a fresh root and the package.
for which in el9:plan el9-admin:aplan; do
	repo=$LAB/x/rpms/${which%%:*}/x86_64
	R3=$LAB/root3-${which%%:*}
	mkdir -p "$R3"
	read -r -a cmd <"$LAB/${which#*:}"
	args=()
	for w in "${cmd[@]:2}"; do
		case $w in
		--installroot=*) w=--installroot=$R3 ;;
		--config=*) w=--config=$LAB/dnf.conf ;;
		--repofrompath=*) w=--repofrompath=kf,file://$repo ;;
		--setopt=kf.gpgkey=*) w=--setopt=kf.gpgkey=file://$repo/RPM-GPG-KEY ;;
		esac
		args+=("$w")
		[ "$w" = install ] && break
	done
	HOME=$LAB/home expect_exit 1 "${args[@]}" kf-otherkey
	expect_output 'not correct for this package|GPG check FAILED'
	assert_eq "$(installed "$R3")" "" "other-key package installed (${which%%:*})"
	# The same command installs a package the distribution key signed.
	HOME=$LAB/home expect_exit 0 "${args[@]}" kf-core
	assert_eq "$(installed "$R3")" "kf-core" "well-signed package (${which%%:*})"
done
echo "apply-packages: all cases passed"
