/* Base64 (RFC 4648) for the minisign text formats and HTTP Basic auth. */
#include <string.h>

#include <openssl/evp.h>

#include "base/kf_base.h"

void kf_b64_encode(const unsigned char *in, size_t n, char *out)
{
	/* EVP_EncodeBlock writes no newlines and NUL-terminates. */
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

long kf_b64_decode(const char *s, size_t len, unsigned char *out,
                        size_t cap)
{
	long rc = -1;
	size_t pad = 0, i;
	unsigned char *tmp = NULL;
	int got;

	/* EVP_DecodeBlock skips whitespace and counts padding as data, so the
	 * alphabet, length and padding are checked here first: a signature
	 * line with anything unexpected in it is refused, not guessed at. */
	if (len == 0 || len % 4 != 0 || len > 1 << 20)
		goto out;
	if (s[len - 1] == '=')
		pad++;
	if (pad && s[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++)
		if (!b64_char((unsigned char)s[i]))
			goto out;
	if ((len / 4) * 3 - pad > cap)
		goto out;
	tmp = OPENSSL_malloc(len / 4 * 3 + 1);
	if (!tmp)
		goto out;
	got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (got < 0 || (size_t)got != len / 4 * 3)
		goto out;
	memcpy(out, tmp, (size_t)got - pad);
	rc = (long)((size_t)got - pad);
out:
	if (tmp)
		OPENSSL_clear_free(tmp, len / 4 * 3 + 1);
	return rc;
}
