/*
 * The host etcd's own PKI, in Kubespray's layout (/etc/ssl/etcd/ssl/):
 *   ca.pem, ca-key.pem                      CN=etcd-ca
 *   member-<host>.pem, member-<host>-key.pem CN=etcd-member-<host>
 *   admin-<host>.pem,  admin-<host>-key.pem  CN=etcd-admin-<host>
 *   node-<host>.pem,   node-<host>-key.pem   CN=etcd-node-<host>
 * Leaf certificates carry serverAuth and clientAuth (etcd uses one
 * certificate for both directions on the peer port) and the SANs
 * localhost, the host name, 127.0.0.1, ::1 and the node's addresses.
 * Keys are ECDSA P-256, written 0600.
 *
 * Existing files are kept: a re-run must not rotate a running cluster's
 * certificates, so only missing ones are issued (from the existing CA).
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kf_installer.h"

#define CERT_DAYS 3650

static char *bio_string(BIO *b, size_t *len)
{
	char *p = NULL, *s;
	long n = BIO_get_mem_data(b, &p);

	s = malloc((size_t)n + 1);
	if (!s)
		abort();
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

static char *key_pem(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	s = bio_string(b, len);
	BIO_free(b);
	return s;
}

static char *cert_pem(X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	PEM_write_bio_X509(b, x);
	s = bio_string(b, len);
	BIO_free(b);
	return s;
}

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

/* A certificate for key, signed by ca_key (self-signed when ca is NULL). */
static X509 *issue(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                   const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x)
		goto out;
	if (RAND_bytes(serial, sizeof serial) != 1)
		goto out;
	serial[0] &= 0x7f; /* a positive serial */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto out;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
	if (!ca) {
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") &&
		     add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		ok = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
		     add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") &&
		     add_ext(x, ca, NID_subject_key_identifier, "hash") &&
		     add_ext(x, ca, NID_authority_key_identifier, "keyid:always") &&
		     add_ext(x, ca, NID_subject_alt_name, san);
	}
	if (ok && !X509_sign(x, ca ? ca_key : key, EVP_sha256()))
		ok = 0;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* Only a regular file counts: a key "kept" through a symbolic link would
 * be read from wherever the link points (under --root, possibly the
 * host's own secrets) and copied into place. A link is replaced instead. */
static int exists(kfi_ctx *c, const char *abs)
{
	char *full = kfi_path(c, abs);
	struct stat st;
	int r = lstat(full, &st) == 0 && S_ISREG(st.st_mode);
	free(full);
	return r;
}

/* Report an existing file as "ok" through the engine (same bytes). */
static int keep(kfi_ctx *c, const char *abs, unsigned mode, kf_err *e)
{
	char *full = kfi_path(c, abs);
	int rc = kfi_put_file_from(c, abs, full, mode, NULL, e);
	free(full);
	return rc;
}

static int load_ca(kfi_ctx *c, const char *cert_abs, const char *key_abs,
                   X509 **ca, EVP_PKEY **key, kf_err *e)
{
	int rc = KF_OK;
	char *cp = kfi_path(c, cert_abs), *kp = kfi_path(c, key_abs);
	FILE *f = NULL;

	if (!(f = fopen(cp, "re")) || !(*ca = PEM_read_X509(f, NULL, NULL, NULL))) {
		rc = kf_err_set(e, KF_EIO, "cannot read the etcd CA certificate %s", cp);
		goto out;
	}
	fclose(f);
	if (!(f = fopen(kp, "re")) ||
	    !(*key = PEM_read_PrivateKey(f, NULL, NULL, NULL))) {
		rc = kf_err_set(e, KF_EIO, "cannot read the etcd CA key %s", kp);
		goto out;
	}
out:
	if (f)
		fclose(f);
	free(cp);
	free(kp);
	return rc;
}

int kfi_etcd_pki(kfi_ctx *c, const char *dir, const char *host,
                 const char *const *ips, size_t nip, kf_err *e)
{
	static const char *const kinds[] = {"member", "admin", "node"};
	int rc = KF_OK;
	char ca_abs[512], cakey_abs[512], cert_abs[512], key_abs[512], cn[300];
	char san[4096];
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL, *k = NULL;
	char *pem = NULL;
	size_t len, off;

	snprintf(ca_abs, sizeof ca_abs, "%s/ca.pem", dir);
	snprintf(cakey_abs, sizeof cakey_abs, "%s/ca-key.pem", dir);
	off = (size_t)snprintf(san, sizeof san, "DNS:localhost,DNS:%s,IP:127.0.0.1,IP:::1", host);
	for (size_t i = 0; i < nip && off < sizeof san; i++)
		if (strcmp(ips[i], "127.0.0.1") && strcmp(ips[i], "::1"))
			off += (size_t)snprintf(san + off, sizeof san - off, ",IP:%s", ips[i]);
	if (off >= sizeof san) {
		rc = kf_err_set(e, KF_EUSAGE, "too many node addresses for the etcd certificates");
		goto out;
	}
	/* Checked before any key is read: the directory must not lead out. */
	if ((rc = kfi_check_parents(c, ca_abs, e)) != KF_OK)
		goto out;

	if (exists(c, ca_abs) && exists(c, cakey_abs)) {
		if ((rc = load_ca(c, ca_abs, cakey_abs, &ca, &ca_key, e)) != KF_OK)
			goto out;
		if ((rc = keep(c, cakey_abs, 0600, e)) != KF_OK ||
		    (rc = keep(c, ca_abs, 0644, e)) != KF_OK)
			goto out;
	} else {
		ca_key = EVP_EC_gen("P-256");
		if (!ca_key || !(ca = issue("etcd-ca", ca_key, NULL, NULL, NULL))) {
			rc = kf_err_set(e, KF_EIO, "cannot create the etcd CA");
			goto out;
		}
		pem = key_pem(ca_key, &len);
		if ((rc = kfi_put_file(c, cakey_abs, pem, len, 0600, NULL, e)) != KF_OK)
			goto out;
		free(pem);
		pem = cert_pem(ca, &len);
		if ((rc = kfi_put_file(c, ca_abs, pem, len, 0644, NULL, e)) != KF_OK)
			goto out;
		free(pem);
		pem = NULL;
	}

	for (size_t i = 0; i < 3; i++) {
		snprintf(cert_abs, sizeof cert_abs, "%s/%s-%s.pem", dir, kinds[i], host);
		snprintf(key_abs, sizeof key_abs, "%s/%s-%s-key.pem", dir, kinds[i], host);
		if (exists(c, cert_abs) && exists(c, key_abs)) {
			if ((rc = keep(c, key_abs, 0600, e)) != KF_OK ||
			    (rc = keep(c, cert_abs, 0644, e)) != KF_OK)
				goto out;
			continue;
		}
		snprintf(cn, sizeof cn, "etcd-%s-%s", kinds[i], host);
		k = EVP_EC_gen("P-256");
		if (!k || !(x = issue(cn, k, ca, ca_key, san))) {
			rc = kf_err_set(e, KF_EIO, "cannot issue the etcd certificate %s", cert_abs);
			goto out;
		}
		/* Key first: a certificate never exists without its key. */
		pem = key_pem(k, &len);
		if ((rc = kfi_put_file(c, key_abs, pem, len, 0600, NULL, e)) != KF_OK)
			goto out;
		free(pem);
		pem = cert_pem(x, &len);
		if ((rc = kfi_put_file(c, cert_abs, pem, len, 0644, NULL, e)) != KF_OK)
			goto out;
		free(pem);
		pem = NULL;
		X509_free(x);
		x = NULL;
		EVP_PKEY_free(k);
		k = NULL;
	}
out:
	free(pem);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ca_key);
	return rc;
}

int kfi_ensure_ca(kfi_ctx *c, const char *cert_abs, const char *key_abs,
                  const char *cn, kf_err *e)
{
	int rc = KF_OK;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	char *pem = NULL;
	size_t len;

	if ((rc = kfi_check_parents(c, cert_abs, e)) != KF_OK ||
	    (rc = kfi_check_parents(c, key_abs, e)) != KF_OK)
		goto out;
	if (exists(c, cert_abs) && exists(c, key_abs)) {
		if ((rc = keep(c, key_abs, 0600, e)) == KF_OK)
			rc = keep(c, cert_abs, 0644, e);
		goto out;
	}
	/* RSA: what kubeadm itself generates, so every client of the
	 * cluster accepts it. */
	k = EVP_RSA_gen(2048);
	if (!k || !(x = issue(cn, k, NULL, NULL, NULL))) {
		rc = kf_err_set(e, KF_EIO, "cannot create the CA %s", cert_abs);
		goto out;
	}
	pem = key_pem(k, &len);
	if ((rc = kfi_put_file(c, key_abs, pem, len, 0600, NULL, e)) != KF_OK)
		goto out;
	free(pem);
	pem = cert_pem(x, &len);
	rc = kfi_put_file(c, cert_abs, pem, len, 0644, NULL, e);
out:
	free(pem);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int kfi_ca_cert_hash(const char *cert_path, char out[KF_SHA256_HEX], kf_err *e)
{
	FILE *f = fopen(cert_path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int n, rc = KF_OK;

	if (f)
		fclose(f);
	if (!x)
		return kf_err_set(e, KF_EIO, "cannot read certificate %s", cert_path);
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (n <= 0)
		rc = kf_err_set(e, KF_EIO, "cannot encode the public key of %s", cert_path);
	else
		kf_sha256_buf(der, (size_t)n, out);
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}
