#!/usr/bin/env bash
# The good path of the bundle file: 'kubeferry build' writes it, GNU tar,
# zstd and minisign read it, 'kubeferry verify', 'kubeferry-install verify'
# and 'inspect' report on it, and 'kubeferry-install unpack' puts exactly
# the sources into a directory (from a file or from standard input),
# refusing or atomically replacing an existing one.
source "$(dirname "$0")/../lib.sh"
need tar zstd minisign jq cmp

kf_keypair "$LAB/keys"
PUB=$LAB/keys/kf.pub
mkdir -p "$LAB/spec/src" "$LAB/bun"
head -c 2500000 /dev/urandom >"$LAB/spec/src/tool"
printf 'some notes\n' >"$LAB/spec/src/NOTES.txt"
sha() { sha256sum <"$1" | cut -d' ' -f1; }
cat >"$LAB/spec/bundle.yaml" <<EOF
apiVersion: kubeferry.io/v1
kind: Bundle
metadata: {name: unpacktest, version: "1.2.3"}
spec:
  kubernetesVersion: "1.33.3"
  architectures: [amd64]
  components:
    - name: tool
      version: "1.0.0"
      url: src/tool
      sha256: {amd64: $(sha "$LAB/spec/src/tool")}
    - name: notes
      version: "1.0.0"
      url: src/NOTES.txt
      sha256: {amd64: $(sha "$LAB/spec/src/NOTES.txt")}
EOF
B=$LAB/bun/b.tar.zst
expect_exit 0 "$KF" build "$LAB/spec/bundle.yaml" -s "$LAB/keys/kf.key" -o "$B"
assert_file "$B"
assert_file "$B.minisig"

note "reproducible: a second build elsewhere gives the same bytes"
mkdir -p "$LAB/bun2"
expect_exit 0 "$KF" build "$LAB/spec/bundle.yaml" -s "$LAB/keys/kf.key" -o "$LAB/bun2/b.tar.zst"
cmp "$B" "$LAB/bun2/b.tar.zst" || fail "two builds differ"

note "standard tools read it: zstd, GNU tar (lock first, then its signature, then sorted), minisign"
zstd -t -q "$B"
zstd -dc "$B" | tar -t >"$LAB/list"
assert_eq "$(sed -n 1p "$LAB/list")" kubeferry/bundle.yaml "first entry"
assert_eq "$(sed -n 2p "$LAB/list")" kubeferry/bundle.yaml.minisig "second entry"
tail -n +3 "$LAB/list" >"$LAB/rest"
LC_ALL=C sort -c "$LAB/rest" || fail "entries are not sorted"
# The spec's two files, and the playbooks every bundle carries.
(cd "$ROOT" && find ansible -type f -name '*.yml' | LC_ALL=C sort) >"$LAB/playbooks"
NA=$(wc -l <"$LAB/playbooks")
[ "$NA" -ge 4 ] || fail "ansible/ has only $NA playbooks"
N=$((2 + NA))
[ "$(grep -vc '/$' "$LAB/rest")" -eq "$N" ] || fail "expected $N entries: $(cat "$LAB/rest")"
zstd -dc "$B" | tar -tv --numeric-owner | awk '$2 != "0/0" { exit 1 }' || fail "entries not owned by 0/0"
expect_exit 0 minisign -V -p "$PUB" -m "$B"

note "verify (both programs) reports what it checked"
expect_exit 0 "$KF" verify "$B" -p "$PUB"
expect_output "name: +unpacktest"
expect_output "entries: +$N"
expect_output "detached signature: +.*b.tar.zst.minisig verified"
expect_output "signer key id: +[0-9A-F]{16}"
expect_exit 0 "$KFI" verify "$B" -P "$(tail -n 1 "$PUB")"
expect_output "OK: lock signature and every entry verified"
expect_exit 0 "$KFI" verify - -p "$PUB" <"$B"
expect_output "not checked \(standard input\)"
expect_exit 0 "$KF" verify -q "$B" -p "$PUB"
[ ! -s "$LAB/out" ] || fail "-q printed something"

note "a bad detached signature fails verify, and says so"
cp "$B" "$LAB/bun2/c.tar.zst"
sed 's/^trusted comment: .*/trusted comment: forged/' "$B.minisig" >"$LAB/bun2/c.tar.zst.minisig"
expect_exit 1 "$KF" verify "$LAB/bun2/c.tar.zst" -p "$PUB"
expect_output "c.tar.zst.minisig"
expect_exit 1 "$KFI" verify "$LAB/bun2/c.tar.zst" -p "$PUB"
expect_output "c.tar.zst.minisig: trusted comment verification failed"

note "inspect reads the lock only"
expect_exit 0 "$KF" inspect "$B"
expect_output "NOT verified"
expect_output "^name: +unpacktest"
expect_output "tool +1.0.0 +amd64 +2500000"
expect_exit 0 "$KF" inspect --json "$B"
assert_eq "$(jq -r .name "$LAB/out")" unpacktest "json name"
assert_eq "$(jq -r .verified "$LAB/out")" false "json verified"
assert_eq "$(jq -r .entries "$LAB/out")" "$N" "json entries"
assert_eq "$(jq -r '.components[] | select(.name=="tool") | .size' "$LAB/out")" 2500000 "json size"

note "unpack from a file"
D=$LAB/dest/bundle
mkdir -p "$LAB/dest"
# Under a strict umask the tree still comes out 0755/0644 (services read it).
(umask 077 && expect_exit 0 "$KFI" unpack "$B" -p "$PUB" -d "$D")
expect_output "OK: unpacktest 1.2.3 \($N entries, [0-9]+ bytes, signed by key [0-9A-F]{16}\) verified and unpacked into $D"
[ -z "$(find "$D" -type d ! -perm 0755)" ] || fail "directory modes: $(find "$D" -type d -printf '%m %p\n')"
tool=$(jq -r '.components[] | select(.name=="tool") | .path' < <("$KF" inspect --json "$B"))
notes=$(jq -r '.components[] | select(.name=="notes") | .path' < <("$KF" inspect --json "$B"))
cmp "$D/$tool" "$LAB/spec/src/tool"
cmp "$D/$notes" "$LAB/spec/src/NOTES.txt"
assert_eq "$(find "$D" -type f | wc -l)" "$N" "files unpacked"
note "the playbooks come out of the bundle as they are in ansible/, listed in the signed lock"
while read -r f; do
	cmp "$D/$f" "$ROOT/$f" || fail "$f differs from the repository's"
	zstd -dc "$B" | tar -xO kubeferry/bundle.yaml | has -Fx "  - path: \"$f\"" || fail "the lock does not list $f"
done <"$LAB/playbooks"
grep -qx ansible/site.yml "$LAB/playbooks" || fail "no ansible/site.yml in the bundle"
[ -z "$(find "$D" ! -type f ! -type d)" ] || fail "something other than files and directories"
assert_eq "$(stat -c %a "$D/$notes")" 644 "mode"
assert_no_match "$LAB/dest" 'bundle.kf-staging-*'

note "an existing destination is refused without --force"
expect_exit 2 "$KFI" unpack "$B" -p "$PUB" -d "$D"
expect_output "already exists"
touch "$D/stale"
note "and replaced with --force"
expect_exit 0 "$KFI" unpack "$B" -p "$PUB" -d "$D" --force -q
assert_absent "$D/stale"
cmp "$D/$tool" "$LAB/spec/src/tool"
assert_eq "$(ls -A "$LAB/dest")" bundle "entries next to the destination"

note "unpack from standard input"
expect_exit 0 "$KFI" unpack - -p "$PUB" -d "$LAB/dest/stdin" <"$B"
cmp "$LAB/dest/stdin/$tool" "$LAB/spec/src/tool"
cmp "$LAB/dest/stdin/$notes" "$LAB/spec/src/NOTES.txt"
zstd -dc "$B" | zstd -q -c | "$KFI" unpack - -p "$PUB" -d "$LAB/dest/pipe" -q ||
	fail "unpack from a pipe failed"
cmp "$LAB/dest/pipe/$tool" "$LAB/spec/src/tool"

note "a trailing slash names the directory itself"
expect_exit 0 "$KFI" unpack "$B" -p "$PUB" -d "$LAB/dest/slash/" -q
cmp "$LAB/dest/slash/$tool" "$LAB/spec/src/tool"
assert_no_match "$LAB/dest/slash" '*kf-staging*'
assert_no_match "$LAB/dest" '*kf-staging*'
expect_exit 2 "$KFI" unpack "$B" -p "$PUB" -d "$LAB/dest/." --force
expect_output "name a new one"

note "usage and I/O errors"
expect_exit 0 "$KFI" unpack --help
expect_output "Exit codes"
expect_exit 2 "$KFI" unpack "$B" -d "$LAB/dest/x"
expect_output "-p|-P|public key"
assert_absent "$LAB/dest/x"
expect_exit 2 "$KFI" unpack "$B" -p "$PUB"
expect_exit 2 "$KF" verify "$B"
expect_exit 3 "$KFI" unpack "$B" -p "$PUB" -d "$LAB/no/such/parent/x"
expect_output "does not exist"
assert_absent "$LAB/no"
expect_exit 3 "$KFI" verify "$LAB/missing.tar.zst" -p "$PUB"
expect_output "missing.tar.zst"
echo "unpack paths work"
