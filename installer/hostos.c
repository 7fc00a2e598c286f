/*
 * Which system a node runs, as the installer reads it from the node's root
 * (the live "/" or --root DIR): ROOT/etc/os-release, and the kernel release
 * from ROOT/proc/sys/kernel/osrelease, the file in which Linux publishes
 * what uname(2) returns. A root prepared for a test (or an image being
 * built) names its kernel by writing that file; without it, the running
 * kernel's release is taken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "installer/kf_installer.h"

/* Value of KEY= in os-release, unquoted. */
static void osr_value(const char *osr, const char *key, char *out, size_t n)
{
	size_t kl = strlen(key);

	out[0] = '\0';
	for (const char *l = osr; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, key, kl) && l[kl] == '=') {
			const char *v = l + kl + 1;
			size_t len = strcspn(v, "\n");
			if (len && (*v == '"' || *v == '\'')) {
				v++;
				len = len >= 2 ? len - 2 : 0;
			}
			if (kf_strf(out, n, "%.*s", (int)len, v) != 0)
				out[0] = '\0';
			return;
		}
	}
}

static int word_in(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

void kfi_os_probe(const char *root, kfi_os *os)
{
	char path[4096], *buf = NULL;
	size_t len;
	kf_err ign;

	memset(os, 0, sizeof *os);
	if (kf_strf(path, sizeof path, "%s/etc/os-release", root) == 0 &&
	    kf_read_file(path, 1 << 16, &buf, &len, &ign) == KF_OK) {
		os->found = 1;
		osr_value(buf, "ID", os->id, sizeof os->id);
		osr_value(buf, "ID_LIKE", os->like, sizeof os->like);
		osr_value(buf, "VERSION_ID", os->version_id, sizeof os->version_id);
		os->major = (int)strtol(os->version_id, NULL, 10); /* "9.4" is 9 */
	}
	free(buf);
	buf = NULL;
	if (!strcmp(os->id, "rocky") || !strcmp(os->id, "rhel") || !strcmp(os->id, "almalinux") ||
	    !strcmp(os->id, "centos") || word_in(os->like, "rhel"))
		os->el = os->major;
	if (kf_strf(path, sizeof path, "%s/proc/sys/kernel/osrelease", root) == 0 &&
	    kf_read_file(path, 256, &buf, &len, &ign) == KF_OK) {
		buf[strcspn(buf, " \t\r\n")] = '\0';
		snprintf(os->kernel, sizeof os->kernel, "%s", buf);
	} else {
		struct utsname u;
		if (uname(&u) == 0)
			snprintf(os->kernel, sizeof os->kernel, "%s", u.release);
	}
	free(buf);
}

const char *kfi_proxy_mode(const kfi_os *os, const kf_lock *lk)
{
	if (lk && lk->install.kube_proxy_mode)
		return lk->install.kube_proxy_mode;
	/* EL10 has no legacy iptables kernel modules (ip_tables and friends
	 * are gone from its kernel 6.12): kube-proxy's nftables mode, GA in
	 * 1.33. EL9 keeps the iptables mode kubeadm defaults to. */
	return os->el >= 10 ? "nftables" : "iptables";
}
