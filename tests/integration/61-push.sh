#!/usr/bin/env bash
# kubeferry push: a bundle's images into an empty site registry (TLS +
# htpasswd, and one with Bearer tokens); blobs skipped when present, a second
# push uploads nothing; nothing is pushed from a bundle that fails to verify.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../registry/lib.sh"
need zstd tar
images_lab

kf_keypair "$LAB/k"
echo "notes" >"$LAB/notes.txt"
NOTES_SHA=$(sha256sum "$LAB/notes.txt" | cut -d' ' -f1)
cat >"$LAB/spec.yaml" <<YAML
apiVersion: kubeferry.io/v1
kind: Bundle
metadata: {name: img, version: "1.0"}
spec:
  architectures: [amd64, arm64]
  components:
    - name: notes
      version: "1.0"
      url: file://$LAB/notes.txt
      sha256: {amd64: $NOTES_SHA, arm64: $NOTES_SHA}
  images:
    - ref: registry.k8s.io/pause:3.10
    - ref: docker.io/library/nginx:1.28.0-alpine
    - ref: quay.io/kf/single:1.0
YAML
HOME=$LAB/home REGISTRY_AUTH_FILE=$LAB/auth.json \
	"$KF" build "$LAB/spec.yaml" -s "$LAB/k/kf.key" -o "$LAB/b.tar.zst" -q \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" \
	--rewrite "docker.io=127.0.0.1:$UP_PORT" \
	--rewrite "quay.io=127.0.0.1:$TOK_PORT"

DST=$(kf_free_port)
reg_start dst "$DST" htpasswd site sitepass
mkdir -p "$LAB/tmp"
push() { "$KF" push "$@" -p "$LAB/k/kf.pub" --cacert "$LAB/ca/ca.crt" --tmpdir "$LAB/tmp"; }
insp() { skopeo inspect --tls-verify=false --creds site:sitepass "$@"; }

note "a tampered bundle is refused before anything is pushed"
cp "$LAB/b.tar.zst" "$LAB/bad.tar.zst"
size=$(stat -c %s "$LAB/bad.tar.zst")
printf '\xff\xff\xff\xff' | dd of="$LAB/bad.tar.zst" bs=1 seek=$((size - 200)) conv=notrunc 2>/dev/null
expect_exit 1 push "$LAB/bad.tar.zst" --to "127.0.0.1:$DST/site" --creds site:sitepass
expect_output 'bad\.tar\.zst: (.*sha256 mismatch|truncated or corrupt bundle|not a kubeferry bundle \(.*corrupt)'
assert_eq "$(reg_count dst '"(POST|PUT|PATCH) ')" 0 "requests to the registry from a bad bundle"
assert_eq "$(ls -A "$LAB/tmp")" "" "temporary directory left behind"

note "a wrong password: exit 3, naming the registry's answer"
expect_exit 3 push "$LAB/b.tar.zst" --to "127.0.0.1:$DST/site" --creds site:wrong
expect_output "127.0.0.1:$DST.*HTTP 401"

note "push into the empty registry under a prefix"
expect_exit 0 push "$LAB/b.tar.zst" --to "127.0.0.1:$DST/site" --creds site:sitepass
cp "$LAB/out" "$LAB/push1.out"
expect_output "^push: blobs 11 pushed .*, 2 mounted, 0 skipped; manifests 7 pushed, 0 skipped; tags 3 set, 0 unchanged$"
expect_output "warning: .*/site/pause refuses index"
assert_eq "$(ls -A "$LAB/tmp")" "" "temporary directory left behind"

note "skopeo sees every image; complete indexes keep the upstream digest"
assert_eq "$(upstream_digest "127.0.0.1:$DST/site/library/nginx:1.28.0-alpine" site:sitepass)" \
	"$(upstream_digest "127.0.0.1:$UP_PORT/library/nginx:1.28.0-alpine")" "nginx digest"
assert_eq "$(upstream_digest "127.0.0.1:$DST/site/kf/single:1.0" site:sitepass)" \
	"$(upstream_digest "127.0.0.1:$TOK_PORT/kf/single:1.0")" "single digest"
for a in amd64 arm64; do
	assert_eq "$(insp --override-arch $a "docker://127.0.0.1:$DST/site/pause:3.10" | jq -r .Architecture)" $a "pause $a"
	assert_eq "$(insp --override-arch $a "docker://127.0.0.1:$DST/site/library/nginx:1.28.0-alpine" | jq -r .Architecture)" $a "nginx $a"
done
# pause's upstream index names s390x, which the bundle left out: the
# registry got the index without it
assert_eq "$(insp --raw "docker://127.0.0.1:$DST/site/pause:3.10" | jq -r '[.manifests[].platform.architecture] | join(",")')" \
	"amd64,arm64" "pause platforms"

note "a second push uploads nothing"
posts=$(reg_count dst '"POST ')
puts=$(reg_count dst '"PUT ')
expect_exit 0 push "$LAB/b.tar.zst" --to "127.0.0.1:$DST/site" --creds site:sitepass
expect_output "^push: blobs 0 pushed \(0 bytes\), 0 mounted, 13 skipped; manifests 0 pushed, 7 skipped; tags 0 set, 3 unchanged$"
assert_eq "$(reg_count dst '"POST ')" "$posts" "POSTs on the second push"
assert_eq "$(reg_count dst '"PUT ')" "$puts" "PUTs on the second push"

note "push into a Bearer-token registry with credentials from REGISTRY_AUTH_FILE"
expect_exit 0 env REGISTRY_AUTH_FILE="$LAB/auth.json" HOME="$LAB/nohome" \
	"$KF" push "$LAB/b.tar.zst" -p "$LAB/k/kf.pub" --cacert "$LAB/ca/ca.crt" \
	--tmpdir "$LAB/tmp" --to "127.0.0.1:$TOK_PORT/site"
expect_output "tags 3 set"
# docker-registry names the actions of a challenge in either order
# (pull,push or push,pull) and may add a second scope for a mount.
grep -Eq 'scope=repository%3Asite%2Fpause%3A(pull%2Cpush|push%2Cpull)( basic$|&)' "$LAB/token.log" ||
	fail "no push-scope token for site/pause"
assert_eq "$(upstream_digest "127.0.0.1:$TOK_PORT/site/library/nginx:1.28.0-alpine")" \
	"$(upstream_digest "127.0.0.1:$UP_PORT/library/nginx:1.28.0-alpine")" "nginx digest via token registry"

note "a delta (same images, new notes) pushed on top of its base: nothing the registry has is sent"
echo "notes 1.1" >"$LAB/notes2.txt"
N2=$(sha256sum "$LAB/notes2.txt" | cut -d' ' -f1)
sed -e 's/version: "1.0"}/version: "1.1"}/' -e "s|$LAB/notes.txt|$LAB/notes2.txt|" \
	-e "s/$NOTES_SHA/$N2/g" "$LAB/spec.yaml" >"$LAB/spec2.yaml"
HOME=$LAB/home REGISTRY_AUTH_FILE=$LAB/auth.json \
	"$KF" build "$LAB/spec2.yaml" -s "$LAB/k/kf.key" -o "$LAB/d.tar.zst" -q --base "$LAB/b.tar.zst" \
	--cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" \
	--rewrite "docker.io=127.0.0.1:$UP_PORT" \
	--rewrite "quay.io=127.0.0.1:$TOK_PORT"
zstd -dc "$LAB/d.tar.zst" | tar -t | tail -n +3 >"$LAB/dlist"
! has '^images/blobs/' "$LAB/dlist" || fail "the delta carries blobs its base has: $(cat "$LAB/dlist")"
expect_exit 2 push "$LAB/d.tar.zst" --to "127.0.0.1:$DST/site" --creds site:sitepass
expect_output "is a delta of img 1\.0"
posts=$(reg_count dst '"POST ')
expect_exit 0 push "$LAB/d.tar.zst" --to "127.0.0.1:$DST/site" --creds site:sitepass --base "$LAB/b.tar.zst"
expect_output "^push: blobs 0 pushed \(0 bytes\), 0 mounted, 13 skipped; manifests 0 pushed, 7 skipped; tags 0 set, 3 unchanged$"
assert_eq "$(reg_count dst '"POST ')" "$posts" "POSTs for the delta"

note "usage errors"
expect_exit 2 "$KF" push "$LAB/b.tar.zst" -p "$LAB/k/kf.pub"
expect_output "--to"
expect_exit 2 "$KF" push "$LAB/b.tar.zst" -p "$LAB/k/kf.pub" --to "127.0.0.1:$DST" --creds nocolon
expect_output "USER:PASSWORD"
echo OK
