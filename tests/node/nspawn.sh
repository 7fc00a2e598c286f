# Boot a systemd node in systemd-nspawn: source after tests/lib.sh.
#   node_boot ROOTFS_DIR    boots it with --private-network (only lo);
#                           sets LEADER (the node's PID 1 on the host),
#                           NSPAWN (nspawn's pid) and IN (an nsenter
#                           prefix that runs a command inside the node);
#                           registers node_cleanup to run at exit.
# This machine's PID 1 is not systemd, so the shell first moves into cgroups
# of its own (systemd and unified hierarchies) for nspawn's --keep-unit, and
# moves back before removing them.
NODE_CG=kf-node-$$
LEADER= NSPAWN=
IN=()

node_cleanup() {
	local h i
	if [ -n "$LEADER" ]; then
		nsenter -t "$LEADER" -m -u -i -n -p -- systemctl poweroff >/dev/null 2>&1 || true
	fi
	if [ -n "$NSPAWN" ]; then
		for i in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
		kill "$NSPAWN" 2>/dev/null || true
		wait "$NSPAWN" 2>/dev/null || true
	fi
	for h in systemd unified; do echo $$ >"/sys/fs/cgroup/$h/cgroup.procs" 2>/dev/null || true; done
	kf_cgroup_rmdir "$NODE_CG"
	LEADER= NSPAWN=
}

node_boot() {
	local dir=$1 h s=
	kf_on_exit node_cleanup
	for h in systemd unified; do
		mkdir -p "/sys/fs/cgroup/$h/$NODE_CG"
		echo $$ >"/sys/fs/cgroup/$h/$NODE_CG/cgroup.procs"
	done
	systemd-nspawn -D "$dir" --boot --private-network --register=no --keep-unit \
		--console=read-only -M "kfnode$$" >"$LAB/nspawn.log" 2>&1 &
	NSPAWN=$!
	for _ in $(seq 100); do
		LEADER=$(pgrep -P "$NSPAWN" | head -n 1 || true)
		[ -n "$LEADER" ] && break
		sleep 0.1
	done
	[ -n "$LEADER" ] || { cat "$LAB/nspawn.log"; fail "nspawn did not start"; }
	IN=(nsenter -t "$LEADER" -m -u -i -n -p --)
	# Up to a minute: on a loaded machine the boot can take a while.
	for _ in $(seq 300); do
		s=$("${IN[@]}" systemctl is-system-running 2>/dev/null || true)
		case $s in running|degraded) break ;; esac
		sleep 0.2
	done
	case $s in running|degraded) ;; *) cat "$LAB/nspawn.log"; fail "node not up: $s" ;; esac
}
