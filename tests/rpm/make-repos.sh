#!/usr/bin/env bash
# Builds the RPM fixtures for the host-package tests into OUT (a directory
# under the test's $LAB); nothing is written or cached elsewhere.
#   tests/rpm/make-repos.sh OUT
# OUT/keys/dist.asc    the "distribution" key (gpg, %no-protection)
# OUT/keys/other.asc   another key
# OUT/www/repo1/       "baseos": createrepo_c metadata + Packages/
# OUT/www/repo2/       "appstream": a package that needs one from repo1
# Packages and what each one tests (AutoReqProv off: the dependencies are
# exactly the ones written here):
#   kf-libfoo-1.0      provides the library capability libfoo.so.1()(64bit)
#   kf-shell-1.0       owns /usr/libexec/kf-shell/run (a file dependency
#                      outside */bin/* and /etc: only filelists has it)
#   kf-core-1.0        what a "base" system already has
#   kf-tool-1.0, 2.0   two versions; requires the library, the file,
#                      kf-core; recommends kf-weak (weak: not pulled)
#   kf-weak-1.0        only recommended
#   kf-broken-1.0      requires kf-nonexistent >= 3.0, which nothing provides
#   kf-unsigned-1.0    not signed
#   kf-otherkey-1.0    signed by the other key
#   kf-app-1.0 (repo2) requires kf-tool >= 1.5
#   conntrack-tools-1.4.7 (repo2) a stand-in named like the real package,
#                      owning /usr/sbin/conntrack (preflight's tool map)
#   container-selinux-2.229.0 (repo2) a stand-in named like the real one
#                      (apply --selinux enforcing needs it in the bundle)
#   kf-python3-3.11.9  (repo1) owns /usr/bin/python3.11; requires the library
#                      (shared with kf-tool's closure) and kf-core
#   mock-ansible-core-2.14.18 (repo2) stands in for ansible-core, the admin
#                      host's package (spec packages[].admin): requires
#                      kf-python3 >= 3.11 and the file /usr/bin/python3.11
set -euo pipefail
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$OUT/work
mkdir -p "$W/home" "$W/top" "$OUT/keys" "$OUT/www/repo1/Packages" "$OUT/www/repo2/Packages"
# Debian's rpm keeps its database in ~/.rpmdb and rpmbuild opens one: a
# private HOME keeps both inside OUT.
export HOME=$W/home
export GNUPGHOME=$W/gnupg
mkdir -p -m 700 "$GNUPGHOME"
printf '%%_dbpath %s/rpmdb\n%%_topdir %s/top\n' "$W" "$W" >"$HOME/.rpmmacros"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

genkey() { # NAME
	gpg --batch --gen-key 2>/dev/null <<K
%no-protection
Key-Type: RSA
Key-Length: 2048
Name-Real: $1
Name-Email: $1@kubeferry.test
Expire-Date: 0
%commit
K
}
genkey kf-dist
genkey kf-other
gpg --batch --armor --export kf-dist >"$OUT/keys/dist.asc"
gpg --batch --armor --export kf-other >"$OUT/keys/other.asc"

# mkpkg NAME VERSION ARCH REPO SIGNER FILE [DEP-LINE...]
mkpkg() {
	local name=$1 ver=$2 arch=$3 repo=$4 signer=$5 file=$6; shift 6
	local spec=$W/$name-$ver.spec dep
	{
		echo "Name: $name"
		echo "Version: $ver"
		echo "Release: 1"
		echo "Summary: kubeferry test package $name"
		echo "License: MIT"
		echo "BuildArch: $arch"
		echo "AutoReqProv: no"
		for dep in "$@"; do echo "$dep"; done
		echo "%description"
		echo "Test fixture."
		echo "%install"
		echo "mkdir -p %{buildroot}$(dirname "$file")"
		echo "echo $name-$ver >%{buildroot}$file"
		echo "%files"
		echo "%attr(0755,root,root) $file"
	} >"$spec"
	rpmbuild -bb --quiet \
		--define '_build_id_links none' --define 'debug_package %{nil}' \
		--define '__os_install_post %{nil}' --define '_buildhost kubeferry.test' \
		--define 'use_source_date_epoch_as_buildtime 1' \
		--define "_rpmdir $W/rpms" --define '_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm' \
		"$spec" >/dev/null
	local f=$name-$ver-1.$arch.rpm
	mv "$W/rpms/$f" "$OUT/www/$repo/Packages/$f"
	if [ "$signer" != none ]; then
		rpmsign --addsign --define "_gpg_name $signer" --define '__gpg /usr/bin/gpg' \
			"$OUT/www/$repo/Packages/$f" >/dev/null 2>&1
	fi
}

mkpkg kf-libfoo 1.0 x86_64 repo1 kf-dist /usr/lib64/libfoo.so.1 'Provides: libfoo.so.1()(64bit)'
mkpkg kf-shell 1.0 noarch repo1 kf-dist /usr/libexec/kf-shell/run
mkpkg kf-core 1.0 noarch repo1 kf-dist /usr/share/kf-core/core
mkpkg kf-weak 1.0 noarch repo1 kf-dist /usr/share/kf-weak/weak
for v in 1.0 2.0; do
	mkpkg kf-tool $v x86_64 repo1 kf-dist /usr/bin/kf-tool \
		'Requires: libfoo.so.1()(64bit)' 'Requires: /usr/libexec/kf-shell/run' \
		'Requires: kf-core' 'Recommends: kf-weak'
done
mkpkg kf-broken 1.0 noarch repo1 kf-dist /usr/share/kf-broken/b 'Requires: kf-nonexistent >= 3.0'
mkpkg kf-unsigned 1.0 noarch repo1 none /usr/share/kf-unsigned/u
mkpkg kf-otherkey 1.0 noarch repo1 kf-other /usr/share/kf-otherkey/o
mkpkg kf-app 1.0 noarch repo2 kf-dist /usr/bin/kf-app 'Requires: kf-tool >= 1.5'
mkpkg conntrack-tools 1.4.7 x86_64 repo2 kf-dist /usr/sbin/conntrack
mkpkg container-selinux 2.229.0 noarch repo2 kf-dist /usr/share/container-selinux/stand-in
mkpkg kf-python3 3.11.9 x86_64 repo1 kf-dist /usr/bin/python3.11 \
	'Requires: libfoo.so.1()(64bit)' 'Requires: kf-core'
mkpkg mock-ansible-core 2.14.18 noarch repo2 kf-dist /usr/bin/mock-ansible-playbook \
	'Requires: kf-python3 >= 3.11' 'Requires: /usr/bin/python3.11'

for r in repo1 repo2; do
	touch -d "@$SOURCE_DATE_EPOCH" "$OUT/www/$r/Packages/"*.rpm
	createrepo_c --quiet --no-database --revision "$SOURCE_DATE_EPOCH" \
		--set-timestamp-to-revision "$OUT/www/$r" >/dev/null
done
# The agent gpg started lives in $GNUPGHOME: stop it before removing it.
gpgconf --kill gpg-agent 2>/dev/null || true
rm -rf "$W"
