/*
 * Secret keys: kubeferry's PKCS#8 PEM (optionally encrypted) and the
 * unencrypted minisign secret key, both loaded into one kf_seckey.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "keys/keys_internal.h"

#define SECKEY_FILE_MAX (64 * 1024)
/* sig_alg[2] kdf_alg[2] chk_alg[2] salt[32] opslimit[8] memlimit[8]
 * keyid[8] sk[64] chk[32] (minisign src/minisign.h, SeckeyStruct). */
#define MS_SECKEY_BYTES 158
#define MS_OFF_KDF 2
#define MS_OFF_KEYID 54
#define MS_OFF_SK 62

static int finish_key(kf_seckey *k, const char *path, kf_err *e)
{
	k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->seed, 32);
	if (!k->pkey)
		return kf_err_set(e, KF_EIO, "%s: cannot load the Ed25519 key", path);
	return KF_OK;
}

static int load_pem(const char *path, const char *text, size_t n,
                    kf_seckey *k, kf_err *e)
{
	int rc = KF_OK;
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	char pass[1024];
	int encrypted = strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL;
	size_t len;

	pass[0] = '\0';
	if (encrypted) {
		char prompt[512];
		snprintf(prompt, sizeof prompt, "Passphrase for %s: ", path);
		rc = kf_keys_passphrase(prompt, 0, pass, sizeof pass, e);
		if (rc != KF_OK) {
			kf_err_prefix(e, "%s is encrypted", path);
			goto out;
		}
	}
	bio = BIO_new_mem_buf(text, (int)n);
	if (!bio) {
		rc = kf_err_set(e, KF_EIO, "%s: out of memory", path);
		goto out;
	}
	/* With no callback, OpenSSL takes the last argument as the
	 * passphrase; an empty one never decrypts an encrypted key. */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, pass);
	ERR_clear_error();
	if (!pkey) {
		if (encrypted)
			rc = kf_err_set(e, KF_EUSAGE,
			                "%s: cannot decrypt the secret key (wrong passphrase?)", path);
		else
			rc = kf_err_set(e, KF_EUSAGE, "%s: not a readable PKCS#8 PEM private key", path);
		goto out;
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: not an Ed25519 key (kubeferry signs with Ed25519 only)",
		                path);
		goto out;
	}
	len = 32;
	if (EVP_PKEY_get_raw_private_key(pkey, k->seed, &len) != 1 || len != 32) {
		rc = kf_err_set(e, KF_EIO, "%s: cannot read the Ed25519 private key", path);
		goto out;
	}
	len = 32;
	if (EVP_PKEY_get_raw_public_key(pkey, k->pk, &len) != 1 || len != 32) {
		rc = kf_err_set(e, KF_EIO, "%s: cannot read the Ed25519 public key", path);
		goto out;
	}
	kf_keys_derive_keyid(k->pk, k->keyid);
	k->pkey = pkey;
	pkey = NULL;
out:
	OPENSSL_cleanse(pass, sizeof pass);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

static int load_minisign(const char *path, const char *text, size_t n,
                         kf_seckey *k, kf_err *e)
{
	int rc = KF_OK;
	const char *line[3];
	size_t len[3], nlines;
	unsigned char raw[MS_SECKEY_BYTES], derived[32];
	static const unsigned char zero[2];

	nlines = kf_keys_lines(text, n, line, len, 3);
	if (nlines < 2 || kf_b64_decode(line[1], len[1], raw, sizeof raw) != MS_SECKEY_BYTES) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s: not a secret key (expected a PKCS#8 PEM key or a minisign secret key)",
		                path);
		goto out;
	}
	if (raw[0] != 'E' || raw[1] != 'd') {
		rc = kf_err_set(e, KF_EUSAGE, "%s: unsupported minisign key algorithm '%c%c'",
		                path, raw[0], raw[1]);
		goto out;
	}
	/* An encrypted minisign key needs scrypt plus BLAKE2b-256 for its
	 * checksum; rather than half-support it, ask for a plain copy. */
	if (memcmp(raw + MS_OFF_KDF, zero, 2) != 0) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s: encrypted minisign secret keys are not supported; "
		                "make an unencrypted copy with 'cp %s plain.key && minisign -C -s plain.key -W' "
		                "(keep it safe) or create a kubeferry key with 'kubeferry keygen'",
		                path, path);
		goto out;
	}
	memcpy(k->keyid, raw + MS_OFF_KEYID, 8);
	memcpy(k->seed, raw + MS_OFF_SK, 32);
	memcpy(k->pk, raw + MS_OFF_SK + 32, 32);
	/* sk is seed || public key: a damaged file would sign with a key the
	 * published public key does not match, so check before trusting it. */
	if (kf_keys_pk_of_seed(k->seed, derived) != 0) {
		rc = kf_err_set(e, KF_EIO, "%s: cannot derive the public key", path);
		goto out;
	}
	if (memcmp(derived, k->pk, 32) != 0) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s: damaged minisign secret key (its public half does not match its private half)",
		                path);
		goto out;
	}
	rc = finish_key(k, path, e);
out:
	OPENSSL_cleanse(raw, sizeof raw);
	return rc;
}

int kf_keys_load_secret(const char *path, kf_seckey **out, kf_err *e)
{
	int rc;
	char *text = NULL;
	size_t n = 0;
	kf_seckey *k = NULL;

	*out = NULL;
	rc = kf_read_file(path, SECKEY_FILE_MAX, &text, &n, e);
	if (rc != KF_OK)
		goto out;
	k = OPENSSL_secure_zalloc(sizeof *k);
	if (!k) {
		rc = kf_err_set(e, KF_EIO, "%s: out of memory", path);
		goto out;
	}
	if (strstr(text, "-----BEGIN "))
		rc = load_pem(path, text, n, k, e);
	else if (strncmp(text, KF_UNTRUSTED_PREFIX, strlen(KF_UNTRUSTED_PREFIX)) == 0)
		rc = load_minisign(path, text, n, k, e);
	else
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s: not a secret key (expected a PKCS#8 PEM key or a minisign secret key)",
		                path);
	if (rc != KF_OK)
		goto out;
	*out = k;
	k = NULL;
out:
	if (text)
		OPENSSL_clear_free(text, n + 1);
	kf_keys_free_secret(k);
	return rc;
}

void kf_keys_free_secret(kf_seckey *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	OPENSSL_secure_clear_free(k, sizeof *k);
}

void kf_keys_public_of(const kf_seckey *k, kf_pubkey *out)
{
	memcpy(out->keyid, k->keyid, 8);
	memcpy(out->pk, k->pk, 32);
}
