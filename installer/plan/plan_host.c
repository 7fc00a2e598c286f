/*
 * DIR/hosts/<name>/: the complete share of one host, nothing else needed
 * on that node (never the CA keys it does not use: a worker gets the
 * mirror CA certificate and its JoinConfiguration, no key at all).
 *
 *   host.yaml                    who the host is, where each file goes
 *   mirror-ca.crt                every host (the CA only, never its key)
 *   etcd.env, etcd-ssl/          etcd members: Kubespray's names and layout
 *   pki/                         control planes: the CAs kubeadm reuses,
 *                                sa.key/sa.pub, etcd/ca.crt and the
 *                                host-neutral etcd client pair
 *   encryption-config.yaml,
 *   audit-policy.yaml            control planes (the shared bytes)
 *   kubeadm.yaml                 control planes and workers
 *   mirror-tls/                  mirror hosts: server.crt/.key, chain.crt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/kf_mirror.h"
#include "installer/plan/plan.h"

/* Append "KIND:value" to a SAN list unless it is there already. */
static void san_add(kf_buf *b, const char *kind, const char *v)
{
	char item[300];
	size_t l;

	if (kf_strf(item, sizeof item, "%s:%s", kind, v))
		return;
	l = strlen(item);
	for (const char *s = b->len ? b->p : ""; *s; s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',')) {
		if (strcspn(s, ",") == l && !strncmp(s, item, l))
			return;
	}
	kf_buf_addf(b, "%s%s", b->len ? "," : "", item);
}

static char *host_sans(const kf_inv_host *h, int etcd)
{
	kf_buf b;

	kf_buf_init(&b);
	if (!etcd)
		san_add(&b, "IP", h->access_ip);
	san_add(&b, "IP", h->ip);
	san_add(&b, "IP", h->access_ip);
	san_add(&b, "DNS", h->name);
	san_add(&b, "DNS", h->node_name);
	san_add(&b, "DNS", "localhost");
	san_add(&b, "IP", "127.0.0.1");
	if (etcd)
		san_add(&b, "IP", "::1");
	return kf_buf_take(&b);
}

/* shared/<name> copied to <share>/<dst>. */
static int from_shared(kfp_plan *p, const char *share, const char *name, const char *dst,
                       mode_t mode, kf_err *e)
{
	char src[4096], to[4096];
	int rc;

	if ((rc = kfp_path(p, src, sizeof src, e, "shared/%s", name)) ||
	    kf_strf(to, sizeof to, "%s/%s", share, dst))
		return rc ? rc : kf_err_set(e, KF_EUSAGE, "path too long under %s", share);
	return kfp_copy(p, src, to, mode, e);
}

static int put_text(kfp_plan *p, const char *share, const char *name, char *text, mode_t mode,
                    kf_err *e)
{
	char to[4096];
	int rc;

	if (!text)
		return kf_err_set(e, KF_EIO, "out of memory");
	if (kf_strf(to, sizeof to, "%s/%s", share, name))
		rc = kf_err_set(e, KF_EUSAGE, "path too long under %s", share);
	else
		rc = kfp_put(p, to, text, strlen(text), mode, e);
	free(text);
	return rc;
}

static int subdir(const char *share, const char *name, char *out, size_t n, kf_err *e)
{
	if (kf_strf(out, n, "%s/%s", share, name))
		return kf_err_set(e, KF_EUSAGE, "path too long under %s", share);
	return kfp_mkdir(out, e);
}

/* Kubespray's etcd files: ca.pem and, per host, member-, admin- and node-
 * certificates with the host's names and addresses. */
static int etcd_share(kfp_plan *p, const kf_inv_host *h, const char *share, kf_err *e)
{
	static const char *const kinds[] = {"member", "admin", "node"};
	char d[4096], crt[4096], key[4096], cn[300];
	char *san = host_sans(h, 1);
	int rc;

	if (!san)
		return kf_err_set(e, KF_EIO, "out of memory");
	if ((rc = subdir(share, "etcd-ssl", d, sizeof d, e)) ||
	    (rc = from_shared(p, share, "etcd-ca.crt", "etcd-ssl/ca.pem", 0644, e)))
		goto out;
	for (size_t i = 0; i < 3 && !rc; i++) {
		kf_x509_profile prof;
		snprintf(cn, sizeof cn, "etcd-%s-%s", kinds[i], h->name);
		prof = kfi_etcd_profile(cn, san);
		if (kf_strf(crt, sizeof crt, "%s/%s-%s.pem", d, kinds[i], h->name) ||
		    kf_strf(key, sizeof key, "%s/%s-%s-key.pem", d, kinds[i], h->name))
			rc = kf_err_set(e, KF_EUSAGE, "path too long under %s", d);
		else
			rc = kfp_leaf(p, crt, key, &prof, p->etcd_ca, p->etcd_key, e);
	}
	if (rc == KF_OK)
		rc = put_text(p, share, "etcd.env", kfp_render_etcd_env(p, h), 0644, e);
out:
	free(san);
	return rc;
}

/* The files kubeadm reuses when they are in place before init or join. */
static int control_plane_share(kfp_plan *p, const char *share, kf_err *e)
{
	static const struct { const char *src, *dst; mode_t mode; int external; } files[] = {
		{"ca.crt", "pki/ca.crt", 0644, -1},
		{"ca.key", "pki/ca.key", 0600, -1},
		{"front-proxy-ca.crt", "pki/front-proxy-ca.crt", 0644, -1},
		{"front-proxy-ca.key", "pki/front-proxy-ca.key", 0600, -1},
		{"sa.key", "pki/sa.key", 0600, -1},
		{"sa.pub", "pki/sa.pub", 0644, -1},
		{"etcd-ca.crt", "pki/etcd/ca.crt", 0644, -1},
		/* Stacked etcd: kubeadm issues the members' certificates itself. */
		{"etcd-ca.key", "pki/etcd/ca.key", 0600, 0},
		{"apiserver-etcd-client.crt", "pki/apiserver-etcd-client.crt", 0644, 1},
		{"apiserver-etcd-client.key", "pki/apiserver-etcd-client.key", 0600, 1},
		{"encryption-config.yaml", "encryption-config.yaml", 0600, -1},
		{"audit-policy.yaml", "audit-policy.yaml", 0644, -1},
	};
	char d[4096];
	int rc;

	if ((rc = subdir(share, "pki", d, sizeof d, e)) ||
	    (rc = subdir(share, "pki/etcd", d, sizeof d, e)))
		return rc;
	for (size_t i = 0; i < sizeof files / sizeof files[0] && !rc; i++)
		if (files[i].external < 0 || files[i].external == p->external_etcd)
			rc = from_shared(p, share, files[i].src, files[i].dst, files[i].mode, e);
	return rc;
}

/* The mirror's server certificate from the planned mirror CA, and the
 * chain it serves (server, then CA) so nodes see the CA they pinned. */
static int mirror_share(kfp_plan *p, const kf_inv_host *h, const char *share, kf_err *e)
{
	char d[4096], crt[4096], key[4096], ca[4096];
	char *san = host_sans(h, 0), *a = NULL, *b = NULL;
	size_t la, lb;
	kf_x509_profile prof;
	kf_buf chain;
	int rc;

	kf_buf_init(&chain);
	if (!san)
		return kf_err_set(e, KF_EIO, "out of memory");
	prof = kfp_mirror_profile(h->access_ip, san);
	if ((rc = subdir(share, "mirror-tls", d, sizeof d, e)) ||
	    (rc = kfp_path(p, ca, sizeof ca, e, "shared/mirror-ca.crt")))
		goto out;
	if (kf_strf(crt, sizeof crt, "%s/server.crt", d) || kf_strf(key, sizeof key, "%s/server.key", d)) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long under %s", d);
		goto out;
	}
	if ((rc = kfp_leaf(p, crt, key, &prof, p->mirror_ca, p->mirror_key, e)) ||
	    (rc = kf_read_file(crt, 1 << 20, &a, &la, e)) ||
	    (rc = kf_read_file(ca, 1 << 20, &b, &lb, e)))
		goto out;
	kf_buf_add(&chain, a, la);
	kf_buf_add(&chain, b, lb);
	rc = put_text(p, share, "mirror-tls/" KF_MIRROR_CHAIN_FILE, kf_buf_take(&chain), 0644, e);
out:
	kf_buf_free(&chain);
	free(san);
	free(a);
	free(b);
	return rc;
}

int kfp_host_share(kfp_plan *p, const kf_inv_host *h, kf_err *e)
{
	char share[4096];
	unsigned r = h->roles;
	int rc;

	if ((rc = kfp_path(p, share, sizeof share, e, "hosts/%s", h->name)) ||
	    (rc = kfp_mkdir(share, e)) ||
	    (rc = from_shared(p, share, "mirror-ca.crt", "mirror-ca.crt", 0644, e)))
		return rc;
	if ((r & KF_ROLE_ETCD) && p->external_etcd && (rc = etcd_share(p, h, share, e)))
		return rc;
	if ((r & KF_ROLE_CONTROL_PLANE) && (rc = control_plane_share(p, share, e)))
		return rc;
	if ((r & (KF_ROLE_CONTROL_PLANE | KF_ROLE_WORKER)) &&
	    (rc = put_text(p, share, "kubeadm.yaml", kfp_render_kubeadm(p, h), 0600, e)))
		return rc;
	if ((r & KF_ROLE_MIRROR) && (rc = mirror_share(p, h, share, e)))
		return rc;
	return put_text(p, share, "host.yaml", kfp_render_host_yaml(p, h), 0644, e);
}
