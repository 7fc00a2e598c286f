/* Hex and streaming digests (SHA-256, BLAKE2b-512) over OpenSSL 3. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keys/kf_keys.h"

struct kf_digest {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
	kf_digest_alg alg;
};

void kf_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		/* in[] is the caller's n initialised bytes (a digest). */
		out[2 * i] = digits[in[i] >> 4]; // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kf_unhex(const char *hex, unsigned char *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval((unsigned char)hex[2 * i]);
		int lo = hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int kf_is_sha256_hex(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

kf_digest *kf_digest_new(kf_digest_alg alg)
{
	kf_digest *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->alg = alg;
	d->md = alg == KF_DIGEST_SHA256 ? EVP_sha256() : EVP_blake2b512();
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || EVP_DigestInit_ex(d->ctx, d->md, NULL) != 1) {
		EVP_MD_CTX_free(d->ctx);
		free(d);
		return NULL;
	}
	return d;
}

void kf_digest_update(kf_digest *d, const void *data, size_t n)
{
	EVP_DigestUpdate(d->ctx, data, n);
}

void kf_digest_final(kf_digest *d, unsigned char *out)
{
	unsigned int len = 0;
	EVP_DigestFinal_ex(d->ctx, out, &len);
	EVP_DigestInit_ex(d->ctx, d->md, NULL);
}

void kf_digest_final_hex(kf_digest *d, char *out)
{
	unsigned char raw[32];
	kf_digest_final(d, raw);
	kf_hex(raw, sizeof raw, out);
}

void kf_digest_free(kf_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

void kf_sha256_buf(const void *data, size_t n, char *hex_out)
{
	unsigned char raw[32];
	unsigned int len = 0;
	EVP_Digest(data, n, raw, &len, EVP_sha256(), NULL);
	kf_hex(raw, sizeof raw, hex_out);
}

int kf_digest_file(const char *path, kf_digest_alg alg, unsigned char *out,
                   uint64_t *size_out, kf_err *e)
{
	int rc = KF_OK, fd = -1;
	uint64_t total = 0;
	kf_digest *d = NULL;
	unsigned char *buf = NULL;
	const size_t bufsz = 1 << 20;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = kf_err_errno(e, "cannot open", path);
		goto out;
	}
	d = kf_digest_new(alg);
	buf = malloc(bufsz);
	if (!d || !buf) {
		rc = kf_err_set(e, KF_EIO, "out of memory hashing %s", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, bufsz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kf_err_errno(e, "cannot read", path);
			goto out;
		}
		if (n == 0)
			break;
		kf_digest_update(d, buf, (size_t)n);
		total += (uint64_t)n;
	}
	kf_digest_final(d, out);
	if (size_out)
		*size_out = total;
out:
	if (fd >= 0)
		close(fd);
	kf_digest_free(d);
	free(buf);
	return rc;
}

int kf_sha256_file(const char *path, char *hex_out, uint64_t *size_out,
                   kf_err *e)
{
	unsigned char raw[32];
	int rc = kf_digest_file(path, KF_DIGEST_SHA256, raw, size_out, e);

	if (rc == KF_OK)
		kf_hex(raw, sizeof raw, hex_out);
	return rc;
}
