/*
 * The upgrade policy: given what runs (node by node) and what the bundle
 * carries, print the table of what would change and decide whether the
 * move is allowed. Pure: no I/O but the table, so the unit tests cover
 * every rule.
 *
 * The rules (kubernetes.io version-skew-policy, kubeadm's upgrade policy):
 *  - the control plane moves one minor at a time, never skipping one, and
 *    never past the bundled kubeadm;
 *  - a bundle older than any running API server is not an upgrade;
 *  - no kubelet may be newer than the API server, and kubelets may be up
 *    to three minors older than it (since 1.28);
 *  - the bundle's etcd and containerd must be ones the target supports
 *    (support.c), and etcd is never moved backwards.
 */
#include <stdio.h>
#include <string.h>

#include "installer/kf_installer.h"

static int vcmp(const char *a, const char *b)
{
	int c = 0;

	return kfi_version_cmp(a, b, &c) == 0 ? c : 0;
}

/* The first refusal wins: it is what the operator must fix first. */
static void refuse(kfi_up_verdict *v, const char *fmt, const char *a, const char *b,
                   const char *c)
{
	if (!v->allowed)
		return;
	v->allowed = 0;
	/* fmt is one of this file's literals with three %s. */
	snprintf(v->reason, sizeof v->reason, fmt, a, b, c);
}

static void row(FILE *t, const kfi_up_node *nd, const char *what, const char *run,
                const char *to, const char *action)
{
	if (t)
		fprintf(t, "%-20s %-14s %-11s %-12s %-12s %s\n", nd ? nd->name : "(cluster)",
		        nd ? (nd->control_plane ? "control-plane" : "worker") : "-", what,
		        run && run[0] ? run : "?", to && to[0] ? to : "-", action);
}

/* The oldest and newest API server, and whether any runs. */
static void api_range(const kfi_up_state *s, const char **lo, const char **hi)
{
	*lo = *hi = NULL;
	for (size_t i = 0; i < s->n; i++) {
		const char *a = s->nodes[i].apiserver;
		int p[3];
		if (!a[0] || kfi_version_parse(a, p) != 0)
			continue;
		if (!*lo || vcmp(a, *lo) < 0)
			*lo = a;
		if (!*hi || vcmp(a, *hi) > 0)
			*hi = a;
	}
	/* A worker sees no static pods, only what the API server reports. */
	if (!*lo && s->server[0])
		*lo = *hi = s->server;
}

static void check_control_plane(const kfi_up_state *s, const kfi_up_target *t, const int tv[3],
                                kfi_up_verdict *v)
{
	const char *lo, *hi;
	int l[3];
	char next[32];

	api_range(s, &lo, &hi);
	if (!lo) {
		refuse(v, "no running API server found (%s%s%s): run upgrade plan on a control plane "
		       "with /etc/kubernetes/admin.conf", s->source, "", "");
		return;
	}
	if (t->kubeadm && vcmp(t->kube, t->kubeadm) > 0)
		refuse(v, "the bundle's kubeadm %s cannot upgrade to Kubernetes %s%s: a control plane "
		       "never moves past the bundled kubeadm", t->kubeadm, t->kube, "");
	if (vcmp(t->kube, hi) < 0)
		refuse(v, "the bundle's Kubernetes %s is older than the running API server %s%s: not an "
		       "upgrade (kubeadm does not downgrade)", t->kube, hi, "");
	kfi_version_parse(lo, l);
	snprintf(next, sizeof next, "%d.%d", l[0], l[1] + 1);
	if (tv[0] != l[0])
		refuse(v, "Kubernetes %s to %s%s: a change of major version is not supported", lo, t->kube,
		       "");
	else if (tv[1] > l[1] + 1)
		refuse(v, "the control plane runs %s and the bundle is %s: one minor at a time; "
		       "upgrade to %s first", lo, t->kube, next);
}

static void check_kubelets(const kfi_up_state *s, const kfi_up_target *t, const int tv[3],
                           kfi_up_verdict *v)
{
	const char *lo, *hi;

	api_range(s, &lo, &hi);
	for (size_t i = 0; i < s->n; i++) {
		const kfi_up_node *nd = &s->nodes[i];
		int k[3];
		char floor[32];
		if (!nd->kubelet[0] || kfi_version_parse(nd->kubelet, k) != 0)
			continue;
		/* Against the newest API server: halfway through an upgrade the
		 * upgraded control planes' kubelets are already on the new
		 * version, as kubeadm's procedure does it. */
		if (hi && vcmp(nd->kubelet, hi) > 0)
			refuse(v, "the kubelet on %s (%s) is newer than the API server (%s): no kubelet may "
			       "be newer than the control plane; put that node back on the control plane's "
			       "version first", nd->name, nd->kubelet, hi);
		if (vcmp(nd->kubelet, t->kube) > 0)
			refuse(v, "the kubelet on %s (%s) is newer than the bundle's Kubernetes %s", nd->name,
			       nd->kubelet, t->kube);
		snprintf(floor, sizeof floor, "%d.%d", tv[0], tv[1] - 3);
		if (k[0] == tv[0] && k[1] < tv[1] - 3)
			refuse(v, "the kubelet on %s (%s) would be more than three minors older than the "
			       "control plane; upgrade it to %s or later first", nd->name, nd->kubelet, floor);
	}
}

/* One of the bundle's etcd or containerd against the support facts. */
static void support_row(FILE *tab, const char *what, const char *version, int r, const char *why,
                        kfi_up_verdict *v)
{
	row(tab, NULL, what, "-", version, r == 1 ? "supported" : r == 0 ? "REFUSED" : "unknown");
	if (r == 0)
		refuse(v, "the bundle's %s %s: %s", what, version, why);
	else if (r < 0 && tab)
		fprintf(tab, "warning: %s\n", why);
}

static void check_support(const kfi_up_state *s, const kfi_up_target *t, const int tv[3],
                          FILE *tab, kfi_up_verdict *v)
{
	char why[256];

	if (t->containerd)
		support_row(tab, "containerd", t->containerd,
		            kfi_support_containerd(tv[1], t->containerd, why, sizeof why), why, v);
	if (t->etcd) {
		support_row(tab, "etcd", t->etcd, kfi_support_etcd(tv[1], t->etcd, why, sizeof why), why, v);
		for (size_t i = 0; i < s->n; i++)
			if (s->nodes[i].etcd[0] && vcmp(s->nodes[i].etcd, t->etcd) > 0)
				refuse(v, "etcd on %s runs %s, newer than the bundle's %s: etcd is never "
				       "downgraded", s->nodes[i].name, s->nodes[i].etcd, t->etcd);
	}
}

static const char *action(const char *run, const char *to)
{
	if (!run[0] || !to)
		return "?";
	return vcmp(run, to) < 0 ? "upgrade" : vcmp(run, to) == 0 ? "ok" : "newer";
}

void kfi_upgrade_judge(const kfi_up_state *s, const kfi_up_target *t, FILE *tab,
                       kfi_up_verdict *v)
{
	int tv[3], todo = 0;

	memset(v, 0, sizeof *v);
	v->allowed = 1;
	if (tab)
		fprintf(tab, "%-20s %-14s %-11s %-12s %-12s %s\n", "NODE", "ROLE", "COMPONENT",
		        "RUNNING", "BUNDLE", "ACTION");
	for (size_t i = 0; i < s->n; i++) {
		const kfi_up_node *nd = &s->nodes[i];
		if (nd->control_plane) {
			row(tab, nd, "apiserver", nd->apiserver, t->kube, action(nd->apiserver, t->kube));
			todo |= nd->apiserver[0] && vcmp(nd->apiserver, t->kube) < 0;
		}
		row(tab, nd, "kubelet", nd->kubelet, t->kube, action(nd->kubelet, t->kube));
		todo |= nd->kubelet[0] && vcmp(nd->kubelet, t->kube) < 0;
		if (nd->containerd[0])
			row(tab, nd, "containerd", nd->containerd, t->containerd, "");
		if (nd->etcd[0])
			row(tab, nd, "etcd", nd->etcd, t->etcd, "");
	}
	if (!t->kube || kfi_version_parse(t->kube, tv) != 0) {
		refuse(v, "the bundle names no Kubernetes version (%s)%s%s", t->kube ? t->kube : "none",
		       "", "");
		return;
	}
	check_control_plane(s, t, tv, v);
	check_kubelets(s, t, tv, v);
	check_support(s, t, tv, tab, v);
	if (v->allowed && !todo) {
		v->nothing = 1;
		snprintf(v->reason, sizeof v->reason, "every node already runs Kubernetes %s: nothing to upgrade",
		         t->kube);
	}
}

static const char *component_version(const kf_lock *lk, const char *name, const char *arch)
{
	for (size_t i = 0; i < lk->ncomp; i++)
		if (!strcmp(lk->components[i].name, name) &&
		    (!arch || !lk->components[i].arch || !strcmp(lk->components[i].arch, arch)))
			return lk->components[i].version;
	return NULL;
}

void kfi_upgrade_target(const kf_lock *lk, const char *arch, kfi_up_target *t)
{
	t->kube = lk->kube_version;
	t->kubeadm = component_version(lk, "kubeadm", arch);
	t->containerd = component_version(lk, "containerd", arch);
	/* kubeadm's own etcd is upgraded by kubeadm; only a host etcd is ours. */
	t->etcd = !lk->install.etcd || !strcmp(lk->install.etcd, "host")
	          ? component_version(lk, "etcd", arch) : NULL;
}
