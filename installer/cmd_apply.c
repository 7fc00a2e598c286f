/*
 * kubeferry-install apply: turn a verified bundle into a prepared node.
 *
 *   verify + unpack -> host (SELinux, swap, modules, sysctls, firewalld)
 *   -> runtime (containerd, runc, CNI, crictl, config, certs.d, unit)
 *   -> kubernetes (kubeadm, kubelet, kubectl, helm, kubelet unit)
 *   -> etcd on control planes when the lock says etcd: host
 *
 * Every change goes through the step engine (step.c): compared first,
 * journaled, written atomically. With --root DIR the files go under DIR and
 * no command runs: setenforce, swapoff, modprobe, sysctl --system,
 * firewall-cmd / firewall-offline-cmd, systemctl and the etcd health check
 * are printed as "plan" lines instead (docs/install.md).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "mirror/kf_mirror.h"
#include "installer/kf_installer.h"

#define MIRROR_CA KF_MIRROR_CA_PATH

typedef struct apply {
	kfi_ctx c;
	const char *bundle, *pub_file, *pub_str, *role, *root;
	const char *mirror, *mirror_fp, *mirror_ca_file, *hostname_opt, *node_ip_opt, *arch_opt;
	int dry_run, no_mirror, control_plane;
	char arch[32], host[256], ip[64];
	kf_lock *lock;
	char *bundle_dir;       /* the unpacked bundle (real path) */
	char *tmp_dir;          /* dry run: scratch unpack, removed at the end */
	int systemd;            /* live system with systemd as PID 1 */
	char *mirror_ca;        /* PEM of the pinned mirror CA */
	size_t mirror_ca_len;
	int units_changed;
} apply;

static const char CONTAINERD_UNIT[] =
	"# Written by kubeferry-install (upstream containerd.service).\n"
	"[Unit]\n"
	"Description=containerd container runtime\n"
	"Documentation=https://containerd.io\n"
	"After=network.target local-fs.target\n"
	"\n"
	"[Service]\n"
	"ExecStartPre=-/sbin/modprobe overlay\n"
	"ExecStart=/usr/local/bin/containerd\n"
	"Type=notify\n"
	"Delegate=yes\n"
	"KillMode=process\n"
	"Restart=always\n"
	"RestartSec=5\n"
	"LimitNPROC=infinity\n"
	"LimitCORE=infinity\n"
	"TasksMax=infinity\n"
	"OOMScoreAdjust=-999\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

static const char KUBELET_UNIT[] =
	"# Written by kubeferry-install (upstream kubelet.service).\n"
	"[Unit]\n"
	"Description=kubelet: The Kubernetes Node Agent\n"
	"Documentation=https://kubernetes.io/docs/\n"
	"Wants=network-online.target\n"
	"After=network-online.target\n"
	"\n"
	"[Service]\n"
	"ExecStart=/usr/local/bin/kubelet\n"
	"Restart=always\n"
	"StartLimitInterval=0\n"
	"RestartSec=10\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

static const char KUBEADM_DROPIN[] =
	"# Written by kubeferry-install (upstream 10-kubeadm.conf).\n"
	"[Service]\n"
	"Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
	"Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
	"EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
	"EnvironmentFile=-/etc/sysconfig/kubelet\n"
	"ExecStart=\n"
	"ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";

static const char ETCD_UNIT[] =
	"# Written by kubeferry-install (Kubespray's host etcd unit).\n"
	"[Unit]\n"
	"Description=etcd\n"
	"After=network.target\n"
	"\n"
	"[Service]\n"
	"Type=notify\n"
	"User=root\n"
	"EnvironmentFile=/etc/etcd.env\n"
	"ExecStart=/usr/local/bin/etcd\n"
	"NotifyAccess=all\n"
	"Restart=always\n"
	"RestartSec=10s\n"
	"LimitNOFILE=40000\n"
	"\n"
	"[Install]\n"
	"WantedBy=multi-user.target\n";

static const char CRICTL_YAML[] =
	"runtime-endpoint: unix:///run/containerd/containerd.sock\n"
	"image-endpoint: unix:///run/containerd/containerd.sock\n"
	"timeout: 10\n";

static const char MODULES_CONF[] =
	"# Written by kubeferry-install: kernel modules Kubernetes needs.\n"
	"overlay\n"
	"br_netfilter\n";

static const char SYSCTL_CONF[] =
	"# Written by kubeferry-install: sysctls Kubernetes needs.\n"
	"net.ipv4.ip_forward = 1\n"
	"net.bridge.bridge-nf-call-iptables = 1\n"
	"net.bridge.bridge-nf-call-ip6tables = 1\n";

static const char *const CP_PORTS[] = {"6443/tcp", "2379-2380/tcp", "10250/tcp",
                                       "10257/tcp", "10259/tcp", "8472/udp", NULL};
static const char *const WORKER_PORTS[] = {"10250/tcp", "30000-32767/tcp",
                                           "8472/udp", NULL};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install apply BUNDLE (-p PUBKEY | -P KEY) --role control-plane|worker\n"
	        "           [--mirror HOST:PORT --mirror-ca-fingerprint SHA256 | --no-mirror]\n"
	        "           [--root DIR] [--dry-run] [--hostname NAME] [--node-ip IP] [--arch ARCH]\n"
	        "\n"
	        "Verifies and unpacks BUNDLE into /var/lib/kubeferry/bundles/<name>-<version>,\n"
	        "then prepares this node: SELinux permissive, swap off, kernel modules,\n"
	        "sysctls, firewalld ports, containerd + runc + CNI + crictl, registry mirror\n"
	        "(certs.d), kubeadm/kubelet/kubectl/helm, and etcd with its own PKI on\n"
	        "control planes when the bundle says etcd: host. Each step prints ok or\n"
	        "changed; the run ends with ok=N changed=N failed=N.\n"
	        "\n"
	        "Options:\n"
	        "  -p FILE, -P KEY          trusted public key (minisign file or base64 line)\n"
	        "  --role ROLE              control-plane or worker\n"
	        "  --mirror HOST:PORT --mirror-ca-fingerprint SHA256\n"
	        "                           point containerd at this registry mirror (the\n"
	        "                           node running 'mirror install'); its CA is taken\n"
	        "                           from the TLS chain only when it matches the pin\n"
	        "  --mirror-ca FILE         the mirror's CA carried by hand (still pinned)\n"
	        "  --no-mirror              no mirror: import the bundle's images into\n"
	        "                           containerd's k8s.io namespace instead\n"
	        "  --root DIR               install into DIR; commands are printed as\n"
	        "                           'plan', not run\n"
	        "  --dry-run                print what would change; change nothing\n"
	        "  --hostname NAME          node name (default: this host's name)\n"
	        "  --node-ip IP             address for etcd and the API server\n"
	        "                           (default: the first non-loopback address)\n"
	        "  --arch ARCH              architecture (default: this machine's)\n"
	        "\n"
	        "Re-running changes nothing (changed=0); a run that was killed can be\n"
	        "re-run and finishes; 'kubeferry-install reset' undoes it.\n"
	        "\n"
	        "Exit codes: 0 success, 1 verification failed, 2 usage, 3 I/O or step failed.\n");
}


static void section(const char *name)
{
	printf("== %s\n", name);
	fflush(stdout);
}

/* The component of this name (aliases allowed) for the node's arch. */
static const kf_lock_component *component(const apply *a, const char *const *names)
{
	for (size_t i = 0; i < a->lock->ncomp; i++) {
		const kf_lock_component *k = &a->lock->components[i];
		for (size_t j = 0; names[j]; j++)
			if (k->name && !strcmp(k->name, names[j]) &&
			    (!k->arch || !k->arch[0] || !strcmp(k->arch, a->arch)) && k->path)
				return k;
	}
	return NULL;
}

static char *bundle_file(const apply *a, const kf_lock_component *k)
{
	return kfi_strf("%s/%s", a->bundle_dir, k->path);
}

static int need_component(const apply *a, const char *const *names,
                          const kf_lock_component **out, kf_err *e)
{
	*out = component(a, names);
	if (!*out)
		return kf_err_set(e, KF_EUSAGE, "bundle %s-%s has no component '%s' for %s",
		                  a->lock->name, a->lock->version, names[0], a->arch);
	return KF_OK;
}

static void host_arch(char *out, size_t n)
{
	struct utsname u;
	const char *m = "amd64";

	if (uname(&u) == 0) {
		if (!strcmp(u.machine, "aarch64"))
			m = "arm64";
		else if (!strcmp(u.machine, "ppc64le"))
			m = "ppc64le";
		else if (!strcmp(u.machine, "s390x"))
			m = "s390x";
		else if (!strcmp(u.machine, "riscv64"))
			m = "riscv64";
	}
	snprintf(out, n, "%s", m);
}

/* The first non-loopback IPv4 address: what etcd advertises. */
static void node_ip(char *out, size_t n)
{
	struct ifaddrs *ifs = NULL;

	snprintf(out, n, "127.0.0.1");
	if (getifaddrs(&ifs) != 0)
		return;
	for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		struct in_addr in = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if ((ntohl(in.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &in, out, (socklen_t)n);
		break;
	}
	freeifaddrs(ifs);
}

/* An RFC 1123 host name: labels of letters, digits and '-'. */
static int host_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-' || strstr(h, ".."))
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || *h == '-' || *h == '.'))
			return 0;
	return 1;
}

static void node_hostname(const apply *a, char *out, size_t n)
{
	char *p = kfi_path(&a->c, "/etc/hostname"), *buf = NULL;
	size_t len;
	kf_err ign;

	out[0] = '\0';
	/* In --root mode the root's own name wins over the build host's. */
	if (a->c.root[0] && kf_read_file(p, 4096, &buf, &len, &ign) == KF_OK) {
		buf[strcspn(buf, " \t\r\n")] = '\0';
		snprintf(out, n, "%s", buf);
	}
	if (!out[0] && gethostname(out, n) != 0)
		snprintf(out, n, "localhost");
	out[n - 1] = '\0';
	free(p);
	free(buf);
}

/* A file apply edits in place (SELinux config, fstab): KF_OK with its
 * content, -1 when it does not exist, else an error. What is read is
 * written back as a regular file, so it must not be read through a
 * symbolic link (under --root one may lead to the host's own file). */
static int read_root_file(const apply *a, const char *abs, char **buf, size_t *len,
                          kf_err *e)
{
	char *p = kfi_path(&a->c, abs);
	struct stat st;
	int rc;

	if ((rc = kfi_check_parents(&a->c, abs, e)) != KF_OK)
		goto out;
	if (lstat(p, &st) != 0) {
		rc = errno == ENOENT ? -1 : kf_err_errno(e, "cannot read", p);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = kf_err_set(e, KF_EIO, "%s is not a regular file (a symbolic link?); refusing to edit it",
		                p);
		goto out;
	}
	rc = kf_read_file(p, 16u << 20, buf, len, e);
out:
	free(p);
	return rc;
}

static int root_exists(const apply *a, const char *abs)
{
	char *p = kfi_path(&a->c, abs);
	int r = access(p, F_OK) == 0;
	free(p);
	return r;
}

/* ---- bundle ----------------------------------------------------------- */

/* The bundle is unpacked once per name-version; a re-run whose lock (which
 * lists every entry's sha256) is byte-identical to the installed one, and
 * whose signature verifies, skips the unpack. */
static int step_bundle(apply *a, kf_err *e)
{
	int rc = KF_OK;
	kf_pubkey pk;
	char *lock_yaml = NULL, *sig = NULL, *cur = NULL, *dest = NULL, *parent = NULL;
	char *created = NULL;
	size_t lock_len = 0, sig_len = 0, cur_len = 0;
	kf_lock *lk = NULL;
	kf_archive_read_opts ro = {0};

	if ((rc = kf_keys_load_public(a->pub_file, a->pub_str, &pk, e)) != KF_OK)
		goto out;
	if ((rc = kf_archive_read_lock(a->bundle, &lock_yaml, &lock_len, &sig, &sig_len, e)) != KF_OK)
		goto out;
	if ((rc = kf_sig_verify_buf(&pk, sig, sig_len, lock_yaml, lock_len, NULL, 0,
	                            KF_LOCK_SIG_PATH, e)) != KF_OK)
		goto out;
	if ((rc = kf_lock_parse(lock_yaml, lock_len, KF_LOCK_PATH, &lk, e)) != KF_OK)
		goto out;
	if (!lk->name || !lk->version || strchr(lk->name, '/') || strchr(lk->version, '/') ||
	    lk->name[0] == '.' || lk->version[0] == '.') {
		rc = kf_err_set(e, KF_EVERIFY, "%s: unusable bundle name or version", a->bundle);
		goto out;
	}
	parent = kfi_path(&a->c, KFI_BUNDLES_DIR);
	dest = kfi_strf("%s/%s-%s", parent, lk->name, lk->version);
	{
		char *lp = kfi_strf("%s.bundle.yaml", dest);
		kf_err ign;
		if (kf_read_file(lp, KF_LOCK_MAX, &cur, &cur_len, &ign) == KF_OK &&
		    cur_len == lock_len && !memcmp(cur, lock_yaml, lock_len)) {
			free(lp);
			printf("%-8s bundle %s-%s already unpacked in %s\n", "ok",
			       lk->name, lk->version, dest);
			a->c.ok++;
			a->bundle_dir = dest;
			dest = NULL;
			goto out;
		}
		free(lp);
	}
	ro.key = &pk;
	if (a->dry_run) {
		/* Nothing may change under the root: unpack to scratch space so
		 * the plan can compare real bytes. */
		char tmpl[] = "/tmp/kubeferry-dry-run.XXXXXX";
		if (!mkdtemp(tmpl)) {
			rc = kf_err_errno(e, "cannot create", tmpl);
			goto out;
		}
		a->tmp_dir = strdup(tmpl);
		free(dest);
		dest = kfi_strf("%s/bundle", tmpl);
		rc = kf_archive_unpack(a->bundle, dest, 0, &ro, NULL, e);
		if (rc == KF_OK) {
			printf("%-8s bundle %s-%s would be unpacked (dry run)\n", "changed",
			       lk->name, lk->version);
			a->c.changed++;
		}
	} else {
		/* Remember the first directory we create, so that a bundle that
		 * fails verification leaves the root exactly as it was. */
		char probe[PATH_MAX];
		snprintf(probe, sizeof probe, "%s", parent);
		while (access(probe, F_OK) != 0) {
			free(created);
			created = strdup(probe);
			char *s = strrchr(probe, '/');
			if (!s || s == probe)
				break;
			*s = '\0';
		}
		if ((rc = kf_mkdir_p(parent, 0755, e)) != KF_OK)
			goto out;
		rc = kf_archive_unpack(a->bundle, dest, 1, &ro, NULL, e);
		if (rc != KF_OK) {
			if (created) {
				kf_err ign;
				kf_remove_tree(created, &ign);
			}
			goto out;
		}
		/* The verified lock and its signature go next to the tree (the
		 * tree itself holds exactly the bundle's entries): they mark the
		 * unpack as complete and let a re-run skip it. */
		{
			char *lp = kfi_strf("%s.bundle.yaml", dest);
			char *sp = kfi_strf("%s.bundle.yaml.minisig", dest);
			rc = kf_write_file_atomic(sp, sig, sig_len, 0644, 1, e);
			if (rc == KF_OK)
				rc = kf_write_file_atomic(lp, lock_yaml, lock_len, 0644, 1, e);
			free(lp);
			free(sp);
			if (rc != KF_OK)
				goto out;
		}
		printf("%-8s bundle %s-%s unpacked into %s\n", "changed", lk->name,
		       lk->version, dest);
		a->c.changed++;
	}
	if (rc == KF_OK) {
		a->bundle_dir = dest;
		dest = NULL;
	}
out:
	if (rc == KF_OK) {
		a->lock = lk;
		lk = NULL;
	}
	kf_lock_free(lk);
	free(lock_yaml);
	free(sig);
	free(cur);
	free(dest);
	free(parent);
	free(created);
	return rc;
}

/* --mirror-ca FILE: the CA carried over by hand; still checked against
 * the pin, so a wrong file is refused just like a wrong server. */
static int ca_from_file(apply *a, kf_err *e)
{
	/* Only the pinned certificate itself is installed (re-encoded), never
	 * the file as it is: further certificates in it would be trusted too. */
	return kfi_mirror_ca_file(a->mirror_ca_file, a->mirror_fp, &a->mirror_ca,
	                          &a->mirror_ca_len, e);
}

/* The mirror's CA is fetched and checked against the pin before anything
 * on the node changes: a wrong fingerprint must not leave a half-prepared
 * node behind. */
static int fetch_mirror_ca(apply *a, kf_err *e)
{
	char host[256];
	const char *colon = strrchr(a->mirror, ':');
	int port;

	if (!colon || colon == a->mirror || (size_t)(colon - a->mirror) >= sizeof host ||
	    !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    (port = atoi(colon + 1)) <= 0 || port > 65535)
		return kf_err_set(e, KF_EUSAGE, "--mirror %s: want HOST:PORT", a->mirror);
	snprintf(host, sizeof host, "%.*s", (int)(colon - a->mirror), a->mirror);
	if (host[0] == '[') { /* [::1]:5000 */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	/* HOST goes into every hosts.toml as a URL: a quote or newline there
	 * would rewrite containerd's registry configuration. */
	{
		unsigned char sa[sizeof(struct in6_addr)];
		if (!host_valid(host) && inet_pton(AF_INET6, host, sa) != 1)
			return kf_err_set(e, KF_EUSAGE, "--mirror %s: '%s' is not a host name or address",
			                  a->mirror, host);
	}
	if (a->mirror_ca_file)
		return ca_from_file(a, e);
	return kfi_mirror_ca(host, port, a->mirror_fp, &a->mirror_ca, &a->mirror_ca_len, e);
}

/* ---- host ------------------------------------------------------------- */

/* One line of a file being edited, without its '\n': write its new text
 * (also without the '\n') to m. */
typedef void edit_line_fn(FILE *m, const char *line, size_t l, void *arg);

/* Rewrite a root file line by line and put it back (0644): KF_OK, -1 when
 * the file does not exist, else an error. */
static int edit_root_file(apply *a, const char *abs, edit_line_fn *edit, void *arg,
                          kf_err *e)
{
	int rc;
	char *buf = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	FILE *m;

	if ((rc = read_root_file(a, abs, &buf, &len, e)) != KF_OK)
		goto out;
	m = open_memstream(&out, &olen);
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		size_t l = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		edit(m, line, l, arg);
		fputc('\n', m);
	}
	fclose(m);
	rc = kfi_put_file(&a->c, abs, out, olen, 0644, NULL, e);
out:
	free(buf);
	free(out);
	return rc;
}

/* Run argv on the live host when needed() says the host is not yet in
 * shape; under --root the host's state says nothing about the root, so it
 * is always planned. */
static int run_when_needed(apply *a, int (*needed)(void), const char *const argv[],
                           kf_err *e)
{
	if (a->c.live && !needed())
		return KF_OK;
	return kfi_run(&a->c, argv, e);
}

/* Rewrite only the SELINUX= line; "disabled" is left alone (it is fine
 * for Kubernetes and needs a reboot to undo anyway). */
static void edit_selinux(FILE *m, const char *line, size_t l, void *arg)
{
	int *disabled = arg;

	if (strncmp(line, "SELINUX=", 8)) {
		fwrite(line, 1, l, m);
	} else if (l >= 16 && !strncmp(line + 8, "disabled", 8)) {
		*disabled = 1;
		fwrite(line, 1, l, m);
	} else {
		fputs("SELINUX=permissive", m);
	}
}

static int selinux_enforcing(void)
{
	char *en = NULL;
	size_t el;
	kf_err ign;
	int r = kf_read_file("/sys/fs/selinux/enforce", 16, &en, &el, &ign) == KF_OK &&
	        en[0] == '1';

	free(en);
	return r;
}

static int step_selinux(apply *a, kf_err *e)
{
	static const char *const argv[] = {"setenforce", "0", NULL};
	int rc, disabled = 0;

	rc = edit_root_file(a, "/etc/selinux/config", edit_selinux, &disabled, e);
	if (rc < 0) {
		printf("%-8s selinux (no /etc/selinux/config)\n", "ok");
		a->c.ok++;
		return KF_OK;
	}
	if (rc == KF_OK && !disabled)
		rc = run_when_needed(a, selinux_enforcing, argv, e);
	return rc;
}

/* Comment out every active swap line (third field "swap"). */
static void edit_fstab(FILE *m, const char *line, size_t l, void *arg)
{
	char copy[4096], *f1, *f2, *f3, *save = NULL;

	(void)arg;
	snprintf(copy, sizeof copy, "%.*s", (int)l, line);
	f1 = strtok_r(copy, " \t", &save);
	f2 = f1 ? strtok_r(NULL, " \t", &save) : NULL;
	f3 = f2 ? strtok_r(NULL, " \t", &save) : NULL;
	if (f1 && f1[0] != '#' && f3 && !strcmp(f3, "swap"))
		fputs("# swap disabled by kubeferry-install: ", m);
	fwrite(line, 1, l, m);
}

/* /proc/swaps has a header line; anything more is active swap. */
static int swap_active(void)
{
	char *sw = NULL;
	size_t sl;
	kf_err ign;
	int r = kf_read_file("/proc/swaps", 1 << 16, &sw, &sl, &ign) == KF_OK &&
	        strchr(sw, '\n') && strchr(sw, '\n')[1] != '\0';

	free(sw);
	return r;
}

static int step_swap(apply *a, kf_err *e)
{
	static const char *const argv[] = {"swapoff", "-a", NULL};
	int rc = edit_root_file(a, "/etc/fstab", edit_fstab, NULL, e);

	if (rc > 0)
		return rc;
	if ((rc = kfi_put_link(&a->c, "/etc/systemd/system/swap.target", "/dev/null",
	                       NULL, e)) != KF_OK)
		return rc;
	return run_when_needed(a, swap_active, argv, e);
}

static int step_modules_sysctl(apply *a, kf_err *e)
{
	static const char *const mods[] = {"overlay", "br_netfilter", NULL};
	static const char *const sysctls[] = {"net/ipv4/ip_forward",
	                                      "net/bridge/bridge-nf-call-iptables",
	                                      "net/bridge/bridge-nf-call-ip6tables", NULL};
	int rc, sys_changed = 0, need = 0;

	if ((rc = kfi_put_file(&a->c, "/etc/modules-load.d/kubeferry.conf", MODULES_CONF,
	                       strlen(MODULES_CONF), 0644, NULL, e)) != KF_OK)
		goto out;
	for (size_t i = 0; mods[i]; i++) {
		char sys[128];
		snprintf(sys, sizeof sys, "/sys/module/%s", mods[i]);
		if (!a->c.live || access(sys, F_OK) != 0) {
			const char *argv[] = {"modprobe", mods[i], NULL};
			/* kubeadm's preflight stops on a missing module; here a
			 * kernel without it (or a container) only gets a warning. */
			kfi_run_soft(&a->c, argv, "load it on the host or install kernel-modules-extra");
		}
	}
	if ((rc = kfi_put_file(&a->c, "/etc/sysctl.d/99-kubeferry.conf", SYSCTL_CONF,
	                       strlen(SYSCTL_CONF), 0644, &sys_changed, e)) != KF_OK)
		goto out;
	need = sys_changed || !a->c.live;
	for (size_t i = 0; !need && sysctls[i]; i++) {
		char p[128], *v = NULL;
		size_t vl;
		kf_err ign;
		snprintf(p, sizeof p, "/proc/sys/%s", sysctls[i]);
		/* A key that does not exist (br_netfilter not loaded) cannot be
		 * set by sysctl either: only existing, wrong values count. */
		if (kf_read_file(p, 64, &v, &vl, &ign) == KF_OK && v[0] != '1')
			need = 1;
		free(v);
	}
	if (need) {
		const char *argv[] = {"sysctl", "--system", NULL};
		kfi_run_soft(&a->c, argv, "the bridge sysctls need br_netfilter loaded");
	}
out:
	return rc;
}

static int step_firewalld(apply *a, kf_err *e)
{
	int rc = KF_OK;
	const char *const *ports = a->control_plane ? CP_PORTS : WORKER_PORTS;

	if (a->c.live) {
		const char *state[] = {"firewall-cmd", "--state", NULL};
		if (kfi_probe(state) != 0) {
			printf("%-8s firewalld (not running)\n", "ok");
			a->c.ok++;
			goto out;
		}
		for (size_t i = 0; ports[i]; i++) {
			char q[64], add[64];
			snprintf(q, sizeof q, "--query-port=%s", ports[i]);
			snprintf(add, sizeof add, "--add-port=%s", ports[i]);
			const char *query[] = {"firewall-cmd", q, NULL};
			const char *perm[] = {"firewall-cmd", "--permanent", add, NULL};
			const char *now[] = {"firewall-cmd", add, NULL};
			if (kfi_probe(query) == 0)
				continue;
			if ((rc = kfi_run(&a->c, perm, e)) != KF_OK ||
			    (rc = kfi_run(&a->c, now, e)) != KF_OK)
				goto out;
		}
		goto out;
	}
	/* In another root firewalld cannot be asked; when it is installed
	 * there, the offline tool is what would open the ports. */
	if (!root_exists(a, "/usr/lib/systemd/system/firewalld.service") &&
	    !root_exists(a, "/etc/firewalld")) {
		printf("%-8s firewalld (not installed in %s)\n", "ok", a->c.root[0] ? a->c.root : "/");
		a->c.ok++;
		goto out;
	}
	for (size_t i = 0; ports[i]; i++) {
		char add[64];
		snprintf(add, sizeof add, "--add-port=%s", ports[i]);
		const char *argv[] = {"firewall-offline-cmd", add, NULL};
		if ((rc = kfi_run(&a->c, argv, e)) != KF_OK)
			goto out;
	}
out:
	return rc;
}

/* ---- services --------------------------------------------------------- */

static int install_unit(apply *a, const char *name, const char *text, int *changed,
                        kf_err *e)
{
	int rc, ch1 = 0, ch2 = 0;
	char unit[256], wants[300];

	snprintf(unit, sizeof unit, "/etc/systemd/system/%s", name);
	snprintf(wants, sizeof wants, "/etc/systemd/system/multi-user.target.wants/%s", name);
	if ((rc = kfi_put_file(&a->c, unit, text, strlen(text), 0644, &ch1, e)) != KF_OK)
		return rc;
	/* Enabling is a symlink, exactly what systemctl enable makes: it works
	 * in another root and without a running systemd. */
	if ((rc = kfi_put_link(&a->c, wants, unit, &ch2, e)) != KF_OK)
		return rc;
	if ((rc = kfi_journal_unit(&a->c, name, e)) != KF_OK)
		return rc;
	if (ch1 || ch2)
		a->units_changed = 1;
	if (changed)
		*changed = ch1;
	return KF_OK;
}

/* daemon-reload when units changed; restart when inputs changed, else start
 * when not active. */
static int start_service(apply *a, const char *name, int inputs_changed, kf_err *e)
{
	int rc = KF_OK;

	if (a->c.live && !a->systemd) {
		printf("%-8s %s not started: systemd is not running\n", "warn", name);
		goto out;
	}
	if (a->units_changed || !a->c.live) {
		const char *argv[] = {"systemctl", "daemon-reload", NULL};
		if ((rc = kfi_run(&a->c, argv, e)) != KF_OK)
			goto out;
		a->units_changed = 0;
	}
	if (!a->c.live || inputs_changed) {
		const char *argv[] = {"systemctl", "restart", name, NULL};
		rc = kfi_run(&a->c, argv, e);
	} else {
		const char *probe[] = {"systemctl", "is-active", "--quiet", name, NULL};
		const char *argv[] = {"systemctl", "start", name, NULL};
		if (kfi_probe(probe) != 0)
			rc = kfi_run(&a->c, argv, e);
		else {
			printf("%-8s service %s active\n", "ok", name);
			a->c.ok++;
		}
	}
out:
	return rc;
}

/* ---- runtime ---------------------------------------------------------- */

static const char *sandbox_image(const apply *a)
{
	for (size_t i = 0; i < a->lock->nimg; i++) {
		const char *r = a->lock->images[i].ref, *slash = strrchr(r, '/');
		const char *base = slash ? slash + 1 : r;
		if (!strncmp(base, "pause:", 6) || !strncmp(base, "pause@", 6))
			return r;
	}
	return NULL;
}

static int step_certs_d(apply *a, int *changed, kf_err *e)
{
	int rc = KF_OK, ch = 0;
	char *dir = kfi_strf("%s/certs.d", a->bundle_dir), *mirror_url = NULL;
	DIR *d = NULL;
	struct dirent *de;

	if (a->no_mirror) {
		printf("%-8s certs.d (--no-mirror: images come from the bundle)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (a->mirror) {
		if ((rc = kfi_put_file(&a->c, MIRROR_CA, a->mirror_ca, a->mirror_ca_len,
		                       0644, &ch, e)) != KF_OK)
			goto out;
		*changed |= ch;
		mirror_url = kfi_strf("https://%s", a->mirror);
	}
	d = opendir(dir);
	if (!d) {
		printf("%-8s certs.d (the bundle has no registry mirror configuration)\n", "ok");
		a->c.ok++;
		goto out;
	}
	while ((de = readdir(d))) {
		char abs[PATH_MAX], *src, *text = NULL;
		if (de->d_name[0] == '.' || strchr(de->d_name, '/'))
			continue;
		snprintf(abs, sizeof abs, "/etc/containerd/certs.d/%s/hosts.toml", de->d_name);
		if (mirror_url) {
			/* The operator's mirror and its pinned CA replace the
			 * endpoint chosen at build time. */
			text = kf_hosts_toml_render(de->d_name, mirror_url, MIRROR_CA);
			if (!text) {
				rc = kf_err_set(e, KF_EIO, "cannot render hosts.toml for %s", de->d_name);
				goto out;
			}
			rc = kfi_put_file(&a->c, abs, text, strlen(text), 0644, &ch, e);
			free(text);
		} else {
			src = kfi_strf("%s/%s/hosts.toml", dir, de->d_name);
			if (access(src, F_OK) == 0)
				rc = kfi_put_file_from(&a->c, abs, src, 0644, &ch, e);
			free(src);
		}
		if (rc != KF_OK)
			goto out;
		*changed |= ch;
	}
out:
	if (d)
		closedir(d);
	free(dir);
	free(mirror_url);
	return rc;
}

/* --no-mirror: the bundle's images go straight into containerd's k8s.io
 * namespace (what kubelet uses). The layout is tarred once next to the
 * unpacked bundle; a stamp per lock records a finished import. */
static int step_import(apply *a, kf_err *e)
{
	int rc = KF_OK;
	char *layout = kfi_strf("%s/images/index.json", a->bundle_dir), *tar = NULL, *stamp = NULL;
	char *tar_abs = NULL;
	char key[KF_SHA256_HEX];

	if (access(layout, F_OK) != 0) {
		printf("%-8s images (the bundle holds none)\n", "ok");
		a->c.ok++;
		goto out;
	}
	free(layout);
	layout = kfi_strf("%s/images", a->bundle_dir);
	tar = kfi_strf("%s.images.tar", a->bundle_dir);
	/* The path containerd sees: without the --root prefix. */
	tar_abs = kfi_strf("%s/%s-%s.images.tar", KFI_BUNDLES_DIR, a->lock->name, a->lock->version);
	kf_sha256_buf(a->lock->name, strlen(a->lock->name), key);
	{
		char *lk = kfi_strf("%s.bundle.yaml", a->bundle_dir), *buf = NULL;
		size_t len;
		kf_err ign;
		if (kf_read_file(lk, KF_LOCK_MAX, &buf, &len, &ign) == KF_OK)
			kf_sha256_buf(buf, len, key);
		free(buf);
		free(lk);
	}
	stamp = kfi_strf("%s/imported-%s", a->c.state_dir, key);
	if (access(stamp, F_OK) == 0) {
		printf("%-8s images imported into containerd (k8s.io)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (!a->dry_run && access(tar, F_OK) != 0) {
		if ((rc = kfi_oci_tar(layout, tar, e)) != KF_OK)
			goto out;
		printf("%-8s file %s\n", "changed", tar_abs);
		a->c.changed++;
	}
	{
		/* The bundle holds only its own architectures' manifests, so
		 * the import is for this node's platform (ctr's default), not
		 * --all-platforms. */
		const char *argv[] = {"/usr/local/bin/ctr", "-n", "k8s.io", "images", "import",
		                      tar_abs, NULL};
		if (a->c.live && !a->systemd) {
			printf("%-8s images not imported: containerd is not running under systemd\n", "warn");
			goto out;
		}
		if ((rc = kfi_run(&a->c, argv, e)) != KF_OK)
			goto out;
	}
	if (a->c.live) {
		kf_err ign;
		kf_mkdir_p(a->c.state_dir, 0700, &ign);
		kf_write_file_atomic(stamp, "", 0, 0600, 1, &ign);
	}
out:
	free(layout);
	free(tar);
	free(tar_abs);
	free(stamp);
	return rc;
}

static int step_runtime(apply *a, kf_err *e)
{
	static const char *const n_containerd[] = {"containerd", NULL};
	static const char *const n_runc[] = {"runc", NULL};
	static const char *const n_cni[] = {"cni-plugins", "cni", NULL};
	static const char *const n_crictl[] = {"crictl", "cri-tools", NULL};
	static const char *const crictl_names[] = {"crictl", NULL};
	const kf_lock_component *k;
	int rc, ch = 0, any = 0, before = a->c.changed;
	char *f = NULL, *cfg = NULL;
	const char *pause;

	if ((rc = need_component(a, n_containerd, &k, e)) != KF_OK)
		goto out;
	f = bundle_file(a, k);
	/* bin/containerd, bin/ctr, ... with the first component stripped,
	 * as Kubespray unpacks it. */
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, NULL, "/usr/local/bin", 0755, NULL, e)) != KF_OK)
		goto out;
	pause = sandbox_image(a);
	if (!pause) {
		pause = "registry.k8s.io/pause:3.10";
		printf("%-8s the bundle holds no pause image; sandbox image %s must be reachable\n",
		       "warn", pause);
	}
	cfg = kfi_render_containerd(k->version, pause);
	if ((rc = kfi_put_file(&a->c, "/etc/containerd/config.toml", cfg, strlen(cfg), 0644,
	                       &ch, e)) != KF_OK)
		goto out;
	any |= ch;

	if ((rc = need_component(a, n_runc, &k, e)) != KF_OK)
		goto out;
	free(f);
	f = bundle_file(a, k);
	if ((rc = kfi_put_file_from_sum(&a->c, "/usr/local/sbin/runc", f, k->sha256, 0755, &ch, e)) != KF_OK)
		goto out;
	/* containerd binaries, its config or runc changed: restart it. */
	any |= a->c.changed != before;

	if ((rc = need_component(a, n_cni, &k, e)) != KF_OK)
		goto out;
	free(f);
	f = bundle_file(a, k);
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 0, NULL, "/opt/cni/bin", 0755, NULL, e)) != KF_OK)
		goto out;

	if ((k = component(a, n_crictl))) {
		free(f);
		f = bundle_file(a, k);
		if ((rc = kfi_tar_install(&a->c, f, k->sha256, 0, crictl_names, "/usr/local/bin", 0755,
		                          NULL, e)) != KF_OK)
			goto out;
	} else {
		printf("%-8s the bundle has no crictl\n", "warn");
	}
	if ((rc = kfi_put_file(&a->c, "/etc/crictl.yaml", CRICTL_YAML, strlen(CRICTL_YAML),
	                       0644, NULL, e)) != KF_OK)
		goto out;

	section("registry mirror");
	if ((rc = step_certs_d(a, &ch, e)) != KF_OK)
		goto out;
	/* containerd reads certs.d per pull: no restart needed for it. */

	section("containerd service");
	if ((rc = install_unit(a, "containerd.service", CONTAINERD_UNIT, NULL, e)) != KF_OK)
		goto out;
	if ((rc = start_service(a, "containerd.service", any, e)) != KF_OK)
		goto out;
	if (a->no_mirror) {
		section("images (--no-mirror)");
		rc = step_import(a, e);
	}
out:
	free(f);
	free(cfg);
	return rc;
}

/* ---- kubernetes ------------------------------------------------------- */

static int step_kubernetes(apply *a, kf_err *e)
{
	static const char *const bins[] = {"kubeadm", "kubelet", "kubectl", NULL};
	static const char *const n_helm[] = {"helm", NULL};
	static const char *const helm_names[] = {"helm", NULL};
	const kf_lock_component *k;
	int rc = KF_OK;
	char *f = NULL, abs[128];

	for (size_t i = 0; bins[i]; i++) {
		const char *names[] = {bins[i], NULL};
		if ((rc = need_component(a, names, &k, e)) != KF_OK)
			goto out;
		free(f);
		f = bundle_file(a, k);
		snprintf(abs, sizeof abs, "/usr/local/bin/%s", bins[i]);
		if ((rc = kfi_put_file_from_sum(&a->c, abs, f, k->sha256, 0755, NULL, e)) != KF_OK)
			goto out;
	}
	if ((k = component(a, n_helm))) {
		free(f);
		f = bundle_file(a, k);
		if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, helm_names, "/usr/local/bin", 0755,
		                          NULL, e)) != KF_OK)
			goto out;
	} else {
		printf("%-8s the bundle has no helm\n", "warn");
	}
	if ((rc = install_unit(a, "kubelet.service", KUBELET_UNIT, NULL, e)) != KF_OK)
		goto out;
	{
		int ch = 0;
		if ((rc = kfi_put_file(&a->c, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
		                       KUBEADM_DROPIN, strlen(KUBEADM_DROPIN), 0644, &ch, e)) != KF_OK)
			goto out;
		a->units_changed |= ch;
	}
	/* kubelet is enabled but not started: kubeadm init/join starts it
	 * once its configuration exists. */
	if (a->units_changed && (a->systemd || !a->c.live)) {
		const char *argv[] = {"systemctl", "daemon-reload", NULL};
		rc = kfi_run(&a->c, argv, e);
		a->units_changed = 0;
	}
out:
	free(f);
	return rc;
}

/* ---- etcd ------------------------------------------------------------- */

static int step_etcd(apply *a, kf_err *e)
{
	static const char *const n_etcd[] = {"etcd", NULL};
	static const char *const etcd_bins[] = {"etcd", "etcdctl", "etcdutl", NULL};
	const kf_lock_component *k;
	int rc, ch = 0, any = 0, before;
	char *f = NULL, *env = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	char rel[512];
	const char *ips[] = {a->ip};

	if ((rc = need_component(a, n_etcd, &k, e)) != KF_OK)
		goto out;
	f = bundle_file(a, k);
	before = a->c.changed;
	/* etcd-v<v>-linux-<arch>/{etcd,etcdctl,etcdutl}. */
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, etcd_bins, "/usr/local/bin", 0755, NULL, e)) != KF_OK)
		goto out;
	if ((rc = kfi_etcd_pki(&a->c, "/etc/ssl/etcd/ssl", a->host, ips, 1, e)) != KF_OK)
		goto out;
	any = a->c.changed != before;
	env = kfi_render_etcd_env(a->host, a->ip);
	if ((rc = kfi_put_file(&a->c, "/etc/etcd.env", env, strlen(env), 0640, &ch, e)) != KF_OK)
		goto out;
	any |= ch;
	if ((rc = install_unit(a, "etcd.service", ETCD_UNIT, NULL, e)) != KF_OK)
		goto out;
	if ((rc = start_service(a, "etcd.service", any, e)) != KF_OK)
		goto out;
	if (!a->c.live) {
		printf("%-8s check https://127.0.0.1:2379/health (TLS, admin-%s.pem)\n", "plan", a->host);
		goto out;
	}
	if (!a->systemd)
		goto out;
	snprintf(rel, sizeof rel, "/etc/ssl/etcd/ssl/ca.pem");
	ca = kfi_path(&a->c, rel);
	snprintf(rel, sizeof rel, "/etc/ssl/etcd/ssl/admin-%s.pem", a->host);
	cert = kfi_path(&a->c, rel);
	snprintf(rel, sizeof rel, "/etc/ssl/etcd/ssl/admin-%s-key.pem", a->host);
	key = kfi_path(&a->c, rel);
	/* etcd is Type=notify, so it answers once systemctl returns; a few
	 * tries cover a restart racing the first request. */
	for (int i = 0; i < 30; i++) {
		rc = kfi_etcd_health("127.0.0.1", 2379, ca, cert, key, e);
		if (rc == KF_OK)
			break;
		sleep(1);
	}
	if (rc == KF_OK) {
		printf("%-8s etcd healthy at https://127.0.0.1:2379\n", "ok");
		a->c.ok++;
	}
out:
	free(f);
	free(env);
	free(ca);
	free(cert);
	free(key);
	return rc;
}

static int write_applied(apply *a, kf_err *e)
{
	char *p, *text;
	int rc;

	if (a->dry_run)
		return KF_OK;
	if ((rc = kf_mkdir_p(a->c.state_dir, 0700, e)) != KF_OK)
		return rc;
	p = kfi_strf("%s/applied", a->c.state_dir);
	text = kfi_strf("bundle: %s-%s\nkubernetes: %s\nrole: %s\nhostname: %s\n"
	                 "node_ip: %s\narch: %s\nbundle_dir: %s/%s-%s\nmirror: %s\n"
	                 "mirror_fp: %s\n",
	                 a->lock->name, a->lock->version,
	                 a->lock->kube_version ? a->lock->kube_version : "?", a->role,
	                 a->host, a->ip, a->arch, KFI_BUNDLES_DIR, a->lock->name,
	                 a->lock->version, a->mirror ? a->mirror : "-",
	                 a->mirror_fp ? a->mirror_fp : "-");
	rc = kf_write_file_atomic(p, text, strlen(text), 0644, 1, e);
	free(p);
	free(text);
	return rc;
}

int kfi_cmd_apply(int argc, char **argv)
{
	enum { O_ROLE = 256, O_ROOT, O_DRY, O_MIRROR, O_FP, O_NOMIRROR, O_HOST, O_IP, O_ARCH,
	       O_CAFILE };
	static const struct option opts[] = {
		{"role", required_argument, NULL, O_ROLE},
		{"root", required_argument, NULL, O_ROOT},
		{"dry-run", no_argument, NULL, O_DRY},
		{"mirror", required_argument, NULL, O_MIRROR},
		{"mirror-ca-fingerprint", required_argument, NULL, O_FP},
		{"no-mirror", no_argument, NULL, O_NOMIRROR},
		{"mirror-ca", required_argument, NULL, O_CAFILE},
		{"hostname", required_argument, NULL, O_HOST},
		{"node-ip", required_argument, NULL, O_IP},
		{"arch", required_argument, NULL, O_ARCH},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	apply a;
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0;

	memset(&a, 0, sizeof a);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': a.pub_file = optarg; break;
		case 'P': a.pub_str = optarg; break;
		case O_ROLE: a.role = optarg; break;
		case O_ROOT: a.root = optarg; break;
		case O_DRY: a.dry_run = 1; break;
		case O_MIRROR: a.mirror = optarg; break;
		case O_FP: a.mirror_fp = optarg; break;
		case O_NOMIRROR: a.no_mirror = 1; break;
		case O_CAFILE: a.mirror_ca_file = optarg; break;
		case O_HOST: a.hostname_opt = optarg; break;
		case O_IP: a.node_ip_opt = optarg; break;
		case O_ARCH: a.arch_opt = optarg; break;
		case 'h': usage(stdout); goto out;
		default: usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1) {
		rc = kf_err_set(&e, KF_EUSAGE, "apply needs exactly one BUNDLE");
		goto out;
	}
	a.bundle = argv[optind];
	if (!a.pub_file == !a.pub_str) {
		rc = kf_err_set(&e, KF_EUSAGE, "give the trusted public key with -p FILE or -P KEY");
		goto out;
	}
	if (!a.role || (strcmp(a.role, "control-plane") && strcmp(a.role, "worker"))) {
		rc = kf_err_set(&e, KF_EUSAGE, "--role must be control-plane or worker");
		goto out;
	}
	a.control_plane = !strcmp(a.role, "control-plane");
	if (a.mirror && a.no_mirror) {
		rc = kf_err_set(&e, KF_EUSAGE, "--mirror and --no-mirror exclude each other");
		goto out;
	}
	if (!a.mirror != !a.mirror_fp) {
		rc = kf_err_set(&e, KF_EUSAGE, "--mirror needs --mirror-ca-fingerprint (and the other way round)");
		goto out;
	}
	if (a.mirror_fp) {
		char norm[KF_SHA256_HEX];
		if (kfi_fingerprint_norm(a.mirror_fp, norm) != 0) {
			rc = kf_err_set(&e, KF_EUSAGE, "--mirror-ca-fingerprint %s: want sha256:<64 hex digits>", a.mirror_fp);
			goto out;
		}
	}
	if (a.root) {
		struct stat st;
		if (stat(a.root, &st) != 0 || !S_ISDIR(st.st_mode)) {
			rc = kf_err_set(&e, KF_EUSAGE, "--root %s: not a directory", a.root);
			goto out;
		}
	}
	if ((rc = kfi_ctx_init(&a.c, a.root ? a.root : "", a.dry_run, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	a.systemd = a.c.live && access("/run/systemd/system", F_OK) == 0;
	if (a.arch_opt)
		snprintf(a.arch, sizeof a.arch, "%s", a.arch_opt);
	else
		host_arch(a.arch, sizeof a.arch);
	if (a.hostname_opt)
		snprintf(a.host, sizeof a.host, "%s", a.hostname_opt);
	else
		node_hostname(&a, a.host, sizeof a.host);
	if (a.node_ip_opt)
		snprintf(a.ip, sizeof a.ip, "%s", a.node_ip_opt);
	else
		node_ip(a.ip, sizeof a.ip);
	/* The name and address end up in file names, /etc/etcd.env lines and
	 * the OpenSSL SAN string ("DNS:name,IP:addr"): a ',', '/' or newline
	 * there would add SANs, escape the directory or inject settings. */
	if (!host_valid(a.host)) {
		rc = kf_err_set(&e, KF_EUSAGE, "unusable host name '%s' (want letters, digits, '-' and '.'; use --hostname)",
		                a.host);
		goto out;
	}
	{
		unsigned char sa[sizeof(struct in6_addr)];
		/* IPv4 only: etcd.env and the kubeadm configuration write the
		 * address into URLs without IPv6 brackets. */
		if (inet_pton(AF_INET, a.ip, sa) != 1) {
			rc = kf_err_set(&e, KF_EUSAGE, "--node-ip %s: not an IPv4 address", a.ip);
			goto out;
		}
	}

	printf("apply %s: role %s, host %s (%s), arch %s, root %s%s\n", a.bundle, a.role,
	       a.host, a.ip, a.arch, a.c.root[0] ? a.c.root : "/",
	       a.dry_run ? ", dry run" : "");
	if (a.mirror && (rc = fetch_mirror_ca(&a, &e)) != KF_OK)
		goto out;
	section("bundle");
	if ((rc = step_bundle(&a, &e)) != KF_OK)
		goto out;
	{
		int has = 0;
		for (size_t i = 0; i < a.lock->narch; i++)
			if (a.lock->archs[i] && !strcmp(a.lock->archs[i], a.arch))
				has = 1;
		if (!has) {
			rc = kf_err_set(&e, KF_EUSAGE, "bundle %s-%s has no %s artifacts",
			                a.lock->name, a.lock->version, a.arch);
			goto out;
		}
	}
	section("host: SELinux");
	if ((rc = step_selinux(&a, &e)) != KF_OK)
		goto out;
	section("host: swap");
	if ((rc = step_swap(&a, &e)) != KF_OK)
		goto out;
	section("host: kernel modules and sysctls");
	if ((rc = step_modules_sysctl(&a, &e)) != KF_OK)
		goto out;
	section("host: firewalld");
	if ((rc = step_firewalld(&a, &e)) != KF_OK)
		goto out;
	section("container runtime");
	if ((rc = step_runtime(&a, &e)) != KF_OK)
		goto out;
	section("kubernetes");
	if ((rc = step_kubernetes(&a, &e)) != KF_OK)
		goto out;
	if (a.control_plane && (!a.lock->install.etcd || !strcmp(a.lock->install.etcd, "host"))) {
		section("etcd (host)");
		if ((rc = step_etcd(&a, &e)) != KF_OK)
			goto out;
	}
	rc = write_applied(&a, &e);
out:
	if (rc != KF_OK && e.code) {
		if (ctx_ok)
			a.c.failed++;
		kf_err_print("kubeferry-install apply", &e);
	}
	if (ctx_ok)
		printf("ok=%d changed=%d failed=%d\n", a.c.ok, a.c.changed, a.c.failed);
	if (a.tmp_dir) {
		kf_err ign;
		kf_remove_tree(a.tmp_dir, &ign);
		free(a.tmp_dir);
	}
	free(a.bundle_dir);
	free(a.mirror_ca);
	kf_lock_free(a.lock);
	if (ctx_ok)
		kfi_ctx_free(&a.c);
	return rc;
}
