/*
 * Installing a host's share of a plan (DIR/hosts/<name>/, see plan_host.c)
 * on that host, through the step engine: every file compared first,
 * journaled, written durably, so apply, cluster init/join and mirror
 * install can each place the part they need and a re-run changes nothing.
 * Only regular files are taken from a share; keys land 0600.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirror/kf_mirror.h"
#include "installer/plan/plan.h"

/* Keys and files holding secrets 0600; etcd.env 0640 as apply writes it
 * for a single node; everything else 0644. */
static unsigned mode_of(const char *name)
{
	size_t l = strlen(name);

	if ((l > 4 && !strcmp(name + l - 4, ".key")) || (l > 8 && !strcmp(name + l - 8, "-key.pem")) ||
	    !strcmp(name, "encryption-config.yaml") || !strcmp(name, "kubeadm.yaml"))
		return 0600;
	return strcmp(name, "etcd.env") ? 0644 : 0640;
}

static int put_one(kfi_ctx *c, const char *src, const char *name, const char *dst_abs,
                   int *changed, kf_err *e)
{
	struct stat st;
	int ch = 0, rc;

	if (lstat(src, &st) != 0)
		return kf_err_errno(e, "cannot read the share's", src);
	if (!S_ISREG(st.st_mode))
		return kf_err_set(e, KF_EUSAGE, "%s: not a regular file (a share holds files only)", src);
	rc = kfi_put_file_from(c, dst_abs, src, mode_of(name), &ch, e);
	*changed |= ch;
	return rc;
}

/* Every file of share/<rel>/ (and its sub-directories) into dst_abs/. */
static int put_tree(kfi_ctx *c, const char *src_dir, const char *dst_abs, int depth,
                    int *changed, kf_err *e)
{
	struct dirent **ents = NULL;
	int n = scandir(src_dir, &ents, NULL, alphasort), rc = KF_OK;
	char src[4096], dst[4096];

	if (n < 0)
		return kf_err_errno(e, "cannot read the share's", src_dir);
	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		struct stat st;
		if (rc || nm[0] == '.')
			goto next;
		if (kf_strf(src, sizeof src, "%s/%s", src_dir, nm) ||
		    kf_strf(dst, sizeof dst, "%s/%s", dst_abs, nm)) {
			rc = kf_err_set(e, KF_EUSAGE, "path too long under %s", src_dir);
			goto next;
		}
		if (lstat(src, &st) == 0 && S_ISDIR(st.st_mode))
			rc = depth > 2 ? kf_err_set(e, KF_EUSAGE, "%s: nested too deeply", src)
			               : put_tree(c, src, dst, depth + 1, changed, e);
		else
			rc = put_one(c, src, nm, dst, changed, e);
next:
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static int put_rel(kfi_ctx *c, const kf_share *s, const char *rel, const char *dst_abs,
                   int tree, int *changed, kf_err *e)
{
	char src[4096];
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;

	if (kf_strf(src, sizeof src, "%s/%s", s->dir, rel))
		return kf_err_set(e, KF_EUSAGE, "path too long under %s", s->dir);
	return tree ? put_tree(c, src, dst_abs, 0, changed, e)
	            : put_one(c, src, base, dst_abs, changed, e);
}

int kfi_share_install(kfi_ctx *c, const kf_share *s, unsigned what, int *changed, kf_err *e)
{
	int rc = KF_OK, ch = 0, etcd = (s->roles & KF_ROLE_ETCD) && s->etcd_member_name;
	int cp = (s->roles & KF_ROLE_CONTROL_PLANE) != 0;

	if ((what & KFI_SHARE_ETCD) && etcd &&
	    ((rc = put_rel(c, s, "etcd.env", KFP_ETCD_ENV, 0, &ch, e)) ||
	     (rc = put_rel(c, s, "etcd-ssl", KFP_ETCD_SSL, 1, &ch, e))))
		goto out;
	if ((what & KFI_SHARE_PKI) && cp &&
	    ((rc = put_rel(c, s, "pki", KFP_PKI, 1, &ch, e)) ||
	     (rc = put_rel(c, s, "encryption-config.yaml", KFP_ENCRYPTION, 0, &ch, e)) ||
	     (rc = put_rel(c, s, "audit-policy.yaml", KFP_AUDIT_POLICY, 0, &ch, e))))
		goto out;
	if ((what & KFI_SHARE_KUBEADM) && (cp || (s->roles & KF_ROLE_WORKER)) &&
	    (rc = put_rel(c, s, "kubeadm.yaml", KFP_KUBEADM, 0, &ch, e)))
		goto out;
	if ((what & KFI_SHARE_MIRROR_TLS) && (s->roles & KF_ROLE_MIRROR))
		rc = put_rel(c, s, "mirror-tls", KFP_MIRROR_TLS, 1, &ch, e);
out:
	if (changed)
		*changed |= ch;
	return rc;
}

int kfi_share_mirror_ca(const kf_share *s, char **pem, size_t *len, kf_err *e)
{
	char path[4096];

	if (kf_strf(path, sizeof path, "%s/mirror-ca.crt", s->dir))
		return kf_err_set(e, KF_EUSAGE, "path too long under %s", s->dir);
	/* Pinned like a CA carried by hand: the fingerprint the plan recorded
	 * must be the file's, and only that one certificate is installed. */
	return kfi_mirror_ca_file(path, s->mirror_fp, pem, len, e);
}
