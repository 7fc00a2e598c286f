/*
 * kubeferry-install preflight BUNDLE: can this node take the bundle?
 * A table of checks (pass, warn, fail) with the fix for each. File-based
 * checks (os-release, hostname, fstab, host tools) read under --root;
 * the rest (CPUs, memory, ports, cgroups, modules, product_uuid) describe
 * the running machine. Exit 0 when nothing failed, 1 otherwise.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "installer/kf_installer.h"

typedef struct pf {
	const char *root;
	kfi_os os;
	int control_plane;
	int pass, warn, fail;
} pf;

static void row(pf *p, const char *check, int level, const char *detail, const char *fix)
{
	static const char *const names[] = {"pass", "warn", "fail"};
	if (level == 0)
		p->pass++;
	else if (level == 1)
		p->warn++;
	else
		p->fail++;
	printf("%-16s %-5s %s%s%s\n", check, names[level], detail,
	       level && fix ? "\n                       fix: " : "", level && fix ? fix : "");
}

static char *root_read(const pf *p, const char *abs)
{
	char path[4096], *buf = NULL;
	size_t len;
	kf_err ign;

	if (kf_strf(path, sizeof path, "%s%s", p->root, abs) != 0 ||
	    kf_read_file(path, 1 << 20, &buf, &len, &ign) != KF_OK)
		return NULL;
	return buf;
}

/* Append item to the list in out[n] (sep between items); a list that no
 * longer fits keeps what it had: these lists only name things. */
static void list_add(char *out, size_t n, const char *sep, const char *item)
{
	size_t off = strlen(out);

	if (off < n && kf_strf(out + off, n - off, "%s%s", off ? sep : "", item) != 0)
		out[off] = '\0';
}

static void check_os(pf *p)
{
	char d[200];
	int ok = 0;

	if (!p->os.found) {
		row(p, "os", 2, "no /etc/os-release", "run on Rocky/RHEL/AlmaLinux/CentOS Stream 9 or 10, Debian 12 or Ubuntu 22.04/24.04");
		return;
	}
	if (p->os.el)
		ok = p->os.el == 9 || p->os.el == 10;
	else if (!strcmp(p->os.id, "debian"))
		ok = p->os.major == 12;
	else if (!strcmp(p->os.id, "ubuntu"))
		ok = !strcmp(p->os.version_id, "22.04") || !strcmp(p->os.version_id, "24.04");
	snprintf(d, sizeof d, "%s %s", p->os.id, p->os.version_id);
	row(p, "os", ok ? 0 : 2, d, "supported: Rocky/RHEL/AlmaLinux/CentOS Stream 9 and 10, Debian 12, Ubuntu 22.04/24.04");
}

static void check_arch(pf *p, const kf_lock *lk)
{
	struct utsname u;
	const char *a = "amd64";
	char d[200];
	int ok = 0;

	if (uname(&u) == 0 && !strcmp(u.machine, "aarch64"))
		a = "arm64";
	for (size_t i = 0; i < lk->narch; i++)
		if (!strcmp(lk->archs[i], a))
			ok = 1;
	snprintf(d, sizeof d, "node %s, bundle %s%s%s", a, lk->narch ? lk->archs[0] : "-",
	         lk->narch > 1 ? " " : "", lk->narch > 1 ? lk->archs[1] : "");
	row(p, "arch", ok ? 0 : 2, d, "build a bundle for this architecture (spec.architectures)");
}

static void check_resources(pf *p)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char *mi = NULL, d[200];
	long long kb = 0;
	size_t len;
	kf_err ign;

	snprintf(d, sizeof d, "%ld CPUs", cpus);
	row(p, "cpus", cpus >= (p->control_plane ? 2 : 1) ? 0 : 2, d,
	    "a control plane needs at least 2 CPUs");
	if (kf_read_file("/proc/meminfo", 1 << 16, &mi, &len, &ign) == KF_OK) {
		char *m = strstr(mi, "MemTotal:");
		if (m)
			kb = strtoll(m + 9, NULL, 10); /* "MemTotal:  8000000 kB" */
	}
	free(mi);
	snprintf(d, sizeof d, "%lld MiB", kb / 1024);
	/* kubeadm's own preflight refuses a control plane under 1700 MB. */
	row(p, "memory", kb / 1024 >= (p->control_plane ? 1700 : 1024) ? 0 :
	    (p->control_plane ? 2 : 1), d,
	    p->control_plane ? "a control plane needs 2 GiB" : "a worker should have 1 GiB or more");
}

static void check_swap(pf *p)
{
	char *sw = NULL, *fstab = root_read(p, "/etc/fstab");
	size_t len;
	kf_err ign;
	int active = 0, listed = 0;

	if (!p->root[0] && kf_read_file("/proc/swaps", 1 << 16, &sw, &len, &ign) == KF_OK) {
		char *nl = strchr(sw, '\n');
		active = nl && nl[1] != '\0';
	}
	for (char *l = fstab; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char f1[256], f2[256], f3[64];
		if (*l != '#' && sscanf(l, "%255s %255s %63s", f1, f2, f3) == 3 && !strcmp(f3, "swap"))
			listed = 1;
	}
	row(p, "swap", active || listed ? 1 : 0,
	    active ? "swap is on" : listed ? "swap listed in /etc/fstab" : "off",
	    "apply turns it off (swapoff -a, fstab, swap.target masked)");
	free(sw);
	free(fstab);
}

static void check_ports(pf *p)
{
	static const int cp[] = {6443, 2379, 2380, 10250, 10257, 10259, 0};
	static const int wk[] = {10250, 0};
	const int *ports = p->control_plane ? cp : wk;
	char busy[200] = "", d[256];

	for (size_t i = 0; ports[i]; i++) {
		struct sockaddr_in sa = {0};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)ports[i]);
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno == EADDRINUSE) {
			char num[16];
			snprintf(num, sizeof num, "%d", ports[i]);
			list_add(busy, sizeof busy, ",", num);
		}
		close(fd);
	}
	if (busy[0])
		snprintf(d, sizeof d, "in use: %s", busy);
	else
		snprintf(d, sizeof d, "%s free", p->control_plane ? "6443 2379-2380 10250 10257 10259" : "10250");
	row(p, "ports", busy[0] ? 2 : 0, d, "stop what listens there (ss -ltnp)");
}

static void check_hostname(pf *p)
{
	char h[256] = "", *f = p->root[0] ? root_read(p, "/etc/hostname") : NULL;
	int ok = 1;

	if (f) {
		snprintf(h, sizeof h, "%.*s", (int)strcspn(f, " \t\r\n"), f);
		free(f);
	} else if (gethostname(h, sizeof h) != 0) {
		h[0] = '\0';
	}
	/* kubelet registers the node under this name: DNS-1123, unique. */
	if (!h[0] || !strcmp(h, "localhost") || !strcmp(h, "localhost.localdomain"))
		ok = 0;
	for (const char *c = h; *c; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' || *c == '.'))
			ok = 0;
	row(p, "hostname", ok ? 0 : 2, h[0] ? h : "(none)",
	    "hostnamectl set-hostname <unique lowercase DNS name>");
}

static void check_uuid(pf *p)
{
	char *u = NULL;
	size_t len;
	kf_err ign;

	if (kf_read_file("/sys/class/dmi/id/product_uuid", 256, &u, &len, &ign) == KF_OK) {
		u[strcspn(u, "\n")] = '\0';
		row(p, "product_uuid", 0, u, NULL);
	} else {
		row(p, "product_uuid", 1, "unreadable",
		    "make sure every node has a unique product_uuid (cloned VMs often do not)");
	}
	free(u);
}

static void check_cgroup(pf *p)
{
	int v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	row(p, "cgroups", v2 ? 0 : 1, v2 ? "v2" : "v1",
	    "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v1 is deprecated)");
}

/* The modules apply loads (apply/host.c): overlay and br_netfilter,
 * nf_conntrack on EL, nf_tables on EL10; looked up in the modules.dep of
 * the root's kernel release (hostos.c) and, on the live node, among the
 * loaded ones. */
static void check_modules(pf *p)
{
	const char *mods[] = {"overlay", "br_netfilter", p->os.el ? "nf_conntrack" : NULL,
	                      p->os.el >= 10 ? "nf_tables" : NULL, NULL};
	char *dep = NULL, path[4096], missing[128] = "", all[128] = "";
	size_t len;
	kf_err ign;

	if (kf_strf(path, sizeof path, "%s/lib/modules/%s/modules.dep", p->root, p->os.kernel) == 0)
		kf_read_file(path, 64u << 20, &dep, &len, &ign);
	for (size_t i = 0; i < 4; i++) {
		char sys[64], ko[64];
		if (!mods[i])
			continue;
		list_add(all, sizeof all, " ", mods[i]);
		snprintf(sys, sizeof sys, "/sys/module/%s", mods[i]);
		snprintf(ko, sizeof ko, "/%s.ko", mods[i]);
		if ((!p->root[0] && access(sys, F_OK) == 0) || (dep && strstr(dep, ko)))
			continue;
		list_add(missing, sizeof missing, ",", mods[i]);
	}
	free(dep);
	row(p, "kernel modules", missing[0] ? 1 : 0, missing[0] ? missing : all,
	    "install kernel-modules-extra (Rocky 10 cloud images) or build them in");
}

static int tool_in_root(const pf *p, const char *name)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/sbin", "/bin",
	                                   "/usr/local/sbin", "/usr/local/bin", NULL};
	char path[4096];
	for (size_t i = 0; dirs[i]; i++) {
		if (kf_strf(path, sizeof path, "%s%s/%s", p->root, dirs[i], name) == 0 &&
		    access(path, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* The node's architecture as bundles name it. */
static const char *node_arch(void)
{
	struct utsname u;
	return uname(&u) == 0 && !strcmp(u.machine, "aarch64") ? "arm64" : "amd64";
}

/* What kubeadm's preflight requires of the host by release (kubernetes
 * #129131, #129450), and what it only warns about; each with the RPM that
 * provides it on EL9 and EL10. */
static const struct tool {
	const char *name, *rpm;
} tools_132[] = {{"ip", "iproute"}, {"iptables", "iptables-nft"}, {"mount", "util-linux"},
                 {"nsenter", "util-linux"}, {NULL, NULL}},
  tools_133[] = {{"mount", "util-linux"}, {"losetup", "util-linux"}, {NULL, NULL}},
  tools_warn[] = {{"conntrack", "conntrack-tools"}, {"socat", "socat"}, {"ethtool", "ethtool"},
                  {"tc", "iproute-tc"}, {"ebtables", "iptables-nft"}, {NULL, NULL}};

/* One row for a list of tools: each missing one named with the bundle
 * package that provides it when the bundle carries one (apply installs
 * those before anything needs them: a warning, not a failure), and the
 * RPMs to install by hand in the fix column otherwise. */
static void tools_row(pf *p, const char *check, const struct tool *t, int level,
                      const kf_lock *lk, const kfi_pkgset *ps)
{
	char missing[400] = "", present[200] = "", fix[200] = "dnf install", item[96];
	int covered = 1;

	for (size_t i = 0; t[i].name; i++) {
		const char *pkg;

		if (tool_in_root(p, t[i].name)) {
			list_add(present, sizeof present, " ", t[i].name);
			continue;
		}
		pkg = ps->n ? kfi_pkg_for_tool(lk, ps->set, node_arch(), t[i].name) : NULL;
		covered &= pkg != NULL;
		if (pkg && kf_strf(item, sizeof item, "%s (bundle: %s)", t[i].name, pkg) == 0)
			list_add(missing, sizeof missing, " ", item);
		else
			list_add(missing, sizeof missing, " ", t[i].name);
		if (!strstr(fix, t[i].rpm))
			list_add(fix, sizeof fix, " ", t[i].rpm);
	}
	if (missing[0] && covered)
		row(p, check, level < 1 ? level : 1, missing,
		    "kubeferry-install apply installs them from the bundle (host packages)");
	else
		row(p, check, missing[0] ? level : 0, missing[0] ? missing : present, fix);
}

static void check_tools(pf *p, const kf_lock *lk, const kfi_pkgset *ps)
{
	int v[3] = {0, 0, 0};
	int minor = kfi_version_parse(lk->kube_version, v) == 0 && v[0] == 1 ? v[1] : 0;

	/* 1.33 dropped ip, iptables and nsenter from its required list and
	 * added losetup; older releases keep the 1.32 list. */
	tools_row(p, "host tools", minor >= 33 ? tools_133 : tools_132, 2, lk, ps);
	tools_row(p, "optional tools", tools_warn, 1, lk, ps);
}

/* The bundle's host-package set for this node's release. */
static void check_packages(pf *p, const kf_lock *lk, kfi_pkgset *ps)
{
	char d[400];
	kf_err e = {0};

	if (!lk->npkg)
		return;
	if (kfi_pkgset_pick(p->root, lk, "", node_arch(), 0, ps, &e) != KF_OK) {
		row(p, "host packages", 2, e.msg, "see the message");
		return;
	}
	if (ps->foreign)
		snprintf(d, sizeof d, "%s: not RPM-based, the bundle's RPM sets do not apply", ps->release);
	else
		snprintf(d, sizeof d, "%s %s %s: %zu packages, installed by apply with the node's dnf "
		         "(gpgcheck on)", ps->release, ps->set, ps->rpm_arch, ps->n);
	row(p, "host packages", 0, d, NULL);
}

int kfi_cmd_preflight(int argc, char **argv)
{
	static const struct option opts[] = {
		{"role", required_argument, NULL, 'R'},
		{"root", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	pf p = {.root = ""};
	const char *role = "control-plane", *pub_file = NULL, *pub_str = NULL;
	char *lock_yaml = NULL, *sig = NULL;
	size_t lock_len = 0, sig_len = 0;
	kf_lock *lk = NULL;
	kfi_pkgset ps = {0};
	kf_err e = {0};
	int rc = KF_OK, opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': pub_file = optarg; break;
		case 'P': pub_str = optarg; break;
		case 'R': role = optarg; break;
		case 'r': p.root = optarg; break;
		case 'h':
			printf("Usage: kubeferry-install preflight BUNDLE [-p PUBKEY | -P KEY] "
			       "[--role control-plane|worker] [--root DIR]\n"
			       "\n"
			       "Checks this node against the bundle before apply and prints a table\n"
			       "of pass, warn or fail with the fix for each: OS family and version,\n"
			       "architecture, CPUs and memory for the role, swap, required ports,\n"
			       "hostname and product_uuid, cgroup version, kernel modules and host\n"
			       "tools (what kubeadm of the bundle's release requires fails, the rest\n"
			       "warns; the fix names the RPM). Under --root the kernel release is\n"
			       "ROOT/proc/sys/kernel/osrelease when present. With a key the bundle is\n"
			       "verified first; without one only its lock is read. Changes nothing.\n"
			       "\n"
			       "Exit codes: 0 no check failed, 1 a check failed or the bundle did\n"
			       "not verify, 2 usage error, 3 I/O error.\n");
			goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install preflight --help'");
			goto out;
		}
	}
	if (optind != argc - 1) {
		rc = kf_err_set(&e, KF_EUSAGE, "preflight needs exactly one BUNDLE");
		goto out;
	}
	if (strcmp(role, "control-plane") && strcmp(role, "worker")) {
		rc = kf_err_set(&e, KF_EUSAGE, "--role must be control-plane or worker");
		goto out;
	}
	p.control_plane = !strcmp(role, "control-plane");
	if ((rc = kf_archive_read_lock(argv[optind], &lock_yaml, &lock_len, &sig, &sig_len, &e)) != KF_OK)
		goto out;
	/* With a key, the lock's signature is checked too (apply checks every
	 * entry); without one, preflight only reads what the bundle claims. */
	if (pub_file || pub_str) {
		kf_pubkey pk;
		if ((rc = kf_keys_load_public(pub_file, pub_str, &pk, &e)) != KF_OK ||
		    (rc = kf_sig_verify_buf(&pk, sig, sig_len, lock_yaml, lock_len, NULL, 0,
		                            KF_LOCK_SIG_PATH, &e)) != KF_OK)
			goto out;
	}
	if ((rc = kf_lock_parse(lock_yaml, lock_len, KF_LOCK_PATH, &lk, &e)) != KF_OK)
		goto out;
	kfi_os_probe(p.root, &p.os);
	printf("preflight for %s-%s (Kubernetes %s), role %s, root %s\n", lk->name, lk->version,
	       lk->kube_version ? lk->kube_version : "?", role, p.root[0] ? p.root : "/");
	printf("%-16s %-5s %s\n", "CHECK", "RESULT", "DETAIL");
	check_os(&p);
	check_arch(&p, lk);
	check_resources(&p);
	check_swap(&p);
	check_ports(&p);
	check_hostname(&p);
	check_uuid(&p);
	check_cgroup(&p);
	check_modules(&p);
	check_packages(&p, lk, &ps);
	check_tools(&p, lk, &ps);
	printf("pass=%d warn=%d fail=%d\n", p.pass, p.warn, p.fail);
	if (p.fail)
		rc = KF_EVERIFY;
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install preflight", &e);
	kfi_pkgset_free(&ps);
	kf_lock_free(lk);
	free(lock_yaml);
	free(sig);
	return rc;
}
