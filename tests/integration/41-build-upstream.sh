#!/usr/bin/env bash
# kubeferry build of a spec shaped like manifests/k8s-1.33.yaml (the same
# components, versions and upstream URL templates, amd64 and arm64), served
# by nginx over TLS under the upstream layout and reached through --rewrite.
# The bundle verifies, the lock records the upstream URLs, a second build
# downloads nothing, and a bad checksum or a 404 fails the build cleanly.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/nginx/lab.sh"
need zstd tar
fetch_lab_start
B=https://127.0.0.1:$TLS_PORT
kf_keypair "$LAB/k"
lines() { wc -l <"$1" | tr -d ' '; }

note "spec: the components of manifests/k8s-1.33.yaml with test files"
shipped_spec_like 20000
assert_eq "$(lines "$LAB/urls")" 18 "artifacts"
RW=(--rewrite "https://dl.k8s.io=$B/dl.k8s.io" --rewrite "https://github.com=$B/github.com"
	--rewrite "https://get.helm.sh=$B/get.helm.sh")
build() { "$KF" build "$LAB/spec.yaml" -s "$LAB/k/kf.key" --cache "$LAB/cache" \
	--cacert "$LAB/ca/ca.crt" "${RW[@]}" "$@"; }

note "build through the rewrites, verify"
mkdir -p "$LAB/out1" "$LAB/out2" "$LAB/out3"
expect_exit 0 build -q -j 4 -o "$LAB/out1/k8s.tar.zst"
expect_exit 0 "$KF" verify "$LAB/out1/k8s.tar.zst" -p "$LAB/k/kf.pub"
assert_eq "$(grep -c '" 200 ' "$NGINX_LOG")" 18 "downloads"

note "the lock records the upstream URLs; files sit under files/<host>/<path>"
zstd -dc "$LAB/out1/k8s.tar.zst" | tar -xO kubeferry/bundle.yaml >"$LAB/lock.yaml"
zstd -dc "$LAB/out1/k8s.tar.zst" | tar -t >"$LAB/entries"
while read -r url; do
	grep -qF "$url" "$LAB/lock.yaml" || fail "lock lacks $url"
	grep -qx "files/${url#https://}" "$LAB/entries" || fail "bundle lacks files/${url#https://}"
done <"$LAB/urls"
grep -q "127.0.0.1" "$LAB/lock.yaml" && fail "the mirror URL leaked into the lock"
mkdir -p "$LAB/x"
zstd -dc "$LAB/out1/k8s.tar.zst" | tar -x -C "$LAB/x" files
(cd "$LAB/x/files" && diff -r . "$LAB/www") || fail "bundled files differ from upstream"

note "a second build downloads nothing and gives the same bytes"
before=$(lines "$NGINX_LOG")
expect_exit 0 build -q -o "$LAB/out2/k8s.tar.zst"
assert_eq "$(lines "$NGINX_LOG")" "$before" "requests on a warm cache"
cmp "$LAB/out1/k8s.tar.zst" "$LAB/out2/k8s.tar.zst" || fail "rebuild differs"

note "a tampered cache entry (same size) fails the build naming the entry, leaves nothing, and is evicted"
k=dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm
hk=$(sha "$LAB/www/$k")
printf 'X' | dd of="$LAB/cache/sha256/$hk" bs=1 seek=100 conv=notrunc 2>/dev/null
[ "$(sha "$LAB/cache/sha256/$hk")" != "$hk" ] || fail "the cache entry is unchanged"
rm -rf "$LAB/out5"; mkdir -p "$LAB/out5"
before=$(lines "$NGINX_LOG")
expect_exit 1 build -q -o "$LAB/out5/k8s.tar.zst"
expect_output "files/$k: sha256 mismatch: lock says $hk, $LAB/cache/sha256/$hk is [0-9a-f]{64}"
expect_output "corrupt cache entry of https://$k was removed"
assert_eq "$(find "$LAB/out5" -mindepth 1 | wc -l)" 0 "files left by a failed build"
assert_cache_clean "$hk"
assert_eq "$(lines "$NGINX_LOG")" "$before" "requests during the failed build"
note "... and the next build downloads it again and matches the first"
expect_exit 0 build -q -o "$LAB/out5/k8s.tar.zst"
assert_eq "$(lines "$NGINX_LOG")" "$((before + 1))" "requests after the eviction"
cmp "$LAB/out1/k8s.tar.zst" "$LAB/out5/k8s.tar.zst" || fail "rebuild after eviction differs"

note "a cache entry that grew fails the same way (size taken from the file, sha256 differs)"
printf 'extra' >>"$LAB/cache/sha256/$hk"
rm -rf "$LAB/out5"; mkdir -p "$LAB/out5"
expect_exit 1 build -q -o "$LAB/out5/k8s.tar.zst"
expect_output "files/$k: sha256 mismatch"
assert_eq "$(find "$LAB/out5" -mindepth 1 | wc -l)" 0 "files left by a failed build"
assert_cache_clean "$hk"

note "progress: one line per finished transfer when not on a terminal"
rm -rf "$LAB/cache"
build -o "$LAB/out3/k8s.tar.zst" 2>"$LAB/err" >/dev/null || { cat "$LAB/err"; fail "build"; }
assert_eq "$(grep -c "^kubeferry: fetched https://[a-z]" "$LAB/err")" 18 "progress lines (upstream URLs)"

note "upstream content that does not match the pin: exit 1, nothing cached, no bundle"
k=dl.k8s.io/release/v1.33.3/bin/linux/arm64/kubelet
good=$(sha "$LAB/www/$k")
rm -f "$LAB/cache/sha256/$good"
head -c 1000 /dev/urandom >>"$LAB/www/$k"
badsum=$(sha "$LAB/www/$k")
rm -rf "$LAB/out4"; mkdir -p "$LAB/out4"
expect_exit 1 build -q -o "$LAB/out4/k8s.tar.zst"
expect_output "checksum mismatch for https://$k \\(fetched from $B/$k\\): expected sha256 $good, got $badsum"
assert_cache_clean "$good"
assert_cache_clean "$badsum"
assert_eq "$(find "$LAB/out4" -mindepth 1 | wc -l)" 0 "files left by a failed build"

note "upstream 404: exit 3 naming the upstream URL and the status"
rm -f "$LAB/www/$k"
expect_exit 3 build -q -o "$LAB/out4/k8s.tar.zst"
expect_output "https://$k \\(fetched from $B/$k\\) failed: HTTP 404"
assert_eq "$(find "$LAB/out4" -mindepth 1 | wc -l)" 0 "files left by a failed build"
assert_cache_clean "$good"
