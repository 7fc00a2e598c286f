#!/usr/bin/env bash
# make demo: the main job end to end, on this machine, with no internet.
# Each step says what it does. Scratch files live under build/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${KF_BUILD:-build}
case $B in /*) ;; *) B=$PWD/$B ;; esac
KF=$B/kubeferry
KFI=$B/kubeferry-install
DEMO=$B/demo
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
export SOURCE_DATE_EPOCH=1767225600   # 2026-01-01: the embedded, reproducible time

step "1. Generate a signing key pair (unencrypted for the demo: -W)"
"$KF" keygen -W -s "$DEMO/demo.key" -p "$DEMO/demo.pub"
ls -l "$DEMO/demo.key" "$DEMO/demo.pub"

step "2. Lint the demo spec (sources are local files, pinned by sha256)"
"$KF" lint manifests/demo/demo.yaml

step "3. Build the signed bundle"
"$KF" build manifests/demo/demo.yaml -s "$DEMO/demo.key" -o "$DEMO/demo.tar.zst"

step "4. Inspect it (reads the lock; no key needed, not a verification)"
"$KF" inspect "$DEMO/demo.tar.zst"

step "5. Verify it with kubeferry (lock signature, every entry, detached signature)"
"$KF" verify "$DEMO/demo.tar.zst" -p "$DEMO/demo.pub"

step "6. Verify the same file with the stock minisign CLI"
minisign -V -p "$DEMO/demo.pub" -m "$DEMO/demo.tar.zst"

step "7. Carry it in: the static installer verifies while it unpacks"
file "$KFI" | sed 's/, BuildID[^,]*//'
"$KFI" unpack "$DEMO/demo.tar.zst" -p "$DEMO/demo.pub" -d "$DEMO/unpacked"
find "$DEMO/unpacked" -type f | sort | sed "s|$DEMO/||"

step "8. A tampered bundle is refused and leaves nothing behind"
cp "$DEMO/demo.tar.zst" "$DEMO/tampered.tar.zst"
printf 'x' | dd of="$DEMO/tampered.tar.zst" bs=1 seek=600 conv=notrunc status=none
if "$KFI" unpack "$DEMO/tampered.tar.zst" -p "$DEMO/demo.pub" -d "$DEMO/tampered-out"; then
	echo "demo: tampered bundle was accepted" >&2; exit 1
fi
test ! -e "$DEMO/tampered-out" && echo "nothing was created at $DEMO/tampered-out"

step "Done. The bundle is $DEMO/demo.tar.zst"
