/*
 * kubeferry-install status: what apply recorded (the bundle and its
 * component versions), the units and (with systemd running) their states,
 * the expiry dates of the etcd certificates, and etcd's health over TLS.
 * Changes nothing.
 */
#include <dirent.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/kf_installer.h"

/* KF_OK, -1 after --help, else KF_EUSAGE. */
static int parse_args(int argc, char **argv, const char **root, const char **etcd)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"etcd-endpoint", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char use[] = "Usage: kubeferry-install status [--root DIR] [--etcd-endpoint HOST:PORT]\n";
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': *root = optarg; break;
		case 'E': *etcd = optarg; break;
		case 'h':
			printf("%s\n"
			       "Shows what apply installed: the bundle and its component\n"
			       "versions, the units and their states (when systemd runs),\n"
			       "and the expiry dates of the etcd certificates; with\n"
			       "--etcd-endpoint also etcd's health over TLS. Changes nothing.\n"
			       "\nExit codes: 0 success, 2 usage error, 3 I/O error or etcd\n"
			       "unhealthy.\n", use);
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

static void print_cert_expiry(const char *path, const char *name)
{
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	BIO *b;
	char buf[64] = "?";
	int days = 0, secs = 0;

	if (f)
		fclose(f);
	if (!x)
		return;
	b = BIO_new(BIO_s_mem());
	ASN1_TIME_print(b, X509_get0_notAfter(x));
	{
		int n = BIO_read(b, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
	printf("  %-32s expires %s (%d days)\n", name, buf, days);
	X509_free(x);
}

/* The host name apply used (its certificates are named after it). */
static char *applied_host(const kfi_ctx *c)
{
	char *p = NULL, *buf = NULL, *h = NULL, *l;
	size_t len;
	kf_err ign;

	if (asprintf(&p, "%s/applied", c->state_dir) < 0)
		abort();
	if (kf_read_file(p, 1 << 16, &buf, &len, &ign) == KF_OK &&
	    (l = strstr(buf, "hostname: "))) {
		l += 10;
		l[strcspn(l, "\n")] = '\0';
		h = strdup(l);
	}
	free(p);
	free(buf);
	return h;
}

static void node_name(char *h, char *out, size_t n)
{
	if (h)
		snprintf(out, n, "%s", h);
	else if (gethostname(out, n) != 0)
		snprintf(out, n, "localhost");
	out[n - 1] = '\0';
	free(h);
}

int kfi_cmd_status(int argc, char **argv)
{
	static const char *const units[] = {"containerd.service", "kubelet.service",
	                                    "etcd.service", "kubeferry-mirror.service", NULL};
	const char *root = "", *etcd = NULL;
	kfi_ctx c;
	kf_err e = {0};
	int rc = parse_args(argc, argv, &root, &etcd), ctx_ok = 0;
	char host[32] = "";
	char *applied = NULL, *p = NULL, *lock_text = NULL;
	size_t len = 0;
	kf_lock *lk = NULL;
	DIR *d = NULL;
	struct dirent *de;

	if (rc != KF_OK) {
		rc = rc < 0 ? KF_OK : rc;
		goto out;
	}
	if ((rc = kfi_ctx_init(&c, root, 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	if (asprintf(&p, "%s/applied", c.state_dir) < 0)
		abort();
	if (kf_read_file(p, 1 << 16, &applied, &len, &e) != KF_OK) {
		printf("nothing applied on %s (no %s)\n", c.root[0] ? c.root : "this node", p);
		rc = KF_OK;
		goto out;
	}
	printf("applied:\n");
	for (char *l = strtok(applied, "\n"); l; l = strtok(NULL, "\n")) {
		printf("  %s\n", l);
		if (!strncmp(l, "bundle_dir: ", 12)) {
			char *lp = NULL;
			if (asprintf(&lp, "%s%s.bundle.yaml", c.root, l + 12) < 0)
				abort();
			if (kf_read_file(lp, KF_LOCK_MAX, &lock_text, &len, &e) == KF_OK &&
			    kf_lock_parse(lock_text, len, lp, &lk, &e) != KF_OK)
				lk = NULL;
			free(lp);
		}
	}
	if (lk) {
		printf("components:\n");
		for (size_t i = 0; i < lk->ncomp; i++)
			printf("  %-14s %-12s %s\n", lk->components[i].name,
			       lk->components[i].version ? lk->components[i].version : "",
			       lk->components[i].arch ? lk->components[i].arch : "");
	}
	printf("units:\n");
	for (size_t i = 0; units[i]; i++) {
		char up[256], *full;
		snprintf(up, sizeof up, "/etc/systemd/system/%s", units[i]);
		full = kfi_path(&c, up);
		if (access(full, F_OK) == 0) {
			const char *state = "installed";
			if (!c.root[0] && access("/run/systemd/system", F_OK) == 0) {
				const char *argv2[] = {"systemctl", "is-active", "--quiet", units[i], NULL};
				state = kfi_probe(argv2) == 0 ? "active" : "inactive";
			}
			printf("  %-28s %s\n", units[i], state);
		}
		free(full);
	}
	free(p);
	p = kfi_path(&c, "/etc/ssl/etcd/ssl");
	if ((d = opendir(p))) {
		printf("etcd certificates:\n");
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);
			char *fp = NULL;
			if (n < 5 || strcmp(de->d_name + n - 4, ".pem") || strstr(de->d_name, "-key"))
				continue;
			if (asprintf(&fp, "%s/%s", p, de->d_name) < 0)
				abort();
			print_cert_expiry(fp, de->d_name);
			free(fp);
		}
	}
	/* etcd health over TLS with this node's admin certificate: on the
	 * live node by default when host etcd is installed, elsewhere only
	 * when an endpoint is given. */
	if (!etcd && !c.root[0] && access("/etc/etcd.env", F_OK) == 0)
		etcd = "127.0.0.1:2379";
	if (etcd) {
		char addr[64], *ca = NULL, *cert = NULL, *key = NULL, rel[600];
		const char *colon = strrchr(etcd, ':');
		int port = colon ? atoi(colon + 1) : 0;
		if (!colon || port <= 0 || port > 65535 || (size_t)(colon - etcd) >= sizeof addr) {
			rc = kf_err_set(&e, KF_EUSAGE, "--etcd-endpoint %s: want HOST:PORT", etcd);
			goto out;
		}
		snprintf(addr, sizeof addr, "%.*s", (int)(colon - etcd), etcd);
		node_name(applied_host(&c), host, sizeof host);
		ca = kfi_path(&c, "/etc/ssl/etcd/ssl/ca.pem");
		snprintf(rel, sizeof rel, "/etc/ssl/etcd/ssl/admin-%s.pem", host);
		cert = kfi_path(&c, rel);
		snprintf(rel, sizeof rel, "/etc/ssl/etcd/ssl/admin-%s-key.pem", host);
		key = kfi_path(&c, rel);
		rc = kfi_etcd_health(addr, port, ca, cert, key, &e);
		if (rc == KF_OK)
			printf("etcd https://%s:%d healthy\n", addr, port);
		free(ca);
		free(cert);
		free(key);
	}
out:
	if (d)
		closedir(d);
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install status", &e);
	kf_lock_free(lk);
	free(lock_text);
	free(applied);
	free(p);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}
