#!/usr/bin/env bash
# etcd restore with real etcd 3.4 on 127.0.0.1: a key written before the
# snapshot is back after the restore, one written after it is gone, the
# old data directory is kept; a running member, a missing or wrong
# checksum are refused before anything moves. Then three members (own
# roots, own ports) restored from one snapshot with --no-start and started
# together form the cluster again with the snapshot's data.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/etcd/lab.sh"
need openssl sha256sum /usr/bin/etcd /usr/bin/etcdctl

ports() { # NAME...: CP_NAME, PP_NAME, all distinct
	local n p used=" "
	for n in "$@"; do
		for v in CP PP; do
			p=$(kf_free_port)
			while [[ $used == *" $p "* ]]; do p=$(kf_free_port); done
			used="$used$p "
			printf -v "${v}_$n" %s "$p"
		done
	done
}

note "one member"
R=$LAB/n1
ports n1
etcd_pki "$R/etc/ssl/etcd/ssl" n1
etcd_env "$R" n1 "$CP_n1" "$PP_n1" "n1=https://127.0.0.1:$PP_n1"
etcd_start "$R"
etcd_wait "$R"
etcdctl_r "$R" put /registry/before yes >/dev/null
expect_exit 0 "$KFI" etcd snapshot --root "$R"
snap=$(sed -n 's/^snapshot //p' "$LAB/out")
etcdctl_r "$R" put /registry/after yes >/dev/null

note "refused while etcd runs (its database is locked), nothing moved"
expect_exit 3 "$KFI" etcd restore "$snap" --root "$R"
expect_output "etcd is still running: $R/var/lib/etcd/member/snap/db is locked"
assert_no_match "$R/var/lib" 'etcd.*restore*'
etcd_stop "$R"

note "a wrong or missing checksum is a verification failure"
cp "$snap" "$LAB/bad.db"
printf 'x' >>"$LAB/bad.db"
sed "s/  .*/  bad.db/" "$snap.sha256" >"$LAB/bad.db.sha256"
expect_exit 1 "$KFI" etcd restore "$LAB/bad.db" --root "$R"
expect_output "snapshot $LAB/bad.db: sha256 [0-9a-f]{64}, but $LAB/bad.db.sha256 says"
cp "$snap" "$LAB/nosum.db"
expect_exit 1 "$KFI" etcd restore "$LAB/nosum.db" --root "$R"
expect_output "has no checksum file $LAB/nosum.db.sha256"
assert_no_match "$R/var/lib" 'etcd.*restore*'

note "--dry-run changes nothing"
expect_exit 0 "$KFI" etcd restore "$snap" --root "$R" --dry-run
expect_output "^plan +run .*etcdctl snapshot restore $snap --name n1 --initial-cluster n1=https://127.0.0.1:$PP_n1"
assert_no_match "$R/var/lib" 'etcd.*restore*'

note "restore: before is back, after is gone, old data kept"
old_db_sum=$(sha256sum <"$R/var/lib/etcd/member/snap/db")
expect_exit 0 "$KFI" etcd restore "$snap" --root "$R"
expect_output "^ok +$snap sha256 [0-9a-f]{64}$"
expect_output "^plan +run systemctl stop etcd.service$"
expect_output "^kept +previous data in $R/var/lib/etcd\.before-restore-"
aside=$(sed -n 's/^kept *previous data in //p' "$LAB/out")
assert_eq "$(sha256sum <"$aside/member/snap/db")" "$old_db_sum" "old data directory kept as it was"
assert_eq "$(stat -c %a "$R/var/lib/etcd")" 700 "restored data directory mode"
assert_no_match "$R/var/lib" 'etcd.kf-restore-*'
etcd_start "$R"
etcd_wait "$R"
assert_eq "$(etcdctl_r "$R" get /registry/before --print-value-only)" yes "key written before the snapshot"
assert_eq "$(etcdctl_r "$R" get /registry/after --print-value-only)" "" "key written after the snapshot"
etcd_stop "$R"

note "three members restored from one snapshot"
ports a b c
cluster="a=https://127.0.0.1:$PP_a,b=https://127.0.0.1:$PP_b,c=https://127.0.0.1:$PP_c"
etcd_pki "$LAB/pki" a b c
for n in a b c; do
	mkdir -p "$LAB/$n/etc/ssl/etcd"
	cp -a "$LAB/pki" "$LAB/$n/etc/ssl/etcd/ssl"
	cp=CP_$n pp=PP_$n
	etcd_env "$LAB/$n" "$n" "${!cp}" "${!pp}" "$cluster"
	etcd_start "$LAB/$n"
done
for n in a b c; do etcd_wait "$LAB/$n"; done
etcdctl_r "$LAB/a" put /registry/before three >/dev/null
expect_exit 0 "$KFI" etcd snapshot --root "$LAB/b"
snap=$(sed -n 's/^snapshot //p' "$LAB/out")
etcdctl_r "$LAB/a" put /registry/after three >/dev/null
for n in a b c; do etcd_stop "$LAB/$n"; done
for n in a b c; do
	expect_exit 0 "$KFI" etcd restore "$snap" --root "$LAB/$n" --no-start
	expect_output "restored into $LAB/$n/var/lib/etcd \(member $n, cluster $cluster\)"
	assert_absent "$LAB/$n/var/lib/etcd.kf-restore-"*
done
for n in a b c; do etcd_start "$LAB/$n"; done
for n in a b c; do etcd_wait "$LAB/$n"; done
for n in a b c; do
	assert_eq "$(etcdctl_r "$LAB/$n" get /registry/before --print-value-only)" three "before, on $n"
	assert_eq "$(etcdctl_r "$LAB/$n" get /registry/after --print-value-only)" "" "after, on $n"
done
assert_eq "$(etcdctl_r "$LAB/a" member list | wc -l)" 3 "members after the restore"
etcdctl_r "$LAB/c" put /registry/new ok >/dev/null
assert_eq "$(etcdctl_r "$LAB/a" get /registry/new --print-value-only)" ok "replication after the restore"
echo "etcd restore checks passed"
