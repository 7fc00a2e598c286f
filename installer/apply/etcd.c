/*
 * Host etcd on control planes (install.etcd: host): the etcd binaries, its
 * own PKI in Kubespray's layout, /etc/etcd.env, the unit, and a health
 * check over TLS once it runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/apply/apply.h"
#include "installer/plan/plan.h"

int kfi_step_etcd(apply *a, kf_err *e)
{
	static const char *const n_etcd[] = {"etcd", NULL};
	static const char *const etcd_bins[] = {"etcd", "etcdctl", "etcdutl", NULL};
	const kf_lock_component *k;
	int rc, ch = 0, any = 0, before;
	char *f = NULL, *env = NULL, *ca = NULL, *cert = NULL, *key = NULL;
	const char *ips[] = {a->ip};

	if ((rc = kfi_apply_need(a, n_etcd, &k, e)) != KF_OK)
		goto out;
	if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
		goto out;
	before = a->c.changed;
	/* etcd-v<v>-linux-<arch>/{etcd,etcdctl,etcdutl}. */
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, etcd_bins, "/usr/local/bin", 0755, NULL, e)) != KF_OK)
		goto out;
	if (a->share) {
		/* A member of the planned cluster: its certificates from the
		 * plan's etcd CA and the full initial cluster in etcd.env. */
		if ((rc = kfi_share_install(&a->c, a->share, KFI_SHARE_ETCD, &ch, e)) != KF_OK)
			goto out;
		any = a->c.changed != before;
	} else {
		if ((rc = kfi_etcd_pki(&a->c, "/etc/ssl/etcd/ssl", a->host, ips, 1, e)) != KF_OK)
			goto out;
		any = a->c.changed != before;
		if (!(env = kfi_render_etcd_env(a->host, a->ip))) {
			rc = kfi_oom(e);
			goto out;
		}
		if ((rc = kfi_put_file(&a->c, "/etc/etcd.env", env, strlen(env), 0640, &ch, e)) != KF_OK)
			goto out;
	}
	any |= ch;
	if ((rc = kfi_apply_unit(a, "etcd.service", kfi_tpl_etcd_unit, e)) != KF_OK)
		goto out;
	if ((rc = kfi_apply_start(a, "etcd.service", any, e)) != KF_OK)
		goto out;
	if (!a->c.live) {
		printf("%-8s check https://127.0.0.1:2379/health (TLS, admin-%s.pem)\n", "plan", a->etcd_name);
		goto out;
	}
	if (!a->systemd)
		goto out;
	ca = kfi_path(&a->c, "/etc/ssl/etcd/ssl/ca.pem");
	cert = kfi_strf("%s/etc/ssl/etcd/ssl/admin-%s.pem", a->c.root, a->etcd_name);
	key = kfi_strf("%s/etc/ssl/etcd/ssl/admin-%s-key.pem", a->c.root, a->etcd_name);
	if (!ca || !cert || !key) {
		rc = kfi_oom(e);
		goto out;
	}
	/* etcd is Type=notify, so it answers once systemctl returns; a few
	 * tries cover a restart racing the first request. */
	for (int i = 0; i < 30; i++) {
		rc = kfi_etcd_health("127.0.0.1", 2379, ca, cert, key, e);
		if (rc == KF_OK)
			break;
		sleep(1);
	}
	if (rc == KF_OK) {
		printf("%-8s etcd healthy at https://127.0.0.1:2379\n", "ok");
		a->c.ok++;
	}
out:
	free(f);
	free(env);
	free(ca);
	free(cert);
	free(key);
	return rc;
}
