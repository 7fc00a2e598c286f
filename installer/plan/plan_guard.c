/*
 * What a re-run of cluster plan must not change: who is an etcd member,
 * and which control plane is the first. A plan fixes both when it is first
 * made: every member's etcd.env starts it with the planned initial
 * cluster, state "new", and site.yml runs kubeadm init on the first
 * control plane. A member added to the inventory afterwards would start a
 * cluster of its own (or fail to join); a new first control plane would
 * run kubeadm init beside a running cluster. Membership changes need
 * `etcdctl member add/remove` by hand; the inventory's order must stay.
 * The previous plan's summary, DIR/plan.yaml (written by plan_render.c),
 * says what was planned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/plan/plan.h"

/* 1 when name is one of the inventory's hosts with role bit. */
static int inv_has(const kf_inventory *inv, const char *name, unsigned bit)
{
	for (size_t i = 0; i < inv->nhosts; i++)
		if (!strcmp(inv->hosts[i].name, name))
			return (inv->hosts[i].roles & bit) != 0;
	return 0;
}

/* Append name to the list in buf (", " between). */
static void note(char *buf, size_t n, const char *name)
{
	size_t used = strlen(buf);

	if (used + strlen(name) + 3 < n)
		snprintf(buf + used, n - used, "%s%s", used ? ", " : "", name);
}

/* A "    roles: [...]" line of plan.yaml that names etcd. */
static int etcd_roles(const char *line)
{
	return !strncmp(line, "    roles: [", 12) && (strstr(line, "[etcd") || strstr(line, " etcd"));
}

int kfp_guard_existing(const kfp_plan *p, kf_err *e)
{
	char path[4096], *text = NULL, first[256] = "", added[512] = "", removed[512] = "";
	const char *name = NULL;
	const char **members = NULL;
	size_t len = 0, n = 0;
	kf_err ign;
	int rc = KF_OK;

	if (kf_strf(path, sizeof path, "%s/plan.yaml", p->dir) != 0)
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", p->dir);
	if (kf_read_file(path, 1 << 24, &text, &len, &ign) != KF_OK)
		return KF_OK; /* a new plan */
	if (!(members = calloc(len / 8 + 1, sizeof *members))) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* The planned members, as plan.yaml lists them ("  - name:" then
	 * its "    roles:"). */
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		if ((nl = strchr(line, '\n')))
			*nl = '\0';
		if (!strncmp(line, "  first_control_plane: ", 23))
			snprintf(first, sizeof first, "%s", line + 23);
		else if (!strncmp(line, "  - name: ", 10))
			name = line + 10;
		else if (name && etcd_roles(line))
			members[n++] = name;
	}
	for (size_t i = 0; i < n; i++)
		if (!inv_has(p->inv, members[i], KF_ROLE_ETCD))
			note(removed, sizeof removed, members[i]);
	for (size_t i = 0; n && i < p->inv->nhosts; i++) {
		size_t j;
		if (!(p->inv->hosts[i].roles & KF_ROLE_ETCD))
			continue;
		for (j = 0; j < n && strcmp(members[j], p->inv->hosts[i].name); j++)
			;
		if (j == n)
			note(added, sizeof added, p->inv->hosts[i].name);
	}
	if (added[0] || removed[0])
		rc = kf_err_set(e, KF_EUSAGE, "%s: the etcd members would change (added: %s; removed: %s). "
		                "A plan fixes etcd membership when it is first made: add or remove a member "
		                "by hand (etcdctl member add/remove) and keep the inventory's etcd group as "
		                "planned", path, added[0] ? added : "none", removed[0] ? removed : "none");
	else if (first[0] && p->inv->ncp && strcmp(first, p->inv->hosts[p->inv->cp[0]].name))
		rc = kf_err_set(e, KF_EUSAGE, "%s: the first control plane would change from %s to %s; "
		                "kubeadm init ran on %s: keep it first in kube_control_plane", path, first,
		                p->inv->hosts[p->inv->cp[0]].name, first);
out:
	free(members);
	free(text);
	return rc;
}
