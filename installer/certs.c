/*
 * Certificate expiry on a node, for `status` and monitoring (`status
 * --check`): kubeadm's certificates (the .crt files in /etc/kubernetes/pki
 * and pki/etcd for stacked etcd), the client certificates inside the
 * kubeconfigs kubeadm writes (embedded client-certificate-data, or the file
 * client-certificate names, as kubelet.conf does), and the host etcd's
 * (the .pem files in /etc/ssl/etcd/ssl, without the keys). Each one is listed with its
 * subject, its notAfter and the days left: "ok", "warn" under
 * KFI_CERT_WARN_DAYS, "EXPIRED" past it, "UNREADABLE" when a file that
 * should hold a certificate does not.
 */
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "installer/kf_installer.h"

#define CONF_MAX (1u << 20)

static const char *const KUBECONFIGS[] = {
	"/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf",
	"/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf",
	"/etc/kubernetes/kubelet.conf", NULL,
};

/* One line of the table; counts it in s. */
static void report(X509 *x, const char *what, time_t now, kfi_cert_summary *s)
{
	char when[32] = "-", cn[128] = "-";
	const char *state = "UNREADABLE";
	long days = 0;
	struct tm tm;

	if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		time_t end = timegm(&tm);
		X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
		/* Whole days left; past expiry, whole days since, negative. */
		days = (long)((end - now) / 86400);
		if (end <= now) {
			state = "EXPIRED";
			s->expired++;
		} else if (days < KFI_CERT_WARN_DAYS) {
			state = "warn";
			s->warn++;
		} else {
			state = "ok";
			s->ok++;
		}
	} else {
		s->unreadable++;
	}
	printf("  %-10s %-20s %6ld  %-28s %s\n", state, when, days, cn, what);
}

static X509 *pem_cert(const void *data, size_t len)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

/* The value after "key:" on a kubeconfig line, trimmed; NULL when absent. */
static char *conf_value(char *text, const char *key)
{
	size_t kl = strlen(key);

	for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char *p = l, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, key, kl) || p[kl] != ':')
			continue;
		p += kl + 1;
		while (*p == ' ')
			p++;
		end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '"'))
			end--;
		if (*p == '"')
			p++;
		return end > p ? strndup(p, (size_t)(end - p)) : NULL;
	}
	return NULL;
}

static void kubeconfig(const kfi_ctx *c, const char *abs, time_t now, kfi_cert_summary *s)
{
	char *full = kfi_path(c, abs), *text = NULL, *v = NULL, label[300];
	unsigned char *der = NULL;
	size_t len = 0;
	X509 *x = NULL;
	kf_err ign;

	if (!full || kf_read_file(full, CONF_MAX, &text, &len, &ign) != KF_OK)
		goto out;
	if ((v = conf_value(text, "client-certificate-data"))) {
		long n;
		size_t cap = strlen(v);
		if ((der = malloc(cap + 1)) && (n = kf_b64_decode(v, strlen(v), der, cap)) > 0)
			x = pem_cert(der, (size_t)n);
		snprintf(label, sizeof label, "%s (client)", abs);
		report(x, label, now, s);
	} else if ((v = conf_value(text, "client-certificate"))) {
		char *cf = v[0] == '/' ? kfi_path(c, v) : NULL;
		x = cf ? kf_x509_read_cert(cf) : NULL;
		snprintf(label, sizeof label, "%s (client, %s)", abs, v);
		report(x, label, now, s);
		free(cf);
	}
out:
	X509_free(x);
	free(der);
	free(v);
	free(text);
	free(full);
}

static int is_crt(const char *name)
{
	size_t l = strlen(name);
	return l > 4 && !strcmp(name + l - 4, ".crt");
}

static int is_cert_pem(const char *name)
{
	size_t l = strlen(name);
	return l > 4 && !strcmp(name + l - 4, ".pem") && !strstr(name, "-key.");
}

/* Every certificate file in dir_abs that keep() accepts. */
static int directory(const kfi_ctx *c, const char *dir_abs, int (*keep)(const char *), time_t now,
                     kfi_cert_summary *s, kf_err *e)
{
	char *dir = kfi_path(c, dir_abs), **names = NULL;
	size_t n = 0;
	int rc = dir ? kfi_dir_names(dir, keep, &names, &n, e) : kf_err_set(e, KF_EIO, "out of memory");

	for (size_t i = 0; rc == KF_OK && i < n; i++) {
		char *fp = kfi_strf("%s/%s", dir, names[i]), label[600];
		X509 *x = fp ? kf_x509_read_cert(fp) : NULL;
		snprintf(label, sizeof label, "%s/%s", dir_abs, names[i]);
		report(x, label, now, s);
		X509_free(x);
		free(fp);
	}
	kfi_names_free(names, n);
	free(dir);
	return rc;
}

int kfi_certs_report(const kfi_ctx *c, time_t now, kfi_cert_summary *s, kf_err *e)
{
	int rc;

	memset(s, 0, sizeof *s);
	printf("certificates (warn under %d days):\n", KFI_CERT_WARN_DAYS);
	printf("  %-10s %-20s %6s  %-28s %s\n", "STATE", "NOT AFTER (UTC)", "DAYS", "SUBJECT CN",
	       "FILE");
	if ((rc = directory(c, "/etc/kubernetes/pki", is_crt, now, s, e)) != KF_OK ||
	    (rc = directory(c, "/etc/kubernetes/pki/etcd", is_crt, now, s, e)) != KF_OK)
		return rc;
	for (size_t i = 0; KUBECONFIGS[i]; i++)
		kubeconfig(c, KUBECONFIGS[i], now, s);
	if ((rc = directory(c, "/etc/ssl/etcd/ssl", is_cert_pem, now, s, e)) != KF_OK)
		return rc;
	printf("  %d ok, %d expiring within %d days, %d expired, %d unreadable\n", s->ok, s->warn,
	       KFI_CERT_WARN_DAYS, s->expired, s->unreadable);
	return KF_OK;
}
