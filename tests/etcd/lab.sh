# Real etcd members on 127.0.0.1 for the snapshot and restore tests: source
# after tests/lib.sh. Each member is a node root ($R) laid out as apply
# leaves it: /etc/etcd.env and Kubespray's /etc/ssl/etcd/ssl/, with the
# certificates made here by openssl (CA, member-NAME, admin-NAME).
#
#   etcd_pki DIR NAME...       one CA and a member and admin pair per NAME
#   etcd_env R NAME CPORT PPORT CLUSTER   R/etc/etcd.env (data /var/lib/etcd)
#   etcd_start R               etcd from R/etc/etcd.env, paths under R
#   etcd_stop R                stop it (waits until it exited)
#   etcdctl_r R ARGS...        etcdctl against R's member, admin certificate
#   etcd_wait R                until R's member answers

etcd_pki() {
	local d=$1 n; shift
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$d/ca-key.pem" -out "$d/ca.pem" -days 2 -subj "/CN=etcd-ca" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$d/ext.cnf"
	for n in "$@"; do
		local k
		for k in member admin; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout "$d/$k-$n-key.pem" -out "$d/$k-$n.csr" -subj "/CN=etcd-$k-$n" 2>/dev/null
			openssl x509 -req -in "$d/$k-$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
				-CAcreateserial -out "$d/$k-$n.pem" -days 2 -extfile "$d/ext.cnf" 2>/dev/null
			rm -f "$d/$k-$n.csr"
		done
	done
	chmod 0600 "$d"/*-key.pem
}

etcd_env() {
	local r=$1 n=$2 cp=$3 pp=$4 cluster=$5 s=/etc/ssl/etcd/ssl
	mkdir -p "$r/etc" "$r/var/lib"
	cat >"$r/etc/etcd.env" <<-EOF
	# like kubeferry-install's, with the lab's ports
	ETCD_DATA_DIR=/var/lib/etcd
	ETCD_NAME=$n
	ETCD_ADVERTISE_CLIENT_URLS=https://127.0.0.1:$cp
	ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:$cp
	ETCD_INITIAL_ADVERTISE_PEER_URLS=https://127.0.0.1:$pp
	ETCD_LISTEN_PEER_URLS=https://127.0.0.1:$pp
	ETCD_INITIAL_CLUSTER=$cluster
	ETCD_INITIAL_CLUSTER_STATE=new
	ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd
	ETCD_CLIENT_CERT_AUTH=true
	ETCD_TRUSTED_CA_FILE=$s/ca.pem
	ETCD_CERT_FILE=$s/member-$n.pem
	ETCD_KEY_FILE=$s/member-$n-key.pem
	ETCD_PEER_CLIENT_CERT_AUTH=true
	ETCD_PEER_TRUSTED_CA_FILE=$s/ca.pem
	ETCD_PEER_CERT_FILE=$s/member-$n.pem
	ETCD_PEER_KEY_FILE=$s/member-$n-key.pem
	EOF
}

# The value of KEY in R/etc/etcd.env.
etcd_var() { sed -n "s/^$2=//p" "$1/etc/etcd.env"; }

etcd_start() {
	local r=$1 log
	log=$r.etcd.log
	(
		set -a
		# shellcheck disable=SC1091
		. "$r/etc/etcd.env"
		set +a
		for v in ETCD_TRUSTED_CA_FILE ETCD_CERT_FILE ETCD_KEY_FILE ETCD_PEER_TRUSTED_CA_FILE \
			ETCD_PEER_CERT_FILE ETCD_PEER_KEY_FILE ETCD_DATA_DIR; do
			export "$v=$r${!v}"
		done
		exec /usr/bin/etcd
	) >>"$log" 2>&1 &
	_kf_pids+=($!)
	echo $! >"$r.etcd.pid"
}

etcd_stop() {
	local p
	p=$(cat "$1.etcd.pid")
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

etcdctl_r() {
	local r=$1 n; shift
	n=$(etcd_var "$r" ETCD_NAME)
	ETCDCTL_API=3 /usr/bin/etcdctl --endpoints "$(etcd_var "$r" ETCD_ADVERTISE_CLIENT_URLS)" \
		--cacert "$r/etc/ssl/etcd/ssl/ca.pem" --cert "$r/etc/ssl/etcd/ssl/admin-$n.pem" \
		--key "$r/etc/ssl/etcd/ssl/admin-$n-key.pem" "$@"
}

etcd_wait() {
	local i
	for i in $(seq 1 120); do
		etcdctl_r "$1" endpoint health >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	cat "$1.etcd.log" >&2
	fail "etcd of $1 not healthy"
}
