#!/usr/bin/env bash
# Transfer engine against nginx over TLS: parallel HTTP/2 downloads into the
# content-addressed cache, a warm cache that downloads nothing, a corrupt
# cache entry, rewrites, redirects (Authorization stays on its host), the
# system-store default, a proxy from the environment, 404, checksum mismatch
# and the low-speed timeout.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/nginx/lab.sh"
fetch_lab_start
B=https://127.0.0.1:$TLS_PORT
lines() { wc -l <"$1" | tr -d ' '; }

note "a tree laid out like the upstream hosts, fetched in parallel over HTTP/2"
: >"$LAB/list"
for arch in amd64 arm64; do
	for t in kubeadm kubelet kubectl; do
		p=dl.k8s.io/release/v1.33.3/bin/linux/$arch/$t
		echo "$(mkfile "$p" 200000)  $B/$p" >>"$LAB/list"
	done
	p=github.com/containerd/containerd/releases/download/v2.1.5/containerd-2.1.5-linux-$arch.tar.gz
	echo "$(mkfile "$p" 150000)  $B/$p" >>"$LAB/list"
done
expect_exit 0 kf_fetch -q -j 4 -i "$LAB/list"
cp "$LAB/out" "$LAB/fetched"
assert_eq "$(lines "$LAB/fetched")" 8 "one line per file"
(cd / && sha256sum --quiet -c "$LAB/fetched") || fail "fetched files do not match"
while read -r hex url; do
	assert_file "$LAB/cache/sha256/$hex"
	grep -q "$hex  $LAB/cache/sha256/$hex" "$LAB/fetched" || fail "path of $url"
done <"$LAB/list"
assert_eq "$(find "$LAB/cache/tmp" -type f | wc -l)" 0 "temporary files left"
assert_eq "$(grep -c 'HTTP/2.0" 200' "$NGINX_LOG")" 8 "HTTP/2 requests"

note "not a terminal: one line per finished transfer; -q: none"
rm -rf "$LAB/cache2"
"$KF" fetch --cache "$LAB/cache2" --cacert "$LAB/ca/ca.crt" -i "$LAB/list" 2>"$LAB/err" >"$LAB/stdout"
cmp "$LAB/stdout" <(sed "s|$LAB/cache/|$LAB/cache2/|" "$LAB/fetched") || fail "stdout holds more than results"
assert_eq "$(grep -c '^kubeferry: fetched https://127.0.0.1:.* in .* s' "$LAB/err")" 8 "progress lines"
rm -rf "$LAB/cache2"
"$KF" fetch -q --cache "$LAB/cache2" --cacert "$LAB/ca/ca.crt" -i "$LAB/list" 2>"$LAB/err" >/dev/null
assert_eq "$(wc -c <"$LAB/err" | tr -d ' ')" 0 "-q output"
rm -rf "$LAB/cache2"

note "a second fetch downloads nothing"
before=$(lines "$NGINX_LOG")
expect_exit 0 kf_fetch -q -i "$LAB/list"
cmp "$LAB/out" "$LAB/fetched" || fail "second fetch output differs"
assert_eq "$(lines "$NGINX_LOG")" "$before" "requests on a warm cache"

note "a corrupt cache entry is re-hashed, removed and downloaded again"
read -r hex url < <(head -n 1 "$LAB/list")
printf 'X' | dd of="$LAB/cache/sha256/$hex" bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_exit 0 kf_fetch -j 2 -i "$LAB/list"
expect_output "cache entry $LAB/cache/sha256/$hex is corrupt"
assert_eq "$(sha "$LAB/cache/sha256/$hex")" "$hex" "repaired entry"
assert_eq "$(lines "$NGINX_LOG")" "$((before + 1))" "requests after corruption"

note "rewrites: the longest prefix wins; a rewrite to a local tree reads in place"
k=dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm
hk=$(sha "$LAB/www/$k")
rm -f "$LAB/cache/sha256/$hk"
expect_exit 0 kf_fetch -q --rewrite "https://dl.k8s.io=$B/dl.k8s.io" \
	--rewrite "https://dl.k8s.io/release/v1.33.3=$B/chain/dl.k8s.io/release/v1.33.3" \
	"$hk" "https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm"
grep -q "GET /chain/$k HTTP/2.0\" 302" "$NGINX_LOG" || fail "longest rewrite not used"
grep -q "^$hk  $LAB/cache/sha256/$hk\$" "$LAB/out" || fail "rewritten fetch result"
expect_exit 0 kf_fetch -q --rewrite "https://dl.k8s.io=file://$LAB/www/dl.k8s.io" \
	"$hk" "https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm"
grep -q "^$hk  $LAB/www/$k\$" "$LAB/out" || fail "file:// rewrite not read in place"

note "a 302 redirect chain is followed"
rm -f "$LAB/cache/sha256/$hk"
expect_exit 0 kf_fetch -q "$hk" "$B/chain/$k"
grep -q "GET /chain/$k HTTP/2.0\" 302" "$NGINX_LOG" || fail "first redirect"
grep -q "GET /chain2/$k HTTP/2.0\" 302" "$NGINX_LOG" || fail "second redirect"
assert_eq "$(sha "$LAB/cache/sha256/$hk")" "$hk" "redirected download"

note "Authorization follows a redirect on the same host, never to another host"
rm -f "$LAB/cache/sha256/$hk"
expect_exit 0 kf_fetch -q -H "Authorization: Bearer s3cret" "$hk" "$B/chain/$k"
grep -q "^127.0.0.1:$TLS_PORT \"GET /$k HTTP/2.0\" 200 .* auth=\"Bearer s3cret\"" "$NGINX_LOG" ||
	fail "same-host redirect lost the header (the test would not detect forwarding)"
rm -f "$LAB/cache/sha256/$hk"
: >"$NGINX_LOG"
expect_exit 0 kf_fetch -q -H "Authorization: Bearer s3cret" "$hk" "$B/cross/$k"
grep -q "^127.0.0.1:$TLS_PORT \"GET /cross/$k HTTP/2.0\" 302 .* auth=\"Bearer s3cret\"" "$NGINX_LOG" ||
	fail "first request lacks the header"
grep -q "^localhost:$TLS_PORT \"GET /$k HTTP/2.0\" 200 .* auth=\"-\"" "$NGINX_LOG" ||
	{ cat "$NGINX_LOG"; fail "Authorization forwarded to another host"; }
grep -q 's3cret' <(grep '^localhost' "$NGINX_LOG") && fail "secret reached localhost"

note "TLS is verified: without --cacert the test CA is not trusted"
rm -f "$LAB/cache/sha256/$hk"
: >"$NGINX_LOG"
expect_exit 3 env KUBEFERRY_RETRIES=3 "$KF" fetch -q --cache "$LAB/cache" "$hk" "$B/$k"
expect_output "download of $B/$k failed: .*(certificate|SSL)"
assert_cache_clean "$hk"
assert_eq "$(lines "$NGINX_LOG")" 0 "requests past a failed TLS handshake"

note "a proxy from the environment (http_proxy) is used, and no_proxy bypasses it"
p=plain/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubectl
hp=$(sha "$LAB/www/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubectl")
rm -f "$LAB/cache/sha256/$hp"
expect_exit 0 env http_proxy="http://127.0.0.1:$PROXY_PORT" "$KF" fetch -q --cache "$LAB/cache" \
	"$hp" "http://127.0.0.1:$FLAKY_PORT/$p"
grep -q "^127.0.0.1:$PROXY_PORT \"GET http://127.0.0.1:$FLAKY_PORT/$p HTTP/1.1\" 200" "$NGINX_LOG" ||
	{ cat "$NGINX_LOG"; fail "request did not go through the proxy"; }
rm -f "$LAB/cache/sha256/$hp"
: >"$NGINX_LOG"
expect_exit 0 env http_proxy="http://127.0.0.1:$PROXY_PORT" no_proxy=127.0.0.1 "$KF" fetch -q \
	--cache "$LAB/cache" "$hp" "http://127.0.0.1:$FLAKY_PORT/$p"
assert_eq "$(lines "$NGINX_LOG")" 0 "proxy used despite no_proxy"

note "404: no retry, exit 3 naming URL and status, nothing cached"
h404=$(printf 'x' | sha256sum | cut -d' ' -f1)
: >"$NGINX_LOG"
expect_exit 3 kf_fetch -q "$h404" "$B/dl.k8s.io/missing"
expect_output "download of $B/dl.k8s.io/missing failed: HTTP 404"
assert_eq "$(grep -c '/dl.k8s.io/missing' "$NGINX_LOG")" 1 "requests for a 404"
assert_cache_clean "$h404"

note "checksum mismatch: exit 1 naming URL, expected and actual; nothing cached"
bad=$(mkfile dl.k8s.io/bad 100000)
expect_exit 1 kf_fetch -q "$h404" "$B/dl.k8s.io/bad"
expect_output "checksum mismatch for $B/dl.k8s.io/bad: expected sha256 $h404, got $bad"
assert_cache_clean "$h404"
assert_cache_clean "$bad"
note "... also when rewritten: both URLs named"
expect_exit 1 kf_fetch -q --rewrite "https://up.example=$B" "$h404" "https://up.example/dl.k8s.io/bad"
expect_output "checksum mismatch for https://up.example/dl.k8s.io/bad \\(fetched from $B/dl.k8s.io/bad\\): expected sha256 $h404, got $bad"
assert_cache_clean "$h404"

note "the same file under two URLs is downloaded once"
: >"$NGINX_LOG"
expect_exit 0 kf_fetch -q "$bad" "$B/dl.k8s.io/bad" "$bad" "$B/chain/dl.k8s.io/bad"
assert_eq "$(lines "$LAB/out")" 2 "results"
assert_eq "$(grep -c ' 200 ' "$NGINX_LOG")" 1 "downloads of a duplicate"

note "low-speed timeout: a throttled transfer is aborted, retried, then fails"
hs=$(mkfile slow/big.bin 200000)
: >"$NGINX_LOG"
expect_exit 3 env KUBEFERRY_LOW_SPEED_LIMIT=100000 KUBEFERRY_LOW_SPEED_TIME=1 KUBEFERRY_RETRIES=1 \
	"$KF" fetch -q --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" "$hs" "$B/slow/big.bin"
expect_output "download of $B/slow/big.bin failed after 2 attempts: .*too slow"
assert_eq "$(grep -c '/slow/big.bin' "$NGINX_LOG")" 2 "attempts"
assert_cache_clean "$hs"

note "usage errors"
expect_exit 2 "$KF" fetch --cache "$LAB/cache" nothex "$B/x"
expect_output "sha256"
expect_exit 2 "$KF" fetch --cache "$LAB/cache" --rewrite nonsense "$hs" "$B/x"
expect_output "--rewrite 'nonsense'"
expect_exit 2 "$KF" fetch --cache "$LAB/cache" "$hs"
