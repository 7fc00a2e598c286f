/*
 * Kubernetes binaries (kubeadm, kubelet, kubectl, helm) and the kubelet
 * unit with kubeadm's drop-in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/apply/apply.h"

int kfi_step_kubernetes(apply *a, kf_err *e)
{
	static const char *const bins[] = {"kubeadm", "kubelet", "kubectl", NULL};
	static const char *const n_helm[] = {"helm", NULL};
	static const char *const helm_names[] = {"helm", NULL};
	const kf_lock_component *k;
	int rc = KF_OK;
	char *f = NULL, abs[128];

	for (size_t i = 0; bins[i]; i++) {
		const char *names[] = {bins[i], NULL};
		if ((rc = kfi_apply_need(a, names, &k, e)) != KF_OK)
			goto out;
		if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
			goto out;
		/* bins[] are short literals: abs always holds them. */
		snprintf(abs, sizeof abs, "/usr/local/bin/%s", bins[i]);
		{
			int ch = 0;
			if ((rc = kfi_put_file_from_sum(&a->c, abs, f, k->sha256, 0755, &ch, e)) != KF_OK)
				goto out;
			if (!strcmp(bins[i], "kubelet"))
				a->kubelet_changed |= ch;
		}
	}
	if ((k = kfi_apply_component(a, n_helm))) {
		if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
			goto out;
		if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, helm_names, "/usr/local/bin", 0755,
		                          NULL, e)) != KF_OK)
			goto out;
	} else {
		printf("%-8s the bundle has no helm\n", "warn");
	}
	if ((rc = kfi_apply_unit(a, "kubelet.service", kfi_tpl_kubelet_unit, e)) != KF_OK)
		goto out;
	{
		int ch = 0;
		if ((rc = kfi_put_file(&a->c, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
		                       kfi_tpl_kubeadm_dropin, strlen(kfi_tpl_kubeadm_dropin), 0644, &ch, e)) != KF_OK)
			goto out;
		a->units_changed |= ch;
	}
	/* kubelet is enabled but not started: kubeadm init/join starts it
	 * once its configuration exists. */
	if (a->units_changed && (a->systemd || !a->c.live)) {
		const char *argv[] = {"systemctl", "daemon-reload", NULL};
		rc = kfi_run(&a->c, argv, e);
		a->units_changed = 0;
	}
out:
	free(f);
	return rc;
}
