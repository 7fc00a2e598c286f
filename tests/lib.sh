# Shared helpers for integration tests: source it first.
#   LAB       a scratch directory removed on exit (kept with KF_KEEP=1)
#   KF, KFI   the two programs under test
# Background servers started with kf_bg are killed on exit.
set -euo pipefail
# Debian's own tools first: the python3 modules the tests use (yaml,
# cryptography) come from Debian packages (.ci/packages), not from whatever
# interpreter a user environment puts first.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KF_BUILD=${KF_BUILD:-build}
case $KF_BUILD in /*) ;; *) KF_BUILD=$ROOT/$KF_BUILD ;; esac
KF=$KF_BUILD/kubeferry
KFI=$KF_BUILD/kubeferry-install
LAB=$(mktemp -d "${TMPDIR:-/tmp}/kf-test.XXXXXX")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
_kf_pids=()
_kf_cleanup_hooks=()

_kf_cleanup() {
	local rc=$?
	local h p
	for h in "${_kf_cleanup_hooks[@]+"${_kf_cleanup_hooks[@]}"}"; do eval "$h" || true; done
	for p in "${_kf_pids[@]+"${_kf_pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	for p in "${_kf_pids[@]+"${_kf_pids[@]}"}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KF_KEEP:-0}" = 1 ]; then echo "kept $LAB"; else rm -rf "$LAB"; fi
	exit $rc
}
trap _kf_cleanup EXIT

# kf_on_exit CMD: run CMD (a string) at exit, before servers are killed.
kf_on_exit() { _kf_cleanup_hooks+=("$1"); }

# kf_bg CMD...: start a background process, killed at exit.
kf_bg() { "$@" & _kf_pids+=($!); }

fail() { echo "FAIL: $*" >&2; exit 1; }

# has [GREP-OPTIONS] PATTERN: grep -q that reads all of its input. With
# pipefail, 'producer | grep -q' fails at random: grep exits at the first
# match and the producer dies of SIGPIPE mid-write.
has() { grep "$@" >/dev/null; }
note() { echo "--- $*"; }

# need TOOL...: exit 77 (skip) when a tool is missing.
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { echo "skip: $t not installed"; exit 77; }
	done
}

# expect_exit CODE CMD...: run CMD, require exit status CODE; its output is
# kept in $LAB/out for expect_output.
expect_exit() {
	local want=$1 rc=0; shift
	"$@" >"$LAB/out" 2>&1 || rc=$?
	if [ "$rc" -ne "$want" ]; then
		cat "$LAB/out" >&2
		fail "expected exit $want, got $rc: $*"
	fi
}
# expect_output REGEX: the last expect_exit's output matches (grep -E).
expect_output() {
	grep -Eq -- "$1" "$LAB/out" || { cat "$LAB/out" >&2; fail "output does not match /$1/"; }
}
assert_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: '$1' != '$2'"; }
assert_file() { [ -f "$1" ] || fail "missing file $1"; }
assert_absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "should not exist: $1"; }
# assert_no_match DIR GLOB: nothing in DIR matches GLOB (e.g. staging dirs)
assert_no_match() {
	local m
	m=$(find "$1" -maxdepth 1 -name "$2" -print -quit)
	[ -z "$m" ] || fail "unexpected $m"
}

# kf_cgroup_rmdir NAME: remove cgroup NAME from the systemd and unified
# hierarchies (nspawn nodes, tests/node/), deepest first, retrying for a few
# seconds while the kernel still releases emptied children.
kf_cgroup_rmdir() {
	local cg=$1 h
	for _ in $(seq 20); do
		for h in systemd unified; do
			[ -d "/sys/fs/cgroup/$h/$cg" ] &&
				find "/sys/fs/cgroup/$h/$cg" -depth -type d -exec rmdir {} + 2>/dev/null
		done
		[ -d "/sys/fs/cgroup/systemd/$cg" ] || [ -d "/sys/fs/cgroup/unified/$cg" ] || return 0
		sleep 0.25
	done
}

# kf_free_port: a TCP port on 127.0.0.1 that is free right now.
kf_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# kf_wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT.
kf_wait_port() {
	local port=$1 n=$(( ${2:-10} * 20 ))
	while [ $n -gt 0 ]; do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.05; n=$((n - 1))
	done
	fail "nothing listens on 127.0.0.1:$port"
}

# kf_keypair DIR: an unencrypted kubeferry key pair DIR/kf.key, DIR/kf.pub.
kf_keypair() {
	mkdir -p "$1"
	"$KF" keygen -W -s "$1/kf.key" -p "$1/kf.pub" >/dev/null
}

# kf_ca DIR [NAME...]: a CA (DIR/ca.crt) and a server certificate
# (DIR/server.crt, DIR/server.key) for 127.0.0.1, ::1, localhost and NAMEs.
# An existing DIR/server.crt is kept, so that several labs (nginx, registry)
# can share one CA.
kf_ca() {
	local d=$1; shift
	[ -f "$d/server.crt" ] && return 0
	local san="IP:127.0.0.1,IP:::1,DNS:localhost" n
	for n in "$@"; do san="$san,DNS:$n"; done
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=kubeferry test CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -out "$d/server.crt" -days 2 -extfile "$d/ext.cnf" 2>/dev/null
}
