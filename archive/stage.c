/*
 * Staging writes: the worker's side of an unpack. Every entry is created
 * under the staging directory (parents one component at a time, never
 * following a symlink, the file with O_EXCL), written with early writeback,
 * and sealed (handed to the syncer, which fsyncs and closes it); the
 * directories made on the way are fsynced at the end of the pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive_internal.h"

#define KICK_BYTES (8u << 20)   /* start writeback every 8 MiB */

int kf_ar_write_all(int fd, const void *data, size_t n)
{
	const unsigned char *b = data;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int remember_dir(struct kf_ar_pass *p, const char *path, size_t len)
{
	if (p->ndirs == p->capdirs) {
		size_t cap = p->capdirs ? p->capdirs * 2 : 64;
		char **d = realloc(p->dirs, cap * sizeof *d);
		if (!d)
			return -1;
		p->dirs = d;
		p->capdirs = cap;
	}
	p->dirs[p->ndirs] = strndup(path, len);
	if (!p->dirs[p->ndirs])
		return -1;
	p->ndirs++;
	return 0;
}

/* Create the parents of path under the staging directory, one component
 * at a time relative to directory fds and never following a symlink, then
 * the file itself with O_EXCL. Returns the file's fd or -1 (werr set). */
int kf_ar_stage_open(struct kf_ar_pass *p, const char *path, unsigned mode)
{
	int dfd = p->dirfd, fd = -1;
	const char *s = path, *slash;
	char comp[NAME_MAX + 1];

	while ((slash = strchr(s, '/')) != NULL) {
		size_t n = (size_t)(slash - s);
		int nfd, created;
		if (n == 0 || n > NAME_MAX) {
			kf_err_set(&p->werr, KF_EVERIFY, "%s: bad path component", path);
			goto out;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		created = mkdirat(dfd, comp, 0755) == 0;
		if (created) {
			if (remember_dir(p, path, (size_t)(slash - path)) != 0) {
				kf_err_set(&p->werr, KF_EIO, "out of memory");
				goto out;
			}
		} else if (errno != EEXIST) {
			kf_err_errno(&p->werr, "cannot create directory for", path);
			goto out;
		}
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			kf_err_errno(&p->werr, "cannot open directory for", path);
			goto out;
		}
		/* 0755 whatever the umask: the tree is read by services. */
		if (created && fchmod(nfd, 0755) != 0) {
			kf_err_errno(&p->werr, "cannot chmod directory for", path);
			close(nfd);
			goto out;
		}
		if (dfd != p->dirfd)
			close(dfd);
		dfd = nfd;
		s = slash + 1;
	}
	/* Only 0644 and 0755 leave a bundle: no setuid, sticky or
	 * group-writable bits, whatever the lock says. */
	fd = openat(dfd, s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	            (mode & 0111) ? 0755 : 0644);
	if (fd < 0) {
		kf_err_errno(&p->werr, "cannot create", path);
		goto out;
	}
	if (fchmod(fd, (mode & 0111) ? 0755 : 0644) != 0) {
		kf_err_errno(&p->werr, "cannot chmod", path);
		close(fd);
		fd = -1;
	}
out:
	if (dfd != p->dirfd)
		close(dfd);
	return fd;
}

int kf_ar_stage_write(struct kf_ar_pass *p, const kf_lock_entry *le,
                      const unsigned char *buf, size_t len)
{
	if (kf_ar_write_all(p->fd, buf, len) != 0) {
		kf_err_errno(&p->werr, "cannot write", le->path);
		return -1;
	}
	/* Hand written pages to the disk now rather than all at once at
	 * fsync time: keeps the disk busy while we decompress. */
	if (p->count - p->kicked >= KICK_BYTES) {
		sync_file_range(p->fd, (off_t)p->kicked,
		                (off_t)(p->count - p->kicked),
		                SYNC_FILE_RANGE_WRITE);
		p->kicked = p->count;
	}
	return 0;
}

void kf_ar_stage_seal(struct kf_ar_pass *p, size_t idx)
{
	int fd = p->fd;

	p->fd = -1;
	if (p->count > p->kicked)
		sync_file_range(fd, (off_t)p->kicked,
		                (off_t)(p->count - p->kicked),
		                SYNC_FILE_RANGE_WRITE);
	/* The syncer fsyncs and closes it. */
	pthread_mutex_lock(&p->mu);
	while (p->sq_len == SQCAP)
		pthread_cond_wait(&p->cv_sq_space, &p->mu);
	p->sq_fd[(p->sq_head + p->sq_len) % SQCAP] = fd;
	p->sq_idx[(p->sq_head + p->sq_len) % SQCAP] = idx;
	p->sq_len++;
	pthread_cond_signal(&p->cv_sq);
	pthread_mutex_unlock(&p->mu);
}

int kf_ar_stage_sync_dirs(struct kf_ar_pass *p, kf_err *e)
{
	int rc = KF_OK;

	for (size_t i = 0; i < p->ndirs && rc == KF_OK; i++) {
		int dfd = openat(p->dirfd, p->dirs[i],
		                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL))
			rc = kf_err_errno(e, "cannot fsync directory", p->dirs[i]);
		if (dfd >= 0)
			close(dfd);
	}
	return rc;
}

void kf_ar_stage_free(struct kf_ar_pass *p)
{
	for (size_t i = 0; i < p->ndirs; i++)
		free(p->dirs[i]);
	free(p->dirs);
	p->dirs = NULL;
	p->ndirs = p->capdirs = 0;
}
