#!/usr/bin/env bash
# A whole cluster from one Kubespray inventory, deployed by ansible/site.yml
# with real ansible-playbook into the lab (tests/lab/lab.sh): four nspawn
# nodes on this test's bridge, three control planes with etcd and one
# worker; this host is the admin host. Real containerd, etcd, runc and the
# registry mirror; kubeadm, kubelet and kubectl are the stand-in
# tests/node/mock-kubeadm, which records its calls.
#   - a bad inventory (even etcd count, duplicate IP, Jinja value) is
#     refused before any host is touched
#   - etcd: member list shows three members, endpoint health --cluster is
#     healthy over TLS with the planned certificates; a write succeeds
#     with one member stopped
#   - the worker's containerd pulls through hosts.toml from a mirror host
#     across the bridge, the CA pinned from the plan; with the first mirror
#     stopped, from the next
#   - kubeadm: init on the first control plane with the planned
#     configuration and the pre-placed CAs, the other control planes join
#     one at a time with the certificate key, the worker with the CA hash
#   - a second run reports changed=0 on every host; scale.yml adds a fifth
#     host; a run stopped halfway on one host, run again, finishes
#   - remove-node.yml drains, resets and deletes a worker (an etcd member
#     is refused); reset.yml needs confirmation, then resets every host
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
source "$ROOT/tests/lab/lab.sh"
source "$ROOT/tests/lab/cluster.sh"
need ansible-playbook ssh /usr/bin/containerd /usr/bin/etcd /usr/lib/cni/bridge gzip tar
"$KFI" cluster plan --help >/dev/null 2>&1 ||
	{ echo "skip: kubeferry-install has no 'cluster plan' yet (wip-cluster)"; exit 77; }

note "bundle, and four nodes booted in parallel"
cluster_bundle "$LAB/b"
lab_up cp1 cp2 cp3 w1
INV=$LAB/inventory/hosts.ini
mkdir -p "$LAB/inventory"
cluster_inventory "$INV" "cp1 cp2 cp3" "w1"
cluster_vars

untouched() { # no node has anything of kubeferry's
	local n
	for n in cp1 cp2 cp3 w1; do
		lab_in "$n" test ! -e /var/lib/kubeferry -a ! -e /etc/kubeferry -a ! -e /usr/local/bin/kubeferry-install ||
			fail "$1: $n was touched"
	done
	[ ! -e "$LAB/plan" ] || fail "$1: a plan was written"
}
bad_inventory() { # NAME SED-EXPRESSION ERROR-REGEX
	mkdir -p "$LAB/bad-$1"
	sed "$2" "$INV" >"$LAB/bad-$1/hosts.ini"
	! cluster_play site.yml "$LAB/bad-$1/hosts.ini" || { cat "$LAB/play.out"; fail "$1: the playbook went on"; }
	grep -Eq "$3" "$LAB/play.out" || { cat "$LAB/play.out"; fail "$1: no error /$3/"; }
	untouched "$1"
}
note "bad inventories are refused before any host is touched"
bad_inventory even-etcd '/^\[etcd\]/,/^$/{/^cp3$/d}' 'hosts.ini.*etcd|etcd.*(even|odd)'
bad_inventory dup-ip "s/^w1 ansible_host=[0-9.]* ip=[0-9.]*/w1 ansible_host=$(lab_ip w1) ip=$(lab_ip cp2)/" \
	"hosts.ini:[0-9]+.*$(lab_ip cp2)|duplicate"
bad_inventory jinja 's/^w1 \(.*\)$/w1 \1 access_ip="{{ ip }}"/' 'hosts.ini:[0-9]+.*(Jinja|\{\{)'

note "site.yml: the whole cluster"
cluster_play site.yml "$INV" || { cat "$LAB/play.out"; fail "site.yml failed"; }
cp "$LAB/play.out" "$LAB/site1.out"
for n in cp1 cp2 cp3 w1; do
	grep -Eq "^$n +: ok=[0-9]+ +changed=[1-9]" "$LAB/play.out" || fail "$n: nothing changed on the first run"
	assert_eq "$(lab_in "$n" stat -c %a "/etc/kubeferry/plan/hosts/$n")" 700 "$n: share directory mode"
	[ -z "$(lab_in "$n" find /etc/kubeferry/plan -type f ! -perm 0600)" ] || fail "$n: share file modes"
	assert_eq "$(lab_in "$n" ls /etc/kubeferry/plan/hosts)" "$n" "$n holds only its own share"
done
grep -q 'kubeferry | recap' "$LAB/play.out" || fail "no recap"

note "etcd: three members, healthy over TLS with the planned certificates"
CFG=/etc/kubernetes/kubeadm-config.yaml
lab_in cp1 grep -q '^kind: ClusterConfiguration$' "$CFG" || fail "no ClusterConfiguration in cp1's $CFG"
etcd_file() { lab_in cp1 sed -n "s/^ *$1: *//p" "$CFG" | head -n 1; }
ECA=$(etcd_file caFile) ECERT=$(etcd_file certFile) EKEY=$(etcd_file keyFile)
[ -n "$ECA" ] && [ -n "$ECERT" ] && [ -n "$EKEY" ] || fail "no external etcd files in $CFG"
EPS="https://$(lab_ip cp1):2379,https://$(lab_ip cp2):2379,https://$(lab_ip cp3):2379"
etcdctl_on() { local n=$1; shift
	lab_in "$n" env ETCDCTL_API=3 /usr/local/bin/etcdctl --cacert "$ECA" --cert "$ECERT" --key "$EKEY" "$@"; }
for n in cp2 cp3; do
	for f in "$ECA" "$ECERT" "$EKEY"; do lab_in "$n" test -s "$f" || fail "$n lacks $f"; done
done
etcdctl_on cp1 --endpoints "$EPS" member list >"$LAB/members" || fail "member list"
assert_eq "$(grep -c ', started, ' "$LAB/members")" 3 "started etcd members: $(cat "$LAB/members")"
for n in cp1 cp2 cp3; do grep -q "https://$(lab_ip "$n"):2379" "$LAB/members" || fail "member $n missing"; done
etcdctl_on cp2 --endpoints "https://$(lab_ip cp2):2379" endpoint health --cluster >"$LAB/health" 2>&1 ||
	{ cat "$LAB/health"; fail "endpoint health --cluster"; }
assert_eq "$(grep -c 'is healthy' "$LAB/health")" 3 "healthy endpoints: $(cat "$LAB/health")"
! lab_in cp1 env ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints "https://$(lab_ip cp2):2379" \
	--cacert "$ECA" endpoint health >/dev/null 2>&1 || fail "etcd answers without a client certificate"

note "a write succeeds with one etcd member stopped"
lab_in cp3 systemctl stop etcd
etcdctl_on cp1 --endpoints "$EPS" put kubeferry/lab quorum >/dev/null || fail "write with cp3's etcd stopped"
assert_eq "$(etcdctl_on cp2 --endpoints "https://$(lab_ip cp2):2379" get --print-value-only kubeferry/lab)" quorum "read back"
lab_in cp3 systemctl start etcd

note "kubeadm (stand-in): init on cp1 with the planned configuration and pre-placed CAs"
mock() { lab_in "$1" cat /var/log/mock-kubeadm.log 2>/dev/null | grep -E '^kubeadm (init|join)' || true; }
mock cp1 >"$LAB/mock-cp1"
assert_eq "$(grep -c '^kubeadm init' "$LAB/mock-cp1")" 1 "init calls on cp1: $(cat "$LAB/mock-cp1")"
! grep -q '^kubeadm join' "$LAB/mock-cp1" || fail "cp1 joined"
grep -q -- '--config' "$LAB/mock-cp1" || fail "init without --config"
# The CAs were in place before init (kubeadm reuses them), and they are the
# plan's: the same bytes as in the plan directory on the admin host.
lab_in cp1 cat /var/log/mock-kubeadm.log.pki >"$LAB/pki-cp1"
for f in ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub; do
	sum=$(awk -v f="$f" '$1 == "present" && $2 == f {print $3}' "$LAB/pki-cp1")
	[ -n "$sum" ] || fail "$f was not in place before init: $(cat "$LAB/pki-cp1")"
	find "$LAB/plan" -type f -exec sha256sum {} + | has "^$sum " || fail "cp1's $f is not the plan's"
done
hash=$(lab_in cp1 openssl x509 -in /etc/kubernetes/pki/ca.crt -noout -pubkey |
	openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
for n in cp2 cp3 w1; do
	mock "$n" >"$LAB/mock-$n"
	assert_eq "$(grep -c '^kubeadm join' "$LAB/mock-$n")" 1 "join calls on $n: $(cat "$LAB/mock-$n")"
	jc=$(sed -n 's/.*--config[ =]\([^ ]*\).*/\1/p' "$LAB/mock-$n" | head -n 1)
	[ -n "$jc" ] || fail "$n joined without a configuration"
	lab_in "$n" cat "$jc" >"$LAB/join-$n.yaml"
	grep -q '^kind: JoinConfiguration$' "$LAB/join-$n.yaml" || fail "$n: not a JoinConfiguration"
	grep -q "sha256:$hash" "$LAB/join-$n.yaml" || fail "$n: the join does not pin the CA hash sha256:$hash"
	! grep -q 'unsafeSkipCAVerification: *true' "$LAB/join-$n.yaml" || fail "$n skips CA verification"
done
for n in cp2 cp3; do
	grep -q 'certificateKey:' "$LAB/join-$n.yaml" || fail "$n: control-plane join without the certificate key"
done
! grep -q 'certificateKey:' "$LAB/join-w1.yaml" || fail "the worker got the certificate key"
! grep -q '^controlPlane:' "$LAB/join-w1.yaml" || fail "the worker joined as a control plane"
note "the control planes joined one at a time"
# t NODE begin|end init|join: when the stand-in kubeadm started or ended.
t() { awk -v w="$2" -v c="$3" '$1 == w && $3 == c {print $2; exit}' "$(lab_root "$1")/var/log/mock-kubeadm.log.times"; }
times="$(t cp1 end init) $(t cp2 begin join) $(t cp2 end join) $(t cp3 begin join)"
python3 -c "import sys; t = list(map(float, sys.argv[1:])); sys.exit(0 if len(t) == 4 and t == sorted(t) else 1)" \
	$times || fail "init on cp1, then cp2's join, then cp3's, one after the other: $times"

note "the worker pulls through the mirror hosts, the CA pinned from the plan"
H=/etc/containerd/certs.d/registry.k8s.io/hosts.toml
lab_in w1 cat "$H" >"$LAB/w1-hosts.toml"
order=$(sed -n 's|^\[host\."https://\([0-9.]*\):[0-9]*"\]$|\1|p' "$LAB/w1-hosts.toml" | tr '\n' ' ')
assert_eq "$order" "$(lab_ip cp1) $(lab_ip cp2) $(lab_ip cp3) " "mirror hosts in hosts.toml"
mca=$(sed -n 's/^ *ca = "\(.*\)"$/\1/p' "$LAB/w1-hosts.toml" | head -n 1)
lab_in w1 openssl x509 -in "$mca" -noout -fingerprint -sha256 | cut -d= -f2 >"$LAB/w1-ca.fp"
mirror_fp=$(lab_in cp1 openssl x509 -in /etc/kubeferry/mirror-ca.crt -noout -fingerprint -sha256 | cut -d= -f2)
assert_eq "$(cat "$LAB/w1-ca.fp")" "$mirror_fp" "the worker trusts the mirror CA of the plan"
pull_on_w1() {
	lab_in w1 /usr/local/bin/ctr -n k8s.io images rm "$KF_CLUSTER_IMAGE" >/dev/null 2>&1 || true
	lab_in w1 /usr/local/bin/ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d "$KF_CLUSTER_IMAGE" \
		>"$LAB/pull" 2>&1 || { cat "$LAB/pull"; fail "pull on w1: $1"; }
	got=$(lab_in w1 /usr/local/bin/ctr -n k8s.io images ls | awk -v r="$KF_CLUSTER_IMAGE" '$1 == r {print $3}')
	assert_eq "$got" "$PAUSE" "pause pulled on w1 ($1)"
}
served() { lab_in "$1" journalctl -u kubeferry-mirror --no-pager -o cat | grep -Ec '(GET|HEAD) /v2/pause/manifests' || true; }
before1=$(served cp1)
pull_on_w1 "all mirrors up"
[ "$(served cp1)" -gt "$before1" ] || fail "cp1's mirror did not serve the pull"
lab_in cp1 systemctl stop kubeferry-mirror
before2=$(served cp2)
pull_on_w1 "cp1's mirror stopped"
[ "$(served cp2)" -gt "$before2" ] || fail "cp2's mirror did not serve the pull"
lab_in cp1 systemctl start kubeferry-mirror

note "a second run reports changed=0 on every host"
cluster_play site.yml "$INV" || { cat "$LAB/play.out"; fail "second site.yml failed"; }
changed=$(cluster_changed_hosts)
[ -z "$changed" ] || { sed -n '/^PLAY RECAP/,$p' "$LAB/play.out"; fail "changed on the second run: $changed"; }
for n in cp1 cp2 cp3 w1 localhost; do
	grep -Eq "^$n +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "$LAB/play.out" || fail "$n missing in the recap"
done
assert_eq "$(mock cp1 | grep -c '^kubeadm init')" 1 "init calls on cp1 after the second run"
for n in cp2 cp3 w1; do assert_eq "$(mock "$n" | grep -c '^kubeadm join')" 1 "join calls on $n after the second run"; done

note "scale.yml adds a fifth host; stopped halfway on it, run again, it finishes"
lab_up w2
cluster_inventory "$INV" "cp1 cp2 cp3" "w1 w2"
mkdir -p "$LAB/crash"
printf 'all:\n  hosts:\n    w2:\n      kubeferry_environment: {KUBEFERRY_TEST_CRASH_AFTER: "15"}\n' >"$LAB/crash/crash.yml"
! cluster_play scale.yml "$INV" -i "$LAB/crash/crash.yml" || fail "the crashed run succeeded"
grep -Eq '^w2 +: .*failed=1' "$LAB/play.out" || { cat "$LAB/play.out"; fail "w2 did not fail"; }
grep -Eq '"rc": (-9|137)' "$LAB/play.out" || { cat "$LAB/play.out"; fail "w2's installer was not killed halfway"; }
cluster_play scale.yml "$INV" || { cat "$LAB/play.out"; fail "scale.yml failed"; }
grep -Eq '^w2 +: ok=[0-9]+ +changed=[1-9][0-9]* +unreachable=0 +failed=0' "$LAB/play.out" || fail "w2 not deployed"
for n in cp1 cp2 cp3 w1; do
	grep -Eq "^$n +: ok=[0-9]+ +changed=0 " "$LAB/play.out" || fail "scale changed $n"
done
assert_eq "$(mock w2 | grep -c '^kubeadm join')" 1 "w2 joined"
lab_in w2 /usr/local/bin/ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d "$KF_CLUSTER_IMAGE" >/dev/null ||
	fail "w2 cannot pull through the mirror"
note "remove-node.yml: an etcd member is refused; a worker is drained, reset and deleted"
! cluster_play remove-node.yml "$INV" -e node=cp2 || fail "removing an etcd member was accepted"
grep -q 'neither an etcd' "$LAB/play.out" || { cat "$LAB/play.out"; fail "no reason for the refusal"; }
cluster_play remove-node.yml "$INV" -e node=w2 || { cat "$LAB/play.out"; fail "remove-node.yml failed"; }
lab_in cp1 grep -q '^kubectl .* drain w2 ' /var/log/mock-kubeadm.log || fail "w2 was not drained"
lab_in cp1 grep -q '^kubectl .* delete node w2 ' /var/log/mock-kubeadm.log || fail "w2's Node was not deleted"
lab_in w2 grep -q '^kubeadm reset' /var/log/mock-kubeadm.log || fail "kubeadm reset did not run on w2"
! lab_in w2 systemctl is-active --quiet containerd || fail "containerd still runs on w2"
lab_in w2 test ! -e /etc/kubeferry/plan || fail "w2 still holds its share of the plan"
lab_in w1 systemctl is-active --quiet containerd || fail "remove-node touched w1"

note "reset.yml: refused without confirmation, then every host reset"
! cluster_play reset.yml "$INV" || fail "reset.yml ran without reset_confirmed=yes"
lab_in cp1 systemctl is-active --quiet etcd || fail "the refused reset touched cp1"
cluster_play reset.yml "$INV" -e reset_confirmed=yes || { cat "$LAB/play.out"; fail "reset.yml failed"; }
for n in cp1 cp2 cp3 w1; do
	! lab_in "$n" systemctl is-active --quiet containerd || fail "containerd still runs on $n"
	! lab_in "$n" systemctl is-active --quiet etcd || fail "etcd still runs on $n"
	lab_in "$n" test ! -e /etc/kubeferry/plan -a ! -e /etc/etcd.env || fail "$n keeps its share"
done
[ -s "$LAB/plan/shared/ca.key" ] || fail "reset removed the plan on the admin host"
echo "cluster lab checks passed"
