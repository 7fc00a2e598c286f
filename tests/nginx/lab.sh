# Lab for the transfer engine's tests; source after tests/lib.sh.
#   fetch_lab_start   CA ($LAB/ca), web root ($LAB/www), nginx with TLS and
#                     HTTP/2 on $TLS_PORT plus a forward proxy on
#                     $PROXY_PORT, and the misbehaving server
#                     (tests/nginx/flaky.py) on $FLAKY_PORT
#   $NGINX_LOG        nginx access log ($FLAKY_LOG for the flaky server)
#   mkfile REL SIZE   random file $LAB/www/REL of SIZE bytes; prints its sha256
#   sha FILE          sha256 of FILE
#   kf_fetch ARGS...  kubeferry fetch with the lab's cache and CA
#   shipped_spec_like SIZE   a spec ($LAB/spec.yaml, without images) with
#                     the components, versions and URL templates of
#                     manifests/k8s-1.33.yaml for amd64 and arm64, each file
#                     made by mkfile with SIZE to 2*SIZE random bytes under
#                     the upstream layout; one URL a line in $LAB/urls
FETCH_LAB_DIR=$ROOT/tests/nginx

sha() { sha256sum "$1" | cut -d' ' -f1; }

mkfile() {
	mkdir -p "$(dirname "$LAB/www/$1")"
	head -c "$2" /dev/urandom >"$LAB/www/$1"
	sha "$LAB/www/$1"
}

kf_fetch() { "$KF" fetch --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" "$@"; }

shipped_spec_like() {
	local size=$1 name ver tmpl url arch
	# name|version|url template, as the shipped spec lists them.
	awk '/^  components:/ {c=1; next} /^  [a-z]/ {c=0}
	     c && $1 == "-" && $2 == "name:" {n=$3}
	     c && $1 == "version:" {v=$2; gsub(/"/, "", v)}
	     c && $1 == "url:" {print n "|" v "|" $2}' "$ROOT/manifests/k8s-1.33.yaml" >"$LAB/components"
	[ "$(wc -l <"$LAB/components")" -eq 9 ] || fail "components in k8s-1.33.yaml: $(cat "$LAB/components")"
	: >"$LAB/urls"
	{
		echo "apiVersion: kubeferry.io/v1"
		echo "kind: Bundle"
		echo "metadata: {name: k8s, version: \"1.33.3\"}"
		echo "spec:"
		echo "  kubernetesVersion: \"1.33.3\""
		echo "  architectures: [amd64, arm64]"
		echo "  components:"
		while IFS='|' read -r name ver tmpl; do
			echo "    - name: $name"
			echo "      version: \"$ver\""
			echo "      url: $tmpl"
			echo "      sha256:"
			for arch in amd64 arm64; do
				url=${tmpl//\{version\}/$ver}
				url=${url//\{arch\}/$arch}
				echo "        $arch: $(mkfile "${url#https://}" $((size + RANDOM % size)))"
				echo "$url" >>"$LAB/urls"
			done
		done <"$LAB/components"
	} >"$LAB/spec.yaml"
}

# Three distinct free ports.
_fetch_lab_ports() {
	TLS_PORT=$(kf_free_port)
	PROXY_PORT=$(kf_free_port)
	while [ "$PROXY_PORT" = "$TLS_PORT" ]; do PROXY_PORT=$(kf_free_port); done
	FLAKY_PORT=$(kf_free_port)
	while [ "$FLAKY_PORT" = "$TLS_PORT" ] || [ "$FLAKY_PORT" = "$PROXY_PORT" ]; do
		FLAKY_PORT=$(kf_free_port)
	done
}

fetch_lab_start() {
	need nginx python3 openssl sha256sum
	# The machine's own proxy settings must not catch loopback traffic.
	unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
	# nginx workers run unprivileged: they must read the web root.
	chmod 755 "$LAB"
	kf_ca "$LAB/ca"
	mkdir -p "$LAB/www" "$LAB/nginx/tmp"
	_fetch_lab_ports
	sed -e "s|@LAB@|$LAB|g" -e "s|@TLS_PORT@|$TLS_PORT|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" \
		"$FETCH_LAB_DIR/fetch.conf.in" >"$LAB/nginx/nginx.conf"
	NGINX_LOG=$LAB/nginx/access.log
	FLAKY_LOG=$LAB/flaky.log
	: >"$NGINX_LOG"
	: >"$FLAKY_LOG"
	kf_bg nginx -e "$LAB/nginx/error.log" -p "$LAB/nginx" -c "$LAB/nginx/nginx.conf"
	kf_bg python3 "$FETCH_LAB_DIR/flaky.py" "$FLAKY_PORT" "$LAB/www" "$FLAKY_LOG"
	kf_wait_port "$TLS_PORT" 30
	kf_wait_port "$PROXY_PORT" 30
	kf_wait_port "$FLAKY_PORT" 30
	# Retries in tests: quick, but still exponential with jitter.
	export KUBEFERRY_BACKOFF_MS=${KUBEFERRY_BACKOFF_MS:-100}
}

# assert_cache_clean HEX: neither a cache entry nor a temporary file for HEX.
assert_cache_clean() {
	assert_absent "$LAB/cache/sha256/$1"
	assert_absent "$LAB/cache/tmp/$1.part"
	if [ -d "$LAB/cache/tmp" ]; then
		assert_eq "$(find "$LAB/cache/tmp" -type f | wc -l)" 0 "files left in cache/tmp"
	fi
}
