/* Error values shared by every module; see kf_base.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/kf_base.h"

int kf_err_set(kf_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}

int kf_err_errno(kf_err *e, const char *what, const char *path)
{
	return kf_err_set(e, KF_EIO, "%s %s: %s", what, path, strerror(errno));
}

int kf_err_prefix(kf_err *e, const char *fmt, ...)
{
	char prefix[512], old[sizeof e->msg];
	va_list ap;

	if (!e)
		return KF_EIO;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	/* Truncation keeps the start of both parts, which names the fault. */
	if (snprintf(e->msg, sizeof e->msg, "%.500s: %.1500s", prefix, old) < 0)
		e->msg[0] = '\0';
	return e->code;
}

int kf_err_print(const char *prog, const kf_err *e)
{
	int code = e->code ? e->code : KF_EIO;
	fprintf(stderr, "%s: error: %s\n", prog, e->msg[0] ? e->msg : "unknown failure");
	return code;
}
