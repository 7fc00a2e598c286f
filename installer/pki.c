/*
 * The host etcd's own PKI, in Kubespray's layout (/etc/ssl/etcd/ssl/):
 *   ca.pem, ca-key.pem                      CN=etcd-ca
 *   member-<host>.pem, member-<host>-key.pem CN=etcd-member-<host>
 *   admin-<host>.pem,  admin-<host>-key.pem  CN=etcd-admin-<host>
 *   node-<host>.pem,   node-<host>-key.pem   CN=etcd-node-<host>
 * Leaf certificates carry serverAuth and clientAuth (etcd uses one
 * certificate for both directions on the peer port), no keyEncipherment
 * (an EC key cannot encipher), and the SANs
 * localhost, the host name, 127.0.0.1, ::1 and the node's addresses.
 * Keys are ECDSA P-256, written 0600.
 *
 * Existing files are kept: a re-run must not rotate a running cluster's
 * certificates, so only missing ones are issued (from the existing CA).
 * Renewal (kfi_etcd_renew, run by the monthly renewal timer) re-issues a
 * leaf that expires soon from the same CA, with its key, subject and SANs.
 */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define CERT_DAYS 3650

/* CA certificates: the etcd CA and the cluster CAs kubeadm would make
 * (also those of a cluster plan). pathlen0: a CA that signs only leaves
 * (the mirror's). */
kf_x509_profile kfi_ca_profile(const char *cn, int pathlen0)
{
	kf_x509_profile p = {
		.cn = cn, .days = CERT_DAYS,
		.basic_constraints = pathlen0 ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE",
		.key_usage = "critical,keyCertSign,cRLSign,digitalSignature",
	};
	return p;
}

/* etcd's member, admin and node certificates: one certificate serves both
 * directions on the peer port. EC keys cannot encipher: no
 * keyEncipherment (RFC 5480). */
kf_x509_profile kfi_etcd_profile(const char *cn, const char *san)
{
	kf_x509_profile p = {
		.cn = cn, .days = CERT_DAYS,
		.basic_constraints = "critical,CA:FALSE",
		.key_usage = "critical,digitalSignature",
		.ext_key_usage = "serverAuth,clientAuth",
		.san = san,
	};
	return p;
}

/* Only a regular file counts: a key "kept" through a symbolic link would
 * be read from wherever the link points (under --root, possibly the
 * host's own secrets) and copied into place. A link is replaced instead. */
static int exists(kfi_ctx *c, const char *abs)
{
	char *full = kfi_path(c, abs);
	struct stat st;
	int r = full && lstat(full, &st) == 0 && S_ISREG(st.st_mode);
	free(full);
	return r;
}

/* Report an existing key and certificate as "ok" through the engine
 * (same bytes). */
static int keep_pair(kfi_ctx *c, const char *key_abs, const char *cert_abs,
                     kf_err *e)
{
	char *kfull = kfi_path(c, key_abs), *cfull = kfi_path(c, cert_abs);
	int rc = kfull && cfull ? kfi_put_file_from(c, key_abs, kfull, 0600, NULL, e) : kfi_oom(e);

	if (rc == KF_OK)
		rc = kfi_put_file_from(c, cert_abs, cfull, 0644, NULL, e);
	free(kfull);
	free(cfull);
	return rc;
}

/* Key first: a certificate never exists without its key. */
static int put_pair(kfi_ctx *c, const char *key_abs, EVP_PKEY *k,
                    const char *cert_abs, X509 *x, kf_err *e)
{
	int rc;
	size_t len = 0;
	char *pem = kf_x509_key_pem(k, &len);

	if (!pem)
		return kf_err_set(e, KF_EIO, "cannot encode the key %s", key_abs);
	rc = kfi_put_file(c, key_abs, pem, len, 0600, NULL, e);
	free(pem);
	if (rc != KF_OK)
		return rc;
	if (!(pem = kf_x509_cert_pem(x, &len)))
		return kf_err_set(e, KF_EIO, "cannot encode the certificate %s", cert_abs);
	rc = kfi_put_file(c, cert_abs, pem, len, 0644, NULL, e);
	free(pem);
	return rc;
}

static int load_ca(kfi_ctx *c, const char *cert_abs, const char *key_abs,
                   X509 **ca, EVP_PKEY **key, kf_err *e)
{
	int rc = KF_OK;
	char *cp = kfi_path(c, cert_abs), *kp = kfi_path(c, key_abs);

	if (!cp || !kp)
		rc = kfi_oom(e);
	else if (!(*ca = kf_x509_read_cert(cp)))
		rc = kf_err_set(e, KF_EIO, "cannot read the etcd CA certificate %s", cp);
	else if (!(*key = kf_x509_read_key(kp)))
		rc = kf_err_set(e, KF_EIO, "cannot read the etcd CA key %s", kp);
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
	kf_x509_profile ca_p = kfi_ca_profile("etcd-ca", 0);
	kf_x509_profile leaf_p = kfi_etcd_profile(cn, san);
	int fit;

	if (kf_strf(ca_abs, sizeof ca_abs, "%s/ca.pem", dir) != 0 ||
	    kf_strf(cakey_abs, sizeof cakey_abs, "%s/ca-key.pem", dir) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", dir);
		goto out;
	}
	fit = kf_strf(san, sizeof san, "DNS:localhost,DNS:%s,IP:127.0.0.1,IP:::1", host);
	for (size_t i = 0; i < nip && fit == 0; i++)
		if (strcmp(ips[i], "127.0.0.1") && strcmp(ips[i], "::1")) {
			size_t off = strlen(san);
			fit = kf_strf(san + off, sizeof san - off, ",IP:%s", ips[i]);
		}
	if (fit != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "too many node addresses for the etcd certificates");
		goto out;
	}
	/* Checked before any key is read: the directory must not lead out. */
	if ((rc = kfi_check_parents(c, ca_abs, e)) != KF_OK)
		goto out;

	if (exists(c, ca_abs) && exists(c, cakey_abs)) {
		if ((rc = load_ca(c, ca_abs, cakey_abs, &ca, &ca_key, e)) != KF_OK ||
		    (rc = keep_pair(c, cakey_abs, ca_abs, e)) != KF_OK)
			goto out;
	} else {
		ca_key = EVP_EC_gen("P-256");
		if (!ca_key || !(ca = kf_x509_issue(&ca_p, ca_key, NULL, NULL))) {
			rc = kf_err_set(e, KF_EIO, "cannot create the etcd CA");
			goto out;
		}
		if ((rc = put_pair(c, cakey_abs, ca_key, ca_abs, ca, e)) != KF_OK)
			goto out;
	}

	for (size_t i = 0; i < 3; i++) {
		if (kf_strf(cert_abs, sizeof cert_abs, "%s/%s-%s.pem", dir, kinds[i], host) != 0 ||
		    kf_strf(key_abs, sizeof key_abs, "%s/%s-%s-key.pem", dir, kinds[i], host) != 0 ||
		    kf_strf(cn, sizeof cn, "etcd-%s-%s", kinds[i], host) != 0) {
			rc = kf_err_set(e, KF_EUSAGE, "host name too long: %s", host);
			goto out;
		}
		if (exists(c, cert_abs) && exists(c, key_abs)) {
			if ((rc = keep_pair(c, key_abs, cert_abs, e)) != KF_OK)
				goto out;
			continue;
		}
		k = EVP_EC_gen("P-256");
		if (!k || !(x = kf_x509_issue(&leaf_p, k, ca, ca_key))) {
			rc = kf_err_set(e, KF_EIO, "cannot issue the etcd certificate %s", cert_abs);
			goto out;
		}
		if ((rc = put_pair(c, key_abs, k, cert_abs, x, e)) != KF_OK)
			goto out;
		X509_free(x);
		x = NULL;
		EVP_PKEY_free(k);
		k = NULL;
	}
out:
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
	kf_x509_profile p = kfi_ca_profile(cn, 0);

	if ((rc = kfi_check_parents(c, cert_abs, e)) != KF_OK ||
	    (rc = kfi_check_parents(c, key_abs, e)) != KF_OK)
		goto out;
	if (exists(c, cert_abs) && exists(c, key_abs)) {
		rc = keep_pair(c, key_abs, cert_abs, e);
		goto out;
	}
	/* RSA: what kubeadm itself generates, so every client of the
	 * cluster accepts it. */
	k = EVP_RSA_gen(2048);
	if (!k || !(x = kf_x509_issue(&p, k, NULL, NULL))) {
		rc = kf_err_set(e, KF_EIO, "cannot create the CA %s", cert_abs);
		goto out;
	}
	rc = put_pair(c, key_abs, k, cert_abs, x, e);
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int kfi_ca_cert_hash(const char *cert_path, char out[KF_SHA256_HEX], kf_err *e)
{
	X509 *x = kf_x509_read_cert(cert_path);
	unsigned char *der = NULL;
	int n, rc = KF_OK;

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

/* The SANs of x as an extension value ("DNS:a,IP:1.2.3.4"); 0 when they
 * fit into out. */
static int san_of(X509 *x, char *out, size_t n)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;
	int rc = 0;

	out[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[INET6_ADDRSTRLEN];
		const char *sep = off ? "," : "";
		if (g->type == GEN_DNS)
			rc = kf_strf(out + off, n - off, "%sDNS:%s", sep,
			             (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (g->type == GEN_IPADD && (g->d.iPAddress->length == 4 || g->d.iPAddress->length == 16) &&
		         inet_ntop(g->d.iPAddress->length == 4 ? AF_INET : AF_INET6,
		                   ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof ip))
			rc = kf_strf(out + off, n - off, "%sIP:%s", sep, ip);
		off += strlen(out + off);
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* member-, admin- and node-<name>.pem, not their keys. */
static int is_leaf(const char *name)
{
	static const char *const kinds[] = {"member-", "admin-", "node-", NULL};
	size_t l = strlen(name);
	int leaf = 0;

	for (size_t i = 0; kinds[i]; i++)
		leaf |= !strncmp(name, kinds[i], strlen(kinds[i]));
	return leaf && l > 4 && !strcmp(name + l - 4, ".pem") &&
	       !(l >= 8 && !strcmp(name + l - 8, "-key.pem"));
}

/* The etcd CA, loaded the first time a leaf needs it. */
struct renew_ca {
	const char *cert_abs, *key_abs;
	X509 *ca;
	EVP_PKEY *key;
};

/* Re-issue dir/name (a leaf) when it expires within `within` days. */
static int renew_one(kfi_ctx *c, const char *dir, const char *name, int within,
                     struct renew_ca *rca, int *renewed, kf_err *e)
{
	char cert_abs[512], key_abs[512], cn[300] = "", san[4096];
	char *cp = NULL, *kp = NULL;
	X509 *x = NULL, *nx = NULL;
	EVP_PKEY *k = NULL;
	int rc = KF_OK, days = 0, secs = 0;
	size_t n = strlen(name);

	if (kf_strf(cert_abs, sizeof cert_abs, "%s/%s", dir, name) != 0 ||
	    kf_strf(key_abs, sizeof key_abs, "%s/%.*s-key.pem", dir, (int)(n - 4), name) != 0)
		return kf_err_set(e, KF_EUSAGE, "path too long: %s/%s", dir, name);
	cp = kfi_path(c, cert_abs);
	kp = kfi_path(c, key_abs);
	if (!cp || !kp || !(x = kf_x509_read_cert(cp))) {
		rc = kf_err_set(e, KF_EIO, "cannot read the certificate %s", cp ? cp : cert_abs);
		goto out;
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1 &&
	    (days > within || (days == within && secs > 0))) {
		printf("%-8s %s valid for %d more days\n", "ok", cert_abs, days);
		c->ok++;
		goto out;
	}
	if (!rca->ca) {
		if (!exists(c, rca->key_abs)) {
			rc = kf_err_set(e, KF_EUSAGE, "%s expires in %d days, but this node has no etcd CA "
			                "key %s to renew it: the cluster plan holds it; run site.yml from the admin "
			                "host (cluster plan re-issues what is due, apply puts it in place and "
			                "restarts etcd)",
			                cert_abs, days, rca->key_abs);
			goto out;
		}
		if ((rc = load_ca(c, rca->cert_abs, rca->key_abs, &rca->ca, &rca->key, e)) != KF_OK)
			goto out;
	}
	if (!(k = kf_x509_read_key(kp))) {
		rc = kf_err_set(e, KF_EIO, "cannot read the key %s of %s", kp, cert_abs);
		goto out;
	}
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
	if (san_of(x, san, sizeof san) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: too many subject alternative names", cert_abs);
		goto out;
	}
	{
		kf_x509_profile p = kfi_etcd_profile(cn, san[0] ? san : NULL);
		if (!cn[0] || !(nx = kf_x509_issue(&p, k, rca->ca, rca->key))) {
			rc = kf_err_set(e, KF_EIO, "cannot re-issue %s", cert_abs);
			goto out;
		}
	}
	if ((rc = put_pair(c, key_abs, k, cert_abs, nx, e)) != KF_OK)
		goto out;
	printf("%-8s renewed %s (%d days left), now valid for %d days\n", "changed", cert_abs,
	       days, CERT_DAYS);
	*renewed = 1;
out:
	X509_free(x);
	X509_free(nx);
	EVP_PKEY_free(k);
	free(cp);
	free(kp);
	return rc;
}

int kfi_etcd_renew(kfi_ctx *c, const char *dir, int within, int *renewed, kf_err *e)
{
	char ca_abs[512], cakey_abs[512], **names = NULL;
	char *full = NULL;
	struct renew_ca rca = {ca_abs, cakey_abs, NULL, NULL};
	size_t n = 0;
	int rc = KF_OK;

	*renewed = 0;
	if (kf_strf(ca_abs, sizeof ca_abs, "%s/ca.pem", dir) != 0 ||
	    kf_strf(cakey_abs, sizeof cakey_abs, "%s/ca-key.pem", dir) != 0)
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", dir);
	if ((rc = kfi_check_parents(c, ca_abs, e)) != KF_OK)
		return rc;
	if (!(full = kfi_path(c, dir)))
		return kf_err_set(e, KF_EIO, "out of memory");
	if ((rc = kfi_dir_names(full, is_leaf, &names, &n, e)) != KF_OK)
		goto out;
	if (n == 0)
		printf("%-8s no host etcd certificates in %s\n", "ok", dir);
	for (size_t i = 0; i < n && rc == KF_OK; i++)
		rc = renew_one(c, dir, names[i], within, &rca, renewed, e);
out:
	kfi_names_free(names, n);
	X509_free(rca.ca);
	EVP_PKEY_free(rca.key);
	free(full);
	return rc;
}
