#!/usr/bin/env bash
# Host packages at build time: test RPMs (tests/rpm/make-repos.sh) in two
# repositories served by nginx over TLS as the distribution's mirror,
# reached through --rewrite. The closure equals what dnf itself installs
# on top of the same base, newest versions win unless pinned, weak
# dependencies stay out, filelists are fetched for a file dependency,
# an unresolvable request names the capability, unsigned / other-key /
# tampered packages fail naming the package (nothing tampered is cached),
# and two builds are byte-identical. The admin host's set (admin:, a
# mock-ansible-core with real dependencies) is resolved the same way into
# its own repository and the lock's adminPackages, apart from the nodes'
# set; a wrongly signed admin package fails the build naming it.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/rpm/lab.sh"
need dnf zstd tar
note "fixtures: two signed repositories on the mirror"
rpm_lab_start
kf_keypair "$LAB/k"
printf '# captured with rpm -qa\nkf-core\nnot-in-any-repo\n' >"$LAB/base.txt"

# spec NAME BASE INSTALL...: a bundle spec with one package set.
spec() {
	local name=$1 base=$2
	shift 2
	{
		printf 'apiVersion: kubeferry.io/v1\nkind: Bundle\n'
		printf 'metadata: {name: rpms, version: "1.0.0"}\n'
		printf 'spec:\n  architectures: [amd64]\n  components: []\n'
		rpm_packages "$base" "$@"
	} >"$LAB/$name.yaml"
}
build() { # SPEC OUT [ARGS...]
	local s=$1 o=$2; shift 2
	"$KF" build "$LAB/$s.yaml" -s "$LAB/k/kf.key" --cache "${CACHE:-$LAB/cache}" \
		--cacert "$LAB/ca/ca.crt" --rewrite "$RPM_REWRITE" -q -o "$o" "$@"
}
# lockpkgs BUNDLE [KEY]: "name-epoch:version-release.arch" lines from its
# lock's packages (or KEY: adminPackages), with each path's check.
lockpkgs() {
	zstd -dc "$1" | tar -xO kubeferry/bundle.yaml | python3 -c '
import sys, yaml
key = sys.argv[1]
d = "rpms/el9%s/x86_64/Packages/" % ("-admin" if key == "adminPackages" else "")
for p in yaml.safe_load(sys.stdin).get(key, []):
    assert p["path"].startswith(d), p["path"]
    print("%s-%s:%s-%s.%s" % (p["name"], p["epoch"], p["version"], p["release"], p["rpmArch"]))' "${2:-packages}"
}

note "build: the closure of kf-app and kf-tool on a base that has kf-core; admin: mock-ansible-core"
RPM_ADMIN=mock-ansible-core spec app base.txt kf-app kf-tool
expect_exit 0 build app "$LAB/o1/b.tar.zst"
expect_exit 0 "$KF" verify "$LAB/o1/b.tar.zst" -p "$LAB/k/kf.pub"
lockpkgs "$LAB/o1/b.tar.zst" >"$LAB/got"
cat "$LAB/got"
lockpkgs "$LAB/o1/b.tar.zst" adminPackages >"$LAB/gota"
cat "$LAB/gota"

note "the same closure as dnf installs on the same base"
R=$LAB/dnfroot
mkdir -p "$R" "$LAB/dnfhome"
printf '%%_dbpath /var/lib/rpm\n' >"$LAB/dnfhome/.rpmmacros"
printf '[main]\nbest=True\nskip_if_unavailable=False\nplugins=0\ninstall_weak_deps=False\nreposdir=/nonexistent\n' >"$LAB/dnf.conf"
rdnf() {
	HOME=$LAB/dnfhome dnf -y -q --installroot="$R" --config="$LAB/dnf.conf" --disablerepo='*' \
		--repofrompath="b,file://$LAB/www/pub/9/BaseOS/x86_64/os" \
		--repofrompath="a,file://$LAB/www/pub/9/AppStream/x86_64/os" \
		--setopt=b.gpgcheck=1 --setopt=a.gpgcheck=1 \
		--setopt=b.gpgkey="file://$LAB/fix/keys/dist.asc" \
		--setopt=a.gpgkey="file://$LAB/fix/keys/dist.asc" "$@"
}
rqa() { HOME=$LAB/dnfhome rpm -qa --root "$R" --dbpath /var/lib/rpm --qf '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n' | grep -v '^gpg-pubkey' | sort; }
rdnf install kf-core >/dev/null 2>&1 || { rdnf install kf-core; fail "dnf kf-core"; }
rqa >"$LAB/before"
rdnf install kf-app kf-tool >/dev/null 2>&1 || fail "dnf install"
rqa >"$LAB/after"
comm -13 "$LAB/before" "$LAB/after" >"$LAB/want"
diff "$LAB/want" "$LAB/got" || fail "closure differs from dnf's"
has -x 'kf-tool-0:2.0-1.x86_64' "$LAB/got" || fail "newest kf-tool not chosen"
has 'kf-core' "$LAB/got" && fail "a base package was carried"
has 'kf-weak' "$LAB/got" && fail "a weak dependency was carried"
has '"GET /pub/9/BaseOS/x86_64/os/repodata/[0-9a-f]*-filelists.xml.gz' "$NGINX_LOG" ||
	fail "filelists not fetched for the file dependency"

note "the admin set: the same closure as dnf installs on the same base, apart from the nodes' set"
rm -rf "$R"
mkdir -p "$R"
rdnf install kf-core >/dev/null 2>&1 || fail "dnf kf-core (admin root)"
rqa >"$LAB/before"
rdnf install mock-ansible-core >/dev/null 2>&1 || fail "dnf install mock-ansible-core"
rqa >"$LAB/after"
comm -13 "$LAB/before" "$LAB/after" >"$LAB/wanta"
diff "$LAB/wanta" "$LAB/gota" || fail "admin closure differs from dnf's"
has -x 'mock-ansible-core-0:2.14.18-1.noarch' "$LAB/gota" || fail "admin: mock-ansible-core missing"
has -x 'kf-python3-0:3.11.9-1.x86_64' "$LAB/gota" || fail "admin: its dependency missing"
has -x 'kf-libfoo-0:1.0-1.x86_64' "$LAB/gota" || fail "admin: the library its dependency needs"
has 'kf-core' "$LAB/gota" && fail "admin: a base package was carried"
has -E 'ansible|python3' "$LAB/got" && fail "the admin set leaked into the nodes' set"
has -E 'kf-tool|kf-app' "$LAB/gota" && fail "the nodes' set leaked into the admin set"

note "the bundle holds the packages, their repository and the key"
zstd -dc "$LAB/o1/b.tar.zst" | tar -t >"$LAB/entries"
for p in $(cat "$LAB/got"); do
	n=${p%%-0:*}; rest=${p#*-0:}
	has -x "rpms/el9/x86_64/Packages/$n-$rest.rpm" "$LAB/entries" || fail "missing $p"
done
has -x 'rpms/el9/x86_64/repodata/repomd.xml' "$LAB/entries" || fail "no repomd.xml"
has -x 'rpms/el9/x86_64/RPM-GPG-KEY' "$LAB/entries" || fail "no key"
mkdir -p "$LAB/x"
zstd -dc "$LAB/o1/b.tar.zst" | tar -x -C "$LAB/x" rpms
cmp "$LAB/x/rpms/el9/x86_64/RPM-GPG-KEY" "$LAB/fix/keys/dist.asc" || fail "key differs"
# The carried repository serves exactly that set (dnf reads it).
repoq() { # DIR: what dnf finds in a carried repository
	HOME=$LAB/dnfhome dnf -q --config="$LAB/dnf.conf" --installroot="$LAB/q" --disablerepo='*' \
		--repofrompath="kf,file://$1" repoquery --qf '%{name}-%{epoch}:%{version}-%{release}.%{arch}' 2>/dev/null |
		sort
}
repoq "$LAB/x/rpms/el9/x86_64" >"$LAB/repo"
diff "$LAB/repo" "$LAB/got" || fail "carried repodata does not list exactly the set"
# The admin set has its own repository, metadata and key copy.
repoq "$LAB/x/rpms/el9-admin/x86_64" >"$LAB/repoa"
diff "$LAB/repoa" "$LAB/gota" || fail "carried admin repodata does not list exactly the admin set"
cmp "$LAB/x/rpms/el9-admin/x86_64/RPM-GPG-KEY" "$LAB/fix/keys/dist.asc" || fail "admin key differs"
has -x 'rpms/el9-admin/x86_64/repodata/repomd.xml' "$LAB/entries" || fail "no admin repomd.xml"

note "inspect lists the packages per set and architecture; build --json reports them"
expect_exit 0 "$KF" inspect "$LAB/o1/b.tar.zst"
expect_output '^packages: +4$'
expect_output '^  el9 amd64: 4$'
expect_output '^    kf-tool-2\.0-1\.x86_64\.rpm +baseos '
expect_output '^    kf-app-1\.0-1\.noarch\.rpm +appstream '
expect_output '^admin packages: +3$'
expect_output '^    mock-ansible-core-2\.14\.18-1\.noarch\.rpm +appstream '
"$KF" inspect --json "$LAB/o1/b.tar.zst" | jq -r '.packages[] | "\(.name)-\(.epoch):\(.version)-\(.release).\(.rpmArch)"' >"$LAB/ij"
diff "$LAB/ij" "$LAB/got" || fail "inspect --json packages"
"$KF" inspect --json "$LAB/o1/b.tar.zst" | jq -r '.adminPackages[] | "\(.name)-\(.epoch):\(.version)-\(.release).\(.rpmArch)"' >"$LAB/ija"
diff "$LAB/ija" "$LAB/gota" || fail "inspect --json adminPackages"
build app "$LAB/o7/b.tar.zst" --json >"$LAB/bj" || fail "build --json"
assert_eq "$(jq -r '.bundle' "$LAB/bj")" "$LAB/o7/b.tar.zst" "build --json bundle"
assert_eq "$(jq -r '.packages | map(select(.set == "el9" and .arch == "amd64" and .repo != "")) | length' "$LAB/bj")" 4 "build --json packages"
assert_eq "$(jq -r '.packages[] | select(.name == "kf-tool") | .sha256' "$LAB/bj")" \
	"$(sha "$LAB/www/pub/9/BaseOS/x86_64/os/Packages/kf-tool-2.0-1.x86_64.rpm")" "build --json sha256"
assert_eq "$(jq -r '.adminPackages | map(select(.path | startswith("rpms/el9-admin/x86_64/Packages/"))) | map(.name) | join(" ")' "$LAB/bj")" \
	"kf-libfoo kf-python3 mock-ansible-core" "build --json adminPackages"

note "a second build gives the same bytes"
expect_exit 0 build app "$LAB/o2/b.tar.zst"
cmp "$LAB/o1/b.tar.zst" "$LAB/o2/b.tar.zst" || fail "rebuild differs"

note "base none carries kf-core too; a pin picks the older version"
spec pin none "kf-tool = 1.0-1"
expect_exit 0 build pin "$LAB/o3/b.tar.zst"
lockpkgs "$LAB/o3/b.tar.zst" >"$LAB/got3"
has -x 'kf-tool-0:1.0-1.x86_64' "$LAB/got3" || fail "pin not honoured"
has -x 'kf-core-0:1.0-1.noarch' "$LAB/got3" || fail "base none: kf-core missing"

note "unresolvable: the capability is named, exit 2, no bundle"
spec broken none kf-broken
expect_exit 2 build broken "$LAB/o4/b.tar.zst"
expect_output 'nothing provides kf-nonexistent >= 3.0 needed by kf-broken-1.0-1.noarch'
assert_absent "$LAB/o4/b.tar.zst"
spec nosuch none kf-nosuch
expect_exit 2 build nosuch "$LAB/o4/b.tar.zst"
expect_output 'no package provides "kf-nosuch"'

note "unsigned and other-key packages fail the build naming them"
spec unsigned none kf-unsigned kf-core
expect_exit 1 build unsigned "$LAB/o5/b.tar.zst"
expect_output 'not signed by the pinned key.*kf-unsigned-0:1.0-1.noarch'
grep -q 'kf-core-0' "$LAB/out" && fail "a well-signed package was named"
spec other none kf-otherkey
expect_exit 1 build other "$LAB/o5/b.tar.zst"
expect_output 'kf-otherkey-0:1.0-1.noarch'
assert_absent "$LAB/o5/b.tar.zst"

note "a wrongly signed or unresolvable admin package fails the build naming it"
RPM_ADMIN=kf-otherkey spec adminother none kf-core
expect_exit 1 build adminother "$LAB/o5/b.tar.zst"
expect_output 'admin packages rocky-9 \(x86_64\).*not signed by the pinned key.*kf-otherkey-0:1.0-1.noarch'
assert_absent "$LAB/o5/b.tar.zst"
RPM_ADMIN=kf-broken spec adminbroken none kf-core
expect_exit 2 build adminbroken "$LAB/o5/b.tar.zst"
expect_output 'admin packages rocky-9 \(x86_64\).*nothing provides kf-nonexistent >= 3.0'

note "a key whose bytes differ from the pin fails"
sed -i "s/sha256: ${KEYSUM}/sha256: $(printf '0%.0s' {1..64})/" "$LAB/other.yaml"
expect_exit 1 build other "$LAB/o5/b.tar.zst"
expect_output 'KEY-9'

note "a tampered package (sha256 differs from primary) fails and is not cached"
f=$LAB/www/pub/9/BaseOS/x86_64/os/Packages/kf-tool-2.0-1.x86_64.rpm
good=$(sha "$f")
printf 'X' | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null
bad=$(sha "$f")
CACHE=$LAB/cache2 expect_exit 1 build app "$LAB/o6/b.tar.zst"
expect_output 'kf-tool-2.0-1.x86_64.rpm'
assert_absent "$LAB/cache2/sha256/$bad"
assert_absent "$LAB/cache2/sha256/$good"
[ -z "$(find "$LAB/cache2/tmp" -type f 2>/dev/null)" ] || fail "partial file left in the cache"
assert_absent "$LAB/o6/b.tar.zst"
echo "build-rpms: all cases passed"
