/*
 * X.509 certificates the programs issue for themselves: the installer's
 * etcd and cluster CAs and the mirror's CA and server certificate. One
 * implementation so serial numbers, validity and extensions are built the
 * same way everywhere; callers choose subject, lifetime and usages.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keys/kf_keys.h"

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return 0;
	ok = X509_add_ext(x, ex, -1);
	X509_EXTENSION_free(ex);
	return ok;
}

X509 *kf_x509_issue(const kf_x509_profile *p, EVP_PKEY *key, X509 *issuer,
                    EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509 *signer = issuer ? issuer : x;
	X509_NAME *name = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x || RAND_bytes(serial, sizeof serial) != 1)
		goto out;
	serial[0] &= 0x7f; /* positive, as RFC 5280 asks */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	if (!X509_set_version(x, 2) ||
	    /* An hour of slack for nodes whose clocks lag the issuer's. */
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), p->days, 0, NULL) ||
	    !X509_set_pubkey(x, key))
		goto out;
	name = X509_NAME_new();
	if (!name || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                         (const unsigned char *)p->cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(signer)))
		goto out;
	if (!add_ext(x, signer, NID_basic_constraints, p->basic_constraints) ||
	    !add_ext(x, signer, NID_key_usage, p->key_usage) ||
	    (p->ext_key_usage && !add_ext(x, signer, NID_ext_key_usage, p->ext_key_usage)) ||
	    !add_ext(x, signer, NID_subject_key_identifier, "hash") ||
	    /* A self-signed CA names no authority: there is none above it. */
	    (issuer && !add_ext(x, signer, NID_authority_key_identifier, "keyid:always")) ||
	    (p->san && !add_ext(x, signer, NID_subject_alt_name, p->san)))
		goto out;
	if (!X509_sign(x, issuer ? issuer_key : key, EVP_sha256()))
		goto out;
	ok = 1;
out:
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* The memory BIO's contents as a NUL-terminated malloc'ed string. */
static char *bio_string(BIO *b, size_t *len)
{
	char *p = NULL, *s;
	long n = BIO_get_mem_data(b, &p);

	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

char *kf_x509_key_pem(EVP_PKEY *key, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		s = bio_string(b, len);
	BIO_free(b);
	return s;
}

char *kf_x509_cert_pem(X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_X509(b, x))
		s = bio_string(b, len);
	BIO_free(b);
	return s;
}

/* Through a BIO so that a missing file leaves its reason on the OpenSSL
 * error queue for the caller's message. */
EVP_PKEY *kf_x509_read_key(const char *path)
{
	BIO *b = BIO_new_file(path, "re");
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

X509 *kf_x509_read_cert(const char *path)
{
	BIO *b = BIO_new_file(path, "re");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

int kf_err_openssl(kf_err *e, const char *what, const char *path)
{
	char buf[256];
	unsigned long c = ERR_get_error();

	ERR_error_string_n(c, buf, sizeof buf);
	ERR_clear_error();
	return kf_err_set(e, KF_EIO, "%s %s: %s", what, path, c ? buf : "OpenSSL error");
}
