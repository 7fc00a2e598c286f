/*
 * mirror install --plan on a mirror host: kubeferry-mirror.service serves
 * the applied bundle with the server certificate the plan issued from the
 * planned mirror CA, at the host's address and planned port. Every node of
 * the plan pins that CA already (its share's mirror-ca.crt), so nothing is
 * passed between hosts; the CA's key never leaves the admin host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/kf_mirror.h"
#include "installer/plan/plan.h"

#define UNIT "kubeferry-mirror.service"

int kfi_mirror_install_plan(const char *root, const char *plan, const char *host,
                            const char *bundle_dir)
{
	kfi_ctx c;
	kfi_applied st = {0};
	kf_share *s = NULL;
	kf_err e = {0};
	int rc, ctx_ok = 0, ch = 0;
	char listen[96], advertise[96], *pem = NULL, *unit = NULL, *args = NULL;
	size_t len = 0;

	if ((rc = kfi_node_open(root, &c, &ctx_ok, &st, &e)) ||
	    (rc = kf_share_load(plan, host, &s, &e)))
		goto out;
	if (!(s->roles & KF_ROLE_MIRROR)) {
		rc = kf_err_set(&e, KF_EUSAGE, "%s is not a mirror host in the plan (group kubeferry_mirror)",
		                host);
		goto out;
	}
	snprintf(listen, sizeof listen, strchr(s->ip, ':') ? "[%s]:%d" : "%s:%d", s->ip, s->mirror_port);
	snprintf(advertise, sizeof advertise, strchr(s->access_ip, ':') ? "[%s]:%d" : "%s:%d",
	         s->access_ip, s->mirror_port);
	printf("== planned mirror TLS (server certificate from the plan's mirror CA)\n");
	if ((rc = kfi_share_mirror_ca(s, &pem, &len, &e)) ||
	    (rc = kfi_share_install(&c, s, KFI_SHARE_MIRROR_TLS, &ch, &e)) ||
	    (rc = kfi_put_file(&c, KF_MIRROR_CA_PATH, pem, len, 0644, NULL, &e)))
		goto out;
	printf("== %s\n", UNIT);
	/* Read-only: the planned material is fixed, nothing to renew here
	 * (a new plan run re-issues, apply --plan installs it). */
	if (!(args = kfi_strf("--listen %s --tls-cert " KFP_MIRROR_TLS "/" KF_MIRROR_CHAIN_FILE
	                      " --tls-key " KFP_MIRROR_TLS "/server.key", listen)) ||
	    !(unit = kfi_mirror_unit("mirror install --plan", bundle_dir ? bundle_dir : st.bundle_dir, args, NULL))) {
		rc = kfi_oom(&e);
		goto out;
	}
	/* New certificates need a restart; an unchanged unit and TLS only a
	 * start when the service is not running. */
	if ((rc = kfi_install_self(&c, &e)) ||
	    (rc = kfi_unit_install(&c, UNIT, unit, "multi-user.target", &ch, &e)) ||
	    (rc = kfi_unit_start(&c, UNIT, ch, ch, &e)) ||
	    (rc = kfi_mirror_state_write(&c, advertise, s->mirror_fp, &e)))
		goto out;
	printf("mirror https://%s serving %s\n", listen, bundle_dir ? bundle_dir : st.bundle_dir);
	printf("mirror CA fingerprint (sha256): %s\n", s->mirror_fp);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install mirror install", &e);
	if (ctx_ok)
		printf("ok=%d changed=%d failed=%d\n", c.ok, c.changed, rc != KF_OK);
	free(pem);
	free(unit);
	free(args);
	kf_share_free(s);
	kfi_applied_free(&st);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}
