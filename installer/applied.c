/*
 * The node's install state under ROOT/var/lib/kubeferry/state/: "applied"
 * (what apply put on this node, read by cluster, mirror install and
 * status) and "mirror" (what mirror install serves, read by cluster
 * init). Both are "key: value" lines; this file is the only one that
 * reads or writes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

#define STATE_MAX (1 << 16)

/* The value of "key: value" in text (a new string), NULL when absent or
 * out of memory; "-" (apply's "none") reads as absent when dash_none. */
static char *field(const char *text, const char *key, int dash_none)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, kl) && l[kl] == ':' && l[kl + 1] == ' ') {
			const char *v = l + kl + 2;
			size_t n = strcspn(v, "\n");
			if (dash_none && n == 1 && v[0] == '-')
				return NULL;
			return strndup(v, n);
		}
	return NULL;
}

static char *state_path(const kfi_ctx *c, const char *name)
{
	return kfi_strf("%s/%s", c->state_dir, name);
}

static const char *dash(const char *s)
{
	return s ? s : "-";
}

int kfi_applied_write(const kfi_ctx *c, const kfi_applied *a, kf_err *e)
{
	char *p = NULL, *text = NULL;
	int rc;

	if ((rc = kf_mkdir_p(c->state_dir, 0700, e)) != KF_OK)
		goto out;
	p = state_path(c, "applied");
	text = kfi_strf("bundle: %s\nkubernetes: %s\nrole: %s\nhostname: %s\n"
	                "node_ip: %s\narch: %s\nbundle_dir: %s\nmirror: %s\n"
	                "mirror_fp: %s\nkube_proxy_mode: %s\nselinux: %s\n",
	                a->bundle, a->kube_version ? a->kube_version : "?", a->role, a->host,
	                a->ip, a->arch, a->bundle_dir, dash(a->mirror), dash(a->mirror_fp),
	                a->proxy_mode ? a->proxy_mode : "iptables",
	                a->selinux ? a->selinux : "permissive");
	if (!p || !text) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_write_file_atomic(p, text, strlen(text), 0644, 1, e);
out:
	free(p);
	free(text);
	return rc;
}

int kfi_applied_load(const kfi_ctx *c, kfi_applied *a, kf_err *e)
{
	char *text = NULL;
	size_t len;
	int rc;

	memset(a, 0, sizeof *a);
	if (!(a->path = state_path(c, "applied"))) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (kf_read_file(a->path, STATE_MAX, &text, &len, e) != KF_OK) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: run 'kubeferry-install apply' on this node first",
		                a->path);
		goto out;
	}
	a->bundle = field(text, "bundle", 0);
	a->kube_version = field(text, "kubernetes", 0);
	a->role = field(text, "role", 0);
	a->host = field(text, "hostname", 0);
	a->ip = field(text, "node_ip", 0);
	a->arch = field(text, "arch", 0);
	a->bundle_dir = field(text, "bundle_dir", 0);
	a->mirror = field(text, "mirror", 1);
	a->mirror_fp = field(text, "mirror_fp", 1);
	a->proxy_mode = field(text, "kube_proxy_mode", 1);
	a->selinux = field(text, "selinux", 1);
	rc = KF_OK;
	if (!a->bundle_dir || !a->role || !a->host || !a->ip)
		rc = kf_err_set(e, KF_EIO, "%s: incomplete; re-run apply", a->path);
out:
	free(text);
	return rc;
}

void kfi_applied_free(kfi_applied *a)
{
	free(a->path);
	free(a->bundle);
	free(a->kube_version);
	free(a->role);
	free(a->host);
	free(a->ip);
	free(a->arch);
	free(a->selinux);
	free(a->bundle_dir);
	free(a->mirror);
	free(a->mirror_fp);
	free(a->proxy_mode);
	memset(a, 0, sizeof *a);
}

int kfi_mirror_state_write(kfi_ctx *c, const char *mirror, const char *fp, kf_err *e)
{
	char *info = kfi_strf("mirror: %s\nmirror_fp: %s\n", mirror, fp);
	int rc;

	if (!info)
		return kf_err_set(e, KF_EIO, "out of memory");
	rc = kfi_put_file(c, KFI_STATE_DIR "/mirror", info, strlen(info), 0644, NULL, e);
	free(info);
	return rc;
}

int kfi_mirror_state_load(const kfi_ctx *c, char **mirror, char **fp)
{
	char *p = state_path(c, "mirror"), *text = NULL;
	size_t len;
	kf_err ign;

	*mirror = *fp = NULL;
	if (p && kf_read_file(p, 4096, &text, &len, &ign) == KF_OK) {
		*mirror = field(text, "mirror", 1);
		*fp = field(text, "mirror_fp", 1);
	}
	free(p);
	free(text);
	if (*mirror && *fp)
		return KF_OK;
	free(*mirror);
	free(*fp);
	*mirror = *fp = NULL;
	return -1;
}

/* The context under root and this node's applied state: how init, join and
 * mirror install start. *ctx_ok is set once c must be freed. */
int kfi_node_open(const char *root, kfi_ctx *c, int *ctx_ok, kfi_applied *s, kf_err *e)
{
	int rc = kfi_ctx_init(c, root, 0, e);

	if (rc != KF_OK)
		return rc;
	*ctx_ok = 1;
	return kfi_applied_load(c, s, e);
}


kf_lock *kfi_applied_lock(const kfi_ctx *c, const kfi_applied *st)
{
	char *p = st->bundle_dir ? kfi_strf("%s%s.bundle.yaml", c->root, st->bundle_dir) : NULL;
	char *text = NULL;
	size_t len;
	kf_lock *lk = NULL;
	kf_err ign;

	if (p && kf_read_file(p, KF_LOCK_MAX, &text, &len, &ign) == KF_OK &&
	    kf_lock_parse(text, len, p, &lk, &ign) != KF_OK)
		lk = NULL;
	free(p);
	free(text);
	return lk;
}
