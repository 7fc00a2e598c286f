#!/usr/bin/env bash
# make demo: the main job end to end on this machine, with no internet.
#
#   1-3  keys, a spec, a signed bundle from local files; verify and unpack
#   4    a local stand-in for the internet: nginx over TLS laid out like
#        dl.k8s.io / github.com / get.helm.sh, and a registry with images
#   5    kubeferry build of a Kubernetes-shaped spec from that "internet"
#   6    verification with kubeferry and with the stock minisign
#   7    a systemd node (systemd-nspawn, no network at all): the static
#        installer applies the bundle, runs the registry mirror, and
#        containerd pulls its image from the mirror
#   8    a cluster: this machine is the admin host; four nspawn nodes on a
#        bridge of their own (three control planes with etcd, a worker)
#        from a Kubespray inventory; ansible-playbook runs the bundle's own
#        site.yml; etcd's member list, a pull through the mirror on the
#        worker, and the recap
#
# Stand-ins: kubeadm/kubelet/kubectl are tests/node/mock-kubeadm (they
# cannot run here); containerd, runc, etcd and the CNI plugins are Debian's
# real binaries packed the way upstream publishes them.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/nginx/lab.sh"
source "$ROOT/tests/registry/lib.sh"
DEMO=$KF_BUILD/demo
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
rm -rf "$DEMO"
mkdir -p "$DEMO"
export SOURCE_DATE_EPOCH=1767225600   # 2026-01-01: embedded, reproducible time

step "1. Generate a signing key pair (unencrypted for the demo: -W)"
"$KF" keygen -W -s "$DEMO/demo.key" -p "$DEMO/demo.pub"

step "2. Lint the specs: the shipped Kubernetes 1.33 release and the demo"
"$KF" lint "$ROOT/manifests/k8s-1.33.yaml" "$ROOT/manifests/demo/demo.yaml"

step "3. A bundle from local files: build, verify, unpack; a tampered copy is refused"
"$KF" build "$ROOT/manifests/demo/demo.yaml" -s "$DEMO/demo.key" -o "$DEMO/local.tar.zst"
"$KF" verify "$DEMO/local.tar.zst" -p "$DEMO/demo.pub" -q && echo "kubeferry verify: OK"
"$KFI" unpack "$DEMO/local.tar.zst" -p "$DEMO/demo.pub" -d "$DEMO/local"
cp "$DEMO/local.tar.zst" "$DEMO/tampered.tar.zst"
printf 'x' | dd of="$DEMO/tampered.tar.zst" bs=1 seek=600 conv=notrunc status=none
if "$KFI" unpack "$DEMO/tampered.tar.zst" -p "$DEMO/demo.pub" -d "$DEMO/tampered"; then
	fail "the tampered bundle was accepted"
fi
assert_absent "$DEMO/tampered"
echo "nothing was created at $DEMO/tampered"

step "4. A local stand-in for the internet (127.0.0.1 only)"
fetch_lab_start          # CA in $LAB/ca, nginx with TLS serving $LAB/www
images_lab               # registry with TLS + htpasswd holding test images
KF_UPSTREAM_WWW=$LAB/www KF_SPEC_ONLY=1 KF_TEST_IMAGES="registry.k8s.io/pause:3.10 docker.io/library/nginx:1.28.0-alpine" \
	bash "$ROOT/tests/node/make-bundle.sh" "$LAB/up" >/dev/null
echo "nginx https://127.0.0.1:$TLS_PORT serves:"
(cd "$LAB/www" && find . -type f | sort | sed 's|^\./|  https://|')
echo "registry https://127.0.0.1:$UP_PORT holds registry.k8s.io/pause:3.10 and docker.io/library/nginx:1.28.0-alpine"
cp "$LAB/up/spec.yaml" "$DEMO/k8s-demo.yaml"
echo "spec (upstream URLs, checksums of the stand-in artifacts): $DEMO/k8s-demo.yaml"

step "5. Build: fetch over TLS through --rewrite, pull the images, sign"
MIRROR_PORT=5443
HOME=$LAB/home "$KF" build "$DEMO/k8s-demo.yaml" -s "$DEMO/demo.key" -o "$DEMO/k8s.tar.zst" \
	--cache "$DEMO/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "https://dl.k8s.io=https://127.0.0.1:$TLS_PORT/dl.k8s.io" \
	--rewrite "https://github.com=https://127.0.0.1:$TLS_PORT/github.com" \
	--rewrite "https://get.helm.sh=https://127.0.0.1:$TLS_PORT/get.helm.sh" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" \
	--rewrite "docker.io=127.0.0.1:$UP_PORT" \
	--mirror "https://127.0.0.1:$MIRROR_PORT"
"$KF" inspect "$DEMO/k8s.tar.zst"
PAUSE=$(upstream_digest "127.0.0.1:$UP_PORT/pause:3.10")

step "6. Verify before carrying it in: kubeferry, then the stock minisign"
"$KF" verify "$DEMO/k8s.tar.zst" -p "$DEMO/demo.pub"
minisign -V -p "$DEMO/demo.pub" -m "$DEMO/k8s.tar.zst"

step "7. The closed network: a systemd node with no network interface but lo"
if ! [ "$(id -u)" = 0 ] || ! [ -d /sys/fs/cgroup/systemd ] || ! [ -d /sys/fs/cgroup/unified ]; then
	echo "this machine cannot boot an nspawn node (needs root and a hybrid cgroup tree): stopping here"
	exit 0
fi
# The upstream servers go away: only the node's own mirror can answer now.
for p in "${_kf_pids[@]}"; do kill "$p" 2>/dev/null || true; done
rootfs=$(bash "$ROOT/tests/node/rootfs.sh")
N=$LAB/node
cp -a "$rootfs" "$N"
echo node1 >"$N/etc/hostname"
mkdir -p "$N/root/kf"
cp "$KFI" "$DEMO/k8s.tar.zst" "$DEMO/demo.pub" "$N/root/kf/"
source "$ROOT/tests/node/nspawn.sh"
node_boot "$N"
echo "node interfaces: $("${IN[@]}" ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')"
KFIN=("${IN[@]}" /root/kf/kubeferry-install)

step "7a. kubeferry-install apply --role control-plane (verify, unpack, host, runtime, etcd)"
"${KFIN[@]}" apply /root/kf/k8s.tar.zst -p /root/kf/demo.pub --role control-plane --node-ip 127.0.0.1

step "7b. kubeferry-install mirror install: this node serves the bundle's images"
"${KFIN[@]}" mirror install --listen "127.0.0.1:$MIRROR_PORT" | tee "$LAB/mirror-install"
fp=$(sed -n 's/^mirror CA fingerprint (sha256): //p' "$LAB/mirror-install")
for _ in $(seq 100); do "${IN[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MIRROR_PORT" 2>/dev/null && break; sleep 0.1; done

step "7c. Point containerd at the mirror, its CA pinned by fingerprint"
"${KFIN[@]}" apply /root/kf/k8s.tar.zst -p /root/kf/demo.pub --role control-plane --node-ip 127.0.0.1 \
	--mirror "127.0.0.1:$MIRROR_PORT" --mirror-ca-fingerprint "$fp"

step "7d. containerd pulls registry.k8s.io/pause:3.10 through certs.d from the mirror"
"${IN[@]}" /usr/local/bin/ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d registry.k8s.io/pause:3.10
"${IN[@]}" /usr/local/bin/ctr -n k8s.io images ls
got=$("${IN[@]}" /usr/local/bin/ctr -n k8s.io images ls | awk '$1 == "registry.k8s.io/pause:3.10" {print $3}')
assert_eq "$got" "$PAUSE" "pause digest equals the upstream digest"
"${IN[@]}" journalctl -u kubeferry-mirror --no-pager -o cat | grep '/v2/' | tail -n 4

step "7e. The node now"
"${KFIN[@]}" status
"${IN[@]}" systemctl is-active containerd etcd kubeferry-mirror

step "8. A cluster from a Kubespray inventory: this machine is the admin host"
if ! command -v ansible-playbook >/dev/null; then
	echo "ansible-playbook is not installed (make deps): stopping here"
	exit 0
fi
source "$ROOT/tests/lab/lab.sh"
source "$ROOT/tests/lab/cluster.sh"
lab_up cp1 cp2 cp3 w1
echo "four nodes booted on bridge $LAB_BR ($LAB_NET.0/24), each with sshd and its own host key"
mkdir -p "$DEMO/cluster"
cluster_inventory "$DEMO/cluster/hosts.ini" "cp1 cp2 cp3" "w1"
cat "$DEMO/cluster/hosts.ini"
"$KFI" unpack "$DEMO/k8s.tar.zst" -p "$DEMO/demo.pub" -d "$LAB/bundle" -q
echo "the playbooks come from the verified bundle: $(cd "$LAB/bundle" && ls ansible/*.yml | tr '\n' ' ')"

step "8a. ansible-playbook site.yml: verify, plan, mirrors, etcd, init, joins, CNI, recap"
cat >"$DEMO/cluster/kubeferry.yml" <<VARS
kubeferry_bundle: $DEMO/k8s.tar.zst
kubeferry_pubkey: $DEMO/demo.pub
kubeferry_plan_dir: $DEMO/cluster/plan
kubeferry_installer: $KFI
VARS
rm -rf "$DEMO/cluster/plan"
demo_play() { # OUT: ansible-playbook site.yml, its plays shown as they start
	{
		rc=0
		ANSIBLE_LOCALHOST_WARNING=False ansible-playbook -i "$DEMO/cluster/hosts.ini" \
			-e "@$DEMO/cluster/kubeferry.yml" "$LAB/bundle/ansible/site.yml" 2>&1 || rc=$?
		echo "ansible-playbook exit status $rc"
	} | tee "$1" | grep --line-buffered -E '^PLAY \[|^fatal:' | cut -c1-160 || true
	grep -qx 'ansible-playbook exit status 0' "$1" || { cat "$1"; fail "site.yml failed"; }
}
demo_play "$LAB/site.out"
echo "the plan (on the admin host; secrets stay here): $DEMO/cluster/plan/plan.yaml"

step "8b. etcd: three members, over TLS with the planned certificates"
CFG=/etc/kubernetes/kubeadm-config.yaml   # the plan's configuration: external etcd, its client files
ef() { lab_in cp1 sed -n "s/^ *$1: *//p" "$CFG" | head -n 1; }
lab_in cp1 env ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints "https://$(lab_ip cp1):2379" \
	--cacert "$(ef caFile)" --cert "$(ef certFile)" --key "$(ef keyFile)" member list -w table

step "8c. The worker pulls registry.k8s.io/pause:3.10 from a mirror host across the bridge"
lab_in w1 /usr/local/bin/ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d registry.k8s.io/pause:3.10 | tail -n 2
lab_in w1 /usr/local/bin/ctr -n k8s.io images ls | awk 'NR == 1 || $1 == "registry.k8s.io/pause:3.10"'
lab_in w1 grep -E '^\[host|^ *ca' /etc/containerd/certs.d/registry.k8s.io/hosts.toml

step "8d. The recap of the first run (each installer's own counts), and a second run that changes nothing"
sed -n '/TASK \[recap\]/,/^PLAY RECAP/p' "$LAB/site.out" | grep '"msg"' | sed 's/^ *"msg": //'
sed -n '/^PLAY RECAP/,/^$/p' "$LAB/site.out"
demo_play "$LAB/site2.out" >/dev/null
sed -n '/^PLAY RECAP/,$p' "$LAB/site2.out"

step "Done: bundle $DEMO/k8s.tar.zst, key $DEMO/demo.pub, plan $DEMO/cluster/plan; the nodes stop when the demo exits"
