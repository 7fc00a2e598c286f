/*
 * Rollback protection, checked on the verified lock before anything on the
 * node changes. A validly signed older bundle is still an older bundle:
 * applied over a newer one it would put older binaries in place. So apply
 * refuses a bundle whose Kubernetes version is older than the applied one,
 * or that has the applied bundle's name and version but an older creation
 * time, unless --allow-downgrade. Independently, it never puts a kubelet
 * of a newer minor than the running control plane on a node: that is an
 * upgrade, which goes through kubeadm upgrade, control planes first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/apply/apply.h"

#define APISERVER_MANIFEST "/etc/kubernetes/manifests/kube-apiserver.yaml"

static int check_applied(const apply *a, const kf_lock *lk, kf_err *e)
{
	kfi_applied st;
	kf_lock *cur = NULL;
	kf_err ign;
	char *name = kfi_strf("%s-%s", lk->name, lk->version);
	int rc = KF_OK, cmp = 0;

	if (!name)
		return kfi_oom(e);
	if (kfi_applied_load(&a->c, &st, &ign) == KF_EUSAGE)
		goto out; /* nothing applied yet */
	if (st.kube_version && lk->kube_version &&
	    kfi_version_cmp(lk->kube_version, st.kube_version, &cmp) == 0 && cmp < 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: Kubernetes %s is older than the applied %s (bundle %s); "
		                "refusing a downgrade (--allow-downgrade to force it)",
		                a->bundle, lk->kube_version, st.kube_version, st.bundle ? st.bundle : "?");
		goto out;
	}
	/* The same name and version rebuilt: the newer build wins. */
	if (st.bundle && !strcmp(st.bundle, name) && (cur = kfi_applied_lock(&a->c, &st)) && cur->created &&
	    lk->created && strcmp(lk->created, cur->created) < 0)
		rc = kf_err_set(e, KF_EVERIFY, "%s: bundle %s built %s is older than the applied build of %s; "
		                "refusing a downgrade (--allow-downgrade to force it)",
		                a->bundle, name, lk->created, cur->created);
out:
	kf_lock_free(cur);
	kfi_applied_free(&st);
	free(name);
	return rc;
}

/* The control plane's version: the kube-apiserver image of this node's
 * static pod, else (live, joined) what the API server reports to kubectl.
 * 0 with *found 0 when none is known. */
static int control_plane_version(const apply *a, char *out, size_t n, int *found)
{
	char *text = NULL, *p = kfi_path(&a->c, APISERVER_MANIFEST), *img;
	size_t len;
	kf_err ign;

	*found = 0;
	if (!p)
		return -1;
	if (kf_read_file(p, 1 << 20, &text, &len, &ign) == KF_OK &&
	    (img = strstr(text, "/kube-apiserver:")) && img[16]) {
		img += 16;
		*found = kf_strf(out, n, "%.*s", (int)strcspn(img, " \t\r\n\"'@"), img) == 0;
	}
	free(text);
	free(p);
	if (!*found && a->c.live)
		*found = kfi_kubectl_server_version("/etc/kubernetes/kubelet.conf", out, n) == 0;
	return 0;
}

static int check_skew(const apply *a, const kf_lock *lk, kf_err *e)
{
	char cp[64];
	int found, v[3], c[3];

	if (control_plane_version(a, cp, sizeof cp, &found) != 0)
		return kfi_oom(e);
	if (!found || kfi_version_parse(lk->kube_version, v) != 0 || kfi_version_parse(cp, c) != 0)
		return KF_OK;
	if (v[0] > c[0] || (v[0] == c[0] && v[1] > c[1]))
		return kf_err_set(e, KF_EVERIFY, "%s: kubelet %s would be a newer minor than the running "
		                  "control plane (%s); upgrade the control plane first",
		                  a->bundle, lk->kube_version, cp);
	return KF_OK;
}

int kfi_apply_rollback_check(apply *a, const kf_lock *lk, kf_err *e)
{
	int rc = KF_OK;

	if (!a->allow_downgrade)
		rc = check_applied(a, lk, e);
	/* An upgrade has its own, whole-cluster checks (apply/upgrade.c). */
	if (rc == KF_OK && a->upgrade)
		rc = kfi_apply_upgrade_check(a, lk, e);
	else if (rc == KF_OK && lk->kube_version)
		rc = check_skew(a, lk, e);
	return rc;
}
