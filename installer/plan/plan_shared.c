/*
 * DIR/shared/: everything the nodes share, generated once and kept on
 * every re-run: the cluster, front-proxy, etcd and mirror CAs, the
 * service-account key pair, the kube-apiserver's etcd client certificate,
 * the bootstrap token and certificate key, the discovery hash, and the
 * encryption-at-rest and audit configuration that every control plane
 * must hold byte for byte. A file that exists is never regenerated; one
 * that exists but is damaged stops the plan instead of being replaced.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/kf_mirror.h"
#include "installer/plan/plan.h"

static const char AUDIT_POLICY[] =
	"# Written by kubeferry-install cluster plan: the kube-apiserver's audit\n"
	"# policy, the same on every control plane. Secrets and tokens are logged\n"
	"# as metadata only, never their contents.\n"
	"apiVersion: audit.k8s.io/v1\n"
	"kind: Policy\n"
	"omitStages:\n"
	"  - RequestReceived\n"
	"rules:\n"
	"  - level: None\n"
	"    users: [\"system:kube-proxy\"]\n"
	"    verbs: [\"watch\"]\n"
	"    resources:\n"
	"      - group: \"\"\n"
	"        resources: [\"endpoints\", \"services\", \"services/status\"]\n"
	"  - level: None\n"
	"    userGroups: [\"system:nodes\"]\n"
	"    verbs: [\"get\"]\n"
	"    resources:\n"
	"      - group: \"\"\n"
	"        resources: [\"nodes\", \"nodes/status\"]\n"
	"  - level: None\n"
	"    nonResourceURLs: [\"/healthz*\", \"/livez*\", \"/readyz*\", \"/version\"]\n"
	"  - level: None\n"
	"    resources:\n"
	"      - group: \"\"\n"
	"        resources: [\"events\"]\n"
	"      - group: \"events.k8s.io\"\n"
	"        resources: [\"events\"]\n"
	"  - level: Metadata\n"
	"    resources:\n"
	"      - group: \"\"\n"
	"        resources: [\"secrets\", \"configmaps\", \"serviceaccounts/token\"]\n"
	"      - group: \"authentication.k8s.io\"\n"
	"        resources: [\"tokenreviews\"]\n"
	"  - level: Request\n"
	"    verbs: [\"get\", \"list\", \"watch\"]\n"
	"  - level: RequestResponse\n"
	"    verbs: [\"create\", \"update\", \"patch\", \"delete\", \"deletecollection\"]\n"
	"  - level: Metadata\n";

static int hex64_valid(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* A one-line secret: read and checked when the file exists, else made by
 * gen and written 0600. */
static int secret_line(kfp_plan *p, const char *name, char *out, size_t n,
                       int (*gen)(char *, size_t), int (*valid)(const char *), kf_err *e)
{
	char path[4096], line[128];
	char *buf = NULL;
	size_t len;
	int rc;

	if ((rc = kfp_path(p, path, sizeof path, e, "shared/%s", name)))
		return rc;
	if (kfp_exists(path)) {
		if ((rc = kf_read_file(path, 4096, &buf, &len, e)))
			return rc;
		snprintf(out, n, "%.*s", (int)strcspn(buf, "\r\n"), buf);
		OPENSSL_cleanse(buf, len);
		free(buf);
		if (!valid(out))
			return kf_err_set(e, KF_EUSAGE, "%s: not a valid %s; restore it or remove it "
			                  "to draw a new one", path, name);
		p->kept++;
		return KF_OK;
	}
	if (gen(out, n) != 0)
		return kf_err_set(e, KF_EIO, "cannot draw the %s: the random generator failed", name);
	snprintf(line, sizeof line, "%s\n", out);
	rc = kfp_put(p, path, line, strlen(line), 0600, e);
	OPENSSL_cleanse(line, sizeof line);
	return rc;
}

static int gen_token(char *out, size_t n)
{
	return n < 24 ? -1 : kfi_token_random(out);
}

static int gen_certkey(char *out, size_t n)
{
	unsigned char k[32];
	int ok = n >= 65 && RAND_bytes(k, sizeof k) == 1;

	if (ok)
		kf_hex(k, sizeof k, out);
	OPENSSL_cleanse(k, sizeof k);
	return ok ? 0 : -1;
}

/* secretbox (XSalsa20-Poly1305) with a 32-byte key, as Kubespray's default
 * kube_encryption_algorithm; identity last so that secrets written before
 * encryption was on stay readable. */
static int encryption_config(kfp_plan *p, const char *path, kf_err *e)
{
	unsigned char key[32];
	char b64[64];
	kf_buf b;
	char *text;
	int rc;

	if (kfp_exists(path)) {
		p->kept++;
		return KF_OK;
	}
	if (RAND_bytes(key, sizeof key) != 1)
		return kf_err_set(e, KF_EIO, "cannot draw the encryption key: the random generator failed");
	kf_b64_encode(key, sizeof key, b64);
	OPENSSL_cleanse(key, sizeof key);
	kf_buf_init(&b);
	kf_buf_addf(&b,
	            "# Written by kubeferry-install cluster plan: encryption at rest of the\n"
	            "# cluster's secrets in etcd, the same on every control plane.\n"
	            "apiVersion: apiserver.config.k8s.io/v1\n"
	            "kind: EncryptionConfiguration\n"
	            "resources:\n"
	            "  - resources:\n"
	            "      - secrets\n"
	            "    providers:\n"
	            "      - secretbox:\n"
	            "          keys:\n"
	            "            - name: key1\n"
	            "              secret: %s\n"
	            "      - identity: {}\n", b64);
	OPENSSL_cleanse(b64, sizeof b64);
	if (!(text = kf_buf_take(&b)))
		return kf_err_set(e, KF_EIO, "out of memory");
	rc = kfp_put(p, path, text, strlen(text), 0600, e);
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return rc;
}

int kfp_shared(kfp_plan *p, kf_err *e)
{
	char d[4096], a[4096], b[4096], line[128];
	kf_x509_profile client = kfp_client_profile("kube-apiserver-etcd-client");
	int rc;

#define PATHS(x, y) \
	((rc = kfp_path(p, a, sizeof a, e, "shared/%s", x)) == KF_OK && \
	 (rc = kfp_path(p, b, sizeof b, e, "shared/%s", y)) == KF_OK)
	if ((rc = kfp_path(p, d, sizeof d, e, "shared")) || (rc = kfp_mkdir(d, e)))
		return rc;
	if (!PATHS("ca.crt", "ca.key") ||
	    (rc = kfp_ca(p, a, b, "kubernetes", KFP_RSA, 0, &p->ca, &p->ca_key, e)) ||
	    (rc = kfi_ca_cert_hash(a, p->hash, e)))
		return rc;
	if (!PATHS("front-proxy-ca.crt", "front-proxy-ca.key") ||
	    (rc = kfp_ca(p, a, b, "front-proxy-ca", KFP_RSA, 0, &p->fp_ca, &p->fp_key, e)))
		return rc;
	if (!PATHS("etcd-ca.crt", "etcd-ca.key") ||
	    (rc = kfp_ca(p, a, b, "etcd-ca", KFP_EC, 0, &p->etcd_ca, &p->etcd_key, e)))
		return rc;
	if (!PATHS("mirror-ca.crt", "mirror-ca.key") ||
	    (rc = kfp_ca(p, a, b, "kubeferry mirror CA", KFP_EC, 1, &p->mirror_ca, &p->mirror_key, e)) ||
	    (rc = kf_mirror_cert_fingerprint(a, p->mirror_fp, e)))
		return rc;
	if (!PATHS("sa.key", "sa.pub") || (rc = kfp_sa(p, a, b, e)))
		return rc;
	if (p->external_etcd &&
	    (!PATHS("apiserver-etcd-client.crt", "apiserver-etcd-client.key") ||
	     (rc = kfp_leaf(p, a, b, &client, p->etcd_ca, p->etcd_key, e))))
		return rc;
#undef PATHS
	if ((rc = secret_line(p, "bootstrap-token", p->token, sizeof p->token, gen_token,
	                      kfi_token_valid, e)) ||
	    (rc = secret_line(p, "certificate-key", p->certkey, sizeof p->certkey, gen_certkey,
	                      hex64_valid, e)))
		return rc;
	snprintf(line, sizeof line, "sha256:%s\n", p->hash);
	if ((rc = kfp_path(p, a, sizeof a, e, "shared/discovery-hash")) ||
	    (rc = kfp_put(p, a, line, strlen(line), 0644, e)))
		return rc;
	if ((rc = kfp_path(p, a, sizeof a, e, "shared/encryption-config.yaml")) ||
	    (rc = encryption_config(p, a, e)))
		return rc;
	if ((rc = kfp_path(p, a, sizeof a, e, "shared/audit-policy.yaml")))
		return rc;
	/* An audit policy the operator edited is theirs: kept as it is. */
	if (kfp_exists(a)) {
		p->kept++;
		return KF_OK;
	}
	return kfp_put(p, a, AUDIT_POLICY, sizeof AUDIT_POLICY - 1, 0644, e);
}
