/*
 * Drain and uncordon a node through kubectl with admin.conf, as kubeadm's
 * upgrade guide does around each node. A drain always has a timeout, and
 * one that a PodDisruptionBudget blocks is reported with the pod's name:
 * kubectl retries such an eviction until the timeout, printing
 *   error when evicting pods/"web-0" -n "default" (will retry after 5s):
 *   Cannot evict pod as it would violate the pod's disruption budget.
 * so the blocked pods are read from those lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

#define ADMIN_CONF "/etc/kubernetes/admin.conf"
#define OUT_MAX ((size_t)256 << 10)

/* "NS/NAME, NS/NAME" of the pods whose eviction a disruption budget
 * refused, into list; 0 when none. */
static int blocked_pods(const char *out, char *list, size_t n)
{
	size_t used = 0;
	int found = 0;

	list[0] = '\0';
	for (const char *l = out; l && *l;) {
		const char *nl = strchr(l, '\n'), *p, *q, *ns, *nse;
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)len, l);
		l = nl ? nl + 1 : NULL;
		if (!strstr(line, "disruption budget") || !(p = strstr(line, "pods/\"")))
			continue;
		p += 6;
		if (!(q = strchr(p, '"')) || !(ns = strstr(q, "-n \"")))
			continue;
		ns += 4;
		if (!(nse = strchr(ns, '"')))
			continue;
		{
			char one[512];
			snprintf(one, sizeof one, "%.*s/%.*s", (int)(nse - ns), ns, (int)(q - p), p);
			if (strstr(list, one))
				continue;
			if (used + strlen(one) + 3 < n) {
				used += (size_t)snprintf(list + used, n - used, "%s%s", found ? ", " : "", one);
				found++;
			}
		}
	}
	return found;
}

int kfi_kubectl_drain(kfi_ctx *c, const char *node, int timeout_s, kf_err *e)
{
	char tmo[32], pods[512];
	char *out = malloc(OUT_MAX);
	const char *argv[] = {"/usr/local/bin/kubectl", "--kubeconfig", ADMIN_CONF, "drain", node,
	                      "--ignore-daemonsets", "--delete-emptydir-data", tmo, NULL};
	int rc;
	kf_err why = {0};

	if (!out)
		return kfi_oom(e);
	snprintf(tmo, sizeof tmo, "--timeout=%ds", timeout_s);
	rc = kfi_run_out(c, argv, out, OUT_MAX, &why);
	if (rc != KF_OK && blocked_pods(out, pods, sizeof pods))
		rc = kf_err_set(e, KF_EIO, "drain of node %s stopped after %d s: a PodDisruptionBudget "
		                "keeps pod %s from being evicted; scale that workload up or relax its "
		                "budget, then re-run (the node stays cordoned until then)",
		                node, timeout_s, pods);
	else if (rc != KF_OK)
		rc = kf_err_set(e, KF_EIO, "drain of node %s failed (timeout %d s): %s; kubectl said: %.300s",
		                node, timeout_s, why.msg, out);
	free(out);
	return rc;
}

int kfi_kubectl_uncordon(kfi_ctx *c, const char *node, kf_err *e)
{
	const char *argv[] = {"/usr/local/bin/kubectl", "--kubeconfig", ADMIN_CONF, "uncordon",
	                      node, NULL};

	return kfi_run(c, argv, e);
}
