#!/usr/bin/env bash
# Benchmark: a four-node cluster (three control planes with etcd, one
# worker) deployed by ansible/site.yml into the lab (tests/lab/lab.sh),
# against one node deployed with apply, mirror install and cluster init
# from the same bundle, in the same run. The nodes work in parallel, so
# the playbook should take at most 2x the single node (issue 9); a second,
# no-change run of the playbook should take under 10 % of the first.
# One run each (a cluster cannot be deployed fresh twice in one lab);
# quote the ratios, not the times. Needs root, systemd-nspawn, hybrid
# cgroups and ansible-playbook; otherwise exit 77 (skipped).
# Environment: KF_BUILD (build dir).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/lib.sh"
source "$ROOT/tests/registry/lib.sh"
source "$ROOT/tests/lab/lab.sh"
source "$ROOT/tests/lab/cluster.sh"
need ansible-playbook python3
[ -x "$KFI" ] || { echo "bench/cluster: build $KFI first (make)" >&2; exit 2; }
now() { date +%s.%N; }

cluster_bundle "$LAB/b" >/dev/null
lab_up cp1 cp2 cp3 w1 solo
mkdir -p "$LAB/inventory" "$LAB/solo-inventory"
cluster_inventory "$LAB/inventory/hosts.ini" "cp1 cp2 cp3" "w1"
cluster_vars

# One node, by hand: its own single-node plan, then the installer's
# commands in the order the playbook runs them.
cluster_inventory "$LAB/solo-inventory/hosts.ini" "solo" ""
"$KFI" cluster plan "$LAB/solo-inventory/hosts.ini" "$LAB/b/bundle.tar.zst" -p "$LAB/b/keys/kf.pub" \
	-o "$LAB/solo-plan" >/dev/null
S=$LAB_DIR/nodes/solo/root
mkdir -p "$S/etc/kubeferry/plan/hosts" "$S/var/lib/kubeferry/incoming"
cp -a "$LAB/solo-plan/hosts/solo" "$S/etc/kubeferry/plan/hosts/"
cp "$KFI" "$S/usr/local/bin/kubeferry-install"
cp "$LAB/b/bundle.tar.zst" "$LAB/b/keys/kf.pub" "$S/var/lib/kubeferry/incoming/"
H=(--plan /etc/kubeferry/plan --host solo)
t0=$(now)
lab_in solo /usr/local/bin/kubeferry-install apply /var/lib/kubeferry/incoming/bundle.tar.zst \
	-p /var/lib/kubeferry/incoming/kf.pub "${H[@]}" >"$LAB/solo.out" 2>&1 &&
	lab_in solo /usr/local/bin/kubeferry-install mirror install "${H[@]}" >>"$LAB/solo.out" 2>&1 &&
	lab_in solo /usr/local/bin/kubeferry-install cluster init "${H[@]}" >>"$LAB/solo.out" 2>&1 ||
	{ cat "$LAB/solo.out" >&2; fail "bench/cluster: the single node failed"; }
t1=$(now)

cluster_play site.yml "$LAB/inventory/hosts.ini" || { cat "$LAB/play.out" >&2; fail "bench/cluster: site.yml failed"; }
t2=$(now)
cluster_play site.yml "$LAB/inventory/hosts.ini" || { cat "$LAB/play.out" >&2; fail "bench/cluster: second site.yml failed"; }
t3=$(now)
[ -z "$(cluster_changed_hosts)" ] || fail "bench/cluster: the second run changed $(cluster_changed_hosts)"

python3 - "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:])
one, four, again = t1 - t0, t2 - t1, t3 - t2
print(f"one node: apply + mirror install + cluster init:  {one:7.2f} s")
print(f"four nodes: ansible-playbook site.yml:            {four:7.2f} s")
print(f"four nodes / one node:                            {four/one:7.2f} x   (goal <= 2.00x): {'met' if four/one <= 2 else 'missed'}")
print(f"site.yml again, no change:                        {again:7.2f} s")
print(f"no-change run / first run:                        {100*again/four:7.2f} %   (goal < 10 %): {'met' if 100*again/four < 10 else 'missed'}")
PY
echo "bench/cluster: reproduce with: KF_BUILD=$KF_BUILD bash bench/cluster.sh   (or bench/run cluster)"
