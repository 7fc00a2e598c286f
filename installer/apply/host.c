/*
 * Host preparation: SELinux permissive, swap off, the kernel modules and
 * sysctls Kubernetes needs (firewalld: apply/firewalld.c). Edits of existing
 * files (SELinux config, fstab) rewrite only the lines that matter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/apply/apply.h"

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

	if ((rc = kfi_read_root_file(a, abs, &buf, &len, e)) != KF_OK)
		goto out;
	if (!(m = open_memstream(&out, &olen))) {
		rc = kfi_oom(e);
		goto out;
	}
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		size_t l = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		edit(m, line, l, arg);
		fputc('\n', m);
	}
	if (fclose(m) != 0 || !out) {
		rc = kfi_oom(e);
		goto out;
	}
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

int kfi_step_selinux(apply *a, kf_err *e)
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

int kfi_step_swap(apply *a, kf_err *e)
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

/* The kernel modules for this node: overlay and br_netfilter always;
 * nf_conntrack on every EL release (kube-proxy reads
 * /proc/sys/net/netfilter/nf_conntrack_max, which exists only once it is
 * loaded); nf_tables where kube-proxy runs in nftables mode or the
 * kernel has nothing else (EL10). */
static void node_modules(const apply *a, const char **mods)
{
	size_t n = 0;

	mods[n++] = "overlay";
	mods[n++] = "br_netfilter";
	if (a->os.el)
		mods[n++] = "nf_conntrack";
	if (a->os.el >= 10 || !strcmp(kfi_proxy_mode(&a->os, a->lock), "nftables"))
		mods[n++] = "nf_tables";
	mods[n] = NULL;
}

int kfi_step_modules_sysctl(apply *a, kf_err *e)
{
	static const char *const sysctls[] = {"net/ipv4/ip_forward",
	                                      "net/bridge/bridge-nf-call-iptables",
	                                      "net/bridge/bridge-nf-call-ip6tables", NULL};
	const char *mods[8];
	int rc, sys_changed = 0, need = 0;
	kf_buf conf;

	node_modules(a, mods);
	printf("%-8s %s %s%s, kernel %s: kube-proxy mode %s\n", "node",
	       a->os.found ? a->os.id : "unknown OS", a->os.version_id,
	       a->os.el ? (a->os.el >= 10 ? " (EL10)" : " (EL9)") : "",
	       a->os.kernel[0] ? a->os.kernel : "?", kfi_proxy_mode(&a->os, a->lock));
	kf_buf_init(&conf);
	kf_buf_adds(&conf, kfi_tpl_modules_conf);
	for (size_t i = 0; mods[i]; i++)
		kf_buf_addf(&conf, "%s\n", mods[i]);
	if (!kf_buf_ok(&conf)) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_put_file(&a->c, "/etc/modules-load.d/kubeferry.conf", conf.p, conf.len, 0644,
	                       NULL, e)) != KF_OK)
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
	if ((rc = kfi_put_file(&a->c, "/etc/sysctl.d/99-kubeferry.conf", kfi_tpl_sysctl_conf,
	                       strlen(kfi_tpl_sysctl_conf), 0644, &sys_changed, e)) != KF_OK)
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
	kf_buf_free(&conf);
	return rc;
}
