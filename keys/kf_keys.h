/*
 * keys: digests (SHA-256 for entries, BLAKE2b-512 for minisign), Ed25519
 * keys and minisign-format signatures, and the X.509 certificates the
 * programs issue themselves (OpenSSL 3).
 *
 * Stands on base/ only; every module above includes this header for trust.
 */
#ifndef KF_KEYS_H
#define KF_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/kf_base.h"

/* ---- hex and digests --------------------------------------------------- */

#define KF_SHA256_HEX 65   /* 64 hex digits and NUL */
#define KF_BLAKE2B_LEN 64

void kf_hex(const unsigned char *in, size_t n, char *out /* 2n+1 */);
/* 0 on success; -1 when hex is not exactly 2n lower/upper hex digits. */
int kf_unhex(const char *hex, unsigned char *out, size_t n);
/* 1 when s is exactly 64 lowercase hex digits. */
int kf_is_sha256_hex(const char *s);

typedef enum { KF_DIGEST_SHA256, KF_DIGEST_BLAKE2B512 } kf_digest_alg;
typedef struct kf_digest kf_digest;

kf_digest *kf_digest_new(kf_digest_alg alg);
void kf_digest_update(kf_digest *d, const void *data, size_t n);
/* Writes the raw digest (32 or 64 bytes) and resets d for reuse. */
void kf_digest_final(kf_digest *d, unsigned char *out);
/* SHA-256 only: lowercase hex into out[KF_SHA256_HEX], resets d. */
void kf_digest_final_hex(kf_digest *d, char *out);
void kf_digest_free(kf_digest *d);

/* Raw digest (32 or 64 bytes) of a whole file, streamed, and its size
 * (size_out may be NULL). */
int kf_digest_file(const char *path, kf_digest_alg alg, unsigned char *out,
                   uint64_t *size_out, kf_err *e);
/* SHA-256 of a whole file (hex) and its size. */
int kf_sha256_file(const char *path, char *hex_out, uint64_t *size_out,
                   kf_err *e);
/* SHA-256 of a buffer (hex). */
void kf_sha256_buf(const void *data, size_t n, char *hex_out);

/* ---- keys and signatures (minisign formats, Ed25519 via OpenSSL) ------- */

typedef struct kf_pubkey {
	unsigned char keyid[8];   /* minisign key id, as stored (little-endian) */
	unsigned char pk[32];
} kf_pubkey;

typedef struct kf_seckey kf_seckey;

/* Passphrase for an encrypted secret key: the first line of the file named
 * by $KUBEFERRY_PASSPHRASE_FILE, else read from /dev/tty without echo
 * (asked twice when confirm). KF_EUSAGE when neither is available. */
int kf_keys_passphrase(const char *prompt, int confirm, char *buf, size_t n,
                       kf_err *e);

/* New Ed25519 key pair. The secret key is PKCS#8 PEM, written 0600 and
 * encrypted with AES-256-CBC/scrypt-or-PBKDF2 when passphrase is not NULL;
 * the public key is a minisign public key file. Existing files are refused
 * unless force. PKCS#8 has no room for a key id, so it is derived from the
 * public key (first 8 bytes of SHA-256("kubeferry-keyid" || pk)): the same
 * secret key always signs under the same id. */
int kf_keys_generate(const char *sec_path, const char *pub_path,
                     const char *passphrase, int force, kf_err *e);

/* Load a secret key: kubeferry PKCS#8 PEM (encrypted: passphrase asked via
 * kf_keys_passphrase) or an unencrypted minisign secret key. */
int kf_keys_load_secret(const char *path, kf_seckey **out, kf_err *e);
void kf_keys_free_secret(kf_seckey *k);
/* The public half of a secret key. */
void kf_keys_public_of(const kf_seckey *k, kf_pubkey *out);

/* Public key from a minisign public key file (path) or its base64 line
 * (string, as minisign -P). Exactly one of the two is non-NULL. */
int kf_keys_load_public(const char *path, const char *string, kf_pubkey *out,
                        kf_err *e);
/* "RWQ..." base64 line of a public key into out (at least 64 bytes). */
void kf_keys_public_b64(const kf_pubkey *pk, char *out, size_t n);
/* Key id as minisign prints it: %016llX of the little-endian u64. */
void kf_keys_keyid_str(const unsigned char keyid[8], char out[17]);

/* Sign a BLAKE2b-512 digest of a file: returns a malloc'ed minisign
 * signature file text (algorithm "ED"). trusted_comment must not contain
 * '\n'. */
int kf_sig_sign(const kf_seckey *k, const unsigned char digest[KF_BLAKE2B_LEN],
                const char *untrusted_comment, const char *trusted_comment,
                char **sig_text, kf_err *e);
/* Sign a buffer / a file: computes the BLAKE2b-512 digest first. */
int kf_sig_sign_buf(const kf_seckey *k, const void *data, size_t n,
                    const char *untrusted_comment, const char *trusted_comment,
                    char **sig_text, kf_err *e);

/* Verify a minisign signature text against a digest: key id, signature,
 * then the global signature over the trusted comment. Accepts only "ED".
 * On success the trusted comment is copied into tc (may be NULL).
 * KF_EVERIFY on any mismatch, naming what failed; origin names the
 * signature in messages (a file name or bundle entry). */
int kf_sig_verify(const kf_pubkey *pk, const char *sig_text, size_t sig_len,
                  const unsigned char digest[KF_BLAKE2B_LEN], char *tc,
                  size_t tc_len, const char *origin, kf_err *e);
int kf_sig_verify_buf(const kf_pubkey *pk, const char *sig_text,
                      size_t sig_len, const void *data, size_t n, char *tc,
                      size_t tc_len, const char *origin, kf_err *e);
/* Verify a detached signature file over a whole file (streams the file). */
int kf_sig_verify_file(const kf_pubkey *pk, const char *sig_path,
                       const char *file_path, char *tc, size_t tc_len,
                       kf_err *e);


/* ---- X.509 (TLS material the programs issue themselves) ----------------- */

/* OpenSSL's own types, declared here so this header does not pull in the
 * OpenSSL headers; callers include <openssl/x509.h> to use them. */
struct x509_st;
struct evp_pkey_st;

/* What kf_x509_issue writes into a certificate besides key and names. The
 * strings are OpenSSL extension values ("critical,CA:TRUE", "DNS:a,IP:b"). */
typedef struct kf_x509_profile {
	const char *cn;                /* subject common name */
	int days;                      /* valid from an hour ago for days */
	const char *basic_constraints;
	const char *key_usage;
	const char *ext_key_usage;     /* NULL: none */
	const char *san;               /* NULL: none */
} kf_x509_profile;

/* A v3 certificate for key with a random positive 128-bit serial and a
 * subject key id, signed with SHA-256 by issuer_key under issuer's subject
 * (adding an authority key id), or self-signed when issuer is NULL. NULL on
 * failure, with the reason on the OpenSSL error queue. */
struct x509_st *kf_x509_issue(const kf_x509_profile *p, struct evp_pkey_st *key,
                              struct x509_st *issuer,
                              struct evp_pkey_st *issuer_key);
/* Unencrypted PKCS#8 PEM of a private key / PEM of a certificate: malloc'ed,
 * NUL-terminated, length in *len; NULL on failure. */
char *kf_x509_key_pem(struct evp_pkey_st *key, size_t *len);
char *kf_x509_cert_pem(struct x509_st *x, size_t *len);
/* The first PEM private key / certificate in a file; NULL when the file
 * cannot be read or holds none. */
struct evp_pkey_st *kf_x509_read_key(const char *path);
/* KF_EIO "<what> <path>: <OpenSSL's first queued reason>"; clears the
 * OpenSSL error queue. */
int kf_err_openssl(kf_err *e, const char *what, const char *path);
struct x509_st *kf_x509_read_cert(const char *path);

#endif
