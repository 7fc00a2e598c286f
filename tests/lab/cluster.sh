# cluster.sh: a kubeferry cluster in the lab (tests/lab/lab.sh), deployed
# by the real playbooks (ansible/) with real ansible-playbook from this
# host, which acts as the admin host. Source after tests/lib.sh,
# tests/registry/lib.sh and tests/lab/lab.sh.
#
#   cluster_bundle DIR           a signed test bundle DIR/bundle.tar.zst
#                                (key DIR/keys/kf.pub) from
#                                tests/node/make-bundle.sh with the pause
#                                image pulled from the images lab on
#                                127.0.0.1; sets PAUSE (its digest)
#   cluster_inventory FILE "CP..." "WORKER..."
#                                a Kubespray INI inventory of lab nodes:
#                                control planes are the etcd members
#   cluster_vars [BUNDLE PUBKEY] writes $LAB/kubeferry.yml (the playbook
#                                variables): that bundle (default the one
#                                cluster_bundle made) and plan $LAB/plan
#   cluster_play PLAYBOOK INVENTORY [ARGS...]
#                                ansible-playbook ansible/PLAYBOOK; output in
#                                $LAB/play.out, exit status returned
#   cluster_changed_hosts        hosts whose PLAY RECAP line in
#                                $LAB/play.out has changed != 0 or failed != 0
#   KF_CLUSTER_IMAGE             the image the nodes pull (pause:3.10)

KF_CLUSTER_IMAGE=registry.k8s.io/pause:3.10
CLUSTER_BUNDLE_DIR=

cluster_bundle() {
	CLUSTER_BUNDLE_DIR=$1
	images_lab
	HOME=$LAB/home KF=$KF KF_TEST_IMAGES=$KF_CLUSTER_IMAGE \
		bash "$ROOT/tests/node/make-bundle.sh" "$1" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
		--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --mirror https://kubeferry-mirror:5443
	PAUSE=$(upstream_digest "127.0.0.1:$UP_PORT/pause:3.10")
}

cluster_inventory() {
	local f=$1 cps=$2 workers=$3 n
	{
		echo "# Kubespray inventory of the kubeferry lab"
		echo "[all]"
		for n in $cps $workers; do echo "$n ansible_host=$(lab_ip "$n") ip=$(lab_ip "$n")"; done
		echo
		echo "[kube_control_plane]"
		for n in $cps; do echo "$n"; done
		echo
		echo "[etcd]"
		for n in $cps; do echo "$n"; done
		echo
		echo "[kube_node]"
		for n in $workers; do echo "$n"; done
		echo
		echo "[k8s_cluster:children]"
		echo "kube_control_plane"
		echo "kube_node"
	} >"$f"
}

cluster_vars() {
	cat >"$LAB/kubeferry.yml" <<-VARS
	kubeferry_bundle: ${1:-$CLUSTER_BUNDLE_DIR/bundle.tar.zst}
	kubeferry_pubkey: ${2:-$CLUSTER_BUNDLE_DIR/keys/kf.pub}
	kubeferry_plan_dir: $LAB/plan
	kubeferry_installer: $KFI
	VARS
}

cluster_play() {
	local pb=$1 inv=$2 rc=0
	shift 2
	[ -f "$LAB/kubeferry.yml" ] || cluster_vars
	ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=False ansible-playbook -i "$inv" \
		-e "@$LAB/kubeferry.yml" "$ROOT/ansible/$pb" "$@" >"$LAB/play.out" 2>&1 || rc=$?
	return $rc
}

cluster_changed_hosts() {
	sed -n '/^PLAY RECAP/,$p' "$LAB/play.out" |
		awk '/ ok=/ { for (i = 1; i <= NF; i++) if ($i ~ /^(changed|failed)=[1-9]/) { print $1; break } }'
}
