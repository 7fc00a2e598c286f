/*
 * The plan's certificates, all issued by the project's one X.509 issuer
 * (keys/ kf_x509_issue). CAs are made once and never replaced; a leaf is
 * kept as long as its CA signed it and it names exactly the hosts and
 * addresses the inventory now gives and is not within 90 days of its end
 * (what `etcd renew-certs` on a node also calls due),
 * so a re-run rotates nothing that is still right. Leaf keys are ECDSA P-256 without keyEncipherment (an EC
 * key cannot encipher; RFC 5480). The cluster and front-proxy CAs and the
 * service-account key are RSA 2048, what kubeadm itself would make.
 */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "installer/plan/plan.h"

#define LEAF_DAYS 3650
/* The lifetime of the mirror's own server certificates (mirror/server_tls.c). */
#define MIRROR_DAYS 825

/* Key first (0600), then the certificate: never a certificate without
 * its key. */
static int write_pair(kfp_plan *p, const char *crt, const char *key, X509 *x, EVP_PKEY *k,
                      kf_err *e)
{
	size_t len = 0;
	char *pem = kf_x509_key_pem(k, &len);
	int rc;

	if (!pem)
		return kf_err_openssl(e, "cannot encode the key", key);
	rc = kfp_put(p, key, pem, len, 0600, e);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (rc)
		return rc;
	if (!(pem = kf_x509_cert_pem(x, &len)))
		return kf_err_openssl(e, "cannot encode the certificate", crt);
	rc = kfp_put(p, crt, pem, len, 0644, e);
	free(pem);
	return rc;
}

static EVP_PKEY *new_key(kfp_keytype t)
{
	return t == KFP_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
}

int kfp_ca(kfp_plan *p, const char *crt, const char *key, const char *cn, kfp_keytype t,
           int pathlen0, X509 **x, EVP_PKEY **k, kf_err *e)
{
	kf_x509_profile prof = kfi_ca_profile(cn, pathlen0);
	int have_c = kfp_exists(crt), have_k = kfp_exists(key);

	*x = NULL;
	*k = NULL;
	if (have_c && have_k) {
		if (!(*x = kf_x509_read_cert(crt)))
			return kf_err_openssl(e, "cannot read the CA certificate", crt);
		if (!(*k = kf_x509_read_key(key)))
			return kf_err_openssl(e, "cannot read the CA key", key);
		if (X509_check_private_key(*x, *k) != 1)
			return kf_err_set(e, KF_EUSAGE, "%s does not belong to %s", key, crt);
		p->kept += 2;
		return KF_OK;
	}
	if (have_c || have_k)
		return kf_err_set(e, KF_EUSAGE, "%s without %s: restore it (a new CA would "
		                  "orphan every certificate issued so far)", have_c ? crt : key,
		                  have_c ? key : crt);
	if (!(*k = new_key(t)) || !(*x = kf_x509_issue(&prof, *k, NULL, NULL)))
		return kf_err_openssl(e, "cannot create the CA", crt);
	return write_pair(p, crt, key, *x, *k, e);
}

/* 1 when x names exactly the SANs of the extension text san
 * ("DNS:a,IP:b", no duplicates). */
static int sans_match(X509 *x, const char *san)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int have = gens ? sk_GENERAL_NAME_num(gens) : 0, want = 0, ok = 1;
	char item[300];

	GENERAL_NAMES_free(gens);
	for (const char *s = san; s && *s && ok;) {
		size_t l = strcspn(s, ",");
		if (l >= sizeof item)
			return 0;
		memcpy(item, s, l);
		item[l] = '\0';
		want++;
		if (!strncmp(item, "IP:", 3))
			ok = X509_check_ip_asc(x, item + 3, 0) == 1;
		else if (!strncmp(item, "DNS:", 4))
			ok = X509_check_host(x, item + 4, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
			                     X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
		else
			ok = 0;
		s += l + (s[l] == ',');
	}
	return ok && have == want;
}

/* A leaf this close to its end is issued anew by the next plan run. */
#define RENEW_BEFORE_DAYS 90

static int leaf_reusable(const char *crt, const char *key, const kf_x509_profile *prof,
                         X509 *ca)
{
	X509 *x = kfp_exists(crt) ? kf_x509_read_cert(crt) : NULL;
	EVP_PKEY *k = x && kfp_exists(key) ? kf_x509_read_key(key) : NULL;
	time_t soon = time(NULL) + (time_t)RENEW_BEFORE_DAYS * 86400;
	int ok = x && k && X509_verify(x, X509_get0_pubkey(ca)) == 1 &&
	         X509_check_private_key(x, k) == 1 && sans_match(x, prof->san) &&
	         X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;

	X509_free(x);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok;
}

int kfp_leaf(kfp_plan *p, const char *crt, const char *key, const kf_x509_profile *prof,
             X509 *ca, EVP_PKEY *cakey, kf_err *e)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int rc;

	if (leaf_reusable(crt, key, prof, ca)) {
		p->kept += 2;
		return KF_OK;
	}
	if (!(k = new_key(KFP_EC)) || !(x = kf_x509_issue(prof, k, ca, cakey)))
		rc = kf_err_openssl(e, "cannot issue the certificate", crt);
	else
		rc = write_pair(p, crt, key, x, k, e);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int kfp_sa(kfp_plan *p, const char *key, const char *pub, kf_err *e)
{
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	char *data = NULL, *pem = NULL;
	size_t len = 0;
	long n;
	int rc = KF_OK;

	if (kfp_exists(key)) {
		if (!(k = kf_x509_read_key(key))) {
			rc = kf_err_openssl(e, "cannot read the service-account key", key);
			goto out;
		}
		p->kept++;
	} else {
		if (!(k = new_key(KFP_RSA)) || !(pem = kf_x509_key_pem(k, &len))) {
			rc = kf_err_openssl(e, "cannot create the service-account key", key);
			goto out;
		}
		if ((rc = kfp_put(p, key, pem, len, 0600, e)))
			goto out;
	}
	/* sa.pub always follows sa.key. */
	if (!(b = BIO_new(BIO_s_mem())) || !PEM_write_bio_PUBKEY(b, k)) {
		rc = kf_err_openssl(e, "cannot encode", pub);
		goto out;
	}
	n = BIO_get_mem_data(b, &data);
	rc = kfp_put(p, pub, data, (size_t)n, 0644, e);
out:
	if (pem)
		OPENSSL_cleanse(pem, len);
	free(pem);
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

kf_x509_profile kfp_client_profile(const char *cn)
{
	kf_x509_profile prof = {
		.cn = cn, .days = LEAF_DAYS,
		.basic_constraints = "critical,CA:FALSE",
		.key_usage = "critical,digitalSignature",
		.ext_key_usage = "clientAuth",
	};
	return prof;
}

kf_x509_profile kfp_mirror_profile(const char *cn, const char *san)
{
	kf_x509_profile prof = {
		.cn = cn, .days = MIRROR_DAYS,
		.basic_constraints = "critical,CA:FALSE",
		.key_usage = "critical,digitalSignature",
		.ext_key_usage = "serverAuth",
		.san = san,
	};
	return prof;
}
