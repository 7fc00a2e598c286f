/*
 * cluster init --plan and cluster join --plan on a node: kubeadm from the
 * host's share of a cluster plan (DIR/hosts/<name>/). The planned CAs,
 * service-account keys, encryption and audit files are put in place before
 * kubeadm runs (kubeadm reuses CA files it finds), and the planned
 * kubeadm.yaml is used as it is.
 *
 * The join material outlives kubeadm's own clocks: the bootstrap token
 * lives 24 h, the uploaded kubeadm-certs Secret 2 h. On the first control
 * plane every re-run of `cluster init --plan` re-creates the planned token
 * and re-uploads the certificates (with the planned certificate key) when
 * they would have expired by now, so a join that follows always finds
 * them. When each was last made is kept in the state directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "installer/plan/plan.h"

#define ADMIN_CONF "/etc/kubernetes/admin.conf"
#define KUBELET_CONF "/etc/kubernetes/kubelet.conf"
#define KUBEADM_BIN "/usr/local/bin/kubeadm"
/* Re-made with an hour (token) or a quarter of an hour (certificates) to
 * spare, so a join started right after the check still finds them. */
#define TOKEN_REFRESH_AFTER (23L * 3600)
#define CERTS_REFRESH_AFTER (105L * 60)
#define STAMP_FILE "plan-secrets"

/* The value after "key" on a line of text, without quotes. */
static int line_value(const char *text, const char *key, char *out, size_t n)
{
	const char *v = strstr(text, key);
	size_t l;

	if (!v)
		return -1;
	v += strlen(key);
	if (*v == '"')
		v++;
	l = strcspn(v, "\"\r\n");
	if (l == 0 || l >= n)
		return -1;
	memcpy(out, v, l);
	out[l] = '\0';
	return 0;
}

int kfi_plan_join_secrets(const kf_share *s, kfi_plan_secrets *ps, kf_err *e)
{
	char path[4096], *text = NULL;
	size_t len;
	int rc;

	memset(ps, 0, sizeof *ps);
	if (kf_strf(path, sizeof path, "%s/kubeadm.yaml", s->dir))
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", s->dir);
	if ((rc = kf_read_file(path, 1 << 20, &text, &len, e)))
		return rc;
	/* The first control plane's InitConfiguration names the token as a
	 * bootstrapTokens item, the others' JoinConfiguration as a field. */
	if ((line_value(text, "- token: ", ps->token, sizeof ps->token) &&
	     line_value(text, "    token: ", ps->token, sizeof ps->token)) ||
	    strlen(ps->token) != 23)
		rc = kf_err_set(e, KF_EUSAGE, "%s: no bootstrap token", path);
	else if ((s->roles & KF_ROLE_CONTROL_PLANE) &&
	         (line_value(text, "certificateKey: ", ps->certkey, sizeof ps->certkey) ||
	          strlen(ps->certkey) != 64))
		rc = kf_err_set(e, KF_EUSAGE, "%s: no certificate key", path);
	if (rc == KF_OK && s->first_cp)
		line_value(text, "\nmode: ", ps->proxy_mode, sizeof ps->proxy_mode);
	free(text);
	if (rc)
		return rc;
	if (s->roles & KF_ROLE_CONTROL_PLANE) {
		char ca[4096];
		if (kf_strf(ca, sizeof ca, "%s/pki/ca.crt", s->dir))
			return kf_err_set(e, KF_EUSAGE, "path too long: %s", s->dir);
		return kfi_ca_cert_hash(ca, ps->hash, e);
	}
	return KF_OK;
}

int kfi_plan_cluster_files(kfi_ctx *c, const kf_share *s, kf_err *e)
{
	printf("== planned PKI, encryption, audit and kubeadm configuration (host %s)\n", s->name);
	return kfi_share_install(c, s, KFI_SHARE_PKI | KFI_SHARE_KUBEADM, NULL, e);
}

/* When the token and the certificates were last made: 0 when unknown. */
static void stamp_load(const kfi_ctx *c, long *token_at, long *certs_at)
{
	char path[4096], *buf = NULL, *v;
	size_t len;
	kf_err ign;

	*token_at = *certs_at = 0;
	if (kf_strf(path, sizeof path, "%s/" STAMP_FILE, c->state_dir) ||
	    kf_read_file(path, 4096, &buf, &len, &ign) != KF_OK)
		return;
	if ((v = strstr(buf, "token: ")))
		*token_at = strtol(v + 7, NULL, 10);
	if ((v = strstr(buf, "certs: ")))
		*certs_at = strtol(v + 7, NULL, 10);
	free(buf);
}

static int stamp_write(const kfi_ctx *c, long token_at, long certs_at, kf_err *e)
{
	char path[4096], text[128];

	if (c->dry_run)
		return KF_OK;
	if (kf_strf(path, sizeof path, "%s/" STAMP_FILE, c->state_dir) ||
	    kf_strf(text, sizeof text, "token: %ld\ncerts: %ld\n", token_at, certs_at))
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", c->state_dir);
	return kf_write_file_atomic(path, text, strlen(text), 0600, 1, e);
}

int kfi_plan_refresh(kfi_ctx *c, const kf_share *s, const kfi_plan_secrets *ps, int initialised,
                     kf_err *e)
{
	long now = (long)time(NULL), token_at, certs_at;
	char id[8];
	int rc = KF_OK;

	stamp_load(c, &token_at, &certs_at);
	if (initialised) {
		/* kubeadm init just made both. */
		token_at = certs_at = now;
		return stamp_write(c, token_at, certs_at, e);
	}
	snprintf(id, sizeof id, "%.6s", ps->token);
	if (now - token_at >= TOKEN_REFRESH_AFTER) {
		/* An expired token may still exist until it is collected:
		 * delete it first (failing is fine: it is gone), then create
		 * the planned one again for another 24 hours. */
		const char *del[] = {KUBEADM_BIN, "token", "delete", id, "--kubeconfig", ADMIN_CONF, NULL};
		const char *mk[] = {KUBEADM_BIN, "token", "create", ps->token, "--ttl", "24h0m0s",
		                    "--description", "kubeferry join token", "--kubeconfig", ADMIN_CONF, NULL};
		kfi_run_soft(c, del, "the token did not exist");
		if ((rc = kfi_run(c, mk, e)))
			return rc;
		token_at = now;
	} else {
		printf("%-8s bootstrap token %s. valid for %ld more minutes\n", "ok", id,
		       (24L * 3600 - (now - token_at)) / 60);
		c->ok++;
	}
	if ((s->roles & KF_ROLE_CONTROL_PLANE) && now - certs_at >= CERTS_REFRESH_AFTER) {
		/* The certificate key is the planned one: kubeadm-config.yaml's
		 * InitConfiguration carries it, so every control plane's
		 * JoinConfiguration still decrypts the Secret. */
		const char *up[] = {KUBEADM_BIN, "init", "phase", "upload-certs", "--upload-certs",
		                    "--config", KFP_KUBEADM, NULL};
		if ((rc = kfi_run(c, up, e)))
			return rc;
		certs_at = now;
	} else {
		printf("%-8s uploaded certificates valid for %ld more minutes\n", "ok",
		       (2L * 3600 - (now - certs_at)) / 60);
		c->ok++;
	}
	return stamp_write(c, token_at, certs_at, e);
}

int kfi_cluster_join_plan(const char *root, const char *plan, const char *host)
{
	kfi_ctx c;
	kfi_applied st = {0};
	kf_share *s = NULL;
	kf_err e = {0};
	int rc, ctx_ok = 0, has;
	char *kc = NULL;

	if ((rc = kfi_node_open(root, &c, &ctx_ok, &st, &e)) ||
	    (rc = kf_share_load(plan, host, &s, &e)))
		goto out;
	if (s->first_cp) {
		rc = kf_err_set(&e, KF_EUSAGE, "%s is the plan's first control plane: run "
		                "'cluster init --plan' on it", host);
		goto out;
	}
	if (!(s->roles & (KF_ROLE_CONTROL_PLANE | KF_ROLE_WORKER))) {
		rc = kf_err_set(&e, KF_EUSAGE, "%s is neither a control plane nor a worker in the plan", host);
		goto out;
	}
	if ((rc = kfi_plan_cluster_files(&c, s, &e)))
		goto out;
	printf("== kubeadm join (%s)\n", s->roles & KF_ROLE_CONTROL_PLANE ? "control plane" : "worker");
	if (!(kc = kfi_path(&c, KUBELET_CONF))) {
		rc = kfi_oom(&e);
		goto out;
	}
	has = access(kc, F_OK) == 0;
	if (has) {
		printf("%-8s kubeadm join (%s exists)\n", "ok", KUBELET_CONF);
		c.ok++;
	} else {
		/* Everything is in the planned JoinConfiguration: the endpoint,
		 * the token, the CA pin, node-ip, and for control planes the
		 * certificate key and advertiseAddress. */
		const char *argv[] = {KUBEADM_BIN, "join", "--config", KFP_KUBEADM, NULL};
		rc = kfi_run(&c, argv, &e);
	}
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install cluster join", &e);
	if (ctx_ok)
		printf("ok=%d changed=%d failed=%d\n", c.ok, c.changed, rc != KF_OK);
	free(kc);
	kf_share_free(s);
	kfi_applied_free(&st);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}
