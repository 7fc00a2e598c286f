#!/usr/bin/env bash
# The multi-node lab (tests/lab/lab.sh): three nspawn nodes in network
# namespaces of their own on this test's bridge, booted in parallel on
# overlay roots; each has its own hostname, machine-id and ssh host key
# (checked by ssh against the known hosts the lab wrote), reaches the
# others across the bridge, and answers Ansible with the lab's private
# configuration; a node added later joins the same bridge. Teardown leaves
# no namespace, bridge, cgroup, mount or ssh master behind.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/lab/lab.sh"
need ansible ansible-playbook

note "boot three nodes"
lab_up n1 n2 n3
declare -A ids keys
for n in n1 n2 n3; do
	assert_eq "$(lab_ssh "$n" cat /etc/hostname)" "$n" "hostname over ssh"
	ids[$(lab_ssh "$n" cat /etc/machine-id)]=1
	keys[$(ssh-keygen -lf "$LAB_DIR/nodes/$n/root/etc/ssh/ssh_host_ed25519_key.pub" | cut -d' ' -f2)]=1
	assert_eq "$(lab_in "$n" ip -4 -o addr show dev eth0 | awk '{print $4}')" "$(lab_ip "$n")/24" "$n address"
done
assert_eq "${#ids[@]}" 3 "distinct machine-ids"
assert_eq "${#keys[@]}" 3 "distinct host keys"
lab_ssh n1 ping -c1 -W2 n3 >/dev/null || fail "n1 cannot reach n3 across the bridge"
[ -z "$(ls -A "$LAB_BASE/etc/ssh" | grep ssh_host_ || true)" ] || fail "the cached root carries host keys"

note "ssh refuses a node whose host key is not the one the lab recorded"
sed -i "s|^$(lab_ip n2) .*|$(lab_ip n2) $(cut -d' ' -f1,2 "$LAB_DIR/nodes/n1/root/etc/ssh/ssh_host_ed25519_key.pub")|" "$LAB_DIR/known_hosts"
! ssh -F "$LAB_SSH_CONFIG" -o ControlMaster=no -o ControlPath=none n2 true 2>/dev/null || fail "ssh accepted a wrong host key"

note "Ansible with the lab's private configuration"
printf '[lab]\nn1 ansible_host=%s\nn3 ansible_host=%s\n' "$(lab_ip n1)" "$(lab_ip n3)" >"$LAB/hosts.ini"
expect_exit 0 ansible -i "$LAB/hosts.ini" lab -m ansible.builtin.command -a 'cat /etc/hostname'
expect_output '^n1 \| CHANGED'
expect_output '^n3 \| CHANGED'
case $ANSIBLE_CONFIG in "$LAB"/*) ;; *) fail "ANSIBLE_CONFIG is not private: $ANSIBLE_CONFIG" ;; esac

note "a node added later"
lab_up n4
lab_ssh n4 ping -c1 -W2 n1 >/dev/null || fail "n4 cannot reach n1"
grep -q " n4$" "$LAB_DIR/nodes/n1/root/etc/hosts" || fail "n1's /etc/hosts does not name n4"

note "teardown leaves nothing"
net=$LAB_NET
lab_down
ip link show "kfbr$$" >/dev/null 2>&1 && fail "bridge left"
ip netns list | has "kf$$-" && fail "namespace left"
ls -d /sys/fs/cgroup/{systemd,unified}/kflab$$-* 2>/dev/null && fail "cgroup left"
has "kflab$$-" /proc/mounts && fail "overlay left"
pgrep -f "ControlPath=.*$LAB" >/dev/null && fail "ssh master left"
pgrep -f "$LAB/lab/cp" >/dev/null && fail "ssh master left"
ip -4 -o addr show | has " $net\." && fail "address left"
echo "lab checks passed"
