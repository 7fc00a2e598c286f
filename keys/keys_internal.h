/*
 * keys: helpers shared by the files of this module only. Nothing outside
 * keys/ includes this header; the public contract is kf_keys.h.
 */
#ifndef KF_KEYS_INTERNAL_H
#define KF_KEYS_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "keys/kf_keys.h"

/* minisign limits (src/minisign.h): comment lines and trusted comments. */
#define KF_COMMENT_MAX 1024
#define KF_TRUSTED_COMMENT_MAX 8192
#define KF_UNTRUSTED_PREFIX "untrusted comment: "
#define KF_TRUSTED_PREFIX "trusted comment: "
/* The longest trusted comment, the one limit for signing and verifying:
 * what minisign's line buffer holds besides the prefix, '\n' and NUL
 * (8173 bytes; docs/keys.md). */
#define KF_TRUSTED_TEXT_MAX (KF_TRUSTED_COMMENT_MAX - sizeof KF_TRUSTED_PREFIX - 1)

struct kf_seckey {
	unsigned char keyid[8];
	unsigned char seed[32];   /* Ed25519 private key (RFC 8032 seed) */
	unsigned char pk[32];
	EVP_PKEY *pkey;
};

/* Split text into lines (without '\n', a trailing '\r' dropped): fills
 * line[i]/len[i] for up to max lines and returns how many there are in
 * total (a final line without '\n' counts; a final empty line does not). */
size_t kf_keys_lines(const char *text, size_t n, const char **line,
                     size_t *len, size_t max);

/* Key id of a kubeferry (PKCS#8) key: SHA-256("kubeferry-keyid" || pk). */
void kf_keys_derive_keyid(const unsigned char pk[32], unsigned char id[8]);

/* The Ed25519 public key of a 32-byte seed; -1 on an OpenSSL failure. */
int kf_keys_pk_of_seed(const unsigned char seed[32], unsigned char pk[32]);

/* Sign msg with an Ed25519 key (pure Ed25519, 64-byte signature). */
int kf_keys_ed25519_sign(EVP_PKEY *pkey, const unsigned char *msg, size_t n,
                         unsigned char sig[64]);
/* 1 when sig is a valid Ed25519 signature of msg under pk, else 0. */
int kf_keys_ed25519_verify(const unsigned char pk[32], const unsigned char *msg,
                           size_t n, const unsigned char sig[64]);


#endif
