#!/usr/bin/env bash
# Benchmark: host-package resolution (issue 11). kubeferry's resolver
# (bundler/rpm/resolve.c, libsolv) on synthetic repository metadata the
# size of Rocky's BaseOS plus AppStream (KF_BENCH_PKGS packages, default
# 10000, generated here as primary.xml.gz), against the node's own dnf
# resolving the same request from the same metadata in the same run
# (`dnf install --assumeno`, fresh cache each run). Target: well under a
# second for kubeferry.
# Then the size the shipped specs' package sets add to a bundle: measured
# from Rocky's real metadata when KF_BENCH_ROCKY=1 and dl.rockylinux.org
# is reachable, otherwise estimated (and said so).
# Environment: KF_BUILD, KF_BENCH_PKGS, KF_BENCH_RUNS (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
N=${KF_BENCH_PKGS:-10000}
RUNS=${KF_BENCH_RUNS:-5}
for t in python3 cc dnf; do
	command -v "$t" >/dev/null || { echo "bench/rpm: $t is missing" >&2; exit 77; }
done
[ -f "$KF_BUILD/rel/bundler/rpm/resolve.o" ] || { echo "bench/rpm: build first (make)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/kf-bench-rpm.XXXXXX")
trap '[ "${KF_KEEP:-0}" = 1 ] || rm -rf "$W"' EXIT

# The driver links the resolver's release objects (no sanitizers).
cc -O2 -std=c11 -D_GNU_SOURCE -I"$ROOT" -o "$W/rpm_resolve" "$ROOT/bench/rpm_resolve.c" \
	"$KF_BUILD/rel/bundler/rpm/resolve.o" "$KF_BUILD"/rel/base/*.o "$KF_BUILD"/rel/keys/*.o \
	$(pkg-config --libs libsolvext) -lssl -lcrypto

python3 - "$W/repo" "$N" <<'PY'
import gzip, hashlib, os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
random.seed(11)
os.makedirs(out + "/repodata", exist_ok=True)
pk = []
for i in range(n):
    deps = []
    for _ in range(random.randint(0, 6) if i > 20 else 0):
        j = random.randrange(0, i)
        r = random.random()
        if r < 0.5: deps.append('<rpm:entry name="p%05d"/>' % j)
        elif r < 0.8: deps.append('<rpm:entry name="libp%05d.so.1()(64bit)"/>' % j)
        elif r < 0.9: deps.append('<rpm:entry name="/usr/bin/p%05d"/>' % j)
        else: deps.append('<rpm:entry name="p%05d" flags="GE" epoch="0" ver="1.0"/>' % j)
    vers = ["1.0", "2.0"] if i % 10 == 0 else ["1.0"]
    for v in vers:
        arch = "noarch" if i % 4 == 0 else "x86_64"
        name = "p%05d" % i
        sha = hashlib.sha256(("%s-%s" % (name, v)).encode()).hexdigest()
        pk.append(
            '<package type="rpm"><name>%s</name><arch>%s</arch>'
            '<version epoch="0" ver="%s" rel="1.el9"/>'
            '<checksum type="sha256" pkgid="YES">%s</checksum>'
            '<summary>s</summary><description>d</description><packager/><url/>'
            '<time file="0" build="0"/><size package="%d" installed="0" archive="0"/>'
            '<location href="Packages/%s-%s-1.el9.%s.rpm"/><format>'
            '<rpm:license>MIT</rpm:license><rpm:sourcerpm>%s-%s-1.el9.src.rpm</rpm:sourcerpm>'
            '<rpm:header-range start="0" end="0"/>'
            '<rpm:provides><rpm:entry name="%s" flags="EQ" epoch="0" ver="%s" rel="1.el9"/>'
            '<rpm:entry name="libp%05d.so.1()(64bit)"/></rpm:provides>'
            '<rpm:requires>%s</rpm:requires><file>/usr/bin/%s</file></format></package>'
            % (name, arch, v, sha, 100000 + i, name, v, arch, name, v, name, v, i,
               "".join(deps), name))
xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
       'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">\n%s\n</metadata>\n'
       % (len(pk), "\n".join(pk))).encode()
gz = gzip.compress(xml, mtime=0)
sha, osha = hashlib.sha256(gz).hexdigest(), hashlib.sha256(xml).hexdigest()
name = "repodata/%s-primary.xml.gz" % sha
open(out + "/" + name, "wb").write(gz)
open(out + "/repodata/repomd.xml", "w").write(
    '<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" '
    'xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>1</revision>'
    '<data type="primary"><checksum type="sha256">%s</checksum><open-checksum type="sha256">%s'
    '</open-checksum><location href="%s"/><timestamp>1</timestamp><size>%d</size>'
    '<open-size>%d</open-size></data></repomd>\n' % (sha, osha, name, len(gz), len(xml)))

PY
PRIMARY=$(ls "$W"/repo/repodata/*-primary.xml.gz)
# A request from the top of the dependency graph: a large closure.
REQ=(p09990 p09871 p09752 p09633 p09514 p09395 p09276 p09157 p09038 p08919 p08800 p08681)

read -r load solve npk bytes < <("$W/rpm_resolve" x86_64 "$RUNS" "$PRIMARY" "${REQ[@]}")
kf_ms=$(python3 -c "print('%.1f' % ($load + $solve))")

mkdir -p "$W/home"
printf '%%_dbpath /var/lib/rpm\n' >"$W/home/.rpmmacros"
printf '[main]\nbest=True\nskip_if_unavailable=False\nplugins=0\ninstall_weak_deps=False\nreposdir=/nonexistent\n' >"$W/dnf.conf"
dnf_once() {
	rm -rf "$W/root"
	mkdir -p "$W/root"
	local t0 t1
	t0=$(date +%s%N)
	HOME=$W/home dnf --releasever=9 --installroot="$W/root" --config="$W/dnf.conf" --disablerepo='*' \
		--repofrompath="b,file://$W/repo" --setopt=b.gpgcheck=0 install --assumeno "${REQ[@]}" \
		>"$W/dnf.out" 2>&1 || true
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}
times=()
for _ in $(seq "$RUNS"); do times+=("$(dnf_once)"); done
dnf_ms=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
# dnf's own count of the packages it would install: the same closure.
dnf_n=$(sed -n 's/^Install  *\([0-9][0-9]*\) Packages*$/\1/p' "$W/dnf.out")

echo "bench/rpm: $((N + N / 10)) synthetic packages (primary $(stat -c %s "$PRIMARY") bytes gz), request of ${#REQ[@]} names -> $npk packages"
echo "bench/rpm: kubeferry resolution ${kf_ms} ms (load ${load} ms, solve ${solve} ms; median of $RUNS) (goal < 1000 ms): $("$ROOT/bench/verdict" "$kf_ms" '<' 1000)"
echo "bench/rpm: dnf install --assumeno on the same metadata ${dnf_ms} ms (median of $RUNS), dnf would install ${dnf_n:-?} packages"
[ "${dnf_n:-}" = "$npk" ] || echo "bench/rpm: WARNING: dnf's closure ($dnf_n) differs from kubeferry's ($npk)"
echo "bench/rpm: ratio kubeferry/dnf $(python3 -c "print('%.3f' % ($kf_ms / max($dnf_ms, 1)))")"
echo "bench/rpm: reproduce with: KF_BENCH_PKGS=$N KF_BENCH_RUNS=$RUNS bash bench/rpm.sh   (or bench/run rpm)"

# ---- size the shipped package sets add ---------------------------------
if [ "${KF_BENCH_ROCKY:-0}" = 1 ] &&
	curl -sf --max-time 10 -o /dev/null https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/repodata/repomd.xml; then
	for major in 9 10; do for arch in x86_64 aarch64; do
		files=
		for r in BaseOS AppStream; do
			base=https://dl.rockylinux.org/pub/rocky/$major/$r/$arch/os/
			href=$(curl -sf "$base/repodata/repomd.xml" | python3 -c '
import re, sys
m = re.search(r"<data type=\"primary\">.*?<location href=\"([^\"]+)\"", sys.stdin.read(), re.S)
print(m.group(1))')
			curl -sf -o "$W/$major-$r-$arch.xml.gz" "$base$href"
			files=${files:+$files,}$W/$major-$r-$arch.xml.gz
		done
		minimal=$(grep -v '^#' "$ROOT/manifests/rpm-base/rocky-$major-minimal.txt")
		# The closure of install: minus the closure of the minimal base.
		read -r _ _ nall all < <("$W/rpm_resolve" "$arch" 1 "$files" conntrack-tools socat \
			iptables-nft ethtool ipset iproute util-linux container-selinux libseccomp nftables tar $minimal)
		read -r _ _ nbase base < <("$W/rpm_resolve" "$arch" 1 "$files" $minimal)
		echo "bench/rpm: rocky-$major $arch: $((nall - nbase)) packages, $(( (all - base) / 1024 )) KiB (measured from Rocky's metadata)"
	done; done
else
	echo "bench/rpm: Rocky's repositories not queried (set KF_BENCH_ROCKY=1 with internet access to measure)."
	echo "bench/rpm: estimate: the k8s-1.33 set (conntrack-tools + libnetfilter_cthelper/cttimeout/queue, socat, ipset + ipset-libs,"
	echo "bench/rpm:   container-selinux, ethtool, tar, iptables-nft + iptables-libs, nftables, libseccomp; util-linux and iproute"
	echo "bench/rpm:   are in the minimal base) is about 15 packages of 2-4 MiB per distro and architecture, so about 10-16 MiB"
	echo "bench/rpm:   for rocky-9 + rocky-10 on amd64 + arm64, uncompressed (RPM payloads are already compressed)."
fi
