/*
 * What apply finds out about the node before changing it: architecture,
 * address, host name, and the root files it edits in place.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "installer/apply/apply.h"

void kfi_host_arch(char *out, size_t n)
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
void kfi_node_ip(char *out, size_t n)
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

int kfi_dns_name_valid(const char *h, int any_case)
{
	size_t n = strlen(h), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		char ch = h[i];
		if (ch == '.' || ch == '\0') {
			/* A label: 1 to 63 characters, no '-' at either end. */
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      (any_case && ch >= 'A' && ch <= 'Z')))
			return 0;
		if (ch == '-' && label == 0)
			return 0;
		label++;
	}
	return 1;
}

int kfi_node_name_valid(const char *h)
{
	/* kubelet registers the node under this name, which must be a
	 * lowercase RFC 1123 subdomain; "localhost" (and EL's unset
	 * "localhost.localdomain") would collide on every node. */
	return kfi_dns_name_valid(h, 0) && strcmp(h, "localhost") &&
	       strncmp(h, "localhost.", 10);
}

void kfi_node_hostname(const apply *a, char *out, size_t n)
{
	char *p = kfi_path(&a->c, "/etc/hostname"), *buf = NULL;
	size_t len;
	kf_err ign;

	out[0] = '\0';
	/* In --root mode the root's own name wins over the build host's. */
	if (a->c.root[0] && p && kf_read_file(p, 4096, &buf, &len, &ign) == KF_OK) {
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
int kfi_read_root_file(const apply *a, const char *abs, char **buf, size_t *len,
                       kf_err *e)
{
	char *p = kfi_path(&a->c, abs);
	struct stat st;
	int rc;

	if (!p) {
		rc = kfi_oom(e);
		goto out;
	}
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

int kfi_root_exists(const apply *a, const char *abs)
{
	char *p = kfi_path(&a->c, abs);
	/* Out of memory reads as present: the caller then plans the step
	 * rather than skipping it. */
	int r = !p || access(p, F_OK) == 0;

	free(p);
	return r;
}
