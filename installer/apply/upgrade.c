/*
 * upgrade apply | upgrade node: the steps apply runs around its own when
 * it upgrades a node (docs/lifecycle.md), in the order kubeadm documents:
 *
 *   checks (before anything changes) -> etcd snapshot (upgrade apply, on
 *   a host etcd member) -> drain -> host, runtime (containerd, runc, CNI,
 *   restarted when they changed) and host etcd -> the new kubeadm and
 *   `kubeadm upgrade apply vX.Y.Z` (first control plane) or `kubeadm
 *   upgrade node` -> kubelet and kubectl, kubelet restarted -> uncordon.
 *
 * Every change goes into the upgrade's own journal (step/nested.c): a
 * failure undoes it, so the node is back on its previous binaries, and
 * says how to resume; the re-run finishes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/apply/apply.h"
#include "installer/plan/plan.h"

#define ADMIN_CONF "/etc/kubernetes/admin.conf"

static int vcmp(const char *x, const char *y)
{
	int c = 0;

	return kfi_version_cmp(x, y, &c) == 0 ? c : 0;
}

static const kfi_up_node *self_node(const kfi_up_state *s, const char *host)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->nodes[i].name, host))
			return &s->nodes[i];
	return NULL;
}

/* The newest API server that runs (or that the API server reports). */
static const char *newest_api(const kfi_up_state *s)
{
	const char *hi = s->server[0] ? s->server : NULL;

	for (size_t i = 0; i < s->n; i++)
		if (s->nodes[i].apiserver[0] && (!hi || vcmp(s->nodes[i].apiserver, hi) > 0))
			hi = s->nodes[i].apiserver;
	return hi;
}

int kfi_apply_upgrade_check(apply *a, const kf_lock *lk, kf_err *e)
{
	kfi_applied st;
	kf_lock *cur = NULL;
	kfi_up_state s = {0};
	kfi_up_target t;
	kfi_up_verdict v;
	const kfi_up_node *me;
	const char *api;
	kf_err ign;
	int rc;

	if (kfi_applied_load(&a->c, &st, &ign) == KF_OK)
		cur = kfi_applied_lock(&a->c, &st);
	kfi_applied_free(&st);
	if ((rc = kfi_upgrade_observe(&a->c, a->host, cur, &s, e)) != KF_OK)
		goto out;
	kfi_upgrade_target(lk, a->arch, &t);
	printf("== upgrade: what runs (%s) and what the bundle %s-%s carries\n", s.source, lk->name,
	       lk->version);
	kfi_upgrade_judge(&s, &t, stdout, &v);
	me = self_node(&s, a->host);
	api = newest_api(&s);
	if (!v.allowed) {
		rc = kf_err_set(e, KF_EVERIFY, "upgrade refused: %s", v.reason);
		goto out;
	}
	if (v.nothing) {
		printf("%-8s %s\n", "ok", v.reason);
		a->up_stop = 1;
		goto out;
	}
	if (a->upgrade == KFI_UP_APPLY && !a->control_plane) {
		rc = kf_err_set(e, KF_EUSAGE, "upgrade apply runs on the first control plane; this node "
		                "(%s) is a worker: use upgrade node", a->host);
		goto out;
	}
	/* kubeadm upgrade node takes the version upgrade apply stored in the
	 * cluster: before that, it would leave this kubelet newer than every
	 * API server. */
	if (a->upgrade == KFI_UP_NODE && (!api || vcmp(api, t.kube) < 0)) {
		rc = kf_err_set(e, KF_EVERIFY, "upgrade refused: no API server runs %s yet (newest: %s); "
		                "run 'kubeferry-install upgrade apply' on the first control plane first",
		                t.kube, api ? api : "unknown");
		goto out;
	}
	a->up_done_here = me && me->kubelet[0] && !vcmp(me->kubelet, t.kube) &&
	                  (!a->control_plane || (me->apiserver[0] && !vcmp(me->apiserver, t.kube)));
	a->up_started = 1;
	printf("%-8s upgrade allowed: %s %s\n", "ok", a->host,
	       a->up_done_here ? "runs the target already (finishing what is left)" : "will be upgraded");
out:
	kf_lock_free(cur);
	kfi_upgrade_state_free(&s);
	return rc;
}

/* A mirror host of the plan serves the new bundle before kubeadm pulls
 * the new images through the mirrors (this host's comes first in its
 * hosts.toml). */
int kfi_step_upgrade_mirror(apply *a, kf_err *e)
{
	char dir[512];

	if (kf_strf(dir, sizeof dir, "%s/%s-%s", KFI_BUNDLES_DIR, a->lock->name, a->lock->version) != 0)
		return kf_err_set(e, KF_EUSAGE, "bundle name too long: %s", a->lock->name);
	if (kfi_mirror_install_plan(a->c.root, a->plan_dir, a->plan_host, dir) != KF_OK)
		return kf_err_set(e, KF_EIO, "the mirror on %s could not be moved to %s (see above)", a->host,
		                  dir);
	return KF_OK;
}

/* Snapshot etcd before the control plane moves: the upgrade's way back. */
int kfi_step_upgrade_snapshot(apply *a, kf_err *e)
{
	kfi_snapshot_opts o = {0};
	int rc;

	if (a->up_done_here) {
		printf("%-8s etcd snapshot: this node is upgraded already\n", "ok");
		a->c.ok++;
		return KF_OK;
	}
	/* The member's /etc/etcd.env (a plan's share put it there at deploy):
	 * the default; kept as many as the daily timer keeps. */
	o.keep = 7;
	if (!a->c.live) {
		printf("%-8s run kubeferry-install etcd snapshot (before the control plane moves)\n", "plan");
		return KF_OK;
	}
	if ((rc = kfi_etcd_snapshot(&a->c, &o, e)) == KF_OK)
		a->c.changed++;
	return rc;
}

int kfi_step_upgrade_drain(apply *a, kf_err *e)
{
	char *admin = kfi_path(&a->c, ADMIN_CONF);
	int rc = KF_OK, has = admin && access(admin, F_OK) == 0;

	free(admin);
	if (a->up_done_here || a->no_drain) {
		printf("%-8s drain %s: %s\n", "ok", a->host,
		       a->no_drain ? "--no-drain (drained from another host)" : "upgraded already");
		a->c.ok++;
	} else if (!has && a->c.live) {
		printf("%-8s drain %s: no %s here; drain it from a control plane first "
		       "(kubeferry-install upgrade drain %s)\n", "note", a->host, ADMIN_CONF, a->host);
	} else {
		rc = kfi_kubectl_drain(&a->c, a->host, a->drain_timeout, e);
	}
	return rc;
}

/* The new kubeadm first (kubeadm upgrades with its own version), then
 * kubeadm upgrade apply vX.Y.Z -y on the first control plane, kubeadm
 * upgrade node elsewhere. */
int kfi_step_upgrade_kubeadm(apply *a, kf_err *e)
{
	static const char *const names[] = {"kubeadm", NULL};
	const kf_lock_component *k;
	char *f = NULL, ver[80];
	int rc;

	if ((rc = kfi_apply_need(a, names, &k, e)) != KF_OK ||
	    (rc = kfi_apply_file(a, k, &f, e)) != KF_OK ||
	    (rc = kfi_put_file_from_sum(&a->c, "/usr/local/bin/kubeadm", f, k->sha256, 0755, NULL, e)) != KF_OK)
		goto out;
	if (a->up_done_here) {
		printf("%-8s kubeadm upgrade: %s runs %s already\n", "ok", a->host, a->lock->kube_version);
		a->c.ok++;
		goto out;
	}
	if (kf_strf(ver, sizeof ver, "%s%s", a->lock->kube_version[0] == 'v' ? "" : "v",
	            a->lock->kube_version) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "Kubernetes version too long: %s", a->lock->kube_version);
		goto out;
	}
	if (a->upgrade == KFI_UP_APPLY) {
		const char *argv[] = {"/usr/local/bin/kubeadm", "upgrade", "apply", ver, "--yes", NULL};
		rc = kfi_run(&a->c, argv, e);
	} else {
		const char *argv[] = {"/usr/local/bin/kubeadm", "upgrade", "node", NULL};
		rc = kfi_run(&a->c, argv, e);
	}
out:
	free(f);
	return rc;
}

/* kubelet restarted on its new binary (kubeadm wrote its new config). */
int kfi_step_upgrade_kubelet(apply *a, kf_err *e)
{
	int rc = KF_OK;

	if (!a->kubelet_changed && !a->units_changed) {
		printf("%-8s kubelet: unchanged\n", "ok");
		a->c.ok++;
	} else {
		rc = kfi_unit_start(&a->c, "kubelet.service", a->units_changed, 1, e);
		a->units_changed = 0;
	}
	return rc;
}

int kfi_step_upgrade_uncordon(apply *a, kf_err *e)
{
	char *admin = kfi_path(&a->c, ADMIN_CONF);
	int rc = KF_OK, has = admin && access(admin, F_OK) == 0;

	free(admin);
	if (a->up_done_here || a->no_drain)
		printf("%-8s uncordon %s: %s\n", "ok", a->host, a->no_drain ? "--no-drain" : "upgraded already");
	else if (!has && a->c.live)
		printf("%-8s uncordon %s from a control plane (kubeferry-install upgrade uncordon %s)\n",
		       "note", a->host, a->host);
	else
		rc = kfi_kubectl_uncordon(&a->c, a->host, e);
	return rc;
}

void kfi_apply_upgrade_rollback(apply *a)
{
	static const char *const units[] = {"containerd.service", "etcd.service", "kubelet.service", NULL};
	kf_err e = {0};

	char *jp = kfi_path(&a->c, KFI_UPGRADE_JOURNAL_DIR "/journal");
	int any = jp && access(jp, F_OK) == 0;

	free(jp);
	if (a->dry_run || !any)
		return;
	printf("== upgrade failed on %s: putting the previous files back (upgrade journal)\n", a->host);
	if (kfi_journal_undo(&a->c, &e) != KF_OK) {
		printf("%-8s undo incomplete: %s\n", "warn", e.msg);
		return;
	}
	if (!a->systemd)
		return;
	{
		const char *argv[] = {"systemctl", "daemon-reload", NULL};
		kfi_run_soft(&a->c, argv, "systemd did not reload");
	}
	/* What runs must be the binaries on disk again. */
	for (size_t i = 0; units[i]; i++) {
		const char *active[] = {"systemctl", "is-active", "--quiet", units[i], NULL};
		const char *argv[] = {"systemctl", "restart", units[i], NULL};
		if (kfi_probe(active) == 0)
			kfi_run_soft(&a->c, argv, "restart it by hand");
	}
}
