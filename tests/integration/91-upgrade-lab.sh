#!/usr/bin/env bash
# Upgrades across the gap, in the lab (tests/lab/lab.sh): a cluster of
# three control planes (etcd members, mirror hosts) and one worker deployed
# by site.yml from a bundle shaped like Kubernetes 1.32, upgraded by
# ansible/upgrade.yml with real ansible-playbook to one shaped like 1.33.
# kubeadm, kubelet and kubectl are the stand-in tests/node/mock-kubeadm,
# each bundle's copy reporting that bundle's version; the stand-ins record
# every call, in order, in the lab's shared stand-in API directory.
#   - refused with the table, and nothing changes on any host or in the
#     plan: a skipped minor (1.34), an older bundle (1.31), a kubelet
#     newer than the API server
#   - a failure injected on the second control plane stops the playbook
#     there with its previous binaries back in place; a drain blocked by a
#     PodDisruptionBudget is reported with the pod's name; each re-run goes
#     on and the last one finishes
#   - the stand-ins saw: cp1 snapshot (etcd, real), drain, kubeadm upgrade
#     apply once, kubelet restart, uncordon; then each other control plane
#     drained, kubeadm upgrade node, uncordoned, one at a time; then the
#     worker
#   - etcd-restore.yml restores all three members from one snapshot
#   - every kubelet is the new one; a further run changes nothing; reset
#     still undoes everything (the upgrade's journal joined apply's)
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
source "$ROOT/tests/lab/lab.sh"
source "$ROOT/tests/lab/cluster.sh"
need ansible-playbook ssh /usr/bin/containerd /usr/bin/etcd /usr/lib/cni/bridge gzip tar

# bundle VERSION DIR: a lab bundle of that Kubernetes version, signed with
# the first bundle's key (containerd named as a version 1.33 supports; the
# binary is Debian's either way).
bundle() {
	if [ -d "$LAB/b132/keys" ]; then mkdir -p "$2"; cp -r "$LAB/b132/keys" "$2/"; fi
	KF_TEST_KUBE_VERSION=$1 KF_TEST_CONTAINERD_LABEL=1.7.24 cluster_bundle "$2"
}
note "bundles shaped like 1.32.5, 1.33.3, 1.34.1 and 1.31.9; four nodes"
bundle 1.32.5 "$LAB/b132"
bundle 1.33.3 "$LAB/b133"
bundle 1.34.1 "$LAB/b134"
bundle 1.31.9 "$LAB/b131"
cmp -s "$LAB/b132/src/kubelet" "$LAB/b133/src/kubelet" && fail "the two bundles' kubelets are the same"
lab_up cp1 cp2 cp3 w1
INV=$LAB/inventory/hosts.ini
mkdir -p "$LAB/inventory"
cluster_inventory "$INV" "cp1 cp2 cp3" "w1"
API=$LAB_DIR/mock-api
sum() { sha256sum "$1" | cut -d' ' -f1; }
on() { lab_in "$1" sha256sum "$2" | cut -d' ' -f1; }

note "site.yml deploys 1.32.5"
cluster_vars "$LAB/b132/bundle.tar.zst" "$LAB/b132/keys/kf.pub"
cluster_play site.yml "$INV" || { cat "$LAB/play.out"; fail "site.yml failed"; }
for n in cp1 cp2 cp3 w1; do
	assert_eq "$(on "$n" /usr/local/bin/kubelet)" "$(sum "$LAB/b132/src/kubelet")" "$n runs the 1.32.5 kubelet"
	for _ in $(seq 50); do grep -q " v1.32.5 " "$API/nodes/$n" 2>/dev/null && break; sleep 0.2; done
	grep -q "^$n v1.32.5 containerd://" "$API/nodes/$n" || fail "$n's kubelet did not register: $(cat "$API/nodes/$n" 2>&1)"
done

# state: what must not move when an upgrade is refused.
state() {
	local n
	for n in cp1 cp2 cp3 w1; do
		echo "$n $(on "$n" /usr/local/bin/kubeadm) $(on "$n" /usr/local/bin/kubelet) $(on "$n" /usr/local/bin/kubeferry-install)"
		lab_in "$n" cat /var/lib/kubeferry/state/applied
		lab_in "$n" test ! -e /var/lib/kubeferry/upgrade || echo "$n has an upgrade journal"
	done
	find "$LAB/plan" -type f -exec sha256sum {} + | sort
	cat "$API"/nodes/* "$API"/apiservers/*
}
refused() { # NAME BUNDLE-DIR ERROR-REGEX
	local before
	before=$(state)
	: >"$API/calls.log"
	cluster_vars "$2/bundle.tar.zst" "$2/keys/kf.pub"
	! cluster_play upgrade.yml "$INV" || { cat "$LAB/play.out"; fail "$1: the upgrade went on"; }
	grep -Eq "$3" "$LAB/play.out" || { cat "$LAB/play.out"; fail "$1: no refusal /$3/"; }
	grep -q 'NODE  *ROLE  *COMPONENT  *RUNNING  *BUNDLE  *ACTION' "$LAB/play.out" ||
		{ cat "$LAB/play.out"; fail "$1: no table"; }
	assert_eq "$(state)" "$before" "$1: something changed"
	! grep -Eq 'upgrade (apply|node)| drain | uncordon ' "$API/calls.log" ||
		fail "$1: the stand-ins were asked to change something: $(cat "$API/calls.log")"
}
note "refused, with the table, changing nothing: a skipped minor, an older bundle"
refused skip "$LAB/b134" 'upgrade to 1\.33 first'
refused older "$LAB/b131" 'older than the running API server'
note "refused: a kubelet newer than the API server (w1's put on 1.33 by hand)"
lab_in w1 cp /usr/local/bin/kubelet /root/kubelet.132
cat "$LAB/b133/src/kubelet" | lab_in w1 sh -c 'cat >/usr/local/bin/kubelet'
lab_in w1 systemctl restart kubelet
for _ in $(seq 50); do grep -q " v1.33.3 " "$API/nodes/w1" && break; sleep 0.2; done
refused newer-kubelet "$LAB/b133" 'kubelet on w1 \(v1\.33\.3\) is newer than the API server'
lab_in w1 cp /root/kubelet.132 /usr/local/bin/kubelet
lab_in w1 systemctl restart kubelet
for _ in $(seq 50); do grep -q " v1.32.5 " "$API/nodes/w1" && break; sleep 0.2; done

note "upgrade.yml to 1.33.3, a failure injected on cp2: it stops there, on its old binaries"
: >"$API/calls.log"
cluster_vars "$LAB/b133/bundle.tar.zst" "$LAB/b133/keys/kf.pub"
mkdir -p "$LAB/fail"
printf 'all:\n  hosts:\n    cp2:\n      kubeferry_environment: {MOCK_KUBEADM_FAIL: upgrade}\n' >"$LAB/fail/fail.yml"
! cluster_play upgrade.yml "$INV" -i "$LAB/fail/fail.yml" || { cat "$LAB/play.out"; fail "the failed upgrade succeeded"; }
grep -Eq '^cp2 +: .*failed=1' "$LAB/play.out" || { cat "$LAB/play.out"; fail "cp2 did not fail"; }
grep -q 'previous binaries' "$LAB/play.out" || { cat "$LAB/play.out"; fail "no word of the previous binaries"; }
assert_eq "$(on cp1 /usr/local/bin/kubelet)" "$(sum "$LAB/b133/src/kubelet")" "cp1 upgraded"
for f in kubeadm kubelet kubectl; do
	assert_eq "$(on cp2 /usr/local/bin/$f)" "$(sum "$LAB/b132/src/$f")" "cp2's $f after the failure"
done
lab_in cp2 test ! -e /var/lib/kubeferry/upgrade || fail "cp2 kept its upgrade journal after undoing it"
grep -q '^cp2 v1.32.5 ' "$API/nodes/cp2" || fail "cp2's kubelet runs $(cat "$API/nodes/cp2")"
for n in cp3 w1; do
	assert_eq "$(on "$n" /usr/local/bin/kubelet)" "$(sum "$LAB/b132/src/kubelet")" "$n was touched"
done

note "re-run with w1's drain blocked by a PodDisruptionBudget: reported with the pod's name"
echo "w1 default/web-0" >"$API/pdb"
! cluster_play upgrade.yml "$INV" || { cat "$LAB/play.out"; fail "the blocked drain went on"; }
grep -q 'PodDisruptionBudget keeps pod default/web-0' "$LAB/play.out" ||
	{ cat "$LAB/play.out"; fail "the blocked drain does not name the pod"; }
assert_eq "$(on w1 /usr/local/bin/kubelet)" "$(sum "$LAB/b132/src/kubelet")" "w1 upgraded without its drain"
for n in cp2 cp3; do
	assert_eq "$(on "$n" /usr/local/bin/kubelet)" "$(sum "$LAB/b133/src/kubelet")" "$n not upgraded by the re-run"
done

note "the budget relaxed: the next run finishes"
rm "$API/pdb"
cluster_play upgrade.yml "$INV" || { cat "$LAB/play.out"; fail "the last upgrade run failed"; }
for n in cp1 cp2 cp3 w1; do
	for f in kubeadm kubelet kubectl; do
		assert_eq "$(on "$n" /usr/local/bin/$f)" "$(sum "$LAB/b133/src/$f")" "$n's $f"
	done
	grep -q "^$n v1.33.3 " "$API/nodes/$n" || fail "$n's kubelet reports $(cat "$API/nodes/$n")"
	lab_in "$n" grep -q '^bundle: k8s-test-1.33.3$' /var/lib/kubeferry/state/applied || fail "$n's applied state"
done
for n in cp1 cp2 cp3; do
	grep -q "^$n registry.k8s.io/kube-apiserver:v1.33.3$" "$API/apiservers/$n" || fail "$n's API server"
done

note "the order the stand-ins saw: snapshot, drain, upgrade apply once, upgrade node one at a time, uncordon"
L=$API/calls.log
# line NODE PATTERN: the first calls.log line number of NODE's matching call.
line() { awk -v n="$1" -v p="$2" '$2 == n && $0 ~ p {print NR; exit}' "$L"; }
assert_eq "$(grep -c ' kubeadm upgrade apply v1.33.3' "$L")" 1 "upgrade apply calls: $(grep ' upgrade ' "$L")"
assert_eq "$(awk '$3 == "kubeadm" && $4 == "upgrade" && $5 == "apply" {print $2}' "$L")" cp1 "upgrade apply ran on"
order=
for step in "cp1 kubectl.* drain cp1 " "cp1 kubeadm upgrade apply" "cp1 kubectl.* uncordon cp1" \
	"cp2 kubectl.* drain cp2 " "cp2 kubeadm upgrade node" "cp2 kubectl.* uncordon cp2" \
	"cp3 kubectl.* drain cp3 " "cp3 kubeadm upgrade node" "cp3 kubectl.* uncordon cp3" \
	"cp1 kubectl.* drain w1 " "w1 kubeadm upgrade node" "cp1 kubectl.* uncordon w1"; do
	ln=$(awk -v p=" $step" '$0 ~ p {n = NR} END {print n}' "$L")
	[ -n "$ln" ] || fail "no '$step' in $L: $(cat "$L")"
	order="$order $ln"
done
python3 -c "import sys; t = list(map(int, sys.argv[1:])); sys.exit(0 if t == sorted(t) else 1)" $order ||
	fail "calls out of order ($order): $(cat "$L")"
# The kubelet of each control plane restarted on its new version after
# kubeadm upgraded its node (the stand-in kubelet writes its record then).
snap=$(lab_in cp1 sh -c 'ls -t /var/lib/kubeferry/etcd-snapshots/*.db | head -n 1')
[ -n "$snap" ] || fail "no etcd snapshot on cp1"
lab_in cp1 sh -c "cd /var/lib/kubeferry/etcd-snapshots && sha256sum -c $(basename "$snap").sha256" >/dev/null ||
	fail "the snapshot does not match its sha256 file"
t_snap=$(lab_in cp1 stat -c %Y "$snap")
t_drain=$(awk '$2 == "cp1" && / drain cp1 / {print int($1); exit}' "$L")
[ "$t_snap" -le "$t_drain" ] || fail "the snapshot ($t_snap) came after cp1's drain ($t_drain)"

note "a further run changes nothing"
cluster_play upgrade.yml "$INV" || { cat "$LAB/play.out"; fail "the no-change upgrade run failed"; }
changed=$(cluster_changed_hosts)
[ -z "$changed" ] || { sed -n '/^PLAY RECAP/,$p' "$LAB/play.out"; fail "changed on the no-change run: $changed"; }
lab_in cp1 /usr/local/bin/kubeferry-install upgrade plan /var/lib/kubeferry/incoming/bundle.tar.zst \
	-p /var/lib/kubeferry/incoming/kf.pub --host cp1 >"$LAB/plan.out" || { cat "$LAB/plan.out"; fail "upgrade plan"; }
grep -q 'nothing to upgrade' "$LAB/plan.out" || { cat "$LAB/plan.out"; fail "not 'nothing to upgrade'"; }
note "etcd-restore.yml across the three members: a key from before the snapshot is back, one from after is gone"
CFG=/etc/kubernetes/kubeadm-config.yaml
etcd_file() { lab_in cp1 sed -n "s/^ *$1: *//p" "$CFG" | head -n 1; }
ECA=$(etcd_file caFile) ECERT=$(etcd_file certFile) EKEY=$(etcd_file keyFile)
EPS="https://$(lab_ip cp1):2379,https://$(lab_ip cp2):2379,https://$(lab_ip cp3):2379"
etcdctl_on() { local n=$1; shift
	lab_in "$n" env ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints "$EPS" --cacert "$ECA" --cert "$ECERT" --key "$EKEY" "$@"; }
etcdctl_on cp1 put kubeferry/before kept >/dev/null || fail "put before"
lab_in cp1 /usr/local/bin/kubeferry-install etcd snapshot --dir /var/lib/kubeferry/restore-test >"$LAB/snap.out" 2>&1 ||
	{ cat "$LAB/snap.out"; fail "etcd snapshot on cp1"; }
etcdctl_on cp1 put kubeferry/after lost >/dev/null || fail "put after"
snap=$(lab_in cp1 sh -c 'ls /var/lib/kubeferry/restore-test/*.db')
mkdir -p "$LAB/snap"
lab_in cp1 cat "$snap" >"$LAB/snap/$(basename "$snap")"
lab_in cp1 cat "$snap.sha256" >"$LAB/snap/$(basename "$snap").sha256"
cluster_play etcd-restore.yml "$INV" -e etcd_snapshot="$LAB/snap/$(basename "$snap")" -e restore_confirmed=yes \
	-e kubeferry_node_plan=/etc/kubeferry/plan || { cat "$LAB/play.out"; fail "etcd-restore.yml failed"; }
for n in cp1 cp2 cp3; do
	assert_eq "$(etcdctl_on "$n" get --print-value-only kubeferry/before)" kept "kubeferry/before read on $n"
	assert_eq "$(etcdctl_on "$n" get --print-value-only kubeferry/after)" "" "kubeferry/after read on $n"
done
etcdctl_on cp1 member list >"$LAB/members" || fail "member list after the restore"
assert_eq "$(grep -c ', started, ' "$LAB/members")" 3 "started members after the restore: $(cat "$LAB/members")"

note "reset after the upgrade undoes what apply and the upgrade installed"
lab_in w1 /usr/local/bin/kubeferry-install reset >"$LAB/reset.out" 2>&1 || { cat "$LAB/reset.out"; fail "reset on w1"; }
for f in kubeadm kubelet kubectl containerd; do lab_in w1 test ! -e /usr/local/bin/$f || fail "reset left $f on w1"; done
lab_in w1 test ! -e /var/lib/kubeferry/upgrade -a ! -e /var/lib/kubeferry/state || fail "reset left state on w1"
echo "upgrade lab checks passed"
