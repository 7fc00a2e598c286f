/*
 * apply --plan DIR --host NAME: this node is host NAME of a cluster plan
 * (`cluster plan`). Its share says who it is (node name, address, role)
 * and brings what other nodes share with it: the etcd member certificates
 * and etcd.env (apply/etcd.c), the mirror CA and every mirror in order
 * (apply/runtime.c), and here the control plane's PKI, encryption and
 * audit files, the kubeadm configuration and a mirror host's TLS.
 */
#include <stdio.h>
#include <string.h>

#include "installer/apply/apply.h"
#include "installer/plan/plan.h"

int kfi_apply_plan_load(apply *a, kf_err *e)
{
	const kf_share *s;
	int rc;

	if ((rc = kf_share_load(a->plan_dir, a->plan_host, &a->share, e)) != KF_OK)
		return rc;
	s = a->share;
	if (!(s->roles & (KF_ROLE_CONTROL_PLANE | KF_ROLE_WORKER | KF_ROLE_ETCD | KF_ROLE_MIRROR)))
		return kf_err_set(e, KF_EUSAGE, "%s has no role in the plan", s->name);
	/* An etcd or mirror host that is neither gets the node's runtime as
	 * a worker would; only control planes run the control plane. */
	a->role = s->roles & KF_ROLE_CONTROL_PLANE ? "control-plane" : "worker";
	a->hostname_opt = s->node_name;
	a->node_ip_opt = s->ip;
	a->etcd_name = s->name;
	/* For the applied state and cluster init's messages: the first
	 * mirror; hosts.toml lists them all. */
	a->mirror = s->mirrors[0];
	a->mirror_fp = s->mirror_fp;
	return KF_OK;
}

int kfi_step_plan_share(apply *a, kf_err *e)
{
	char want[300];

	if (kf_strf(want, sizeof want, "%s-%s", a->lock->name, a->lock->version) ||
	    strcmp(want, a->share->bundle))
		return kf_err_set(e, KF_EUSAGE, "the plan %s was made for bundle %s, not %s: run "
		                  "'cluster plan' again with this bundle (it keeps every secret)",
		                  a->plan_dir, a->share->bundle, want);
	return kfi_share_install(&a->c, a->share, KFI_SHARE_PKI | KFI_SHARE_KUBEADM |
	                         KFI_SHARE_MIRROR_TLS, NULL, e);
}
