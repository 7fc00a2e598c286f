/*
 * kubeferry-install upgrade plan | apply | node | drain | uncordon
 * (docs/lifecycle.md). plan reads what runs and prints the table of what
 * would change and whether the move is allowed, changing nothing; apply
 * and node are apply's steps with the upgrade's around them
 * (apply/upgrade.c); drain and uncordon are for a worker, run from a
 * control plane (the worker has no admin.conf).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

static const struct {
	const char *sub, *synopsis;
} forms[] = {
	{"plan", "plan BUNDLE (-p PUBKEY | -P KEY) [--plan DIR] [--host NAME]\n"
	         "           [--root DIR] [--arch ARCH]"},
	{"apply", "apply BUNDLE (-p PUBKEY | -P KEY) [APPLY OPTIONS]\n"
	          "           [--drain-timeout SECONDS] [--no-drain]"},
	{"node", "node BUNDLE (-p PUBKEY | -P KEY) [APPLY OPTIONS]\n"
	         "           [--drain-timeout SECONDS] [--no-drain]"},
	{"drain", "drain NODE [--drain-timeout SECONDS]"},
	{"uncordon", "uncordon NODE"},
};

/* The synopsis of sub (NULL: plan) first, then the others. */
void kfi_upgrade_usage(FILE *f, const char *sub)
{
	size_t first = 0, n = sizeof forms / sizeof forms[0];

	for (size_t i = 0; sub && i < n; i++)
		if (!strcmp(forms[i].sub, sub))
			first = i;
	fprintf(f, "Usage: kubeferry-install upgrade %s\n", forms[first].synopsis);
	for (size_t i = 0; i < n; i++)
		if (i != first)
			fprintf(f, "       kubeferry-install upgrade %s\n", forms[i].synopsis);
	fprintf(f,
	        "\n"
	        "plan: reads what runs (each control plane's API server, each kubelet and\n"
	        "container runtime, as the API server reports them with\n"
	        "/etc/kubernetes/admin.conf, and this node's own binaries and etcd) and\n"
	        "prints, node by node, what BUNDLE would change and whether the move is\n"
	        "allowed: the control plane moves one minor at a time and never past the\n"
	        "bundled kubeadm; no kubelet may be newer than the API server, nor more\n"
	        "than three minors older; the bundle's etcd and containerd must be ones\n"
	        "the target Kubernetes supports, and etcd never moves backwards. A\n"
	        "refusal says what to do first. Nothing changes. With --plan DIR every\n"
	        "host of the cluster plan is listed, also one the API server does not know;\n"
	        "--host NAME names this node (default: the name apply recorded).\n"
	        "\n"
	        "apply (on the first control plane) and node (every other node, control\n"
	        "planes one at a time, then workers): the same checks first; then an etcd\n"
	        "snapshot (apply, on a host etcd member), drain (with admin.conf; else\n"
	        "drain the node from a control plane first), the host, containerd, runc,\n"
	        "CNI and host etcd (restarted when they changed), the new kubeadm and\n"
	        "'kubeadm upgrade apply vX.Y.Z' (apply) or 'kubeadm upgrade node' (node),\n"
	        "kubelet and kubectl (kubelet restarted), uncordon. The options are apply's\n"
	        "(see 'kubeferry-install apply --help'); without --plan or --role, the\n"
	        "role, host name, address and mirror are the ones apply recorded. Every\n"
	        "change goes into the upgrade's own journal: a failure puts the previous\n"
	        "files back and restarts the services on them, and the same command run\n"
	        "again resumes. A bundle older than what runs is refused (exit 1); one\n"
	        "that is not newer changes nothing (\"nothing to upgrade\", exit 0).\n"
	        "\n"
	        "  --drain-timeout SECONDS  how long a drain may take (default 300); a drain\n"
	        "                           a PodDisruptionBudget blocks is reported with\n"
	        "                           the pod's name\n"
	        "  --no-drain               the node was drained from elsewhere\n"
	        "\n"
	        "Exit codes: 0 allowed or done (or nothing to upgrade), 1 refused or\n"
	        "verification failed, 2 usage, 3 a step failed (previous files restored).\n");
}

/* The verified lock of BUNDLE, without unpacking anything. */
static int read_lock(const char *bundle, const char *pf, const char *ps, kf_lock **lk, kf_err *e)
{
	kf_pubkey pk;
	char *yaml = NULL, *sig = NULL;
	size_t yl = 0, sl = 0;
	int rc;

	if ((rc = kf_keys_load_public(pf, ps, &pk, e)) == KF_OK &&
	    (rc = kf_archive_read_lock(bundle, &yaml, &yl, &sig, &sl, e)) == KF_OK &&
	    (rc = kf_sig_verify_buf(&pk, sig, sl, yaml, yl, NULL, 0, KF_LOCK_SIG_PATH, e)) == KF_OK)
		rc = kf_lock_parse(yaml, yl, KF_LOCK_PATH, lk, e);
	free(yaml);
	free(sig);
	return rc;
}

static int dir_host(const char *name)
{
	return name[0] != '.';
}

/* Planned hosts the API server does not report appear with "?" rows. */
static int add_planned(const char *plan, kfi_up_state *s, kf_err *e)
{
	char *dir = kfi_strf("%s/hosts", plan), **names = NULL;
	size_t n = 0;
	int rc = dir ? kfi_dir_names(dir, dir_host, &names, &n, e) : kfi_oom(e);

	for (size_t i = 0; rc == KF_OK && i < n; i++)
		if (!kfi_upgrade_node(s, names[i], e))
			rc = KF_EIO;
	kfi_names_free(names, n);
	free(dir);
	return rc;
}

static int upgrade_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{"plan", required_argument, NULL, 'l'}, {"root", required_argument, NULL, 'r'},
		{"arch", required_argument, NULL, 'a'}, {"host", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	const char *pf = NULL, *ps = NULL, *plan = NULL, *root = "", *arch = NULL, *host = NULL;
	char self[256], march[32];
	kf_lock *lk = NULL, *cur = NULL;
	kfi_ctx c;
	kfi_applied st = {0};
	kfi_up_state s = {0};
	kfi_up_target t;
	kfi_up_verdict v;
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': pf = optarg; break;
		case 'P': ps = optarg; break;
		case 'l': plan = optarg; break;
		case 'r': root = optarg; break;
		case 'a': arch = optarg; break;
		case 'H': host = optarg; break;
		case 'h': kfi_upgrade_usage(stdout, argv[0]); goto out;
		default: kfi_upgrade_usage(stderr, argv[0]); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1 || !pf == !ps) {
		rc = kf_err_set(&e, KF_EUSAGE, "upgrade plan needs one BUNDLE and -p FILE or -P KEY");
		goto out;
	}
	if ((rc = read_lock(argv[optind], pf, ps, &lk, &e)) != KF_OK ||
	    /* Not a dry run: on the live node, kubectl is asked; nothing is
	     * written either way. */
	    (rc = kfi_ctx_init(&c, root, 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	if (kfi_applied_load(&c, &st, &e) == KF_OK)
		cur = kfi_applied_lock(&c, &st);
	e.code = 0;
	snprintf(self, sizeof self, "%s", host ? host : st.host ? st.host : "this-node");
	snprintf(march, sizeof march, "%s", arch ? arch : st.arch ? st.arch : "amd64");
	if ((rc = kfi_upgrade_observe(&c, self, cur, &s, &e)) != KF_OK)
		goto out;
	if (plan && (rc = add_planned(plan, &s, &e)) != KF_OK)
		goto out;
	kfi_upgrade_target(lk, march, &t);
	printf("upgrade plan %s: %s-%s (Kubernetes %s), what runs read from %s\n", argv[optind],
	       lk->name, lk->version, lk->kube_version ? lk->kube_version : "?", s.source);
	kfi_upgrade_judge(&s, &t, stdout, &v);
	for (size_t i = 0; i < s.n; i++) {
		const kfi_up_node *nd = &s.nodes[i];
		int cmp = 1, acmp = 0;
		if (strcmp(nd->name, self))
			continue;
		if (nd->kubelet[0] && t.kube)
			kfi_version_cmp(nd->kubelet, t.kube, &cmp);
		if (nd->control_plane && t.kube && (!nd->apiserver[0] ||
		                                    kfi_version_cmp(nd->apiserver, t.kube, &acmp) != 0))
			acmp = -1;
		printf("this node (%s) %s\n", self, !cmp && !acmp ? "runs the target already"
		                                                    : "is to be upgraded");
	}
	if (!v.allowed)
		rc = kf_err_set(&e, KF_EVERIFY, "upgrade refused: %s", v.reason);
	else
		printf("%s\n", v.nothing ? v.reason : "upgrade allowed: run 'kubeferry-install upgrade "
		       "apply' on the first control plane, then 'upgrade node' on the others, "
		       "control planes first (or ansible/upgrade.yml)");
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install upgrade plan", &e);
	kfi_upgrade_state_free(&s);
	kfi_applied_free(&st);
	kf_lock_free(lk);
	kf_lock_free(cur);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}

/* drain | uncordon NODE, from a host with admin.conf. */
static int cordon(int argc, char **argv, int drain)
{
	static const struct option opts[] = {
		{"drain-timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kfi_ctx c;
	kf_err e = {0};
	long tmo = 300;
	int rc = KF_OK, opt, ctx_ok = 0;
	char *end = NULL;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			tmo = strtol(optarg, &end, 10);
			if (!drain || end == optarg || *end || tmo < 1 || tmo > 86400) {
				rc = kf_err_set(&e, KF_EUSAGE, "--drain-timeout %s: want 1 to 86400 seconds", optarg);
				goto out;
			}
			break;
		case 'h': kfi_upgrade_usage(stdout, argv[0]); goto out;
		default: kfi_upgrade_usage(stderr, argv[0]); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1 || !kfi_node_name_valid(argv[optind])) {
		rc = kf_err_set(&e, KF_EUSAGE, "upgrade %s needs one NODE (a node name)", argv[0]);
		goto out;
	}
	if ((rc = kfi_ctx_init(&c, "", 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	rc = drain ? kfi_kubectl_drain(&c, argv[optind], (int)tmo, &e)
	           : kfi_kubectl_uncordon(&c, argv[optind], &e);
out:
	if (rc != KF_OK && e.code) {
		if (ctx_ok)
			c.failed++;
		kf_err_print(drain ? "kubeferry-install upgrade drain" : "kubeferry-install upgrade uncordon", &e);
	}
	if (ctx_ok) {
		printf("ok=%d changed=%d failed=%d\n", c.ok, c.changed, c.failed);
		kfi_ctx_free(&c);
	}
	return rc;
}

int kfi_cmd_upgrade(int argc, char **argv)
{
	int rc = KF_EUSAGE;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		kfi_upgrade_usage(argc < 2 ? stderr : stdout, NULL);
		rc = argc < 2 ? KF_EUSAGE : KF_OK;
	} else if (!strcmp(argv[1], "plan")) {
		rc = upgrade_plan(argc - 1, argv + 1);
	} else if (!strcmp(argv[1], "apply")) {
		rc = kfi_apply_upgrade_main(argc - 1, argv + 1, KFI_UP_APPLY);
	} else if (!strcmp(argv[1], "node")) {
		rc = kfi_apply_upgrade_main(argc - 1, argv + 1, KFI_UP_NODE);
	} else if (!strcmp(argv[1], "drain") || !strcmp(argv[1], "uncordon")) {
		rc = cordon(argc - 1, argv + 1, !strcmp(argv[1], "drain"));
	} else {
		fprintf(stderr, "kubeferry-install upgrade: unknown subcommand '%s'\n\n", argv[1]);
		kfi_upgrade_usage(stderr, NULL);
	}
	return rc;
}
