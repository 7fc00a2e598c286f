#!/usr/bin/env bash
# kubeferry build from local sources: output, reproducibility, checksum
# failures that leave nothing behind, and minisign interop of the result.
source "$(dirname "$0")/../lib.sh"
need minisign zstd tar

kf_keypair "$LAB/k"
mkdir -p "$LAB/src/a/amd64" "$LAB/src/a/arm64"
head -c 300000 /dev/urandom >"$LAB/src/a/amd64/tool"
head -c 200000 /dev/urandom >"$LAB/src/a/arm64/tool"
echo "notes" >"$LAB/src/notes.txt"
h() { sha256sum "$1" | cut -d' ' -f1; }
write_spec() { # FILE AMD64SUM
	cat >"$1" <<YAML
apiVersion: kubeferry.io/v1
kind: Bundle
metadata: {name: t, version: "1.0"}
spec:
  architectures: [amd64, arm64]
  components:
    - name: tool
      version: "1.0"
      url: a/{arch}/tool
      sha256: {amd64: $2, arm64: $(h "$LAB/src/a/arm64/tool")}
    - name: notes
      version: "1.0"
      url: file://$LAB/src/notes.txt
      sha256: {amd64: $(h "$LAB/src/notes.txt"), arm64: $(h "$LAB/src/notes.txt")}
YAML
}
write_spec "$LAB/src/spec.yaml" "$(h "$LAB/src/a/amd64/tool")"

note "a build writes the bundle and a detached signature"
expect_exit 0 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out1/b.tar.zst" -q
assert_file "$LAB/out1/b.tar.zst"
assert_file "$LAB/out1/b.tar.zst.minisig"
expect_exit 0 minisign -V -p "$LAB/k/kf.pub" -m "$LAB/out1/b.tar.zst"
expect_output "Trusted comment: kubeferry bundle t version 1.0"
expect_exit 0 "$KF" verify "$LAB/out1/b.tar.zst" -p "$LAB/k/kf.pub"

note "entries: lock first, its signature second, files under files/"
zstd -dc "$LAB/out1/b.tar.zst" | tar -t >"$LAB/list"
assert_eq "$(sed -n 1p "$LAB/list")" "kubeferry/bundle.yaml" "first entry"
assert_eq "$(sed -n 2p "$LAB/list")" "kubeferry/bundle.yaml.minisig" "second entry"
grep -qx "files/local/a/amd64/tool" "$LAB/list" || fail "relative source not under files/local"
grep -qx "files/local$LAB/src/notes.txt" "$LAB/list" || fail "file:// source not under files/local"

note "reproducible: another directory, another clock time -> identical bytes"
mkdir -p "$LAB/copy"
cp -a "$LAB/src/." "$LAB/copy/"
write_spec "$LAB/copy/spec.yaml" "$(h "$LAB/src/a/amd64/tool")"
(cd "$LAB/copy" && "$KF" build spec.yaml -s "$LAB/k/kf.key" -o "$LAB/out2/b.tar.zst" -q)
cmp "$LAB/out1/b.tar.zst" "$LAB/out2/b.tar.zst" || fail "bundles differ between two builds"
cmp "$LAB/out1/b.tar.zst.minisig" "$LAB/out2/b.tar.zst.minisig" || fail "signatures differ"

note "SOURCE_DATE_EPOCH sets the embedded time"
SOURCE_DATE_EPOCH=1800000000 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out3/b.tar.zst" -q
zstd -dc "$LAB/out3/b.tar.zst" | tar -xO kubeferry/bundle.yaml >"$LAB/lock3"
grep -q '^created: "2027-01-15T08:00:00Z"' "$LAB/lock3" || fail "created time not from SOURCE_DATE_EPOCH"
zstd -dc "$LAB/out3/b.tar.zst" | tar -tv --full-time >"$LAB/list3"
[ "$(grep -c ' 2027-01-15 08:00:00 ' "$LAB/list3")" = "$(wc -l <"$LAB/list3")" ] || fail "entry mtimes not from SOURCE_DATE_EPOCH"

note "without SOURCE_DATE_EPOCH the embedded time is 0, not the clock (documented default)"
env -u SOURCE_DATE_EPOCH "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out0/b.tar.zst" -q
zstd -dc "$LAB/out0/b.tar.zst" | tar -xO kubeferry/bundle.yaml >"$LAB/lock0"
grep -qx 'created: "1970-01-01T00:00:00Z"' "$LAB/lock0" || fail "created time without SOURCE_DATE_EPOCH: $(grep created "$LAB/lock0")"

note "a malformed SOURCE_DATE_EPOCH is an error, not a silent 0"
SOURCE_DATE_EPOCH=yesterday expect_exit 2 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/outx/b.tar.zst" -q
expect_output "SOURCE_DATE_EPOCH must be"
assert_absent "$LAB/outx/b.tar.zst"

note "rebuilding over an existing bundle replaces it and its signature; no temporary files remain"
expect_exit 0 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out3/b.tar.zst" -q
expect_exit 0 minisign -V -p "$LAB/k/kf.pub" -m "$LAB/out3/b.tar.zst"
assert_eq "$(ls "$LAB/out3")" "$(printf 'b.tar.zst\nb.tar.zst.minisig')" "files next to the bundle"

note "--level changes the compression, not the content"
expect_exit 0 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out4/b.tar.zst" --level 19 -q
expect_exit 0 "$KF" verify "$LAB/out4/b.tar.zst" -p "$LAB/k/kf.pub"
zstd -dc "$LAB/out4/b.tar.zst" | cmp - <(zstd -dc "$LAB/out1/b.tar.zst") || fail "tar stream differs with --level"
expect_exit 2 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/x.tar.zst" --level 99
expect_output "level"

note "a source whose sha256 differs fails, naming source, expected and actual; no output"
bad=0000000000000000000000000000000000000000000000000000000000000000
write_spec "$LAB/src/bad.yaml" "$bad"
expect_exit 1 "$KF" build "$LAB/src/bad.yaml" -s "$LAB/k/kf.key" -o "$LAB/out5/b.tar.zst" -q
expect_output "a/amd64/tool"
expect_output "$bad"
expect_output "$(h "$LAB/src/a/amd64/tool")"
assert_absent "$LAB/out5/b.tar.zst"
assert_absent "$LAB/out5/b.tar.zst.minisig"
[ -z "$(ls -A "$LAB/out5" 2>/dev/null)" ] || fail "leftovers in $LAB/out5: $(ls -A "$LAB/out5")"

note "a missing source fails with an I/O error naming it; no output"
rm "$LAB/src/a/arm64/tool"
expect_exit 3 "$KF" build "$LAB/src/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/out6/b.tar.zst" -q
expect_output "a/arm64/tool"
assert_absent "$LAB/out6/b.tar.zst"

note "usage errors exit 2"
expect_exit 2 "$KF" build "$LAB/src/spec.yaml" -o "$LAB/out7/b.tar.zst"
expect_output "-s SECRET"
expect_exit 2 "$KF" build
expect_exit 2 "$KF" no-such-command
echo "all build checks passed"
