/*
 * The mirror's own TLS material: a CA generated on the mirror node and a
 * server certificate for the names and addresses the nodes use to reach it.
 * Nodes pin the CA (by file and by its fingerprint), as `kubeadm join` pins
 * the cluster CA, so no public PKI is needed inside the closed network.
 * ECDSA P-256: every TLS client containerd or skopeo links accepts it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mirror/kf_mirror.h"

#define CA_DAYS 3650
#define SERVER_DAYS 825
/* A server certificate this close to expiry is issued anew at start. */
#define RENEW_BEFORE_DAYS 30

int kf_mirror_cert_fingerprint(const char *pem_path, char fp[KF_MIRROR_FP_LEN],
                               kf_err *e)
{
	int rc = KF_OK;
	BIO *b = NULL;
	X509 *x = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	b = BIO_new_file(pem_path, "r");
	if (!b || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		rc = kf_err_openssl(e, "cannot read certificate", pem_path);
		goto out;
	}
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
		rc = kf_err_openssl(e, "cannot hash certificate", pem_path);
		goto out;
	}
	for (unsigned int i = 0; i < n; i++)
		snprintf(fp + 3 * i, 4, "%02X%s", md[i], i + 1 < n ? ":" : "");
out:
	X509_free(x);
	BIO_free(b);
	return rc;
}

/* SANs go into an OpenSSL extension string ("IP:a,DNS:b"): a comma or any
 * other punctuation would smuggle in further entries, so only host name and
 * address characters pass. */
static int san_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 253)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
		      c == '*'))
			return 0;
	}
	return 1;
}

static int is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The key k, or the certificate x when k is NULL, as unencrypted PEM
 * written atomically: keys 0600, certificates 0644. */
static int write_pem(const char *path, EVP_PKEY *k, X509 *x, kf_err *e)
{
	int rc;
	size_t len = 0;
	char *pem = k ? kf_x509_key_pem(k, &len) : kf_x509_cert_pem(x, &len);

	if (!pem)
		return kf_err_openssl(e, k ? "cannot encode key" : "cannot encode certificate", path);
	rc = kf_write_file_atomic(path, pem, len, k ? 0600 : 0644, 1, e);
	free(pem);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The certificate's SANs as sorted "IP:..."/"DNS:..." text, to compare with
 * the requested set. */
static char *cert_sans(X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char **items = NULL, *out = NULL;
	size_t n = 0;
	kf_buf b;
	int count = gens ? sk_GENERAL_NAME_num(gens) : 0;

	items = calloc((size_t)count + 1, sizeof *items);
	if (!items)
		goto out;
	for (int i = 0; i < count; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		/* as long as a requested SAN may be (build_sans), so that a
		 * long DNS name compares equal to itself */
		char buf[300];
		if (g->type == GEN_DNS) {
			const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
			snprintf(buf, sizeof buf, "DNS:%.*s",
			         ASN1_STRING_length(g->d.dNSName) > 253 ? 253 :
			         ASN1_STRING_length(g->d.dNSName), (const char *)d);
		} else if (g->type == GEN_IPADD) {
			char ip[INET6_ADDRSTRLEN] = "?";
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
			if (l == 4)
				inet_ntop(AF_INET, d, ip, sizeof ip);
			else if (l == 16)
				inet_ntop(AF_INET6, d, ip, sizeof ip);
			snprintf(buf, sizeof buf, "IP:%s", ip);
		} else {
			continue;
		}
		items[n] = strdup(buf);
		if (!items[n])
			goto out;
		n++;
	}
	qsort(items, n, sizeof *items, cmp_str);
	kf_buf_init(&b);
	kf_buf_adds(&b, "");
	for (size_t i = 0; i < n; i++)
		kf_buf_addf(&b, "%s%s", i ? "," : "", items[i]);
	out = kf_buf_take(&b);
out:
	for (size_t i = 0; items && i < n; i++)
		free(items[i]);
	free(items);
	GENERAL_NAMES_free(gens);
	return out;
}

/* Requested SANs as the extension value, and as sorted canonical text
 * (IPs normalised by inet_ntop so "::1" and "0::1" compare equal). */
static int build_sans(const char *const *sans, size_t nsans, char **ext,
                      char **canon, kf_err *e)
{
	int rc = KF_OK;
	char **items = calloc(nsans + 1, sizeof *items);
	kf_buf be, bc;

	kf_buf_init(&be);
	kf_buf_init(&bc);
	kf_buf_adds(&be, "");
	kf_buf_adds(&bc, "");
	*ext = *canon = NULL;
	if (!items) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nsans; i++) {
		char buf[300];
		if (!san_valid(sans[i])) {
			rc = kf_err_set(e, KF_EUSAGE, "invalid --san '%s' (want an IP address or DNS name)",
			                sans[i]);
			goto out;
		}
		if (is_ip(sans[i])) {
			unsigned char a[16];
			char ip[INET6_ADDRSTRLEN];
			int v4 = inet_pton(AF_INET, sans[i], a) == 1;
			if (!v4)
				inet_pton(AF_INET6, sans[i], a);
			inet_ntop(v4 ? AF_INET : AF_INET6, a, ip, sizeof ip);
			snprintf(buf, sizeof buf, "IP:%s", ip);
		} else {
			snprintf(buf, sizeof buf, "DNS:%s", sans[i]);
		}
		items[i] = strdup(buf);
		if (!items[i]) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < nsans; i++)
		kf_buf_addf(&be, "%s%s", i ? "," : "", items[i]);
	qsort(items, nsans, sizeof *items, cmp_str);
	for (size_t i = 0; i < nsans; i++) {
		/* Duplicates collapse, as they do in the certificate. */
		if (i && !strcmp(items[i], items[i - 1]))
			continue;
		kf_buf_addf(&bc, "%s%s", bc.len ? "," : "", items[i]);
	}
	*ext = kf_buf_take(&be);
	*canon = kf_buf_take(&bc);
	if (!*ext || !*canon)
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	kf_buf_free(&be);
	kf_buf_free(&bc);
	for (size_t i = 0; items && i < nsans; i++)
		free(items[i]);
	free(items);
	if (rc) {
		free(*ext);
		free(*canon);
		*ext = *canon = NULL;
	}
	return rc;
}

/* state_dir/chain.crt: the server certificate, then the CA, as the server
 * presents them. Nodes take the CA out of the handshake and pin it by
 * fingerprint (apply --mirror-ca-fingerprint), so a handshake without the CA
 * would leave them nothing to pin. Rewritten only when it differs, so a
 * restart with unchanged material writes nothing. */
static int write_chain(const char *path, X509 *srv, X509 *ca, kf_err *e)
{
	int rc = KF_OK;
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *have = NULL;
	size_t havelen = 0;
	long n;
	kf_err ignore = {0};

	if (!b || !PEM_write_bio_X509(b, srv) || !PEM_write_bio_X509(b, ca)) {
		rc = kf_err_openssl(e, "cannot encode certificate chain", path);
		goto out;
	}
	n = BIO_get_mem_data(b, &data);
	if (kf_read_file(path, 1 << 20, &have, &havelen, &ignore) == KF_OK &&
	    havelen == (size_t)n && memcmp(have, data, havelen) == 0)
		goto out;
	rc = kf_write_file_atomic(path, data, (size_t)n, 0644, 1, e);
out:
	free(have);
	BIO_free(b);
	return rc;
}

/* 1 when the existing server certificate can serve on. */
static int server_reusable(X509 *srv, EVP_PKEY *srv_key, X509 *ca,
                           const char *want_sans)
{
	EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
	time_t soon = time(NULL) + (time_t)RENEW_BEFORE_DAYS * 86400;
	char *have = NULL;
	int ok = 0;

	if (!srv || !srv_key || !ca_pub || X509_verify(srv, ca_pub) != 1 ||
	    X509_check_private_key(srv, srv_key) != 1 ||
	    X509_cmp_time(X509_get0_notAfter(srv), &soon) <= 0)
		goto out;
	have = cert_sans(srv);
	ok = have && want_sans && !strcmp(have, want_sans);
out:
	free(have);
	ERR_clear_error();
	return ok;
}

int kf_mirror_tls_ensure(const char *state_dir, const char *const *sans,
                         size_t nsans, kf_err *e)
{
	int rc = KF_OK;
	char ca_crt[PATH_MAX], ca_key[PATH_MAX], srv_crt[PATH_MAX], srv_key[PATH_MAX];
	char chain[PATH_MAX];
	char *ext = NULL, *canon = NULL;
	EVP_PKEY *cak = NULL, *sk = NULL;
	X509 *ca = NULL, *srv = NULL;
	struct stat st;
	kf_x509_profile ca_p = {
		.cn = "kubeferry mirror CA", .days = CA_DAYS,
		.basic_constraints = "critical,CA:TRUE,pathlen:0",
		.key_usage = "critical,keyCertSign,cRLSign",
	};
	kf_x509_profile srv_p = {
		.days = SERVER_DAYS,
		.basic_constraints = "critical,CA:FALSE",
		.key_usage = "critical,digitalSignature",
		.ext_key_usage = "serverAuth",
	};

	if (nsans == 0) {
		rc = kf_err_set(e, KF_EUSAGE, "the server certificate needs at least one --san");
		goto out;
	}
	rc = build_sans(sans, nsans, &ext, &canon, e);
	if (rc)
		goto out;
	if (kf_strf(ca_crt, sizeof ca_crt, "%s/ca.crt", state_dir) ||
	    kf_strf(ca_key, sizeof ca_key, "%s/ca.key", state_dir) ||
	    kf_strf(srv_crt, sizeof srv_crt, "%s/server.crt", state_dir) ||
	    kf_strf(srv_key, sizeof srv_key, "%s/server.key", state_dir) ||
	    kf_strf(chain, sizeof chain, "%s/" KF_MIRROR_CHAIN_FILE, state_dir)) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", state_dir);
		goto out;
	}
	rc = kf_mkdir_p(state_dir, 0700, e);
	if (rc)
		goto out;

	/* The CA is what every node pins: once it exists it is never
	 * replaced behind the operator's back. A half-present CA (one of the
	 * two files lost) is an error to look at, not something to paper
	 * over with a new CA. */
	if (lstat(ca_key, &st) == 0 || lstat(ca_crt, &st) == 0) {
		cak = kf_x509_read_key(ca_key);
		ca = kf_x509_read_cert(ca_crt);
		if (!cak || !ca) {
			rc = kf_err_openssl(e, "cannot load the mirror CA from", state_dir);
			goto out;
		}
		if (X509_check_private_key(ca, cak) != 1) {
			rc = kf_err_set(e, KF_EUSAGE, "%s does not match %s", ca_crt, ca_key);
			goto out;
		}
	} else {
		cak = EVP_EC_gen("P-256");
		ca = cak ? kf_x509_issue(&ca_p, cak, NULL, NULL) : NULL;
		if (!ca) {
			rc = kf_err_openssl(e, "cannot create the mirror CA in", state_dir);
			goto out;
		}
		/* Key first: a crash between the two leaves no certificate
		 * without its key. */
		rc = write_pem(ca_key, cak, NULL, e);
		if (!rc)
			rc = write_pem(ca_crt, NULL, ca, e);
		if (rc)
			goto out;
	}

	sk = kf_x509_read_key(srv_key);
	srv = kf_x509_read_cert(srv_crt);
	ERR_clear_error();
	if (server_reusable(srv, sk, ca, canon)) {
		rc = write_chain(chain, srv, ca, e);
		goto out;
	}
	EVP_PKEY_free(sk);
	X509_free(srv);
	sk = EVP_EC_gen("P-256");
	srv_p.cn = sans[0];
	srv_p.san = ext;
	srv = sk ? kf_x509_issue(&srv_p, sk, ca, cak) : NULL;
	if (!srv) {
		rc = kf_err_openssl(e, "cannot issue the mirror certificate in", state_dir);
		goto out;
	}
	/* Key, certificate, chain: after a crash in between, the next start
	 * finds a certificate that does not match its key (issued anew) or a
	 * stale chain (rewritten). */
	rc = write_pem(srv_key, sk, NULL, e);
	if (!rc)
		rc = write_pem(srv_crt, NULL, srv, e);
	if (!rc)
		rc = write_chain(chain, srv, ca, e);
out:
	free(ext);
	free(canon);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	X509_free(ca);
	X509_free(srv);
	return rc;
}
