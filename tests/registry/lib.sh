# Registry lab for the image tests: source after tests/lib.sh.
#
#   reg_start NAME PORT AUTH...   a distribution registry with TLS on
#                                 127.0.0.1:PORT, storage and log under
#                                 $LAB/NAME; AUTH is "none", "htpasswd USER
#                                 PASS" or "token REALM SERVICE ISSUER CERT"
#   images_lab                    the upstream the image tests pull from:
#       $LAB/ca/ca.crt            CA of every server here
#       UP_PORT                   registry with htpasswd (kfuser:kfpass),
#                                 holding pause:3.10 (OCI index, amd64 arm64
#                                 s390x) and library/nginx:1.28.0-alpine
#                                 (Docker list, amd64 arm64/v8)
#       TOK_PORT                  registry with Bearer tokens from a token
#                                 server on TOKEN_PORT (kftok:tokpass),
#                                 holding kf/single:1.0 (one OCI manifest)
#       $LAB/layouts.txt          "NAME ARCH LAYER MANIFEST" per image, and
#                                 "base - DIGEST -" for the shared layer
#       $LAB/home/.docker/config.json      creds for UP_PORT
#       $LAB/auth.json                     creds for TOK_PORT (REGISTRY_AUTH_FILE)
#   tok_start NAME PLAN           after images_lab: another token server
#                                 (tests/registry/token-server.py PLAN, log
#                                 $LAB/NAME-token.log) and a registry NAME
#                                 serving the tok registry's storage with
#                                 its tokens; sets TOKX_PORT, TOKX_TOKEN_PORT
REG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

reg_start() {
	local name=$1 port=$2 kind=$3 d=$LAB/$1 data=${REG_DATA:-$LAB/$1/data}
	mkdir -p "$d" "$data"
	{
		echo "version: 0.1"
		echo "log: {level: info, formatter: text}"
		echo "storage:"
		echo "  filesystem: {rootdirectory: $data}"
		echo "  delete: {enabled: true}"
		echo "http:"
		echo "  addr: 127.0.0.1:$port"
		echo "  secret: kubeferry-test"
		echo "  tls: {certificate: $LAB/ca/server.crt, key: $LAB/ca/server.key}"
		case $kind in
		htpasswd)
			htpasswd -Bbn "$4" "$5" >"$d/htpasswd"
			echo "auth:"
			echo "  htpasswd: {realm: kubeferry-test, path: $d/htpasswd}"
			;;
		token)
			echo "auth:"
			echo "  token: {realm: \"$4\", service: \"$5\", issuer: \"$6\", rootcertbundle: $7}"
			;;
		esac
	} >"$d/config.yml"
	kf_bg docker-registry serve "$d/config.yml" >"$d/log" 2>&1
	kf_wait_port "$port" 20
}

# reg_count NAME REGEX: how many access-log lines of registry NAME match.
reg_count() {
	grep -Ec "$2" "$LAB/$1/log" || true
}

images_lab() {
	need docker-registry skopeo htpasswd openssl python3 jq
	python3 -c 'import cryptography' 2>/dev/null || { echo "skip: python3-cryptography not installed"; exit 77; }
	kf_ca "$LAB/ca"
	python3 "$REG_DIR/make-layout.py" "$LAB/layouts" >"$LAB/layouts.txt"

	UP_PORT=$(kf_free_port)
	reg_start up "$UP_PORT" htpasswd kfuser kfpass

	# Token auth: a P-256 signing key with a self-signed certificate that
	# the registry trusts (rootcertbundle), and the token server itself.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$LAB/token.key" -out "$LAB/token.crt" -days 2 \
		-subj "/CN=kubeferry test token signer" 2>/dev/null
	TOKEN_PORT=$(kf_free_port)
	kf_bg python3 "$REG_DIR/token-server.py" "$TOKEN_PORT" "$LAB/ca/server.crt" \
		"$LAB/ca/server.key" "$LAB/token.key" kf-test-registry kf-test-issuer \
		kftok:tokpass "$LAB/token.log"
	kf_wait_port "$TOKEN_PORT" 20
	TOK_PORT=$(kf_free_port)
	reg_start tok "$TOK_PORT" token "https://127.0.0.1:$TOKEN_PORT/token" \
		kf-test-registry kf-test-issuer "$LAB/token.crt"

	local sk=(skopeo copy -q --all --dest-tls-verify=false)
	"${sk[@]}" --dest-creds kfuser:kfpass "oci:$LAB/layouts/pause:pause" \
		"docker://127.0.0.1:$UP_PORT/pause:3.10"
	# skopeo's oci: transport refuses Docker media types in a layout, so
	# the Docker-typed image goes up byte for byte with curl.
	push_raw "$LAB/layouts/nginx" "127.0.0.1:$UP_PORT" library/nginx 1.28.0-alpine kfuser:kfpass
	"${sk[@]}" --dest-creds kftok:tokpass "oci:$LAB/layouts/single:single" \
		"docker://127.0.0.1:$TOK_PORT/kf/single:1.0"

	mkdir -p "$LAB/home/.docker"
	printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$UP_PORT" \
		"$(printf kfuser:kfpass | base64 -w0)" >"$LAB/home/.docker/config.json"
	printf '{"auths":{"https://127.0.0.1:%s":{"auth":"%s"}}}\n' "$TOK_PORT" \
		"$(printf kftok:tokpass | base64 -w0)" >"$LAB/auth.json"
}

tok_start() {
	local name=$1 plan=$2
	TOKX_TOKEN_PORT=$(kf_free_port)
	kf_bg python3 "$REG_DIR/token-server.py" "$TOKX_TOKEN_PORT" "$LAB/ca/server.crt" \
		"$LAB/ca/server.key" "$LAB/token.key" kf-test-registry kf-test-issuer \
		kftok:tokpass "$LAB/$name-token.log" "$plan"
	kf_wait_port "$TOKX_TOKEN_PORT" 20
	TOKX_PORT=$(kf_free_port)
	REG_DATA=$LAB/tok/data reg_start "$name" "$TOKX_PORT" token \
		"https://127.0.0.1:$TOKX_TOKEN_PORT/token" kf-test-registry kf-test-issuer \
		"$LAB/token.crt"
}

# push_raw LAYOUT HOST REPO TAG CREDS: every blob, the index's manifests by
# digest, then the index under TAG (Basic auth), bytes unchanged.
push_raw() {
	local lay=$1 host=$2 repo=$3 tag=$4 creds=$5 f loc d mt top topmt
	local c=(curl -sSf --cacert "$LAB/ca/ca.crt" -u "$creds")
	for f in "$lay"/blobs/sha256/*; do
		loc=$("${c[@]}" -X POST -o /dev/null -w '%{redirect_url}' -D - \
			"https://$host/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
		case $loc in /*) loc=https://$host$loc ;; esac
		"${c[@]}" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" \
			"$loc&digest=sha256:$(basename "$f")" -o /dev/null
	done
	top=$(jq -r '.manifests[0].digest' "$lay/index.json")
	topmt=$(jq -r '.manifests[0].mediaType' "$lay/index.json")
	jq -r '.manifests[] | .digest + " " + .mediaType' "$lay/blobs/sha256/${top#sha256:}" |
	while read -r d mt; do
		"${c[@]}" -X PUT -H "Content-Type: $mt" --data-binary "@$lay/blobs/sha256/${d#sha256:}" \
			"https://$host/v2/$repo/manifests/$d" -o /dev/null
	done
	"${c[@]}" -X PUT -H "Content-Type: $topmt" --data-binary "@$lay/blobs/sha256/${top#sha256:}" \
		"https://$host/v2/$repo/manifests/$tag" -o /dev/null
}

# upstream_digest REF [CREDS]: sha256 of the manifest bytes a registry
# serves (default credentials: those of the lab registry REF names).
upstream_digest() {
	local creds=${2:-kfuser:kfpass}
	case $1 in *:$TOK_PORT/*) creds=${2:-kftok:tokpass} ;; esac
	echo "sha256:$(skopeo inspect --raw --tls-verify=false --creds "$creds" "docker://$1" | sha256sum | cut -d' ' -f1)"
}
