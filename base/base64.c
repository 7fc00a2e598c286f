/* Base64 and line splitting for the minisign text formats. */
#include <string.h>

#include <openssl/evp.h>

#include "keys/keys_internal.h"

void kf_keys_b64_encode(const unsigned char *in, size_t n, char *out)
{
	/* EVP_EncodeBlock writes no newlines and NUL-terminates. */
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

long kf_keys_b64_decode(const char *s, size_t len, unsigned char *out,
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

size_t kf_keys_lines(const char *text, size_t n, const char **line,
                     size_t *len, size_t max)
{
	size_t count = 0, start = 0;

	while (start < n) {
		const char *nl = memchr(text + start, '\n', n - start);
		size_t end = nl ? (size_t)(nl - text) : n;
		size_t l = end - start;
		if (l > 0 && text[start + l - 1] == '\r')
			l--;
		if (count < max) {
			line[count] = text + start;
			len[count] = l;
		}
		count++;
		start = end + 1;
	}
	return count;
}
