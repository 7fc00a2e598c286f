/*
 * Which etcd and containerd versions a Kubernetes minor supports: facts
 * from upstream, kept here with their sources, so that `upgrade plan` can
 * refuse a bundle whose etcd or containerd the target Kubernetes does not
 * support, offline.
 *
 *  - containerd: the "Kubernetes support" table of containerd's
 *    RELEASES.md (github.com/containerd/containerd, as of its 2.1
 *    releases): for each Kubernetes minor, the oldest supported patch of
 *    each containerd series. A series newer than every one listed for a
 *    minor is accepted (containerd keeps CRI v1); an older one is not.
 *  - etcd: "Operating etcd clusters for Kubernetes" (kubernetes.io):
 *    the minimum recommended versions for production are 3.4.22+ and
 *    3.5.6+; 3.6 is accepted from Kubernetes 1.34 (kubeadm's default etcd
 *    moved to the 3.6 series there).
 *
 * A minor not in the table is "unknown": reported, not refused.
 */
#include <stdio.h>
#include <string.h>

#include "installer/kf_installer.h"

struct series_min {
	int major, minor, patch;
};

static const struct {
	int kube_minor;
	struct series_min min[4];   /* oldest supported patch per series */
} containerd_table[] = {
	{29, {{1, 7, 11}, {1, 6, 27}}},
	{30, {{1, 7, 13}, {1, 6, 28}}},
	{31, {{2, 0, 0}, {1, 7, 20}, {1, 6, 34}}},
	{32, {{2, 1, 0}, {2, 0, 1}, {1, 7, 24}, {1, 6, 36}}},
	{33, {{2, 1, 0}, {2, 0, 1}, {1, 7, 24}, {1, 6, 36}}},
	{34, {{2, 1, 0}, {2, 0, 1}, {1, 7, 24}}},
};

/* Compare {a, b, c} with series minimum m: <0, 0, >0. */
static int cmp3(const int v[3], const struct series_min *m)
{
	if (v[0] != m->major)
		return v[0] < m->major ? -1 : 1;
	if (v[1] != m->minor)
		return v[1] < m->minor ? -1 : 1;
	return v[2] < m->patch ? -1 : v[2] > m->patch;
}

/* containerd's and etcd's own version strings: "1.7.24", "v1.7.24",
 * "1.6.20~ds1" (Debian), "3.5.21-0" (kubeadm's image tags). */
static int parse_loose(const char *s, int v[3])
{
	char buf[64];
	size_t n;

	if (!s)
		return -1;
	if (*s == 'v')
		s++;
	n = strspn(s, "0123456789.");
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return kfi_version_parse(buf, v);
}

int kfi_support_containerd(int kube_minor, const char *version, char *why, size_t n)
{
	int v[3], newest_major = -1, newest_minor = -1;

	if (parse_loose(version, v) != 0)
		return kf_strf(why, n, "containerd version '%s' cannot be read", version ? version : ""), -1;
	for (size_t i = 0; i < sizeof containerd_table / sizeof containerd_table[0]; i++) {
		if (containerd_table[i].kube_minor != kube_minor)
			continue;
		for (size_t j = 0; j < 4 && containerd_table[i].min[j].major; j++) {
			const struct series_min *m = &containerd_table[i].min[j];
			if (m->major > newest_major || (m->major == newest_major && m->minor > newest_minor)) {
				newest_major = m->major;
				newest_minor = m->minor;
			}
			if (v[0] == m->major && v[1] == m->minor) {
				if (cmp3(v, m) >= 0)
					return 1;
				kf_strf(why, n, "Kubernetes 1.%d needs containerd %d.%d.%d or later in the %d.%d series",
				        kube_minor, m->major, m->minor, m->patch, m->major, m->minor);
				return 0;
			}
		}
		if (v[0] > newest_major || (v[0] == newest_major && v[1] > newest_minor))
			return 1;
		kf_strf(why, n, "containerd %d.%d is not a series Kubernetes 1.%d supports", v[0], v[1],
		        kube_minor);
		return 0;
	}
	kf_strf(why, n, "this installer has no containerd support facts for Kubernetes 1.%d", kube_minor);
	return -1;
}

int kfi_support_etcd(int kube_minor, const char *version, char *why, size_t n)
{
	int v[3];

	if (parse_loose(version, v) != 0)
		return kf_strf(why, n, "etcd version '%s' cannot be read", version ? version : ""), -1;
	if (kube_minor < 29 || kube_minor > 35) {
		kf_strf(why, n, "this installer has no etcd support facts for Kubernetes 1.%d", kube_minor);
		return -1;
	}
	if (v[0] == 3 && v[1] == 4 && v[2] >= 22)
		return 1;
	if (v[0] == 3 && v[1] == 5 && v[2] >= 6)
		return 1;
	if (v[0] == 3 && v[1] >= 6 && kube_minor >= 34)
		return 1;
	kf_strf(why, n, "Kubernetes 1.%d needs etcd 3.4.22+ or 3.5.6+%s (etcd %d.%d.%d)", kube_minor,
	        kube_minor >= 34 ? " or 3.6" : "", v[0], v[1], v[2]);
	return 0;
}
