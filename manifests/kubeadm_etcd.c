/*
 * install.etcd: kubeadm runs etcd as a static pod from the image kubeadm
 * picks for the Kubernetes release (the installer's ClusterConfiguration
 * sets imageRepository registry.k8s.io and no etcd imageTag). In a closed
 * network that image can only come from the bundle, so a spec asking for
 * stacked etcd must list it; otherwise `kubeadm init` fails on the node,
 * long after the build.
 *
 * The tags are kubeadm's SupportedEtcdVersion
 * (cmd/kubeadm/app/constants/constants.go) at each release tag:
 *   v1.32.10          "3.5.24-0"  (kubernetes#135019, in v1.32.10)
 *   v1.33.0 - v1.33.5 "3.5.21-0"  (the value 1.33.0 shipped with)
 *   v1.33.6           "3.5.24-0"  (kubernetes#135018, in v1.33.6)
 * A release not in the table still needs some registry.k8s.io/etcd image;
 * its tag is then the operator's to check (`kubeadm config images list`).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

static const struct {
	unsigned long minor, patch_min, patch_max;
	const char *tag;
} etcd_tags[] = {
	{32, 10, 10, "3.5.24-0"},
	{33, 0, 5, "3.5.21-0"},
	{33, 6, 6, "3.5.24-0"},
};

/* "1.33.3" or "v1.33.3" (a pre-release or build suffix after the patch is
 * ignored); 0 when v is not such a version. */
static int parse_version(const char *v, unsigned long out[3])
{
	const char *p = v;
	char *end;

	if (*p == 'v')
		p++;
	for (int i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9')
			return 0;
		errno = 0;
		out[i] = strtoul(p, &end, 10);
		if (errno || end == p)
			return 0;
		p = end;
		if (i < 2 && *p++ != '.')
			return 0;
	}
	return *p == '\0' || *p == '-' || *p == '+';
}

const char *kf_kubeadm_etcd_tag(const char *kube_version)
{
	unsigned long v[3];

	if (!kube_version || !parse_version(kube_version, v) || v[0] != 1)
		return NULL;
	for (size_t i = 0; i < sizeof etcd_tags / sizeof etcd_tags[0]; i++)
		if (etcd_tags[i].minor == v[1] && v[2] >= etcd_tags[i].patch_min &&
		    v[2] <= etcd_tags[i].patch_max)
			return etcd_tags[i].tag;
	return NULL;
}

/* ref names repository repo (with a tag, a digest or both). */
static int ref_in_repo(const char *ref, const char *repo)
{
	size_t n = strlen(repo);
	return !strncmp(ref, repo, n) && (ref[n] == ':' || ref[n] == '@');
}

int kf_spec_check_kubeadm_etcd(kf_yctx *c, const kf_ynode *at, const kf_spec *s)
{
	const char *tag = kf_kubeadm_etcd_tag(s->kube_version);
	char want[128];
	size_t n;

	if (!s->install.etcd || strcmp(s->install.etcd, "kubeadm"))
		return KF_OK;
	if (!tag) {
		for (size_t i = 0; i < s->nimg; i++)
			if (ref_in_repo(s->images[i].ref, KF_KUBEADM_ETCD_REPO))
				return KF_OK;
		return kf_ytree_fail(c, at, "install.etcd: kubeadm runs etcd from the image kubeadm "
		                     "%s pulls (%s:TAG, see `kubeadm config images list`), but "
		                     "spec.images has no %s image; add it, or use install.etcd: host",
		                     s->kube_version, KF_KUBEADM_ETCD_REPO, KF_KUBEADM_ETCD_REPO);
	}
	if (kf_strf(want, sizeof want, "%s:%s", KF_KUBEADM_ETCD_REPO, tag) != 0)
		return kf_err_set(c->e, KF_EIO, "etcd image name too long");
	n = strlen(want);
	for (size_t i = 0; i < s->nimg; i++) {
		const char *r = s->images[i].ref;
		if (!strncmp(r, want, n) && (r[n] == '\0' || r[n] == '@'))
			return KF_OK;
	}
	return kf_ytree_fail(c, at, "install.etcd: kubeadm runs etcd from %s (kubeadm's image "
	                     "for Kubernetes %s), which is not in spec.images; without it an "
	                     "air-gapped kubeadm init fails: add \"- ref: %s\", or use "
	                     "install.etcd: host", want, s->kube_version, want);
}
