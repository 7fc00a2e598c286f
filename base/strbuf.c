/* Bounded string building: kf_strf for fixed buffers, kf_buf for text
 * whose size is not known in advance; see kf_base.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/kf_base.h"

int kf_strf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (n == 0)
		return -1;
	va_start(ap, fmt);
	w = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

void kf_buf_init(kf_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

/* Room for n more bytes and a NUL; 0 on success. */
static int buf_reserve(kf_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->oom || n > SIZE_MAX / 2 - b->len)
		goto fail;
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		goto fail;
	b->p = p;
	b->cap = cap;
	return 0;
fail:
	b->oom = 1;
	return -1;
}

void kf_buf_add(kf_buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n) != 0)
		return;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void kf_buf_adds(kf_buf *b, const char *s)
{
	kf_buf_add(b, s, strlen(s));
}

void kf_buf_vaddf(kf_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int w;

	va_copy(ap2, ap);
	w = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (w < 0) {
		b->oom = 1;
		return;
	}
	if (buf_reserve(b, (size_t)w) != 0)
		return;
	vsnprintf(b->p + b->len, (size_t)w + 1, fmt, ap);
	b->len += (size_t)w;
}

void kf_buf_addf(kf_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kf_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

int kf_buf_ok(const kf_buf *b)
{
	return !b->oom;
}

char *kf_buf_take(kf_buf *b)
{
	char *s = NULL;

	if (!b->oom)
		s = b->p ? b->p : strdup("");
	else
		free(b->p);
	kf_buf_init(b);
	return s;
}

void kf_buf_free(kf_buf *b)
{
	free(b->p);
	kf_buf_init(b);
}
