/*
 * kubeferry-install apply: turn a verified bundle into a prepared node.
 *
 *   verify + unpack -> host (SELinux, swap, modules, sysctls, firewalld)
 *   -> runtime (containerd, runc, CNI, crictl, config, certs.d, unit)
 *   -> kubernetes (kubeadm, kubelet, kubectl, helm, kubelet unit)
 *   -> etcd on control planes when the lock says etcd: host
 *
 * This file reads the options, works out who the node is and runs the
 * steps of installer/apply/ from one table, in order. Every change goes
 * through the step engine (installer/step/): compared first, journaled,
 * written atomically. With --root DIR the files go under DIR and no
 * command runs: setenforce, swapoff, modprobe, sysctl --system,
 * firewall-cmd / firewall-offline-cmd, systemctl and the etcd health check
 * are printed as "plan" lines instead (docs/install.md).
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "installer/apply/apply.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install apply BUNDLE (-p PUBKEY | -P KEY) --role control-plane|worker\n"
	        "           [--mirror HOST:PORT --mirror-ca-fingerprint SHA256 | --no-mirror]\n"
	        "           [--root DIR] [--dry-run] [--hostname NAME] [--node-ip IP] [--arch ARCH]\n"
	        "           [--selinux permissive|enforcing]\n"
	        "       kubeferry-install apply BUNDLE (-p PUBKEY | -P KEY) --plan DIR --host NAME\n"
	        "           [--root DIR] [--dry-run] [--arch ARCH] [--selinux permissive|enforcing]\n"
	        "       (either form) [--allow-downgrade] [--base DIR|BUNDLE] (BUNDLE a delta)\n"
	        "\n"
	        "Verifies and unpacks BUNDLE into /var/lib/kubeferry/bundles/<name>-<version>,\n"
	        "then prepares this node: host packages (the bundle's RPMs for this\n"
	        "release, installed by the node's dnf from the bundle only, gpgcheck on),\n"
	        "SELinux permissive, swap off, kernel modules,\n"
	        "sysctls, firewalld ports, containerd + runc + CNI + crictl, registry mirror\n"
	        "(certs.d), kubeadm/kubelet/kubectl/helm, and etcd with its own PKI on\n"
	        "control planes when the bundle says etcd: host. Each step prints ok or\n"
	        "changed; the run ends with ok=N changed=N failed=N.\n"
	        "\n"
	        "Options:\n"
	        "  -p FILE, -P KEY          trusted public key (minisign file or base64 line)\n"
	        "  --role ROLE              control-plane or worker\n"
	        "  --mirror HOST:PORT --mirror-ca-fingerprint SHA256\n"
	        "                           point containerd at this registry mirror (the\n"
	        "                           node running 'mirror install'); its CA is taken\n"
	        "                           from the TLS chain only when it matches the pin\n"
	        "  --mirror-ca FILE         the mirror's CA carried by hand (still pinned)\n"
	        "  --no-mirror              no mirror: import the bundle's images into\n"
	        "                           containerd's k8s.io namespace instead\n"
	        "  --root DIR               install into DIR; commands are printed as\n"
	        "                           'plan', not run (host packages: dnf\n"
	        "                           --installroot=DIR does run)\n"
	        "  --selinux MODE           permissive (default) or enforcing: keep SELinux\n"
	        "                           enforcing and relabel what apply installs\n"
	        "                           (restorecon); needs container-selinux in the\n"
	        "                           bundle's host packages\n"
	        "  --dry-run                print what would change; change nothing\n"
	        "  --hostname NAME          node name (default: this host's name)\n"
	        "  --node-ip IP             address for etcd and the API server\n"
	        "                           (default: the first non-loopback address)\n"
	        "  --arch ARCH              architecture (default: this machine's)\n"
	        "  --plan DIR --host NAME   host NAME of a cluster plan ('cluster plan'; DIR\n"
	        "                           needs only hosts/NAME/): role, node name and\n"
	        "                           address from the plan; the planned etcd member\n"
	        "                           certificates and etcd.env instead of a new PKI;\n"
	        "                           every mirror host in order in hosts.toml with the\n"
	        "                           planned CA; control planes' CAs, keys, encryption\n"
	        "                           and audit files and the kubeadm configuration\n"
	        "  --base DIR|BUNDLE        BUNDLE is a delta (kubeferry build --base): the\n"
	        "                           base it names, an unpacked bundle directory or the\n"
	        "                           full bundle file (default: the bundle the delta\n"
	        "                           names, as unpacked here by an earlier apply, else\n"
	        "                           the applied bundle of that name); each entry\n"
	        "                           taken from it is checked against the delta\n"
	        "  --allow-downgrade        apply a bundle whose Kubernetes version is older\n"
	        "                           than the applied one (or the same name and\n"
	        "                           version built earlier); refused otherwise, exit 1.\n"
	        "                           A kubelet of a newer minor than the running\n"
	        "                           control plane is refused either way\n"
	        "\n"
	        "Re-running changes nothing (changed=0); a run that was killed can be\n"
	        "re-run and finishes; 'kubeferry-install reset' undoes it.\n"
	        "\n"
	        "Exit codes: 0 success, 1 verification failed, 2 usage, 3 I/O or step failed.\n");
}


/* What cluster, mirror install and status read later (applied.c). */
static int write_applied(apply *a, kf_err *e)
{
	kfi_applied st = {0};
	int rc;

	if (a->dry_run)
		return KF_OK;
	st.bundle = kfi_strf("%s-%s", a->lock->name, a->lock->version);
	st.bundle_dir = kfi_strf("%s/%s-%s", KFI_BUNDLES_DIR, a->lock->name, a->lock->version);
	st.kube_version = a->lock->kube_version;
	st.role = (char *)a->role;
	st.host = a->host;
	st.ip = a->ip;
	st.arch = a->arch;
	st.mirror = (char *)a->mirror;
	st.mirror_fp = (char *)a->mirror_fp;
	st.proxy_mode = (char *)kfi_proxy_mode(&a->os, a->lock);
	st.selinux = a->selinux_enforcing ? "enforcing" : "permissive";
	if (!st.bundle || !st.bundle_dir)
		rc = kf_err_set(e, KF_EIO, "out of memory");
	else
		rc = kfi_applied_write(&a->c, &st, e);
	free(st.bundle);
	free(st.bundle_dir);
	return rc;
}

static int when_mirror(const apply *a)
{
	return a->mirror != NULL;
}

static int when_no_mirror(const apply *a)
{
	return a->no_mirror;
}

static int when_enforcing(const apply *a)
{
	return a->selinux_enforcing;
}

static int when_host_etcd(const apply *a)
{
	if (a->lock->install.etcd && strcmp(a->lock->install.etcd, "host"))
		return 0;
	/* With a plan the etcd group decides, not the control planes. */
	return a->share ? a->share->etcd_member_name != NULL : a->control_plane;
}

static int when_plan(const apply *a)
{
	return a->share != NULL;
}

static int when_plan_mirror(const apply *a)
{
	return a->share && (a->share->roles & KF_ROLE_MIRROR) && !a->dry_run;
}

static int when_up_snapshot(const apply *a)
{
	return a->upgrade == KFI_UP_APPLY && when_host_etcd(a);
}

#define A 1 /* apply */
#define U 2 /* upgrade apply | node (apply/upgrade.c) */

/* The run, in order. A step runs in the modes it names (apply, upgrade or
 * both) and only when its condition holds; a step with a section prints
 * "== section" first. The mirror's CA is fetched and checked against the
 * pin before anything on the node changes: a wrong fingerprint must not
 * leave a half-prepared node. An upgrade's checks run inside the bundle
 * step, on the verified lock, before anything changes; it moves the
 * runtime and host etcd before kubeadm and the kubelet after it. */
static const struct {
	unsigned modes;
	const char *section;
	kfi_apply_step *run;
	int (*when)(const apply *a);
} steps[] = {
	{A | U, NULL, kfi_step_mirror_ca, when_mirror},
	{A | U, "bundle", kfi_step_bundle, NULL},
	{U, "upgrade: etcd snapshot", kfi_step_upgrade_snapshot, when_up_snapshot},
	{U, "upgrade: drain", kfi_step_upgrade_drain, NULL},
	{A | U, "cluster plan: this host's share", kfi_step_plan_share, when_plan},
	{U, "upgrade: this mirror host serves the new bundle", kfi_step_upgrade_mirror, when_plan_mirror},
	{A | U, "host: packages", kfi_step_packages, NULL},
	{A | U, "host: SELinux", kfi_step_selinux, NULL},
	{A | U, "host: swap", kfi_step_swap, NULL},
	{A | U, "host: kernel modules and sysctls", kfi_step_modules_sysctl, NULL},
	{A | U, "host: firewalld", kfi_step_firewalld, NULL},
	{A | U, "container runtime", kfi_step_runtime, NULL},
	{A | U, "registry mirror", kfi_step_certs_d, NULL},
	{A | U, "containerd service", kfi_step_containerd_service, NULL},
	{A | U, "images (--no-mirror)", kfi_step_import, when_no_mirror},
	{U, "etcd (host)", kfi_step_etcd, when_host_etcd},
	{U, "upgrade: kubeadm", kfi_step_upgrade_kubeadm, NULL},
	{A | U, "kubernetes", kfi_step_kubernetes, NULL},
	{U, "upgrade: kubelet", kfi_step_upgrade_kubelet, NULL},
	{A, "etcd (host)", kfi_step_etcd, when_host_etcd},
	{A | U, "SELinux: relabel (--selinux enforcing)", kfi_step_relabel, when_enforcing},
	{U, "upgrade: uncordon", kfi_step_upgrade_uncordon, NULL},
};

static int run_steps(apply *a, kf_err *e)
{
	unsigned mode = a->upgrade ? U : A;
	int rc = KF_OK;

	for (size_t i = 0; rc == KF_OK && !a->up_stop && i < sizeof steps / sizeof steps[0]; i++) {
		if (!(steps[i].modes & mode) || (steps[i].when && !steps[i].when(a)))
			continue;
		if (steps[i].section) {
			printf("== %s\n", steps[i].section);
			fflush(stdout);
		}
		rc = steps[i].run(a, e);
	}
	return rc;
}

/* Options into a; KF_OK, -1 after --help, else KF_EUSAGE. */
static int parse_args(apply *a, int argc, char **argv, kf_err *e)
{
	enum { O_ROLE = 256, O_ROOT, O_DRY, O_MIRROR, O_FP, O_NOMIRROR, O_HOST, O_IP, O_ARCH,
	       O_CAFILE, O_PLAN, O_PLAN_HOST, O_SELINUX, O_BASE, O_DOWNGRADE, O_DRAIN_TMO, O_NO_DRAIN };
	static const struct option opts[] = {
		{"role", required_argument, NULL, O_ROLE},
		{"root", required_argument, NULL, O_ROOT},
		{"dry-run", no_argument, NULL, O_DRY},
		{"mirror", required_argument, NULL, O_MIRROR},
		{"mirror-ca-fingerprint", required_argument, NULL, O_FP},
		{"no-mirror", no_argument, NULL, O_NOMIRROR},
		{"mirror-ca", required_argument, NULL, O_CAFILE},
		{"hostname", required_argument, NULL, O_HOST},
		{"node-ip", required_argument, NULL, O_IP},
		{"arch", required_argument, NULL, O_ARCH},
		{"plan", required_argument, NULL, O_PLAN},
		{"host", required_argument, NULL, O_PLAN_HOST},
		{"selinux", required_argument, NULL, O_SELINUX},
		{"base", required_argument, NULL, O_BASE},
		{"allow-downgrade", no_argument, NULL, O_DOWNGRADE},
		{"drain-timeout", required_argument, NULL, O_DRAIN_TMO},
		{"no-drain", no_argument, NULL, O_NO_DRAIN},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': a->pub_file = optarg; break;
		case 'P': a->pub_str = optarg; break;
		case O_ROLE: a->role = optarg; break;
		case O_ROOT: a->root = optarg; break;
		case O_DRY: a->dry_run = 1; break;
		case O_MIRROR: a->mirror = optarg; break;
		case O_FP: a->mirror_fp = optarg; break;
		case O_NOMIRROR: a->no_mirror = 1; break;
		case O_CAFILE: a->mirror_ca_file = optarg; break;
		case O_HOST: a->hostname_opt = optarg; break;
		case O_IP: a->node_ip_opt = optarg; break;
		case O_ARCH: a->arch_opt = optarg; break;
		case O_PLAN: a->plan_dir = optarg; break;
		case O_PLAN_HOST: a->plan_host = optarg; break;
		case O_SELINUX:
			if (strcmp(optarg, "permissive") && strcmp(optarg, "enforcing"))
				return kf_err_set(e, KF_EUSAGE, "--selinux must be permissive or enforcing");
			a->selinux_enforcing = !strcmp(optarg, "enforcing");
			a->selinux_given = 1;
			break;
		case O_BASE: a->base = optarg; break;
		case O_DOWNGRADE: a->allow_downgrade = 1; break;
		case O_DRAIN_TMO: {
			char *end = NULL;
			long v = strtol(optarg, &end, 10);
			if (!a->upgrade || end == optarg || *end || v < 1 || v > 86400)
				return kf_err_set(e, KF_EUSAGE, "--drain-timeout %s: want 1 to 86400 seconds (upgrade only)",
				                  optarg);
			a->drain_timeout = (int)v;
			break;
		}
		case O_NO_DRAIN:
			if (!a->upgrade)
				return kf_err_set(e, KF_EUSAGE, "--no-drain is an upgrade option");
			a->no_drain = 1;
			break;
		case 'h': if (a->upgrade) kfi_upgrade_usage(stdout, argv[0]); else usage(stdout); return -1;
		default: if (a->upgrade) kfi_upgrade_usage(stderr, argv[0]); else usage(stderr); return KF_EUSAGE;
		}
	}
	if (optind != argc - 1)
		return kf_err_set(e, KF_EUSAGE, "%s needs exactly one BUNDLE", a->upgrade ? "upgrade" : "apply");
	a->bundle = argv[optind];
	return KF_OK;
}

/* An upgrade keeps the node's SELinux mode unless --selinux says
 * otherwise; without --plan or --role, the node is who apply made it. */
static int from_applied(apply *a, kfi_applied *st, kf_err *e)
{
	kfi_ctx c;
	int rc, who = !a->plan_dir && !a->plan_host && !a->role;

	if ((rc = kfi_ctx_init(&c, a->root ? a->root : "", 1, e)) != KF_OK)
		goto out;
	rc = kfi_applied_load(&c, st, e);
	kfi_ctx_free(&c);
	if (rc != KF_OK && !who) {
		rc = KF_OK; /* nothing recorded: the options say it all */
		goto out;
	}
	if (rc != KF_OK)
		goto out;
	if (!a->selinux_given && st->selinux)
		a->selinux_enforcing = !strcmp(st->selinux, "enforcing");
	if (!who)
		goto out;
	a->role = st->role;
	a->hostname_opt = st->host;
	a->node_ip_opt = st->ip;
	a->mirror = st->mirror;
	a->mirror_fp = st->mirror ? st->mirror_fp : NULL;
	a->no_mirror = st->mirror == NULL;
out:
	return rc;
}

/* The options that must agree before anything else happens. */
static int check_args(apply *a, kf_err *e)
{
	if (!a->pub_file == !a->pub_str)
		return kf_err_set(e, KF_EUSAGE, "give the trusted public key with -p FILE or -P KEY");
	if (a->plan_dir || a->plan_host) {
		int rc;
		/* The plan says who this node is and which mirrors it uses. */
		if (!a->plan_dir || !a->plan_host)
			return kf_err_set(e, KF_EUSAGE, "--plan DIR and --host NAME go together");
		if (a->role || a->mirror || a->mirror_fp || a->mirror_ca_file || a->no_mirror ||
		    a->hostname_opt || a->node_ip_opt)
			return kf_err_set(e, KF_EUSAGE, "with --plan the plan gives the role, mirrors, host "
			                  "name and address: drop --role, --mirror*, --no-mirror, "
			                  "--hostname and --node-ip");
		if ((rc = kfi_apply_plan_load(a, e)) != KF_OK)
			return rc;
	}
	if (!a->role || (strcmp(a->role, "control-plane") && strcmp(a->role, "worker")))
		return kf_err_set(e, KF_EUSAGE, "--role must be control-plane or worker");
	a->control_plane = !strcmp(a->role, "control-plane");
	if (a->mirror && a->no_mirror)
		return kf_err_set(e, KF_EUSAGE, "--mirror and --no-mirror exclude each other");
	if (!a->mirror != !a->mirror_fp)
		return kf_err_set(e, KF_EUSAGE, "--mirror needs --mirror-ca-fingerprint (and the other way round)");
	if (a->mirror_fp) {
		char norm[KF_SHA256_HEX];
		if (kfi_fingerprint_norm(a->mirror_fp, norm) != 0)
			return kf_err_set(e, KF_EUSAGE, "--mirror-ca-fingerprint %s: want sha256:<64 hex digits>", a->mirror_fp);
	}
	if (a->root) {
		struct stat st;
		if (stat(a->root, &st) != 0 || !S_ISDIR(st.st_mode))
			return kf_err_set(e, KF_EUSAGE, "--root %s: not a directory", a->root);
	}
	return KF_OK;
}

/* Architecture, host name and address: given, or found on the node. */
static int identify(apply *a, kf_err *e)
{
	unsigned char sa[sizeof(struct in6_addr)];

	a->systemd = a->c.live && access("/run/systemd/system", F_OK) == 0;
	kfi_os_probe(a->c.root, &a->os);
	if (a->arch_opt)
		snprintf(a->arch, sizeof a->arch, "%s", a->arch_opt);
	else
		kfi_host_arch(a->arch, sizeof a->arch);
	if (a->hostname_opt)
		snprintf(a->host, sizeof a->host, "%s", a->hostname_opt);
	else
		kfi_node_hostname(a, a->host, sizeof a->host);
	if (a->node_ip_opt)
		snprintf(a->ip, sizeof a->ip, "%s", a->node_ip_opt);
	else
		kfi_node_ip(a->ip, sizeof a->ip);
	/* The name and address end up in file names, /etc/etcd.env lines and
	 * the OpenSSL SAN string ("DNS:name,IP:addr"): a ',', '/' or newline
	 * there would add SANs, escape the directory or inject settings.
	 * Checked here, before the first change to the node. */
	if (!a->etcd_name)
		a->etcd_name = a->host;
	if (!kfi_node_name_valid(a->host))
		return kf_err_set(e, KF_EUSAGE, "unusable host name '%s' (RFC 1123: lowercase letters, digits "
		                  "and inner '-', labels of at most 63, at most 253 in all, not localhost; "
		                  "use --hostname)", a->host);
	/* IPv4 only: etcd.env and the kubeadm configuration write the
	 * address into URLs without IPv6 brackets. */
	if (inet_pton(AF_INET, a->ip, sa) != 1)
		return kf_err_set(e, KF_EUSAGE, "--node-ip %s: not an IPv4 address", a->ip);
	return KF_OK;
}

static int apply_main(int argc, char **argv, int mode)
{
	apply a;
	kfi_applied st = {0};
	kf_err e = {0};
	int rc, ctx_ok = 0;

	memset(&a, 0, sizeof a);
	a.upgrade = mode;
	a.drain_timeout = 300;
	rc = parse_args(&a, argc, argv, &e);
	if (rc < 0) {
		rc = KF_OK;
		goto out;
	}
	if (rc == KF_OK && mode)
		rc = from_applied(&a, &st, &e);
	if (rc != KF_OK || (rc = check_args(&a, &e)) != KF_OK)
		goto out;
	rc = mode ? kfi_ctx_init_upgrade(&a.c, a.root ? a.root : "", a.dry_run, &e)
	          : kfi_ctx_init(&a.c, a.root ? a.root : "", a.dry_run, &e);
	if (rc != KF_OK)
		goto out;
	ctx_ok = 1;
	if ((rc = identify(&a, &e)) != KF_OK)
		goto out;
	printf("%s %s: role %s, host %s (%s), arch %s, root %s%s\n",
	       mode == KFI_UP_APPLY ? "upgrade apply" : mode ? "upgrade node" : "apply", a.bundle, a.role,
	       a.host, a.ip, a.arch, a.c.root[0] ? a.c.root : "/",
	       a.dry_run ? ", dry run" : "");
	rc = run_steps(&a, &e);
	if (rc == KF_OK && !a.up_stop)
		rc = write_applied(&a, &e);
	/* The upgrade's changes join apply's journal (reset undoes them);
	 * a failed upgrade puts the previous files back. */
	if (rc == KF_OK && mode && !a.up_stop)
		rc = kfi_journal_commit(&a.c, &e);
	else if (rc != KF_OK && a.up_started)
		kfi_apply_upgrade_rollback(&a);
out:
	kfi_apply_done(&a, rc, ctx_ok, &e, mode ? "kubeferry-install upgrade" : "kubeferry-install apply");
	if (rc != KF_OK && a.up_started)
		fprintf(stderr, "kubeferry-install upgrade: %s is on its previous binaries; fix the "
		        "cause and run the same 'kubeferry-install upgrade %s' again to resume "
		        "(the node stays cordoned until it finishes)\n", a.host,
		        mode == KFI_UP_APPLY ? "apply" : "node");
	kfi_applied_free(&st);
	return rc;
}

int kfi_cmd_apply(int argc, char **argv)
{
	return apply_main(argc, argv, 0);
}

int kfi_apply_upgrade_main(int argc, char **argv, int mode)
{
	return apply_main(argc, argv, mode);
}
