# lab.sh: a multi-node lab of systemd-nspawn nodes, each in a network
# namespace of its own on a bridge this test creates, each running sshd with
# its own host key, reachable from this host by ssh and Ansible. Source it
# after tests/lib.sh (it needs LAB, fail and kf_on_exit).
#
#   lab_up NAME...      boot one node per NAME, in parallel; may be called
#                       again to add nodes (addresses keep counting)
#   lab_ip NAME         the node's address on the bridge
#   lab_root NAME       the node's root directory, seen from this host
#   lab_in NAME CMD...  run CMD inside the node (nsenter, no network hop)
#   lab_ssh NAME CMD... run CMD on the node over ssh as root
#   lab_stop NAME       power the node off (its address stops answering)
#   lab_down            tear everything down (also runs at exit)
#   LAB_NET             the lab's /24 prefix, e.g. 10.213.7 (host is .1)
#   LAB_SSH_CONFIG      an ssh_config with the key, known hosts and the
#                       ControlPersist path; every node name is a Host entry
#   ANSIBLE_CONFIG      exported: a configuration private to this lab
#
# Node roots are overlays on one cached root (tests/node/rootfs.sh --ssh),
# so a node costs a mount, not a copy. Every name carries this shell's $$
# (bridge, namespaces, veths, cgroups, machines) so that parallel runs do
# not collide; the /24 is the first 10.213.X.0/24 no host interface uses,
# chosen under a lock. Host keys are known in advance: ssh checks them.
# This machine's PID 1 is not systemd (no machined): nspawn runs with
# --register=no --keep-unit, each node in cgroups of its own.

LAB_ID=$$
LAB_DIR=$LAB/lab
LAB_BR=kfbr$LAB_ID
LAB_NET=
LAB_BASE=
LAB_SSH_CONFIG=$LAB_DIR/ssh_config
declare -A LAB_IPS=() LAB_PIDS=() LAB_LEADERS=() LAB_IDX=()
LAB_NODES=()
LAB_NEXT=11

_lab_cg() { echo "kflab$LAB_ID-$1"; }
_lab_ns() { echo "kf$LAB_ID-$1"; }

lab_ip() { echo "${LAB_IPS[$1]}"; }
lab_root() { echo "$LAB_DIR/nodes/$1/root"; }
lab_in() { local n=$1; shift; nsenter -t "${LAB_LEADERS[$n]}" -m -u -i -n -p -- "$@"; }
lab_ssh() { local n=$1; shift; ssh -F "$LAB_SSH_CONFIG" "$n" "$@"; }

# The bridge, the key pair and the private ssh and Ansible configuration.
_lab_init() {
	local x start i
	[ -z "$LAB_NET" ] || return 0
	need systemd-nspawn nsenter ip ssh ssh-keygen flock mount
	[ "$(id -u)" = 0 ] || { echo "skip: the lab needs root"; exit 77; }
	[ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ] || { echo "skip: no hybrid cgroup tree"; exit 77; }
	local rc=0
	LAB_BASE=$(bash "$ROOT/tests/node/rootfs.sh" --ssh) || rc=$?
	[ $rc -eq 0 ] || exit $rc
	mkdir -p "$LAB_DIR/cp" "$LAB_DIR/nodes" "$LAB_DIR/ansible/tmp"
	kf_on_exit lab_down
	# Choose a free /24 and take it by adding the bridge, under one lock.
	start=$((LAB_ID % 200 + 1))
	exec 8>/run/kubeferry-lab.lock
	flock 8
	for ((i = 0; i < 254; i++)); do
		x=$(( (start + i - 1) % 254 + 1 ))
		ip -4 -o addr show | has " 10\.213\.$x\." && continue
		LAB_NET=10.213.$x
		break
	done
	[ -n "$LAB_NET" ] || { flock -u 8; fail "no free 10.213.X.0/24 for the lab"; }
	ip link add "$LAB_BR" type bridge
	ip addr add "$LAB_NET.1/24" dev "$LAB_BR"
	ip link set "$LAB_BR" up
	flock -u 8
	exec 8>&-
	ssh-keygen -q -t ed25519 -N '' -C "kubeferry lab $LAB_ID" -f "$LAB_DIR/id_ed25519"
	: >"$LAB_DIR/known_hosts"
	cat >"$LAB_SSH_CONFIG" <<-CFG
	Host *
	  User root
	  IdentityFile $LAB_DIR/id_ed25519
	  IdentitiesOnly yes
	  UserKnownHostsFile $LAB_DIR/known_hosts
	  StrictHostKeyChecking yes
	  BatchMode yes
	  ConnectTimeout 10
	  ControlMaster auto
	  ControlPath $LAB_DIR/cp/%C
	  ControlPersist 60s
	CFG
	cat >"$LAB_DIR/ansible/ansible.cfg" <<-CFG
	[defaults]
	home = $LAB_DIR/ansible/home
	local_tmp = $LAB_DIR/ansible/tmp
	remote_user = root
	interpreter_python = /usr/bin/python3
	host_key_checking = True
	forks = 10
	gathering = explicit
	retry_files_enabled = False
	nocows = True
	[ssh_connection]
	pipelining = True
	control_path_dir = $LAB_DIR/cp
	ssh_args = -F $LAB_SSH_CONFIG -o ControlMaster=auto -o ControlPersist=60s
	CFG
	export ANSIBLE_CONFIG=$LAB_DIR/ansible/ansible.cfg
}

# _lab_prepare NAME: the node's overlay root, identity and network namespace.
_lab_prepare() {
	local n=$1 d=$LAB_DIR/nodes/$1 ns veth ip i
	i=$LAB_NEXT; LAB_NEXT=$((LAB_NEXT + 1))
	ip=$LAB_NET.$i
	LAB_IPS[$n]=$ip LAB_IDX[$n]=$i
	LAB_NODES+=("$n")
	mkdir -p "$d/upper" "$d/work" "$d/root"
	mount -t overlay "kflab$LAB_ID-$n" -o "lowerdir=$LAB_BASE,upperdir=$d/upper,workdir=$d/work" "$d/root"
	echo "$n" >"$d/root/etc/hostname"
	od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$d/root/etc/machine-id"
	echo >>"$d/root/etc/machine-id"
	ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$d/root/etc/ssh/ssh_host_ed25519_key"
	printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nUseDNS no\n' \
		>"$d/root/etc/ssh/sshd_config.d/kubeferry-lab.conf"
	mkdir -p -m 0700 "$d/root/root/.ssh"
	install -m 0600 "$LAB_DIR/id_ed25519.pub" "$d/root/root/.ssh/authorized_keys"
	echo "$ip $(cut -d' ' -f1,2 "$d/root/etc/ssh/ssh_host_ed25519_key.pub")" >>"$LAB_DIR/known_hosts"
	printf 'Host %s\n  HostName %s\n' "$n" "$ip" >>"$LAB_SSH_CONFIG"
	ns=$(_lab_ns "$n") veth=kv$LAB_ID-$i
	ip netns add "$ns"
	ip link add "$veth" type veth peer name eth0 netns "$ns"
	ip link set "$veth" master "$LAB_BR" up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
}

# /etc/hosts on every node names every node (rewritten when nodes are added).
_lab_hosts() {
	local n m
	for n in "${LAB_NODES[@]}"; do
		{
			printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n'
			for m in "${LAB_NODES[@]}"; do printf '%s %s\n' "${LAB_IPS[$m]}" "$m"; done
		} >"$LAB_DIR/nodes/$n/root/etc/hosts"
	done
}

_lab_start() {
	local n=$1 cg h
	cg=$(_lab_cg "$n")
	for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$cg"; done
	mkdir -p "$LAB_DIR/mock-api"
	(
		for h in systemd unified; do echo "$BASHPID" >"/sys/fs/cgroup/$h/$cg/cgroup.procs"; done
		# One directory shared by every node: where the kubelet, kubeadm
		# and kubectl stand-ins keep the API server's view of the cluster
		# (tests/node/mock-kubeadm).
		exec systemd-nspawn -q -D "$LAB_DIR/nodes/$n/root" -M "$(_lab_ns "$n")" --boot \
			--bind="$LAB_DIR/mock-api:/var/lib/mock-apiserver" \
			--register=no --keep-unit --network-namespace-path="/run/netns/$(_lab_ns "$n")" \
			--console=read-only
	) >"$LAB_DIR/nodes/$n/console.log" 2>&1 </dev/null &
	LAB_PIDS[$n]=$!
}

# _lab_wait NAME: systemd up, then sshd answering over the bridge.
_lab_wait() {
	local n=$1 s= leader=
	for _ in $(seq 300); do
		leader=$(pgrep -P "${LAB_PIDS[$n]}" | head -n 1 || true)
		[ -n "$leader" ] && break
		sleep 0.1
	done
	[ -n "$leader" ] || { cat "$LAB_DIR/nodes/$n/console.log" >&2; fail "lab: $n: nspawn did not start"; }
	LAB_LEADERS[$n]=$leader
	# Up to a minute each: on a loaded machine a boot can take a while.
	# nspawn's first child may be the short-lived outer child, not the
	# node's PID 1: look the leader up again on every try.
	for _ in $(seq 300); do
		leader=$(pgrep -P "${LAB_PIDS[$n]}" | head -n 1 || true)
		[ -n "$leader" ] && LAB_LEADERS[$n]=$leader
		s=$(lab_in "$n" systemctl is-system-running 2>/dev/null || true)
		case $s in running|degraded) break ;; esac
		sleep 0.2
	done
	case $s in running|degraded) ;; *) cat "$LAB_DIR/nodes/$n/console.log" >&2; fail "lab: $n not up: $s" ;; esac
	for _ in $(seq 100); do
		lab_ssh "$n" true 2>/dev/null && return 0
		sleep 0.2
	done
	lab_ssh "$n" true || fail "lab: no ssh to $n (${LAB_IPS[$n]})"
}

lab_up() {
	local n
	_lab_init
	for n in "$@"; do _lab_prepare "$n"; done
	_lab_hosts
	for n in "$@"; do _lab_start "$n"; done
	for n in "$@"; do _lab_wait "$n"; done
}

# _lab_kill NAME: stop the node's nspawn, then anything left in its cgroups.
_lab_kill() {
	local n=$1 pid=${LAB_PIDS[$1]:-} cg i p
	cg=$(_lab_cg "$n")
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	for i in $(seq 50); do
		p=$(find "/sys/fs/cgroup/systemd/$cg" "/sys/fs/cgroup/unified/$cg" -name cgroup.procs \
			-exec cat {} + 2>/dev/null || true)
		[ -z "$p" ] && break
		# shellcheck disable=SC2086
		kill -KILL $p 2>/dev/null || true
		sleep 0.1
	done
	kf_cgroup_rmdir "$cg"
	LAB_PIDS[$n]=
}

lab_stop() { _lab_kill "$1"; }

lab_down() {
	local s n d
	[ -n "$LAB_NET" ] || return 0
	for s in "$LAB_DIR"/cp/*; do
		[ -S "$s" ] && ssh -o ControlPath="$s" -O exit lab >/dev/null 2>&1
	done
	for n in "${LAB_NODES[@]}"; do _lab_kill "$n"; done
	for n in "${LAB_NODES[@]}"; do
		ip netns del "$(_lab_ns "$n")" 2>/dev/null || true
		d=$LAB_DIR/nodes/$n/root
		mountpoint -q "$d" && { umount "$d" || umount -l "$d"; }
		rm -rf "/run/systemd/nspawn/propagate/$(_lab_ns "$n")"
	done
	ip link del "$LAB_BR" 2>/dev/null || true
	# KF_KEEP=1 keeps each node's upper layer (what the node changed).
	[ "${KF_KEEP:-0}" = 1 ] || rm -rf "$LAB_DIR/nodes"
	LAB_NET=
}
