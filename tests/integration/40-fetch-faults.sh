#!/usr/bin/env bash
# Transfer engine against a misbehaving server (tests/nginx/flaky.py): a
# connection reset halfway resumes with a Range request, a server that
# ignores Range, 503 twice then 200, 503 forever, 429 with Retry-After,
# a partial file left by a killed run, and a refused connection.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/nginx/lab.sh"
fetch_lab_start
F=http://127.0.0.1:$FLAKY_PORT
lines() { wc -l <"$1" | tr -d ' '; }
fetch() { "$KF" fetch -q --cache "$LAB/cache" "$@"; }

h=$(mkfile f/artifact.bin 300000)

note "connection reset halfway: resumed with a Range request, result verified"
expect_exit 0 fetch "$h" "$F/reset/f/artifact.bin"
cat "$FLAKY_LOG"
assert_eq "$(lines "$FLAKY_LOG")" 2 "requests"
sed -n 1p "$FLAKY_LOG" | has "GET /reset/f/artifact.bin range=- 200" || fail "first request"
sed -n 2p "$FLAKY_LOG" | has "GET /reset/f/artifact.bin range=bytes=[1-9][0-9]*- 206" ||
	fail "second request is not a Range request"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "resumed file differs"
assert_eq "$(find "$LAB/cache/tmp" -type f | wc -l)" 0 "temporary files left"

note "a reset in a download of several megabytes: resumed at the very byte it stopped"
# 3.5 MB spans several of the engine's 1 MiB buffers (xfer.c, sink.c): the
# Range must start where the reset cut the body, so every byte taken in had
# reached the file and the hash; a lost buffer would fail the digest and
# force a third, clean download.
big=$(mkfile f/big.bin 3500000)
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 0 fetch "$big" "$F/reset/f/big.bin"
cat "$FLAKY_LOG"
assert_eq "$(lines "$FLAKY_LOG")" 2 "requests"
sed -n 2p "$FLAKY_LOG" | has "GET /reset/f/big.bin range=bytes=1750000- 206" ||
	fail "the resume does not start at byte 1750000"
cmp "$LAB/cache/sha256/$big" "$LAB/www/f/big.bin" || fail "resumed file differs"

note "a server that ignores Range: the download starts over and is verified"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 0 fetch "$h" "$F/norange/f/artifact.bin"
cat "$FLAKY_LOG"
assert_eq "$(lines "$FLAKY_LOG")" 3 "requests"
sed -n 2p "$FLAKY_LOG" | has "range=bytes=.* 200" || fail "second request"
sed -n 3p "$FLAKY_LOG" | has "range=- 200" || fail "third request"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "restarted file differs"

note "503 twice, then 200"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 0 fetch "$h" "$F/503twice/f/artifact.bin"
assert_eq "$(grep -c ' 503$' "$FLAKY_LOG")" 2 "503 answers"
assert_eq "$(grep -c ' 200$' "$FLAKY_LOG")" 1 "200 answers"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "file differs"

note "503 forever: retries exhausted, exit 3 naming URL and status, nothing cached"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 3 env KUBEFERRY_RETRIES=2 "$KF" fetch -q --cache "$LAB/cache" "$h" "$F/always503/f/artifact.bin"
expect_output "download of $F/always503/f/artifact.bin failed after 3 attempts: HTTP 503"
assert_eq "$(lines "$FLAKY_LOG")" 3 "attempts"
assert_cache_clean "$h"

note "retry messages without -q"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 0 "$KF" fetch --cache "$LAB/cache" "$h" "$F/503twice/f/artifact.bin?2"
expect_output "$F/503twice/f/artifact.bin\\?2: HTTP 503; retry 1/5 in"
expect_output "$F/503twice/f/artifact.bin\\?2: HTTP 503; retry 2/5 in"

note "429 honours Retry-After"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
expect_exit 0 fetch "$h" "$F/429/f/artifact.bin"
assert_eq "$(lines "$FLAKY_LOG")" 2 "requests"
t1=$(sed -n 1p "$FLAKY_LOG" | cut -d' ' -f1)
t2=$(sed -n 2p "$FLAKY_LOG" | cut -d' ' -f1)
python3 -c "import sys; sys.exit(0 if $t2 - $t1 >= 0.95 else 1)" || fail "retried after $t1..$t2, before Retry-After: 1"

note "a partial file left by a killed run is resumed"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
mkdir -p "$LAB/cache/tmp"
head -c 100000 "$LAB/www/f/artifact.bin" >"$LAB/cache/tmp/$h.part"
expect_exit 0 fetch "$h" "$F/plain/f/artifact.bin"
assert_eq "$(lines "$FLAKY_LOG")" 1 "requests"
grep -q "range=bytes=100000- 206" "$FLAKY_LOG" || fail "no Range request from 100000"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "file differs"
assert_absent "$LAB/cache/tmp/$h.part"

note "a stale partial file (other bytes) fails the digest once, then starts over"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
mkdir -p "$LAB/cache/tmp"
head -c 100000 /dev/urandom >"$LAB/cache/tmp/$h.part"
expect_exit 0 fetch "$h" "$F/plain/f/artifact.bin"
sed -n 1p "$FLAKY_LOG" | has "range=bytes=100000- 206" || fail "first request"
sed -n 2p "$FLAKY_LOG" | has "range=- 200" || fail "no clean download after the mismatch"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "file differs"

note "a complete partial file (killed before the rename): 416, checked, kept"
rm -rf "$LAB/cache"; : >"$FLAKY_LOG"
mkdir -p "$LAB/cache/tmp"
cp "$LAB/www/f/artifact.bin" "$LAB/cache/tmp/$h.part"
expect_exit 0 fetch "$h" "$F/plain/f/artifact.bin"
grep -q "range=bytes=300000- 416" "$FLAKY_LOG" || fail "no 416"
assert_eq "$(lines "$FLAKY_LOG")" 1 "requests"
cmp "$LAB/cache/sha256/$h" "$LAB/www/f/artifact.bin" || fail "file differs"

note "connection refused: retried, then exit 3 naming the URL"
rm -rf "$LAB/cache"
dead=$(kf_free_port)
expect_exit 3 env KUBEFERRY_RETRIES=1 "$KF" fetch -q --cache "$LAB/cache" "$h" "http://127.0.0.1:$dead/x"
expect_output "download of http://127.0.0.1:$dead/x failed after 2 attempts: .*(connect|Connection refused)"
assert_cache_clean "$h"
