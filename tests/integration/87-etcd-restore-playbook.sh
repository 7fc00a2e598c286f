#!/usr/bin/env bash
# ansible/etcd-restore.yml parses under ansible-core, and its first play
# refuses to run without restore_confirmed=yes or without the snapshot's
# .sha256 beside it (run here against localhost only; the member plays
# need systemd nodes: the multi-node lab runs them).
source "$(dirname "$0")/../lib.sh"
need ansible-playbook
export ANSIBLE_HOME=$LAB/ansible ANSIBLE_LOCAL_TEMP=$LAB/ansible/tmp ANSIBLE_NOCOLOR=1
P=$ROOT/ansible/etcd-restore.yml
printf '[etcd]\n' >"$LAB/inv.ini"

expect_exit 0 ansible-playbook --syntax-check -i "$LAB/inv.ini" "$P"

note "no confirmation"
touch "$LAB/s.db" "$LAB/s.db.sha256"
expect_exit 2 ansible-playbook -i "$LAB/inv.ini" "$P" -e etcd_snapshot="$LAB/s.db"
expect_output "pass -e etcd_snapshot=FILE -e restore_confirmed=yes"

note "a snapshot without its checksum file"
rm "$LAB/s.db.sha256"
expect_exit 2 ansible-playbook -i "$LAB/inv.ini" "$P" -e etcd_snapshot="$LAB/s.db" -e restore_confirmed=yes
expect_output "s\.db\.sha256"

note "both present: the check passes (no members in this inventory)"
touch "$LAB/s.db.sha256"
expect_exit 0 ansible-playbook -i "$LAB/inv.ini" "$P" -e etcd_snapshot="$LAB/s.db" -e restore_confirmed=yes
echo "etcd restore playbook checks passed"
