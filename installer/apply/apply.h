/*
 * Internal to `kubeferry-install apply` (installer/cmd_apply.c and
 * installer/apply/): the run's state shared by its steps, the steps
 * themselves and the templates they write. Includes only the installer's
 * own header (and through it base/, keys/, manifests/, archive/).
 *
 * A step is `int step(apply *a, kf_err *e)`: KF_OK, or an error code with
 * e set. cmd_apply.c runs them from its table in order and stops at the
 * first failure. A new step goes into the file of its group and into
 * that table.
 */
#ifndef KFI_APPLY_H
#define KFI_APPLY_H

#include "installer/kf_installer.h"

typedef struct apply {
	kfi_ctx c;
	const char *bundle, *pub_file, *pub_str, *role, *root;
	const char *base;       /* --base DIR|BUNDLE for a delta, or NULL */
	const char *mirror, *mirror_fp, *mirror_ca_file, *hostname_opt, *node_ip_opt, *arch_opt;
	int dry_run, no_mirror, control_plane, allow_downgrade;
	int selinux_enforcing;  /* --selinux enforcing: keep it, relabel at the end */
	int selinux_given;      /* --selinux was given (an upgrade keeps the applied mode otherwise) */
	char arch[32], host[256], ip[64];
	kf_lock *lock;
	char *bundle_dir;       /* the unpacked bundle (real path) */
	char *tmp_dir;          /* dry run: scratch unpack, removed at the end */
	int systemd;            /* live system with systemd as PID 1 */
	char *mirror_ca;        /* PEM of the pinned mirror CA */
	size_t mirror_ca_len;
	int units_changed;      /* a unit file changed since the last daemon-reload */
	const char *plan_dir, *plan_host; /* --plan DIR --host NAME */
	kf_share *share;        /* that host's share of the plan, or NULL */
	const char *etcd_name;  /* names the etcd certificate files: the
	                           inventory name with a plan, else the host */
	int runtime_changed;    /* containerd's binaries, config or runc changed */
	kfi_os os;              /* the node's system, read under the root */
	/* upgrade apply|node (apply/upgrade.c) */
	int upgrade;            /* 0 apply, KFI_UP_APPLY, KFI_UP_NODE */
	int drain_timeout;      /* seconds */
	int no_drain;
	int up_stop;            /* nothing to upgrade anywhere: stop, change nothing */
	int up_done_here;       /* this node runs the target already */
	int up_started;         /* the checks passed: a failure from here is undone */
	int kubelet_changed;    /* the kubelet binary was replaced */
} apply;


typedef int kfi_apply_step(apply *a, kf_err *e);

/* ---- templates (apply/templates.c) ------------------------------------ */
extern const char kfi_tpl_containerd_unit[];
extern const char kfi_tpl_kubelet_unit[];
extern const char kfi_tpl_kubeadm_dropin[];
extern const char kfi_tpl_etcd_unit[];
extern const char kfi_tpl_crictl_yaml[];
extern const char kfi_tpl_modules_conf[];  /* the header; host.c adds the modules */
extern const char kfi_tpl_sysctl_conf[];
extern const char *const kfi_tpl_cp_ports[];
extern const char *const kfi_tpl_worker_ports[];

/* ---- host probing (apply/probe.c) ------------------------------------- */
void kfi_host_arch(char *out, size_t n);
/* The first non-loopback IPv4 address: what etcd advertises. */
void kfi_node_ip(char *out, size_t n);
/* An RFC 1123 host name: dot-separated labels of 1 to 63 letters, digits
 * and inner '-', at most 253 characters; lowercase only unless any_case. */
int kfi_dns_name_valid(const char *h, int any_case);
void kfi_node_hostname(const apply *a, char *out, size_t n);
/* A file apply edits in place: KF_OK with its content, -1 when it does not
 * exist, else an error. Never read through a symbolic link. */
int kfi_read_root_file(const apply *a, const char *abs, char **buf, size_t *len,
                       kf_err *e);
int kfi_root_exists(const apply *a, const char *abs);

/* ---- bundle (apply/bundle.c) ------------------------------------------ */
/* The component of one of these names (aliases) for the node's arch. */
const kf_lock_component *kfi_apply_component(const apply *a, const char *const *names);
/* Same, KF_EUSAGE naming the first name when the bundle lacks it. */
int kfi_apply_need(const apply *a, const char *const *names, const kf_lock_component **out,
                   kf_err *e);
/* The component's file in the unpacked bundle into *path (freed first;
 * the caller frees the last one). */
int kfi_apply_file(const apply *a, const kf_lock_component *k, char **path, kf_err *e);
kfi_apply_step kfi_step_bundle;
/* The end of a run over this state (apply, `host packages --admin`): the
 * error printed as prog's (and counted as failed when ctx_ok), the
 * ok=/changed=/failed= line, the dry run's scratch unpack removed, the
 * bundle step's results and the context freed. */
void kfi_apply_done(apply *a, int rc, int ctx_ok, kf_err *e, const char *prog);
/* apply/rollback.c: KF_EVERIFY when lk is older than what is applied
 * (unless --allow-downgrade) or its kubelet newer than the control plane. */
int kfi_apply_rollback_check(apply *a, const kf_lock *lk, kf_err *e);

/* ---- upgrade (apply/upgrade.c) ---------------------------------------- */
/* Before anything changes: what runs, the table, the skew policy. */
int kfi_apply_upgrade_check(apply *a, const kf_lock *lk, kf_err *e);
kfi_apply_step kfi_step_upgrade_mirror, kfi_step_upgrade_snapshot, kfi_step_upgrade_drain, kfi_step_upgrade_kubeadm,
	kfi_step_upgrade_kubelet, kfi_step_upgrade_uncordon;
/* After a failed upgrade step: the upgrade's journal undone (the previous
 * binaries back) and the services restarted on them. */
void kfi_apply_upgrade_rollback(apply *a);

/* ---- host (apply/host.c) ---------------------------------------------- */
kfi_apply_step kfi_step_selinux, kfi_step_swap, kfi_step_modules_sysctl,
	kfi_step_firewalld;

/* ---- host packages (apply/packages.c) -------------------------------- */
kfi_apply_step kfi_step_packages, kfi_step_relabel;
/* The admin host's set (`host packages --admin`, cmd_host.c), after
 * kfi_step_bundle: like kfi_step_packages, from rpms/<set>-admin/. */
kfi_apply_step kfi_step_admin_packages;

/* ---- runtime (apply/runtime.c) ---------------------------------------- */
kfi_apply_step kfi_step_mirror_ca, kfi_step_runtime, kfi_step_certs_d,
	kfi_step_containerd_service, kfi_step_import;

/* ---- a cluster plan's share (apply/plan.c) ------------------------------ */
/* The share of --host from --plan: who this node is, before any step. */
int kfi_apply_plan_load(apply *a, kf_err *e);
/* The share's control-plane PKI, encryption, audit, kubeadm.yaml and
 * mirror TLS files in place. */
kfi_apply_step kfi_step_plan_share;

/* ---- kubernetes and etcd (apply/kubernetes.c, apply/etcd.c) ----------- */
kfi_apply_step kfi_step_kubernetes, kfi_step_etcd;

/* A unit enabled under multi-user.target; a->units_changed records it. */
static inline int kfi_apply_unit(apply *a, const char *name, const char *text, kf_err *e)
{
	int ch = 0, rc = kfi_unit_install(&a->c, name, text, "multi-user.target", &ch, e);

	a->units_changed |= ch;
	return rc;
}

/* daemon-reload when units changed; restart when inputs changed, else
 * start when not active. */
static inline int kfi_apply_start(apply *a, const char *name, int inputs_changed, kf_err *e)
{
	int rc = kfi_unit_start(&a->c, name, a->units_changed, inputs_changed, e);

	if (rc == KF_OK && a->systemd == a->c.live)
		a->units_changed = 0;
	return rc;
}

#endif
