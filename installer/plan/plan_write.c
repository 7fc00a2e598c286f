/*
 * The plan directory's files. Everything in DIR is readable by its owner
 * only (directories 0700, secrets 0600), written durably, and rewritten
 * only when its bytes or mode would change, so a re-run leaves every file
 * it agrees with untouched (same inode, same mtime).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "installer/plan/plan.h"

int kfp_path(const kfp_plan *p, char *out, size_t n, kf_err *e, const char *fmt, ...)
{
	char rel[1024];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(rel, sizeof rel, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= sizeof rel || kf_strf(out, n, "%s/%s", p->dir, rel))
		return kf_err_set(e, KF_EUSAGE, "path too long under %s", p->dir);
	return KF_OK;
}

int kfp_mkdir(const char *path, kf_err *e)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return kf_err_set(e, KF_EUSAGE, "%s exists and is not a directory", path);
		/* The plan holds every secret of the cluster. */
		if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) != 0)
			return kf_err_errno(e, "cannot chmod", path);
		return KF_OK;
	}
	if (errno != ENOENT)
		return kf_err_errno(e, "cannot stat", path);
	if (mkdir(path, 0700) != 0)
		return kf_err_errno(e, "cannot create", path);
	/* mkdir honours the umask: state the mode. */
	if (chmod(path, 0700) != 0)
		return kf_err_errno(e, "cannot chmod", path);
	return kf_fsync_parent(path, e);
}

int kfp_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int kfp_put(kfp_plan *p, const char *path, const void *data, size_t len, mode_t mode,
            kf_err *e)
{
	struct stat st;
	char *have = NULL;
	size_t hlen = 0;
	kf_err ign = {0};
	int rc;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode &&
	    (size_t)st.st_size == len &&
	    kf_read_file(path, len + 1, &have, &hlen, &ign) == KF_OK && hlen == len &&
	    !memcmp(have, data, len)) {
		free(have);
		p->kept++;
		return KF_OK;
	}
	free(have);
	rc = kf_write_file_atomic(path, data, len, mode, 1, e);
	if (rc == KF_OK)
		p->written++;
	return rc;
}

int kfp_copy(kfp_plan *p, const char *src, const char *dst, mode_t mode, kf_err *e)
{
	char *buf = NULL;
	size_t len;
	int rc = kf_read_file(src, 1 << 20, &buf, &len, e);

	if (rc == KF_OK)
		rc = kfp_put(p, dst, buf, len, mode, e);
	free(buf);
	return rc;
}
