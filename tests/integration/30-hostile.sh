#!/usr/bin/env bash
# Hostile bundles, built here with GNU tar, zstd and the stock minisign: each
# must be refused by 'kubeferry-install unpack' with exit 1 and a message
# naming the problem, and leave nothing behind (no DIR, no staging
# directory, nothing written outside).
source "$(dirname "$0")/../lib.sh"
need tar zstd minisign sha256sum

SRC=$LAB/src          # files that go into bundles
WORK=$LAB/work        # the parent of every destination: must stay empty
mkdir -p "$SRC/files/dl.example/bin" "$SRC/kubeferry" "$WORK"
printf 'hello world\n' >"$SRC/files/dl.example/a.txt"
head -c 300000 /dev/urandom >"$SRC/files/dl.example/bin/tool"
chmod 0755 "$SRC/files/dl.example/bin/tool"
printf 'not listed\n' >"$SRC/files/dl.example/extra"

minisign -G -W -p "$LAB/k.pub" -s "$LAB/k.key" >/dev/null 2>&1
minisign -G -W -p "$LAB/other.pub" -s "$LAB/other.key" >/dev/null 2>&1

# lock_entry PATH [SIZE [SHA]]: one entries item for a file under $SRC.
lock_entry() {
	local f=$1 size=${2:-} sha=${3:-} mode=0644
	[ -n "$size" ] || size=$(stat -c %s "$SRC/$f")
	[ -n "$sha" ] || sha=$(sha256sum <"$SRC/$f" | cut -d' ' -f1)
	[ -x "$SRC/$f" ] && mode=0755
	printf '  - path: "%s"\n    size: %s\n    mode: "%s"\n    sha256: "%s"\n' \
		"$f" "$size" "$mode" "$sha"
}

# write_lock ENTRY-LINES: the lock (format of manifests/lock.c, kf_lock_emit)
# into $SRC/kubeferry/bundle.yaml, signed with minisign KEY (default k).
write_lock() {
	local key=${2:-k}
	{
		cat <<'EOF'
format: 1
name: "hostile"
version: "1.0.0"
kubernetesVersion: "1.33.3"
architectures: ["amd64"]
created: "2023-11-14T22:13:20Z"
builder: "kubeferry 0.1.0"
components: []
images: []
install:
  etcd: "host"
  cni: "flannel"
  podSubnet: "10.244.0.0/16"
  serviceSubnet: "10.96.0.0/12"
  mirror: null
entries:
EOF
		printf '%s' "$1"
	} >"$SRC/kubeferry/bundle.yaml"
	rm -f "$SRC/kubeferry/bundle.yaml.minisig"
	minisign -S -s "$LAB/$key.key" -m "$SRC/kubeferry/bundle.yaml" \
		-t "hostile 1.0.0" >/dev/null
}

GOOD_ENTRIES="$(lock_entry files/dl.example/a.txt)
$(lock_entry files/dl.example/bin/tool)
"
LOCK=kubeferry/bundle.yaml
SIG=kubeferry/bundle.yaml.minisig
A=files/dl.example/a.txt
T=files/dl.example/bin/tool

# pack OUT NAME...: a pax tar of the names (in this order, no recursion,
# numeric owner 0) from $SRC, zstd-compressed. A name given twice is stored
# twice as a regular file (--hard-dereference); PACK_FLAGS adds options.
pack() {
	local out=$1; shift
	tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 \
		--no-recursion ${PACK_FLAGS:---hard-dereference} -cf - "$@" |
		zstd -q -c >"$out"
}

# refused BUNDLE REGEX: unpack fails with exit 1 and REGEX in the message,
# and nothing is left: no DIR, no staging directory, nothing in $WORK.
refused() {
	local b=$1 re=$2
	expect_exit 1 "$KFI" unpack "$b" -p "$LAB/k.pub" -d "$WORK/dest"
	expect_output "$re"
	assert_absent "$WORK/dest"
	assert_no_match "$WORK" 'dest.kf-staging-*'
	[ -z "$(ls -A "$WORK")" ] || fail "left behind in $WORK: $(ls -A "$WORK")"
	# verify (no writing at all) refuses it the same way.
	expect_exit 1 "$KFI" verify "$b" -p "$LAB/k.pub"
	expect_output "$re"
}

write_lock "$GOOD_ENTRIES"
pack "$LAB/good.tar.zst" $LOCK $SIG $A $T

note "control: the well-formed bundle unpacks"
expect_exit 0 "$KFI" unpack "$LAB/good.tar.zst" -p "$LAB/k.pub" -d "$WORK/dest"
cmp "$WORK/dest/$A" "$SRC/$A"
rm -rf "$WORK/dest"

note "tampered entry content (same size)"
cp "$SRC/$A" "$LAB/a.orig"
printf 'HELLO world\n' >"$SRC/$A"
pack "$LAB/tampered.tar.zst" $LOCK $SIG $A $T
cp "$LAB/a.orig" "$SRC/$A"
refused "$LAB/tampered.tar.zst" "$A: sha256 mismatch: lock says [0-9a-f]{64}, content is [0-9a-f]{64}"

note "tampered lock (signature no longer matches)"
cp -r "$SRC/kubeferry" "$LAB/kubeferry.orig"
sed -i 's/name: "hostile"/name: "hostilf"/' "$SRC/$LOCK"
pack "$LAB/badlock.tar.zst" $LOCK $SIG $A $T
rm -rf "$SRC/kubeferry" && cp -r "$LAB/kubeferry.orig" "$SRC/kubeferry"
refused "$LAB/badlock.tar.zst" "bundle.yaml.minisig: signature verification failed"

note "oversized signature entry"
cp "$SRC/$SIG" "$LAB/sig.orig"
head -c 20000 /dev/zero | tr '\0' 'A' >>"$SRC/$SIG"
pack "$LAB/bigsig.tar.zst" $LOCK $SIG $A $T
cp "$LAB/sig.orig" "$SRC/$SIG"
refused "$LAB/bigsig.tar.zst" "bundle.yaml.minisig is [0-9]+ bytes, more than the 16384 allowed"

note "truncated file"
size=$(stat -c %s "$LAB/good.tar.zst")
head -c $((size / 2)) "$LAB/good.tar.zst" >"$LAB/truncated.tar.zst"
refused "$LAB/truncated.tar.zst" "truncated or corrupt bundle"
head -c $((size - 5)) "$LAB/good.tar.zst" >"$LAB/truncated2.tar.zst"
refused "$LAB/truncated2.tar.zst" "truncated or corrupt bundle"

note "corrupt zstd frame in the middle"
cp "$LAB/good.tar.zst" "$LAB/corrupt.tar.zst"
printf '\377\377\377\377\377\377\377\377' | dd of="$LAB/corrupt.tar.zst" bs=1 \
	seek=$((size / 2)) conv=notrunc status=none
refused "$LAB/corrupt.tar.zst" "truncated or corrupt bundle|sha256 mismatch"

note "wrong key"
expect_exit 1 "$KFI" unpack "$LAB/good.tar.zst" -p "$LAB/other.pub" -d "$WORK/dest"
expect_output "signed by key [0-9A-F]{16}, but the trusted key is [0-9A-F]{16}"
assert_absent "$WORK/dest"
[ -z "$(ls -A "$WORK")" ] || fail "left behind in $WORK"

note "lock signed by another key"
write_lock "$GOOD_ENTRIES" other
pack "$LAB/otherkey.tar.zst" $LOCK $SIG $A $T
write_lock "$GOOD_ENTRIES"
refused "$LAB/otherkey.tar.zst" "bundle.yaml.minisig: signed by key [0-9A-F]{16}, but the trusted key is [0-9A-F]{16}"

note "unsigned bundle (no signature entry)"
pack "$LAB/unsigned.tar.zst" $LOCK $A $T
refused "$LAB/unsigned.tar.zst" "unsigned bundle: entry $A where $SIG must be"
pack "$LAB/unsigned2.tar.zst" $LOCK
refused "$LAB/unsigned2.tar.zst" "unsigned bundle: no $SIG"

note "entry not in the lock"
pack "$LAB/extra.tar.zst" $LOCK $SIG $A files/dl.example/extra $T
refused "$LAB/extra.tar.zst" "entry files/dl.example/extra is not listed in the lock"

note "lock not first"
pack "$LAB/notfirst.tar.zst" $A $LOCK $SIG $T
refused "$LAB/notfirst.tar.zst" "entry $A where $LOCK must be"

note "duplicate entry"
pack "$LAB/dup.tar.zst" $LOCK $SIG $A $T $A
refused "$LAB/dup.tar.zst" "duplicate entry $A"

note "'..' path"
# The entry ../x would land in $WORK/x, next to the destination.
mkdir -p "$SRC/sub"
printf 'escaped\n' >"$SRC/x"
tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 \
	--no-recursion -cf "$LAB/dotdot.tar" $LOCK $SIG
tar -C "$SRC/sub" -P --format=pax --numeric-owner --owner=0 --group=0 \
	--no-recursion -rf "$LAB/dotdot.tar" ../x
# Listings go to a file first: 'tar | grep -q' fails under pipefail when
# grep exits before tar has written its last line (SIGPIPE).
tar -tPf "$LAB/dotdot.tar" >"$LAB/listing"
grep -qx '\.\./x' "$LAB/listing" || fail "test bundle lacks ../x"
zstd -q -c "$LAB/dotdot.tar" >"$LAB/dotdot.tar.zst"
refused "$LAB/dotdot.tar.zst" "entry \.\./x: unsafe path"
assert_absent "$WORK/x"

note "absolute path"
ABS=$LAB/abs-target
printf 'absolute\n' >"$ABS"
tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 \
	--no-recursion -cf "$LAB/abs.tar" $LOCK $SIG
tar -P --format=pax --numeric-owner --owner=0 --group=0 \
	--no-recursion -rf "$LAB/abs.tar" "$ABS"
rm -f "$ABS"
tar -tPf "$LAB/abs.tar" >"$LAB/listing"
grep -qx "$ABS" "$LAB/listing" || fail "test bundle lacks $ABS"
zstd -q -c "$LAB/abs.tar" >"$LAB/abs.tar.zst"
refused "$LAB/abs.tar.zst" "entry $ABS: unsafe path"
assert_absent "$ABS"

note "symlink"
ln -s /etc/passwd "$SRC/files/dl.example/link"
pack "$LAB/symlink.tar.zst" $LOCK $SIG $A files/dl.example/link $T
refused "$LAB/symlink.tar.zst" "entry files/dl.example/link: a symbolic link is not allowed"
rm "$SRC/files/dl.example/link"

note "hardlink"
ln "$SRC/$A" "$SRC/files/dl.example/hard"
write_lock "$GOOD_ENTRIES$(lock_entry files/dl.example/hard)
"
PACK_FLAGS=--no-recursion pack "$LAB/hardlink.tar.zst" $LOCK $SIG $A files/dl.example/hard $T
zstd -dc "$LAB/hardlink.tar.zst" | tar -tv >"$LAB/listing"
grep -q '^h' "$LAB/listing" || fail "test bundle lacks a hard link: $(cat "$LAB/listing")"
refused "$LAB/hardlink.tar.zst" "entry files/dl.example/hard: a hard link is not allowed"
rm "$SRC/files/dl.example/hard"
write_lock "$GOOD_ENTRIES"

note "character device"
if mknod "$SRC/files/dl.example/dev" c 1 3 2>/dev/null; then
	pack "$LAB/device.tar.zst" $LOCK $SIG $A files/dl.example/dev $T
	rm -f "$SRC/files/dl.example/dev"
else
	# No CAP_MKNOD here: write the device entry with Python's tarfile.
	python3 - "$SRC" "$LAB/device.tar" <<'EOF'
import sys, tarfile
src, out = sys.argv[1:3]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for n in ("kubeferry/bundle.yaml", "kubeferry/bundle.yaml.minisig"):
        t.add(src + "/" + n, arcname=n)
    d = tarfile.TarInfo("files/dl.example/dev")
    d.type = tarfile.CHRTYPE; d.devmajor = 1; d.devminor = 3
    t.addfile(d)
EOF
	zstd -q -c "$LAB/device.tar" >"$LAB/device.tar.zst"
fi
zstd -dc "$LAB/device.tar.zst" | tar -tv >"$LAB/listing"
grep -q '^c' "$LAB/listing" || fail "test bundle lacks a device: $(cat "$LAB/listing")"
refused "$LAB/device.tar.zst" "entry files/dl.example/dev: a character device is not allowed"

note "FIFO"
mkfifo "$SRC/files/dl.example/fifo"
pack "$LAB/fifo.tar.zst" $LOCK $SIG $A files/dl.example/fifo
rm "$SRC/files/dl.example/fifo"
refused "$LAB/fifo.tar.zst" "entry files/dl.example/fifo: a FIFO is not allowed"

note "directory entry"
pack "$LAB/dir.tar.zst" $LOCK $SIG files/dl.example $A $T
refused "$LAB/dir.tar.zst" "entry files/dl.example/?: a directory"

note "control characters in a name (terminal escapes) are refused, not echoed"
esc=$(printf 'files/dl.example/\033[31mred')
printf 'x' >"$SRC/$esc"
pack "$LAB/ctrl.tar.zst" $LOCK $SIG "$esc"
rm "$SRC/$esc"
refused "$LAB/ctrl.tar.zst" "entry files/dl.example/\?\[31mred: unsafe path"
if grep -q $'\033' "$LAB/out"; then fail "escape sequence echoed"; fi

note "entry larger than the lock says"
real=$(stat -c %s "$SRC/$T")
write_lock "$(lock_entry $A)
$(lock_entry $T $((real - 1000)))
"
pack "$LAB/larger.tar.zst" $LOCK $SIG $A $T
refused "$LAB/larger.tar.zst" "$T: size mismatch: lock says $((real - 1000)) bytes, header says $real"
write_lock "$GOOD_ENTRIES"

note "listed entry missing"
pack "$LAB/missing.tar.zst" $LOCK $SIG $A
refused "$LAB/missing.tar.zst" "$T is listed in the lock but missing from the bundle"

note "garbage, not zstd"
head -c 100000 /dev/urandom >"$LAB/garbage.tar.zst"
refused "$LAB/garbage.tar.zst" "not a kubeferry bundle"
: >"$LAB/empty.tar.zst"
refused "$LAB/empty.tar.zst" "not a kubeferry bundle|empty"

note "plain tar, not zstd-compressed"
tar -C "$SRC" --format=pax --numeric-owner --no-recursion \
	-cf "$LAB/plain.tar.zst" $LOCK $SIG $A $T
refused "$LAB/plain.tar.zst" "not zstd-compressed"

note "hostile bundle on standard input"
expect_exit 1 "$KFI" unpack - -p "$LAB/k.pub" -d "$WORK/dest" <"$LAB/tampered.tar.zst"
expect_output "sha256 mismatch"
assert_absent "$WORK/dest"
[ -z "$(ls -A "$WORK")" ] || fail "left behind in $WORK"

note "a failed unpack with --force leaves the existing tree as it was"
mkdir -p "$WORK/dest" && printf 'keep\n' >"$WORK/dest/old"
expect_exit 1 "$KFI" unpack "$LAB/tampered.tar.zst" -p "$LAB/k.pub" -d "$WORK/dest" --force
expect_output "sha256 mismatch"
assert_eq "$(cat "$WORK/dest/old")" keep "old tree"
assert_absent "$WORK/dest/files"
assert_eq "$(ls -A "$WORK")" dest "entries in $WORK"

note "the bundler's verify refuses them too"
expect_exit 1 "$KF" verify "$LAB/dup.tar.zst" -p "$LAB/k.pub"
expect_output "duplicate entry"
# ---- what verify and unpack must judge alike (issue 10, points 13-16) ----

# accepted BUNDLE: verify and unpack both succeed.
accepted() {
	expect_exit 0 "$KFI" verify "$1" -p "$LAB/k.pub"
	expect_exit 0 "$KFI" unpack "$1" -p "$LAB/k.pub" -d "$WORK/dest"
	rm -rf "$WORK/dest"
}

rm -rf "$WORK/dest"
head -c 100000 /dev/zero | zstd -q -c >"$LAB/zeros.zst"   # checksummed
zs=$(stat -c %s "$LAB/zeros.zst")

note "after the archive's end: another zstd frame with content"
{ cat "$LAB/good.tar.zst"; printf 'not padding\n' | zstd -q -c; } >"$LAB/tail-frame.tar.zst"
refused "$LAB/tail-frame.tar.zst" "data after the end of the archive"

note "after the archive's end: a truncated zstd frame"
{ cat "$LAB/good.tar.zst"; head -c $((zs - 2)) "$LAB/zeros.zst"; } >"$LAB/tail-cut.tar.zst"
refused "$LAB/tail-cut.tar.zst" "truncated or corrupt bundle"

note "after the archive's end: an undecodable zstd frame (bad checksum)"
{ cat "$LAB/good.tar.zst"; head -c $((zs - 4)) "$LAB/zeros.zst"; printf 'XXXX'; } >"$LAB/tail-bad.tar.zst"
refused "$LAB/tail-bad.tar.zst" "truncated or corrupt bundle"

note "after the last zstd frame: garbage"
{ cat "$LAB/good.tar.zst"; printf 'garbage'; } >"$LAB/tail-garbage.tar.zst"
refused "$LAB/tail-garbage.tar.zst" "truncated or corrupt bundle"

note "a frame of zero bytes after the end is tar padding: accepted"
cat "$LAB/good.tar.zst" "$LAB/zeros.zst" >"$LAB/tail-zeros.tar.zst"
accepted "$LAB/tail-zeros.tar.zst"

note "a trusted comment over 1 KiB (stock minisign signs up to 4 KiB): verify and unpack agree"
LONG_TC=$(head -c 2000 /dev/zero | tr '\0' c)
cp "$SRC/$SIG" "$LAB/sig.orig"
minisign -S -s "$LAB/k.key" -m "$SRC/$LOCK" -t "$LONG_TC" >/dev/null
pack "$LAB/longtc.tar.zst" $LOCK $SIG $A $T
cp "$LAB/sig.orig" "$SRC/$SIG"
accepted "$LAB/longtc.tar.zst"
expect_exit 0 "$KFI" verify "$LAB/longtc.tar.zst" -p "$LAB/k.pub"
expect_output "trusted comment: +$LONG_TC"

note "blank lines after the signature's four lines: accepted, as by minisign -V"
printf '\n\n\r\n\n' >>"$SRC/$SIG"
expect_exit 0 minisign -V -p "$LAB/k.pub" -m "$SRC/$LOCK" -x "$SRC/$SIG"
pack "$LAB/blanks.tar.zst" $LOCK $SIG $A $T
accepted "$LAB/blanks.tar.zst"
printf 'text\n' >>"$SRC/$SIG"
pack "$LAB/sigtext.tar.zst" $LOCK $SIG $A $T
cp "$LAB/sig.orig" "$SRC/$SIG"
refused "$LAB/sigtext.tar.zst" "unexpected text after the global signature \(line 9\)"

note "a signed lock whose paths cannot all exist: a file and an entry inside it"
mkdir -p "$LAB/src2/$A"
printf 'child\n' >"$LAB/src2/$A/child"
write_lock "$(lock_entry $A)
$(SRC=$LAB/src2 lock_entry $A/child)
"
tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 --no-recursion \
	-cf "$LAB/inside.tar" $LOCK $SIG $A
tar -C "$LAB/src2" --format=pax --numeric-owner --owner=0 --group=0 --no-recursion \
	-rf "$LAB/inside.tar" $A/child
zstd -q -c "$LAB/inside.tar" >"$LAB/inside.tar.zst"
refused "$LAB/inside.tar.zst" "entry \"$A/child\" cannot exist: \"$A\" is a file in the lock"

note "a signed lock with a path component over 255 bytes"
LONG=$(head -c 256 /dev/zero | tr '\0' n)
write_lock "$(lock_entry $A | sed "s|$A|files/dl.example/$LONG|")"
tar -C "$SRC" --format=pax --numeric-owner --owner=0 --group=0 --no-recursion \
	--transform "s|^$A\$|files/dl.example/$LONG|" -cf - $LOCK $SIG $A |
	zstd -q -c >"$LAB/longname.tar.zst"
refused "$LAB/longname.tar.zst" "a component of 256 bytes \(at most 255"
write_lock "$GOOD_ENTRIES"

echo "all hostile cases refused"
