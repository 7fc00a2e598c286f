/* New key pairs: PKCS#8 PEM secret key and minisign public key file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "keys/keys_internal.h"

/* scrypt cost as `openssl pkcs8 -scrypt` uses: N=2^14, r=8, p=1 (16 MiB),
 * inside OpenSSL's default 32 MiB decoding limit. */
#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1

/* PEM text of pkey, encrypted under passphrase when it is not NULL. */
static int pem_of(EVP_PKEY *pkey, const char *passphrase, char **out,
                  size_t *len, kf_err *e)
{
	int rc = KF_OK;
	BIO *bio = BIO_new(BIO_s_secmem());
	PKCS8_PRIV_KEY_INFO *p8inf = NULL;
	X509_ALGOR *pbe = NULL;
	X509_SIG *p8 = NULL;
	char *data = NULL;
	long n;

	*out = NULL;
	if (!bio) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (!passphrase) {
		if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
			rc = kf_err_set(e, KF_EIO, "cannot encode the secret key");
			goto out;
		}
	} else {
		/* scrypt rather than the default PBKDF2 with 2048 rounds:
		 * a stolen key file should cost an attacker memory per guess. */
		p8inf = EVP_PKEY2PKCS8(pkey);
		pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL,
		                            SCRYPT_N, SCRYPT_R, SCRYPT_P);
		if (!p8inf || !pbe) {
			rc = kf_err_set(e, KF_EIO, "cannot set up secret key encryption");
			goto out;
		}
		p8 = PKCS8_set0_pbe(passphrase, (int)strlen(passphrase), p8inf, pbe);
		if (!p8) {
			rc = kf_err_set(e, KF_EIO, "cannot encrypt the secret key");
			goto out;
		}
		pbe = NULL; /* owned by p8 now */
		if (PEM_write_bio_PKCS8(bio, p8) != 1) {
			rc = kf_err_set(e, KF_EIO, "cannot encode the secret key");
			goto out;
		}
	}
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0) {
		rc = kf_err_set(e, KF_EIO, "cannot encode the secret key");
		goto out;
	}
	*out = OPENSSL_malloc((size_t)n);
	if (!*out) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	memcpy(*out, data, (size_t)n);
	*len = (size_t)n;
out:
	ERR_clear_error();
	X509_SIG_free(p8);
	X509_ALGOR_free(pbe);
	PKCS8_PRIV_KEY_INFO_free(p8inf);
	BIO_free(bio);
	return rc;
}

int kf_keys_generate(const char *sec_path, const char *pub_path,
                     const char *passphrase, int force, kf_err *e)
{
	int rc = KF_OK, wrote_sec = 0;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	char *pem = NULL, b64[64], id[17], pubtext[256];
	size_t pemlen = 0, len = 32;
	kf_pubkey pub;
	struct stat st;

	if (!strcmp(sec_path, pub_path)) {
		rc = kf_err_set(e, KF_EUSAGE, "secret and public key paths are the same: %s", sec_path);
		goto out;
	}
	/* Check both before writing either: a refused keygen writes nothing. */
	if (!force) {
		const char *paths[2] = {sec_path, pub_path};
		for (int i = 0; i < 2; i++)
			if (lstat(paths[i], &st) == 0) {
				rc = kf_err_set(e, KF_EUSAGE,
				                "%s already exists (use --force to replace it)", paths[i]);
				goto out;
			}
	}
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) {
		rc = kf_err_set(e, KF_EIO, "Ed25519 key generation failed");
		goto out;
	}
	if (EVP_PKEY_get_raw_public_key(pkey, pub.pk, &len) != 1 || len != 32) {
		rc = kf_err_set(e, KF_EIO, "cannot read the new public key");
		goto out;
	}
	kf_keys_derive_keyid(pub.pk, pub.keyid);
	rc = pem_of(pkey, passphrase, &pem, &pemlen, e);
	if (rc != KF_OK)
		goto out;
	kf_keys_public_b64(&pub, b64, sizeof b64);
	kf_keys_keyid_str(pub.keyid, id);
	snprintf(pubtext, sizeof pubtext, "%sminisign public key %s\n%s\n",
	         KF_UNTRUSTED_PREFIX, id, b64);
	rc = kf_write_file_atomic(sec_path, pem, pemlen, 0600, force, e);
	if (rc != KF_OK)
		goto out;
	wrote_sec = 1;
	rc = kf_write_file_atomic(pub_path, pubtext, strlen(pubtext), 0644, force, e);
out:
	/* Without its public half a new secret key is useless and would
	 * block the next attempt: remove it. */
	if (rc != KF_OK && wrote_sec && unlink(sec_path) == 0)
		kf_fsync_parent(sec_path, NULL);
	if (pem)
		OPENSSL_clear_free(pem, pemlen);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}
