#!/usr/bin/env bash
# A real node: Debian 12 (debootstrap, cached) booted with systemd as PID 1
# in systemd-nspawn with a private network (only lo). Inside it the static
# installer applies a bundle of Debian's real containerd, runc, CNI plugins
# and etcd: containerd and etcd active under systemd, etcd healthy over TLS
# with the generated certificates, a second apply changes nothing,
# kubeferry-mirror.service serves the bundle and ctr pulls the pause image
# through hosts.toml with no network at all, reset leaves no unit, binary
# or configuration behind.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/registry/lib.sh"
need systemd-nspawn nsenter debootstrap flock gzip tar openssl /usr/bin/containerd /usr/bin/etcd /usr/lib/cni/bridge
[ "$(id -u)" = 0 ] || { echo "skip: nspawn needs root"; exit 77; }
[ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ] || { echo "skip: no hybrid cgroup tree"; exit 77; }

rc=0; rootfs=$(bash "$ROOT/tests/node/rootfs.sh") || rc=$?
[ $rc -eq 0 ] || exit $rc

note "test bundle with the pause image"
images_lab
HOME=$LAB/home KF=$KF KF_TEST_IMAGES="registry.k8s.io/pause:3.10" \
	bash "$ROOT/tests/node/make-bundle.sh" "$LAB/b" --cache "$LAB/cache" --cacert "$LAB/ca/ca.crt" \
	--rewrite "registry.k8s.io=127.0.0.1:$UP_PORT" --mirror https://127.0.0.1:5443
PAUSE=$(upstream_digest "127.0.0.1:$UP_PORT/pause:3.10")

note "node root file system"
N=$LAB/node
cp -a "$rootfs" "$N"
echo node1 >"$N/etc/hostname"
mkdir -p "$N/root/kf"
cp "$KFI" "$N/root/kf/kubeferry-install"
cp "$LAB/b/bundle.tar.zst" "$LAB/b/keys/kf.pub" "$N/root/kf/"

source "$ROOT/tests/node/nspawn.sh"
node_boot "$N"
# No network at all: only the loopback interface exists in the node.
assert_eq "$("${IN[@]}" ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')" "lo " "node interfaces"

KFIN=("${IN[@]}" /root/kf/kubeferry-install)
APPLY_ARGS=(/root/kf/kubeferry-install apply /root/kf/bundle.tar.zst -p /root/kf/kf.pub --role control-plane --node-ip 127.0.0.1)
APPLY=("${IN[@]}" "${APPLY_ARGS[@]}")

note "an apply killed halfway, then re-run under systemd"
rc=0
"${IN[@]}" env KUBEFERRY_TEST_CRASH_AFTER=20 "${APPLY_ARGS[@]}" >"$LAB/killed" 2>&1 || rc=$?
assert_eq "$rc" 137 "apply was not killed"
expect_exit 0 "${APPLY[@]}"
cp "$LAB/out" "$LAB/apply1"
cat "$LAB/killed" "$LAB/apply1" | has -E '^changed +run systemctl (re)?start containerd.service$' ||
	fail "containerd was never started by apply"
expect_output '^ok +etcd healthy at https://127.0.0.1:2379$'
expect_output ' failed=0$'
"${IN[@]}" systemctl is-active --quiet containerd || fail "containerd not active"
"${IN[@]}" systemctl is-active --quiet etcd || fail "etcd not active"
"${IN[@]}" systemctl is-enabled --quiet kubelet || fail "kubelet not enabled"
"${IN[@]}" /usr/local/bin/ctr version >/dev/null || fail "ctr cannot talk to containerd"
"${IN[@]}" env ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints https://127.0.0.1:2379 \
	--cacert /etc/ssl/etcd/ssl/ca.pem --cert /etc/ssl/etcd/ssl/admin-node1.pem \
	--key /etc/ssl/etcd/ssl/admin-node1-key.pem endpoint health >"$LAB/health" 2>&1 ||
	{ cat "$LAB/health"; fail "etcdctl endpoint health"; }
grep -q 'is healthy' "$LAB/health" || fail "etcd: $(cat "$LAB/health")"

note "second apply: changed=0"
expect_exit 0 "${APPLY[@]}"
expect_output ' changed=0 failed=0$'

note "status on the node"
expect_exit 0 "${KFIN[@]}" status
expect_output 'containerd\.service +active'
expect_output 'etcd\.service +active'
expect_output '^etcd https://127.0.0.1:2379 healthy$'

note "kubeferry-mirror.service, and ctr pulls through hosts.toml with no network"
expect_exit 0 "${KFIN[@]}" mirror install --listen 127.0.0.1:5443
fp=$(sed -n 's/^mirror CA fingerprint (sha256): //p' "$LAB/out")
for _ in $(seq 100); do "${IN[@]}" systemctl is-active --quiet kubeferry-mirror && break; sleep 0.1; done
"${IN[@]}" systemctl is-active --quiet kubeferry-mirror || { "${IN[@]}" journalctl -u kubeferry-mirror --no-pager | tail; fail "mirror not active"; }
for _ in $(seq 100); do "${IN[@]}" bash -c 'exec 3<>/dev/tcp/127.0.0.1/5443' 2>/dev/null && break; sleep 0.1; done
expect_exit 0 "${APPLY[@]}" --mirror 127.0.0.1:5443 --mirror-ca-fingerprint "$fp"
expect_output 'file /etc/containerd/certs.d/registry.k8s.io/hosts.toml'
expect_exit 0 "${IN[@]}" /usr/local/bin/ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d \
	registry.k8s.io/pause:3.10
got=$("${IN[@]}" /usr/local/bin/ctr -n k8s.io images ls | awk '$1 == "registry.k8s.io/pause:3.10" {print $3}')
assert_eq "$got" "$PAUSE" "pause pulled through the mirror"

note "reset: no unit, binary or configuration left"
expect_exit 0 "${KFIN[@]}" reset
for f in /usr/local/bin/containerd /usr/local/sbin/runc /usr/local/bin/etcd /usr/local/bin/kubeadm \
	/etc/containerd/config.toml /etc/etcd.env /etc/systemd/system/containerd.service \
	/etc/systemd/system/etcd.service /etc/systemd/system/kubeferry-mirror.service \
	/etc/systemd/system/multi-user.target.wants/containerd.service /etc/ssl/etcd \
	/etc/modules-load.d/kubeferry.conf /etc/sysctl.d/99-kubeferry.conf /opt/cni/bin/bridge; do
	assert_absent "$N$f"
done
! "${IN[@]}" systemctl is-active --quiet containerd || fail "containerd still running"
! "${IN[@]}" systemctl is-active --quiet etcd || fail "etcd still running"
[ -d "$N/var/lib/kubeferry/bundles/k8s-test-1.33.3" ] || fail "reset removed the bundle"
echo "node checks passed"
