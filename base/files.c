/* Durable file writes and small filesystem helpers; see kf_base.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/kf_base.h"

void kf_dirname(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, n, ".");
	} else if (slash == path) {
		snprintf(out, n, "/");
	} else {
		size_t len = (size_t)(slash - path);
		if (len >= n)
			len = n - 1;
		memcpy(out, path, len);
		out[len] = '\0';
	}
}

int kf_fsync_path(const char *path, kf_err *e)
{
	int rc = KF_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kf_err_errno(e, "cannot open", path);
	/* Directories on some filesystems refuse fsync with EINVAL: harmless. */
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = kf_err_errno(e, "cannot fsync", path);
	close(fd);
	return rc;
}

int kf_fsync_parent(const char *path, kf_err *e)
{
	char dir[PATH_MAX];
	kf_dirname(path, dir, sizeof dir);
	return kf_fsync_path(dir, e);
}

int kf_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int kf_write_file_atomic(const char *path, const void *data, size_t len,
                         mode_t mode, int overwrite, kf_err *e)
{
	int rc = KF_OK, fd = -1;
	char tmp[PATH_MAX] = "";
	struct stat st;

	if (!overwrite && lstat(path, &st) == 0) {
		rc = kf_err_set(e, KF_EUSAGE, "%s already exists (use --force to replace it)", path);
		goto out;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", path);
		goto out;
	}
	/* mkstemp creates 0600: a secret key is never readable by others,
	 * not even for the moment before fchmod. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = kf_err_errno(e, "cannot create", tmp);
		tmp[0] = '\0';
		goto out;
	}
	if (kf_write_all(fd, data, len) != 0) {
		rc = kf_err_errno(e, "cannot write", tmp);
		goto out;
	}
	if (fchmod(fd, mode) != 0) {
		rc = kf_err_errno(e, "cannot chmod", tmp);
		goto out;
	}
	if (fsync(fd) != 0) {
		rc = kf_err_errno(e, "cannot fsync", tmp);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = kf_err_errno(e, "cannot close", tmp);
		goto out;
	}
	fd = -1;
	if (!overwrite) {
		/* link() fails if path appeared meanwhile: never clobber. */
		if (link(tmp, path) != 0) {
			rc = kf_err_errno(e, "cannot create", path);
			goto out;
		}
		unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		rc = kf_err_errno(e, "cannot rename into", path);
		goto out;
	}
	tmp[0] = '\0';
	rc = kf_fsync_parent(path, e);
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

int kf_read_file(const char *path, size_t max, char **out, size_t *len,
                 kf_err *e)
{
	int rc = KF_OK;
	FILE *f = NULL;
	char *buf = NULL;
	size_t n = 0, cap = 0;

	f = fopen(path, "rbe");
	if (!f) {
		rc = kf_err_errno(e, "cannot open", path);
		goto out;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				rc = kf_err_set(e, KF_EIO, "out of memory reading %s", path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (n > max) {
			rc = kf_err_set(e, KF_EIO, "%s: larger than %zu bytes", path, max);
			goto out;
		}
		if (got == 0) {
			if (ferror(f)) {
				rc = kf_err_errno(e, "cannot read", path);
				goto out;
			}
			break;
		}
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

int kf_mkdir_p(const char *path, mode_t mode, kf_err *e)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof buf)
		return kf_err_set(e, KF_EIO, "bad directory path '%s'", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return kf_err_errno(e, "cannot create directory", buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return KF_OK;
}

static int remove_at(int parent, const char *name, kf_err *e, const char *top)
{
	struct stat st;
	int rc = KF_OK;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? KF_OK : kf_err_errno(e, "cannot stat", top);
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d;
		struct dirent *de;
		if (fd < 0)
			return kf_err_errno(e, "cannot open", top);
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return kf_err_errno(e, "cannot read", top);
		}
		while (rc == KF_OK && (de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			rc = remove_at(dirfd(d), de->d_name, e, top);
		}
		closedir(d);
		if (rc == KF_OK && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
			rc = kf_err_errno(e, "cannot remove", top);
	} else if (unlinkat(parent, name, 0) != 0 && errno != ENOENT) {
		rc = kf_err_errno(e, "cannot remove", top);
	}
	return rc;
}

int kf_remove_tree(const char *path, kf_err *e)
{
	return remove_at(AT_FDCWD, path, e, path);
}
