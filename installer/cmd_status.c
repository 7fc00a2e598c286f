/*
 * kubeferry-install status: what apply recorded (the bundle and its
 * component versions), the units and (with systemd running) their states,
 * every certificate's expiry (certs.c), and etcd's health over TLS.
 * Changes nothing. --check is the monitoring form: certificates only, and
 * an exit code that says how they stand.
 */
#include <dirent.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "installer/kf_installer.h"

/* KF_OK, -1 after --help, else KF_EUSAGE. */
static int parse_args(int argc, char **argv, const char **root, const char **etcd, int *check)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"etcd-endpoint", required_argument, NULL, 'E'},
		{"check", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char use[] =
		"Usage: kubeferry-install status [--root DIR] [--etcd-endpoint HOST:PORT]\n"
		"       kubeferry-install status --check [--root DIR]\n";
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': *root = optarg; break;
		case 'E': *etcd = optarg; break;
		case 'c': *check = 1; break;
		case 'h':
			printf("%s\n"
			       "Shows what apply installed: the bundle and its component\n"
			       "versions, the units and their states (when systemd runs), every\n"
			       "certificate with its expiry (kubeadm's /etc/kubernetes/pki/*.crt\n"
			       "and pki/etcd/*.crt, the client certificates of admin.conf,\n"
			       "super-admin.conf, controller-manager.conf, scheduler.conf and\n"
			       "kubelet.conf, the host etcd's /etc/ssl/etcd/ssl/*.pem): \"warn\"\n"
			       "under 30 days, \"EXPIRED\" past it; and etcd's health over TLS (on\n"
			       "a node with /etc/etcd.env, or with --etcd-endpoint). Changes nothing.\n"
			       "\n"
			       "  --check   for monitoring: only the certificates, and the exit code\n"
			       "            says how they stand (below)\n"
			       "\nExit codes: 0 success, 2 usage error, 3 I/O error or etcd\n"
			       "unhealthy. With --check: 0 every certificate valid for 30 days or\n"
			       "more, 1 one expires within 30 days, 3 one has expired or cannot\n"
			       "be read.\n", use);
			return -1;
		default:
			fputs(use, stderr);
			return KF_EUSAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "kubeferry-install status: error: unexpected argument '%s'\n", argv[optind]);
		return KF_EUSAGE;
	}
	return KF_OK;
}

static void print_applied(const kfi_applied *st)
{
	const struct { const char *key, *val; } f[] = {
		{"bundle", st->bundle}, {"kubernetes", st->kube_version}, {"role", st->role},
		{"hostname", st->host}, {"node_ip", st->ip}, {"arch", st->arch},
		{"bundle_dir", st->bundle_dir}, {"mirror", st->mirror ? st->mirror : "-"},
		{"mirror_fp", st->mirror_fp ? st->mirror_fp : "-"}, {"kube_proxy_mode", st->proxy_mode},
	};

	printf("applied:\n");
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].val)
			printf("  %s: %s\n", f[i].key, f[i].val);
}

/* The applied bundle's components, from its lock beside the tree. */
static void print_components(const kfi_ctx *c, const kfi_applied *st)
{
	kf_lock *lk = kfi_applied_lock(c, st);

	if (lk) {
		printf("components:\n");
		for (size_t i = 0; i < lk->ncomp; i++)
			printf("  %-14s %-12s %s\n", lk->components[i].name,
			       lk->components[i].version ? lk->components[i].version : "",
			       lk->components[i].arch ? lk->components[i].arch : "");
	}
	kf_lock_free(lk);
}

static int print_units(kfi_ctx *c, kf_err *e)
{
	static const char *const units[] = {"containerd.service", "kubelet.service",
	                                    "etcd.service", "kubeferry-mirror.service", NULL};
	int rc = KF_OK;

	printf("units:\n");
	for (size_t i = 0; rc == KF_OK && units[i]; i++) {
		char *full = kfi_strf("%s/etc/systemd/system/%s", c->root, units[i]);
		if (!full) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
		} else if (access(full, F_OK) == 0) {
			const char *state = "installed";
			if (!c->root[0] && access("/run/systemd/system", F_OK) == 0) {
				const char *argv[] = {"systemctl", "is-active", "--quiet", units[i], NULL};
				state = kfi_probe(argv) == 0 ? "active" : "inactive";
			}
			printf("  %-28s %s\n", units[i], state);
		}
		free(full);
	}
	return rc;
}

/* etcd's health over TLS with this node's admin certificate (named after
 * the host apply used, else this host's name). */
static int check_etcd(kfi_ctx *c, const char *etcd, const kfi_applied *st, kf_err *e)
{
	char addr[256], host[256], *ca = NULL, *cert = NULL, *key = NULL;
	int port, rc;

	if (kfi_split_hostport(etcd, addr, sizeof addr, &port) != 0)
		return kf_err_set(e, KF_EUSAGE, "--etcd-endpoint %s: want HOST:PORT", etcd);
	if (st->host)
		snprintf(host, sizeof host, "%s", st->host);
	else if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	ca = kfi_path(c, "/etc/ssl/etcd/ssl/ca.pem");
	cert = kfi_strf("%s/etc/ssl/etcd/ssl/admin-%s.pem", c->root, host);
	key = kfi_strf("%s/etc/ssl/etcd/ssl/admin-%s-key.pem", c->root, host);
	if (!ca || !cert || !key)
		rc = kf_err_set(e, KF_EIO, "out of memory");
	else if ((rc = kfi_etcd_health(addr, port, ca, cert, key, e)) == KF_OK)
		printf("etcd https://%s:%d healthy\n", addr, port);
	free(ca);
	free(cert);
	free(key);
	return rc;
}

int kfi_cmd_status(int argc, char **argv)
{
	const char *root = "", *etcd = NULL;
	kfi_ctx c;
	kfi_applied st = {0};
	kfi_cert_summary cs;
	kf_err e = {0};
	int check = 0, applied;
	int rc = parse_args(argc, argv, &root, &etcd, &check), ctx_ok = 0;

	if (rc != KF_OK) {
		rc = rc < 0 ? KF_OK : rc;
		goto out;
	}
	if ((rc = kfi_ctx_init(&c, root, 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	if (check) {
		/* Monitoring: the certificates only, and the verdict. */
		if ((rc = kfi_certs_report(&c, time(NULL), &cs, &e)) == KF_OK)
			rc = cs.expired || cs.unreadable ? KF_EIO : cs.warn ? KF_EVERIFY : KF_OK;
		goto out;
	}
	applied = kfi_applied_load(&c, &st, &e) != KF_EUSAGE;
	memset(&e, 0, sizeof e);
	if (!applied) {
		/* Certificates may still be there (a plan's files, kubeadm). */
		printf("nothing applied on %s (no %s)\n", c.root[0] ? c.root : "this node",
		       st.path ? st.path : KFI_STATE_DIR "/applied");
	} else {
		print_applied(&st);
		print_components(&c, &st);
		if ((rc = print_units(&c, &e)) != KF_OK)
			goto out;
	}
	if ((rc = kfi_certs_report(&c, time(NULL), &cs, &e)) != KF_OK)
		goto out;
	/* On the live node by default when host etcd is installed, elsewhere
	 * only when an endpoint is given. */
	if (!etcd && !c.root[0] && access("/etc/etcd.env", F_OK) == 0)
		etcd = "127.0.0.1:2379";
	if (etcd)
		rc = check_etcd(&c, etcd, &st, &e);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install status", &e);
	kfi_applied_free(&st);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}
