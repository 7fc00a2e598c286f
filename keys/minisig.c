/*
 * minisign signature files (algorithm ED): sign and verify.
 *
 *   untrusted comment: <text>
 *   base64("ED" | keyid[8] | Ed25519(BLAKE2b-512(data)))
 *   trusted comment: <tc>
 *   base64(Ed25519(sig[64] || tc))
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "keys/keys_internal.h"

#define SIG_BYTES 74 /* alg[2] | keyid[8] | sig[64] */
#define SIG_FILE_MAX (64 * 1024)

int kf_keys_pk_of_seed(const unsigned char seed[32], unsigned char pk[32])
{
	int rc = -1;
	size_t len = 32;
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);

	if (k && EVP_PKEY_get_raw_public_key(k, pk, &len) == 1 && len == 32)
		rc = 0;
	EVP_PKEY_free(k);
	ERR_clear_error();
	return rc;
}

int kf_keys_ed25519_sign(EVP_PKEY *pkey, const unsigned char *msg, size_t n,
                         unsigned char sig[64])
{
	int rc = -1;
	size_t siglen = 64;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* Ed25519 takes no digest: pure one-shot signing. */
	if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, n) == 1 && siglen == 64)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int kf_keys_ed25519_verify(const unsigned char pk[32], const unsigned char *msg,
                           size_t n, const unsigned char sig[64])
{
	int ok = 0;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk, 32);

	if (!k)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestVerify(ctx, sig, 64, msg, n) == 1)
		ok = 1;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	/* A failed check leaves errors queued; a TLS server in the same
	 * thread would misread them through SSL_get_error. */
	ERR_clear_error();
	return ok;
}

/* A comment is one line of printable text: a newline would let a signer
 * smuggle extra lines into the file. */
static int check_comment(const char *c, size_t max, const char *what, kf_err *e)
{
	size_t n = strlen(c);

	if (n >= max)
		return kf_err_set(e, KF_EUSAGE, "%s is too long (%zu bytes, limit %zu)",
		                  what, n, max - 1);
	if (strpbrk(c, "\r\n"))
		return kf_err_set(e, KF_EUSAGE, "%s must be a single line", what);
	return KF_OK;
}

int kf_sig_sign(const kf_seckey *k, const unsigned char digest[KF_BLAKE2B_LEN],
                const char *untrusted_comment, const char *trusted_comment,
                char **sig_text, kf_err *e)
{
	int rc = KF_OK;
	unsigned char sigblock[SIG_BYTES], *gmsg = NULL, gsig[64];
	char b64sig[((SIG_BYTES + 2) / 3) * 4 + 1], b64g[((64 + 2) / 3) * 4 + 1];
	char *text = NULL;
	size_t tclen, cap;

	*sig_text = NULL;
	if (!untrusted_comment)
		untrusted_comment = "signature from kubeferry secret key";
	if (!trusted_comment)
		trusted_comment = "";
	/* minisign reads each comment line, prefix and '\n' included, into a
	 * buffer of KF_COMMENT_MAX / KF_TRUSTED_COMMENT_MAX bytes (fgets, so
	 * one byte goes to the NUL): a longer line is refused by minisign -V,
	 * so it is refused here before it is signed. */
	rc = check_comment(untrusted_comment, KF_COMMENT_MAX - strlen(KF_UNTRUSTED_PREFIX) - 1,
	                   "untrusted comment", e);
	if (rc == KF_OK)
		rc = check_comment(trusted_comment, KF_TRUSTED_TEXT_MAX + 1,
		                   "trusted comment", e);
	if (rc != KF_OK)
		goto out;
	sigblock[0] = 'E';
	sigblock[1] = 'D';
	memcpy(sigblock + 2, k->keyid, 8);
	if (kf_keys_ed25519_sign(k->pkey, digest, KF_BLAKE2B_LEN, sigblock + 10) != 0) {
		rc = kf_err_set(e, KF_EIO, "Ed25519 signing failed");
		goto out;
	}
	/* The global signature binds the trusted comment to the signature. */
	tclen = strlen(trusted_comment);
	gmsg = malloc(64 + tclen);
	if (!gmsg) {
		rc = kf_err_set(e, KF_EIO, "out of memory signing");
		goto out;
	}
	memcpy(gmsg, sigblock + 10, 64);
	memcpy(gmsg + 64, trusted_comment, tclen);
	if (kf_keys_ed25519_sign(k->pkey, gmsg, 64 + tclen, gsig) != 0) {
		rc = kf_err_set(e, KF_EIO, "Ed25519 signing of the trusted comment failed");
		goto out;
	}
	kf_b64_encode(sigblock, sizeof sigblock, b64sig);
	kf_b64_encode(gsig, sizeof gsig, b64g);
	cap = strlen(untrusted_comment) + tclen + sizeof b64sig + sizeof b64g + 64;
	text = malloc(cap);
	if (!text) {
		rc = kf_err_set(e, KF_EIO, "out of memory signing");
		goto out;
	}
	snprintf(text, cap, "%s%s\n%s\n%s%s\n%s\n", KF_UNTRUSTED_PREFIX,
	         untrusted_comment, b64sig, KF_TRUSTED_PREFIX, trusted_comment, b64g);
	*sig_text = text;
	text = NULL;
out:
	free(gmsg);
	free(text);
	return rc;
}

int kf_sig_sign_buf(const kf_seckey *k, const void *data, size_t n,
                    const char *untrusted_comment, const char *trusted_comment,
                    char **sig_text, kf_err *e)
{
	unsigned char digest[KF_BLAKE2B_LEN];
	unsigned int len = 0;

	if (EVP_Digest(data, n, digest, &len, EVP_blake2b512(), NULL) != 1) {
		*sig_text = NULL;
		return kf_err_set(e, KF_EIO, "BLAKE2b-512 failed");
	}
	return kf_sig_sign(k, digest, untrusted_comment, trusted_comment, sig_text, e);
}

static int has_prefix(const char *line, size_t len, const char *prefix)
{
	size_t p = strlen(prefix);
	return len >= p && memcmp(line, prefix, p) == 0;
}

int kf_sig_verify(const kf_pubkey *pk, const char *sig_text, size_t sig_len,
                  const unsigned char digest[KF_BLAKE2B_LEN], char *tc,
                  size_t tc_len, const char *origin, kf_err *e)
{
	int rc = KF_EVERIFY;
	const char *line[4];
	size_t len[4], nlines, tplen = strlen(KF_TRUSTED_PREFIX);
	unsigned char sigblock[SIG_BYTES], gsig[64], *gmsg = NULL;
	const char *tcs;
	size_t tcn;
	char want[17], got[17];

	if (!origin)
		origin = "signature";
	nlines = kf_keys_lines(sig_text, sig_len, line, len, 4);
	/* Four lines, then only blank lines, as many as there are (minisign
	 * -V reads four lines and ignores the rest). */
	if (nlines > 4) {
		const char *rest = line[3] + len[3];
		size_t left = sig_len - (size_t)(rest - sig_text), lineno = 4;
		for (size_t i = 0; i < left; i++) {
			if (rest[i] == '\n') {
				lineno++;
			} else if (rest[i] != '\r') {
				kf_err_set(e, KF_EVERIFY, "%s: unexpected text after the global signature (line %zu)",
				           origin, lineno);
				goto out;
			}
		}
	}
	if (nlines < 4) {
		kf_err_set(e, KF_EVERIFY, "%s: truncated minisign signature (%zu of 4 lines)",
		           origin, nlines);
		goto out;
	}
	if (!has_prefix(line[0], len[0], KF_UNTRUSTED_PREFIX) || len[0] >= KF_COMMENT_MAX) {
		kf_err_set(e, KF_EVERIFY, "%s: line 1 is not an 'untrusted comment:' line", origin);
		goto out;
	}
	if (kf_b64_decode(line[1], len[1], sigblock, sizeof sigblock) != SIG_BYTES) {
		kf_err_set(e, KF_EVERIFY, "%s: line 2 is not the base64 of a %d-byte signature",
		           origin, SIG_BYTES);
		goto out;
	}
	if (!has_prefix(line[2], len[2], KF_TRUSTED_PREFIX)) {
		kf_err_set(e, KF_EVERIFY, "%s: line 3 is not a 'trusted comment:' line", origin);
		goto out;
	}
	/* The same limit whether or not the caller wants the comment, so
	 * that verify and unpack never disagree on a bundle. */
	if (len[2] - tplen > KF_TRUSTED_TEXT_MAX) {
		kf_err_set(e, KF_EVERIFY, "%s: trusted comment too long (%zu bytes, at most %zu)",
		           origin, len[2] - tplen, (size_t)KF_TRUSTED_TEXT_MAX);
		goto out;
	}
	if (kf_b64_decode(line[3], len[3], gsig, sizeof gsig) != 64) {
		kf_err_set(e, KF_EVERIFY, "%s: line 4 is not the base64 of a 64-byte global signature",
		           origin);
		goto out;
	}
	/* Legacy "Ed" signs the raw data, which kubeferry never hashes into a
	 * digest for: accept only the prehashed form. */
	if (sigblock[0] == 'E' && sigblock[1] == 'd') {
		kf_err_set(e, KF_EVERIFY,
		           "%s: legacy signature algorithm 'Ed' is not accepted (sign with minisign 0.10 or later, without -l)",
		           origin);
		goto out;
	}
	if (sigblock[0] != 'E' || sigblock[1] != 'D') {
		kf_err_set(e, KF_EVERIFY, "%s: unknown signature algorithm (expected ED)", origin);
		goto out;
	}
	if (memcmp(sigblock + 2, pk->keyid, 8) != 0) {
		kf_keys_keyid_str(sigblock + 2, got);
		kf_keys_keyid_str(pk->keyid, want);
		kf_err_set(e, KF_EVERIFY, "%s: signed by key %s, but the trusted key is %s",
		           origin, got, want);
		goto out;
	}
	if (!kf_keys_ed25519_verify(pk->pk, digest, KF_BLAKE2B_LEN, sigblock + 10)) {
		kf_err_set(e, KF_EVERIFY, "%s: signature verification failed (data or signature modified)",
		           origin);
		goto out;
	}
	tcs = line[2] + tplen;
	tcn = len[2] - tplen;
	gmsg = malloc(64 + tcn);
	if (!gmsg) {
		rc = kf_err_set(e, KF_EIO, "%s: out of memory", origin);
		goto out;
	}
	memcpy(gmsg, sigblock + 10, 64);
	memcpy(gmsg + 64, tcs, tcn);
	if (!kf_keys_ed25519_verify(pk->pk, gmsg, 64 + tcn, gsig)) {
		kf_err_set(e, KF_EVERIFY, "%s: trusted comment verification failed (comment modified)",
		           origin);
		goto out;
	}
	if (tc) {
		/* A cut-off comment could be misread by a caller: refuse it. */
		if (tcn >= tc_len) {
			rc = kf_err_set(e, KF_EVERIFY, "%s: trusted comment too long (%zu bytes)",
			                origin, tcn);
			goto out;
		}
		memcpy(tc, tcs, tcn);
		tc[tcn] = '\0';
	}
	rc = KF_OK;
out:
	free(gmsg);
	return rc;
}

int kf_sig_verify_buf(const kf_pubkey *pk, const char *sig_text,
                      size_t sig_len, const void *data, size_t n, char *tc,
                      size_t tc_len, const char *origin, kf_err *e)
{
	unsigned char digest[KF_BLAKE2B_LEN];
	unsigned int len = 0;

	if (EVP_Digest(data, n, digest, &len, EVP_blake2b512(), NULL) != 1)
		return kf_err_set(e, KF_EIO, "%s: BLAKE2b-512 failed", origin ? origin : "signature");
	return kf_sig_verify(pk, sig_text, sig_len, digest, tc, tc_len, origin, e);
}

int kf_sig_verify_file(const kf_pubkey *pk, const char *sig_path,
                       const char *file_path, char *tc, size_t tc_len,
                       kf_err *e)
{
	int rc;
	char *text = NULL;
	size_t n = 0;
	unsigned char digest[KF_BLAKE2B_LEN];

	rc = kf_read_file(sig_path, SIG_FILE_MAX, &text, &n, e);
	if (rc != KF_OK)
		goto out;
	rc = kf_digest_file(file_path, KF_DIGEST_BLAKE2B512, digest, NULL, e);
	if (rc != KF_OK)
		goto out;
	rc = kf_sig_verify(pk, text, n, digest, tc, tc_len, sig_path, e);
	if (rc != KF_OK)
		kf_err_prefix(e, "%s", file_path);
out:
	free(text);
	return rc;
}
