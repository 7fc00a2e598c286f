/* keys/x509.c: the certificates both programs issue (etcd PKI, cluster CA,
 * mirror CA and server certificate) come from one implementation; what a
 * profile asks for is what the certificate says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keys/kf_keys.h"
#include "kf_test.h"

/* The extension nid as OpenSSL prints it, e.g. "CA:TRUE, pathlen:0". */
static char *ext_text(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *s = NULL;
	long n;

	if (i >= 0 && X509V3_EXT_print(b, X509_get_ext(x, i), 0, 0) == 1) {
		n = BIO_get_mem_data(b, &p);
		s = strndup(p, (size_t)n);
	}
	BIO_free(b);
	return s;
}

static void check_ext(X509 *x, int nid, const char *want)
{
	char *s = ext_text(x, nid);
	if (want)
		CHECK_STR(s, want);
	else
		CHECK(s == NULL);
	free(s);
}

static void t_issue(void)
{
	kf_x509_profile ca_p = {
		.cn = "test CA", .days = 10,
		.basic_constraints = "critical,CA:TRUE,pathlen:0",
		.key_usage = "critical,keyCertSign,cRLSign",
	};
	kf_x509_profile leaf_p = {
		.cn = "leaf", .days = 2,
		.basic_constraints = "critical,CA:FALSE",
		.key_usage = "critical,digitalSignature,keyEncipherment",
		.ext_key_usage = "serverAuth,clientAuth",
		.san = "DNS:localhost,IP:127.0.0.1,IP:::1",
	};
	EVP_PKEY *cak = EVP_EC_gen("P-256"), *k = EVP_EC_gen("P-256");
	X509 *ca = kf_x509_issue(&ca_p, cak, NULL, NULL);
	X509 *leaf = kf_x509_issue(&leaf_p, k, ca, cak);
	char cn[64];
	time_t soon = time(NULL) + 3 * 86400, now = time(NULL);

	CHECK(ca != NULL && leaf != NULL);
	if (!ca || !leaf)
		goto out;
	/* Self-signed CA; leaf signed by it under its name. */
	CHECK_INT(X509_verify(ca, cak), 1);
	CHECK_INT(X509_verify(leaf, cak), 1);
	CHECK_INT(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)), 0);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
	CHECK_STR(cn, "leaf");
	CHECK(ASN1_INTEGER_get(X509_get0_serialNumber(leaf)) != 0);
	CHECK(X509_cmp_time(X509_get0_notBefore(leaf), &now) < 0);
	CHECK(X509_cmp_time(X509_get0_notAfter(leaf), &soon) < 0);
	check_ext(ca, NID_basic_constraints, "CA:TRUE, pathlen:0");
	check_ext(ca, NID_key_usage, "Certificate Sign, CRL Sign");
	check_ext(ca, NID_ext_key_usage, NULL);
	check_ext(ca, NID_authority_key_identifier, NULL);
	check_ext(ca, NID_subject_alt_name, NULL);
	check_ext(leaf, NID_basic_constraints, "CA:FALSE");
	check_ext(leaf, NID_key_usage, "Digital Signature, Key Encipherment");
	check_ext(leaf, NID_ext_key_usage, "TLS Web Server Authentication, TLS Web Client Authentication");
	check_ext(leaf, NID_subject_alt_name,
	          "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
	CHECK(X509_get_ext_by_NID(leaf, NID_authority_key_identifier, -1) >= 0);
	CHECK(X509_get_ext_by_NID(leaf, NID_subject_key_identifier, -1) >= 0);
out:
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cak);
}

static void t_pem_roundtrip(void)
{
	kf_x509_profile p = {
		.cn = "rt", .days = 1,
		.basic_constraints = "critical,CA:TRUE",
		.key_usage = "critical,keyCertSign",
	};
	char dir[] = "/tmp/kf-x509-XXXXXX", kpath[64], cpath[64];
	EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = NULL;
	X509 *x = kf_x509_issue(&p, k, NULL, NULL), *x2 = NULL;
	char *kpem = NULL, *cpem = NULL;
	size_t klen = 0, clen = 0;
	kf_err e = {0};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(kpath, sizeof kpath, "%s/k.pem", dir);
	snprintf(cpath, sizeof cpath, "%s/c.pem", dir);
	kpem = kf_x509_key_pem(k, &klen);
	cpem = kf_x509_cert_pem(x, &clen);
	CHECK(kpem && strstr(kpem, "-----BEGIN PRIVATE KEY-----") == kpem && strlen(kpem) == klen);
	CHECK(cpem && strstr(cpem, "-----BEGIN CERTIFICATE-----") == cpem && strlen(cpem) == clen);
	CHECK_INT(kf_write_file_atomic(kpath, kpem, klen, 0600, 1, &e), KF_OK);
	CHECK_INT(kf_write_file_atomic(cpath, cpem, clen, 0644, 1, &e), KF_OK);
	k2 = kf_x509_read_key(kpath);
	x2 = kf_x509_read_cert(cpath);
	CHECK(k2 && x2);
	CHECK(x2 && X509_cmp(x, x2) == 0);
	CHECK(k2 && x2 && X509_check_private_key(x2, k2) == 1);
	/* A file that is not PEM, and a missing file, give NULL. */
	CHECK(kf_x509_read_key(cpath) == NULL);
	CHECK(kf_x509_read_cert(kpath) == NULL);
	CHECK(kf_x509_read_cert("/nonexistent/c.pem") == NULL);
	unlink(kpath);
	unlink(cpath);
	rmdir(dir);
	free(kpem);
	free(cpem);
	X509_free(x);
	X509_free(x2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

KF_TEST_MAIN(t_issue, t_pem_roundtrip)
