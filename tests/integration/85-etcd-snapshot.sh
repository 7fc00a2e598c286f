#!/usr/bin/env bash
# etcd snapshot against a real etcd 3.4 member on 127.0.0.1 with client
# certificate auth: the snapshot file and its sha256 file are written (0600
# in a 0700 directory), the status check passes, sha256sum -c agrees,
# --keep prunes the oldest, --dry-run writes nothing, and a member that is
# down fails with exit 3 and leaves no temporary file.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/etcd/lab.sh"
need openssl sha256sum /usr/bin/etcd /usr/bin/etcdctl

R=$LAB/n1
D=$R/var/lib/kubeferry/etcd-snapshots
cp=$(kf_free_port) pp=$(kf_free_port)
while [ "$pp" = "$cp" ]; do pp=$(kf_free_port); done
etcd_pki "$R/etc/ssl/etcd/ssl" n1
etcd_env "$R" n1 "$cp" "$pp" "n1=https://127.0.0.1:$pp"
etcd_start "$R"
etcd_wait "$R"
etcdctl_r "$R" put /registry/before yes >/dev/null

note "--dry-run prints the plan and writes nothing"
expect_exit 0 "$KFI" etcd snapshot --root "$R" --dry-run
expect_output "^plan +run .*etcdctl snapshot save $D/etcd-n1-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.db --endpoints https://127\.0\.0\.1:$cp"
assert_absent "$D"

note "a snapshot with its sha256, checked"
expect_exit 0 "$KFI" etcd snapshot --root "$R"
expect_output "^status +revision [0-9]+, [0-9]+ keys"
expect_output "^snapshot $D/etcd-n1-[0-9]{8}T[0-9]{6}\.[0-9]{3}Z\.db$"
first=$(sed -n 's/^snapshot //p' "$LAB/out")
assert_file "$first"
assert_file "$first.sha256"
assert_eq "$(stat -c %a "$first")" 600 "snapshot mode"
assert_eq "$(stat -c %a "$D")" 700 "snapshot directory mode"
(cd "$D" && sha256sum -c --quiet "$(basename "$first").sha256") || fail "sha256 file does not match"
assert_eq "$(sed -n 's/^sha256 *//p' "$LAB/out")" "$(sha256sum <"$first" | cut -d' ' -f1)" "printed sha256"
ETCDCTL_API=3 etcdctl snapshot status "$first" -w json >"$LAB/st" 2>/dev/null
has '"totalKey":[1-9]' "$LAB/st" || fail "snapshot has no keys: $(cat "$LAB/st")"
assert_no_match "$D" '.kf-tmp-*'

note "--keep 2 keeps the two newest"
for _ in 1 2 3; do
	expect_exit 0 "$KFI" etcd snapshot --root "$R" --keep 2
done
expect_output "^removed +$D/etcd-n1-"
assert_eq "$(find "$D" -name 'etcd-n1-*.db' | wc -l)" 2 "snapshots kept"
assert_eq "$(find "$D" -name 'etcd-n1-*.db.sha256' | wc -l)" 2 "checksum files kept"
assert_absent "$first"
assert_absent "$first.sha256"
last=$(sed -n 's/^snapshot //p' "$LAB/out")
assert_file "$last"

note "a member that is down: exit 3, nothing left behind"
etcd_stop "$R"
expect_exit 3 "$KFI" etcd snapshot --root "$R" --keep 2
expect_output "snapshot of https://127\.0\.0\.1:$cp"
assert_eq "$(find "$D" -name 'etcd-n1-*.db' | wc -l)" 2 "snapshots after a failure"
assert_no_match "$D" '.kf-tmp-*'

note "--install-timer: a daily service and timer, enabled (started on a live node)"
expect_exit 0 "$KFI" etcd snapshot --install-timer --root "$R" --keep 3 --dir /var/backups/etcd
U=$R/etc/systemd/system
expect_output "^changed +link /etc/systemd/system/timers\.target\.wants/kubeferry-etcd-snapshot\.timer$"
expect_output "^plan +run systemctl restart kubeferry-etcd-snapshot\.timer$"
has -x 'ExecStart=/usr/local/bin/kubeferry-install etcd snapshot --keep 3 --dir /var/backups/etcd' \
	"$U/kubeferry-etcd-snapshot.service" || fail "service runs: $(grep ExecStart "$U/kubeferry-etcd-snapshot.service")"
has -x 'OnCalendar=daily' "$U/kubeferry-etcd-snapshot.timer" || fail "timer is not daily"
assert_eq "$(readlink "$U/timers.target.wants/kubeferry-etcd-snapshot.timer")" \
	/etc/systemd/system/kubeferry-etcd-snapshot.timer "timer enabled"
cmp "$R/usr/local/bin/kubeferry-install" "$KFI" || fail "the service's binary is not this installer"
expect_exit 0 "$KFI" etcd snapshot --install-timer --root "$R" --keep 3 --dir /var/backups/etcd
! has '^changed' "$LAB/out" || fail "a second --install-timer changed something"
expect_exit 2 "$KFI" etcd snapshot --install-timer --root "$R" --dir '/var/backups/etcd;rm'

note "usage errors"
expect_exit 2 "$KFI" etcd snapshot --root "$R" --keep many
expect_exit 2 "$KFI" etcd snapshot --root "$R" --dir relative/dir
expect_exit 0 "$KFI" etcd snapshot --help
expect_output "--keep N"
echo "etcd snapshot checks passed"
