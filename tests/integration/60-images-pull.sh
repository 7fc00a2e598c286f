#!/usr/bin/env bash
# kubeferry build with images: pulled through --rewrite from real registries
# (distribution with TLS + htpasswd, and one with Bearer tokens from a token
# server), into one OCI layout in the bundle, plus certs.d hosts.toml.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../registry/lib.sh"
need zstd tar
images_lab

kf_keypair "$LAB/k"
echo "notes" >"$LAB/notes.txt"
NOTES_SHA=$(sha256sum "$LAB/notes.txt" | cut -d' ' -f1)
write_spec() { # FILE ARCHS [EXTRA-IMAGE-LINES]
	cat >"$1" <<YAML
apiVersion: kubeferry.io/v1
kind: Bundle
metadata: {name: img, version: "1.0"}
spec:
  architectures: [$2]
  components:
    - name: notes
      version: "1.0"
      url: file://$LAB/notes.txt
      sha256: {$(for a in ${2//,/ }; do printf '%s: %s, ' "$a" "$NOTES_SHA"; done | sed 's/, $//')}
  images:
    - ref: registry.k8s.io/pause:3.10
    - ref: docker.io/nginx:1.28.0-alpine
    - ref: quay.io/kf/single:1.0
${3:-}
YAML
}
build() { # OUT SPEC [ARGS...]
	local out=$1 spec=$2; shift 2
	HOME=$LAB/home REGISTRY_AUTH_FILE=$LAB/auth.json \
		"$KF" build "$spec" -s "$LAB/k/kf.key" -o "$out" --cache "$LAB/cache" \
		--cacert "$LAB/ca/ca.crt" \
		--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" \
		--rewrite "docker.io=127.0.0.1:$UP_PORT" \
		--rewrite "quay.io=127.0.0.1:$TOK_PORT" "$@"
}
layer() { awk -v n="$1" -v a="$2" '$1 == n && $2 == a { print $3 }' "$LAB/layouts.txt"; }
manifest() { awk -v n="$1" -v a="$2" '$1 == n && $2 == a { print $4 }' "$LAB/layouts.txt"; }

write_spec "$LAB/spec.yaml" "amd64, arm64"

note "build pulls three images through --rewrite (htpasswd and Bearer auth)"
expect_exit 0 build "$LAB/b1.tar.zst" "$LAB/spec.yaml" --mirror https://mirror.example:5443
expect_exit 0 "$KF" verify "$LAB/b1.tar.zst" -p "$LAB/k/kf.pub"
mkdir -p "$LAB/x1"
zstd -dc "$LAB/b1.tar.zst" | tar -x -C "$LAB/x1"
zstd -dc "$LAB/b1.tar.zst" | tar -t >"$LAB/list1"

note "the Bearer flow went through the token server with Basic credentials"
grep -q '^GET /token?service=kf-test-registry&scope=repository%3Akf%2Fsingle%3Apull basic$' "$LAB/token.log" ||
	{ cat "$LAB/token.log"; fail "no authenticated token request for kf/single"; }

note "index.json names each image by full reference, digests equal upstream"
IDX=$LAB/x1/images/index.json
for pair in "registry.k8s.io/pause:3.10 127.0.0.1:$UP_PORT/pause:3.10" \
	"docker.io/library/nginx:1.28.0-alpine 127.0.0.1:$UP_PORT/library/nginx:1.28.0-alpine" \
	"quay.io/kf/single:1.0 127.0.0.1:$TOK_PORT/kf/single:1.0"; do
	set -- $pair
	got=$(jq -r --arg n "$1" '.manifests[] | select(.annotations["io.containerd.image.name"] == $n
		and .annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$IDX")
	assert_eq "$got" "$(upstream_digest "$2")" "index digest of $1"
	grep -qxF "  - ref: \"$1\"" "$LAB/x1/kubeferry/bundle.yaml" || fail "lock does not list $1 in images"
	grep -q "$got" "$LAB/x1/kubeferry/bundle.yaml" || fail "lock lacks digest of $1"
done
assert_eq "$(jq -r '.manifests[] | select(.annotations["io.containerd.image.name"] == "docker.io/library/nginx:1.28.0-alpine") | .mediaType' "$IDX")" \
	"application/vnd.docker.distribution.manifest.list.v2+json" "nginx media type"
grep -q "linux/arm64/v8" "$LAB/x1/kubeferry/bundle.yaml" || fail "lock lacks platform linux/arm64/v8"

note "a blob shared by the three images is stored once"
BASE=$(awk '$1 == "base" { print $3 }' "$LAB/layouts.txt")
assert_file "$LAB/x1/images/blobs/sha256/${BASE#sha256:}"
assert_eq "$(grep -c "images/blobs/sha256/${BASE#sha256:}" "$LAB/list1")" 1 "shared blob entries"
assert_eq "$(grep -c "images/blobs/sha256/${BASE#sha256:}" "$LAB/x1/kubeferry/bundle.yaml")" 1 "shared blob in lock"

note "only the spec's architectures: s390x manifest and layer absent, index kept whole"
for a in amd64 arm64; do
	assert_file "$LAB/x1/images/blobs/sha256/$(layer pause $a | cut -d: -f2)"
	assert_file "$LAB/x1/images/blobs/sha256/$(manifest pause $a | cut -d: -f2)"
done
assert_absent "$LAB/x1/images/blobs/sha256/$(layer pause s390x | cut -d: -f2)"
assert_absent "$LAB/x1/images/blobs/sha256/$(manifest pause s390x | cut -d: -f2)"
PAUSE=$(jq -r '.manifests[] | select(.annotations["io.containerd.image.name"] == "registry.k8s.io/pause:3.10") | .digest' "$IDX")
jq -e '.manifests | length == 3' "$LAB/x1/images/blobs/sha256/${PAUSE#sha256:}" >/dev/null ||
	fail "upstream index not kept byte for byte"
# every blob file is named by its content
for f in "$LAB"/x1/images/blobs/sha256/*; do
	assert_eq "$(sha256sum "$f" | cut -d' ' -f1)" "$(basename "$f")" "blob $f"
done

note "certs.d/<registry>/hosts.toml per registry, pointing at --mirror, no fallback"
for r in registry.k8s.io docker.io quay.io; do
	t=$LAB/x1/certs.d/$r/hosts.toml
	assert_file "$t"
	grep -q '^server = "https://mirror.example:5443"' "$t" || { cat "$t"; fail "server of $r is not the mirror"; }
	grep -q '^\[host."https://mirror.example:5443"\]' "$t" || fail "no [host] table in $t"
	grep -q 'capabilities = \["pull", "resolve"\]' "$t" || fail "capabilities in $t"
	grep -q 'ca = "/etc/kubeferry/mirror-ca.crt"' "$t" || fail "mirror CA path not in $t"
done
assert_eq "$(ls "$LAB/x1/certs.d" | wc -l)" 3 "certs.d directories"

note "reproducible: a second build (from the cache) gives the same bytes"
expect_exit 0 build "$LAB/b2.tar.zst" "$LAB/spec.yaml" --mirror https://mirror.example:5443 -q
cmp "$LAB/b1.tar.zst" "$LAB/b2.tar.zst" || fail "image bundles differ between builds"

note "an amd64-only bundle holds no arm64 manifests; default mirror in hosts.toml"
write_spec "$LAB/spec-amd64.yaml" "amd64"
expect_exit 0 build "$LAB/b3.tar.zst" "$LAB/spec-amd64.yaml" -q
zstd -dc "$LAB/b3.tar.zst" | tar -t >"$LAB/list3"
grep -q "$(manifest pause amd64 | cut -d: -f2)" "$LAB/list3" || fail "amd64 manifest missing"
if grep -q -e "$(manifest pause arm64 | cut -d: -f2)" -e "$(manifest nginx arm64 | cut -d: -f2)" "$LAB/list3"; then
	fail "arm64 manifests in an amd64 bundle"
fi
zstd -dc "$LAB/b3.tar.zst" | tar -xO certs.d/registry.k8s.io/hosts.toml | has 'https://kubeferry-mirror:5443' ||
	fail "default mirror not in hosts.toml"

note "a pinned digest that differs from upstream fails the build, naming both"
write_spec "$LAB/spec-pin.yaml" "amd64" "    - ref: registry.k8s.io/pause:3.9
      digest: sha256:$(printf 0%.0s {1..64})"
# pause:3.9 is the same image under another tag
skopeo copy -q --all --dest-tls-verify=false --dest-creds kfuser:kfpass \
	"oci:$LAB/layouts/pause:pause" "docker://127.0.0.1:$UP_PORT/pause:3.9"
expect_exit 1 build "$LAB/pin.tar.zst" "$LAB/spec-pin.yaml" -q
expect_output "registry.k8s.io/pause:3.9: pinned digest sha256:0{64} but upstream .* has $PAUSE"
assert_absent "$LAB/pin.tar.zst"
assert_absent "$LAB/pin.tar.zst.minisig"
assert_no_match "$LAB" 'pin.tar.zst.kf-*'

note "the right pin builds"
write_spec "$LAB/spec-pin2.yaml" "amd64" "    - ref: registry.k8s.io/pause:3.9
      digest: $PAUSE"
expect_exit 0 build "$LAB/pin2.tar.zst" "$LAB/spec-pin2.yaml" -q

note "no credentials for a registry that wants them: exit 3 naming the host"
expect_exit 3 env HOME=$LAB/nohome REGISTRY_AUTH_FILE=$LAB/auth.json \
	"$KF" build "$LAB/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/nocreds.tar.zst" \
	--cache "$LAB/cache2" --cacert "$LAB/ca/ca.crt" -q \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --rewrite "docker.io=127.0.0.1:$UP_PORT" \
	--rewrite "quay.io=127.0.0.1:$TOK_PORT"
expect_output "registry 127.0.0.1:$UP_PORT asks for a password"
assert_absent "$LAB/nocreds.tar.zst"

note "wrong credentials at the token endpoint: exit 3"
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$TOK_PORT" "$(printf kftok:wrong | base64 -w0)" >"$LAB/bad-auth.json"
expect_exit 3 env HOME=$LAB/home REGISTRY_AUTH_FILE=$LAB/bad-auth.json \
	"$KF" build "$LAB/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/badtok.tar.zst" \
	--cache "$LAB/cache2" --cacert "$LAB/ca/ca.crt" -q \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --rewrite "docker.io=127.0.0.1:$UP_PORT" \
	--rewrite "quay.io=127.0.0.1:$TOK_PORT"
expect_output "token endpoint https://127.0.0.1:$TOKEN_PORT/token answered HTTP 401"

note "an image missing upstream, and an architecture no image offers"
write_spec "$LAB/spec-missing.yaml" "amd64" "    - ref: registry.k8s.io/nope:1.0"
expect_exit 3 build "$LAB/missing.tar.zst" "$LAB/spec-missing.yaml" -q
expect_output "registry.k8s.io/nope:1.0: .*HTTP 404"
write_spec "$LAB/spec-ppc.yaml" "amd64, ppc64le"
expect_exit 2 build "$LAB/ppc.tar.zst" "$LAB/spec-ppc.yaml" -q
expect_output "registry.k8s.io/pause:3.10: no linux/ppc64le manifest upstream"
assert_absent "$LAB/ppc.tar.zst"

note "schema 1 refused naming the image; blob redirects carry no credentials"
FAKE=$(kf_free_port)
STORE=$(kf_free_port)
kf_bg python3 "$REG_DIR/fake-registry.py" "$FAKE" "$STORE" fk:fp "$LAB/fake.log"
kf_wait_port "$FAKE" 20
kf_wait_port "$STORE" 20
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$FAKE" "$(printf fk:fp | base64 -w0)" >"$LAB/fake-auth.json"
fake_build() { # OUT SPEC
	REGISTRY_AUTH_FILE=$LAB/fake-auth.json HOME=$LAB/nohome \
		"$KF" build "$2" -s "$LAB/k/kf.key" -o "$1" --cache "$LAB/cache3" -q \
		--rewrite "old.example=http://127.0.0.1:$FAKE"
}
write_spec "$LAB/spec-old.yaml" "amd64" "    - ref: old.example/old:1.0"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx\|quay.io/d' "$LAB/spec-old.yaml"
expect_exit 2 fake_build "$LAB/old.tar.zst" "$LAB/spec-old.yaml"
expect_output "image old.example/old:1.0: Docker schema 1 manifests are not supported"
assert_absent "$LAB/old.tar.zst"
write_spec "$LAB/spec-redir.yaml" "amd64" "    - ref: old.example/redir:1.0"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx\|quay.io/d' "$LAB/spec-redir.yaml"
expect_exit 0 fake_build "$LAB/redir.tar.zst" "$LAB/spec-redir.yaml"
grep -q '^reg GET /v2/redir/blobs/sha256:[0-9a-f]* Basic$' "$LAB/fake.log" || { cat "$LAB/fake.log"; fail "blob requests without credentials at the registry"; }
grep -q '^store GET /store/sha256:' "$LAB/fake.log" || fail "storage host never asked"
if grep '^store ' "$LAB/fake.log" | has -v ' -$'; then
	cat "$LAB/fake.log"; fail "credentials forwarded to the storage host"
fi
zstd -dc "$LAB/redir.tar.zst" | tar -t | has "images/blobs/sha256/" || fail "redirected blobs not in the bundle"

note "a challenge from a host the registry redirected to is not answered"
write_spec "$LAB/spec-chal.yaml" "amd64" "    - ref: old.example/chal:1.0"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx\|quay.io/d' "$LAB/spec-chal.yaml"
expect_exit 3 fake_build "$LAB/chal.tar.zst" "$LAB/spec-chal.yaml"
expect_output "image old.example/chal:1.0: .*/v2/chal/manifests/sha256:[0-9a-f]* answered HTTP 401"
grep -q '^store GET /challenge' "$LAB/fake.log" || fail "the redirect to the storage host was not followed"
if grep -q '^store GET /token' "$LAB/fake.log"; then
	cat "$LAB/fake.log"; fail "answered the storage host's challenge"
fi
assert_absent "$LAB/chal.tar.zst"

note "a blob larger than its descriptor says fails while it streams; nothing in the cache"
write_spec "$LAB/spec-huge.yaml" "amd64" "    - ref: old.example/huge:1.0"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx\|quay.io/d' "$LAB/spec-huge.yaml"
BIGHEX=$(head -c 300000 /dev/zero | tr '\0' k | sha256sum | cut -d' ' -f1)
expect_exit 1 fake_build "$LAB/huge.tar.zst" "$LAB/spec-huge.yaml"
expect_output "/v2/huge/blobs/sha256:$BIGHEX is larger than the 1000 bytes expected"
assert_absent "$LAB/huge.tar.zst"
assert_absent "$LAB/cache3/sha256/$BIGHEX"
assert_absent "$LAB/cache3/tmp/$BIGHEX.part"

note "a token that runs out mid-pull is renewed; verified blobs are not fetched again"
# kf/pause:3.10 next to kf/single:1.0 on the token registry: two sessions,
# two tokens. The token server's plan: kf/single's token is good; kf/pause's
# says it lives 1 s (so it is renewed before the blobs), and the renewed one
# is already expired (the registry refuses it: 401), the next one is good.
skopeo copy -q --all --dest-tls-verify=false --dest-creds kftok:tokpass \
	"oci:$LAB/layouts/pause:pause" "docker://127.0.0.1:$TOK_PORT/kf/pause:3.10"
tok_start tokx ok,short,expired,ok
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$TOKX_PORT" \
	"$(printf kftok:tokpass | base64 -w0)" >"$LAB/tokx-auth.json"
tok_build() { # OUT SPEC CACHE PORT
	HOME=$LAB/nohome REGISTRY_AUTH_FILE=$LAB/tokx-auth.json \
		"$KF" build "$2" -s "$LAB/k/kf.key" -o "$1" --cache "$3" --jobs 1 \
		--cacert "$LAB/ca/ca.crt" --rewrite "quay.io=127.0.0.1:$4"
}
write_spec "$LAB/spec-tok.yaml" "amd64" "    - ref: quay.io/kf/pause:3.10"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx/d' "$LAB/spec-tok.yaml"
expect_exit 0 tok_build "$LAB/tok.tar.zst" "$LAB/spec-tok.yaml" "$LAB/cache-tok" "$TOKX_PORT"
expect_output "expiring, renewing the token for kf/pause"
expect_output "refused, fetching a new token for kf/pause"
expect_exit 0 "$KF" verify "$LAB/tok.tar.zst" -p "$LAB/k/kf.pub"
assert_eq "$(grep -c '^GET /token?.*basic$' "$LAB/tokx-token.log")" 4 "token requests"
assert_eq "$(grep -c 'scope=repository%3Akf%2Fpause%3Apull' "$LAB/tokx-token.log")" 3 "tokens for kf/pause"
PLAYER=$(layer pause amd64)
SLAYER=$(layer single amd64)
assert_eq "$(reg_count tokx "\"GET /v2/kf/pause/blobs/$PLAYER HTTP/[0-9.]+\" 401 ")" 1 "refused pause layer GETs"
assert_eq "$(reg_count tokx "\"GET /v2/kf/pause/blobs/$PLAYER HTTP/[0-9.]+\" 200 ")" 1 "pause layer downloads"
# kf/single's blobs came in with the first batch and were not asked again
assert_eq "$(reg_count tokx "\"GET /v2/kf/single/blobs/$SLAYER HTTP/[0-9.]+\" 200 ")" 1 "single layer downloads"
assert_eq "$(reg_count tokx "\"GET /v2/kf/single/blobs/[^ ]* HTTP/[0-9.]+\" 401 ")" 0 "refused single blobs"
zstd -dc "$LAB/tok.tar.zst" | tar -t | has "images/blobs/sha256/${PLAYER#sha256:}" || fail "pause layer not in the bundle"

note "a registry that keeps refusing fresh tokens: exit 3 naming the blob URL, after two renewals"
tok_start tokz short,expired
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$TOKX_PORT" \
	"$(printf kftok:tokpass | base64 -w0)" >"$LAB/tokx-auth.json"
write_spec "$LAB/spec-tokz.yaml" "amd64"
sed -i '/registry.k8s.io\/pause:3.10\|docker.io\/nginx/d' "$LAB/spec-tokz.yaml"
expect_exit 3 tok_build "$LAB/tokz.tar.zst" "$LAB/spec-tokz.yaml" "$LAB/cache-tokz" "$TOKX_PORT"
expect_output "image quay.io/kf/single:1.0: still refused after 2 new tokens: download of https://127.0.0.1:$TOKX_PORT/v2/kf/single/blobs/sha256:[0-9a-f]{64} failed: HTTP 401"
# the manifest's token, the early renewal, then two more: bounded
assert_eq "$(grep -c '^GET /token?.*basic$' "$LAB/tokz-token.log")" 4 "token requests"
assert_absent "$LAB/tokz.tar.zst"
assert_absent "$LAB/tokz.tar.zst.minisig"
assert_eq "$(find "$LAB/cache-tokz" -type f | wc -l)" 0 "files in the cache"

note "no work directories left next to the outputs"
assert_no_match "$LAB" '*.kf-work-*'
echo OK
