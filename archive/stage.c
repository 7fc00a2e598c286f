/*
 * Staging writes: the worker's side of an unpack. Every entry is created
 * under the staging directory (parents one component at a time, never
 * following a symlink, the file with O_EXCL), written, and closed.
 *
 * Nothing here fsyncs: the commit syncs the staging filesystem once
 * (syncfs) before the rename, which makes every file and directory of the
 * tree durable in one call instead of one fsync per file. Large files
 * start their writeback as they are written (sync_file_range), so that
 * the disk works while the next entries are decompressed.
 *
 * Entries come sorted, so most share their parent with the one before:
 * the parent's descriptor is kept and the directory walk runs only when
 * the parent changes. chmod runs only where the umask would have cleared
 * bits of the mode asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive_internal.h"

/* Files this large get their tail's writeback started when closed. */
#define KICK_MIN (1u << 20)

/* The process umask, read without changing it (umask(2) can only set it,
 * and setting it would race with other threads creating files). When it
 * cannot be read, every bit counts as cleared, so chmod always runs. */
static mode_t read_umask(void)
{
	mode_t m = 07777;
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return m;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "Umask:", 6)) {
			char *end;
			unsigned long v = strtoul(line + 6, &end, 8);
			if (end != line + 6 && v <= 07777)
				m = (mode_t)v;
			break;
		}
	}
	fclose(f);
	return m;
}

void kf_ar_stage_init(struct kf_ar_pass *p)
{
	p->cdirfd = -1;
	p->cdir_len = 0;
	p->umask = p->dirfd >= 0 ? read_umask() : 0;
}

/* Open (creating as needed) the directory path[0..len) under staging, one
 * component at a time relative to directory fds, never following a
 * symlink. Returns its fd or -1 (werr set). */
static int walk(struct kf_ar_pass *p, const char *path, size_t len)
{
	int dfd = p->dirfd;
	size_t at = 0;
	char comp[NAME_MAX + 1];

	while (at < len) {
		const char *s = path + at, *slash = memchr(s, '/', len - at);
		size_t n = slash ? (size_t)(slash - s) : len - at;
		int nfd, created = 0;
		if (n == 0 || n > NAME_MAX) {
			kf_err_set(&p->werr, KF_EVERIFY, "%s: bad path component", path);
			goto fail;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT) {
			if (mkdirat(dfd, comp, 0755) != 0) {
				kf_err_errno(&p->werr, "cannot create directory for", path);
				goto fail;
			}
			created = 1;
			nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			kf_err_errno(&p->werr, "cannot open directory for", path);
			goto fail;
		}
		/* 0755 whatever the umask: the tree is read by services. */
		if (created && (p->umask & 0755) && fchmod(nfd, 0755) != 0) {
			kf_err_errno(&p->werr, "cannot chmod directory for", path);
			close(nfd);
			goto fail;
		}
		if (dfd != p->dirfd)
			close(dfd);
		dfd = nfd;
		at += n + 1;
	}
	return dfd;
fail:
	if (dfd != p->dirfd)
		close(dfd);
	return -1;
}

/* The parent directory of path, from the cache when it is the last one's. */
static int parent_fd(struct kf_ar_pass *p, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t len;
	int dfd;

	if (!slash) {
		*base = path;
		return p->dirfd;
	}
	*base = slash + 1;
	len = (size_t)(slash - path);
	if (p->cdirfd >= 0 && len == p->cdir_len && !memcmp(path, p->cdir, len))
		return p->cdirfd;
	if (p->cdirfd >= 0)
		close(p->cdirfd);
	p->cdirfd = -1;
	if (len >= sizeof p->cdir) {
		kf_err_set(&p->werr, KF_EVERIFY, "%s: path too long", path);
		return -1;
	}
	dfd = walk(p, path, len);
	if (dfd >= 0 && dfd != p->dirfd) {
		memcpy(p->cdir, path, len);
		p->cdir_len = len;
		p->cdirfd = dfd;
	}
	return dfd;
}

int kf_ar_stage_open(struct kf_ar_pass *p, const char *path, unsigned mode)
{
	const char *base;
	int fd, dfd = parent_fd(p, path, &base);
	/* Only 0644 and 0755 leave a bundle: no setuid, sticky or
	 * group-writable bits, whatever the lock says. */
	mode_t perm = (mode & 0111) ? 0755 : 0644;

	if (dfd < 0)
		return -1;
	fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	            perm);
	if (fd < 0) {
		kf_err_errno(&p->werr, "cannot create", path);
		return -1;
	}
	if ((p->umask & perm) && fchmod(fd, perm) != 0) {
		kf_err_errno(&p->werr, "cannot chmod", path);
		close(fd);
		fd = -1;
	}
	return fd;
}

int kf_ar_stage_write(struct kf_ar_pass *p, const kf_lock_entry *le,
                      const unsigned char *buf, size_t len)
{
	if (kf_write_all(p->fd, buf, len) != 0) {
		kf_err_errno(&p->werr, "cannot write", le->path);
		return -1;
	}
	/* Hand written pages to the disk now rather than all at once at
	 * the end: keeps the disk busy while we decompress. */
	if (p->count - p->kicked >= KICK_BYTES) {
		sync_file_range(p->fd, (off_t)p->kicked,
		                (off_t)(p->count - p->kicked),
		                SYNC_FILE_RANGE_WRITE);
		p->kicked = p->count;
	}
	return 0;
}

int kf_ar_stage_seal(struct kf_ar_pass *p, const kf_lock_entry *le)
{
	int fd = p->fd, rc = 0;

	p->fd = -1;
	if (p->count >= KICK_MIN && p->count > p->kicked)
		sync_file_range(fd, (off_t)p->kicked,
		                (off_t)(p->count - p->kicked),
		                SYNC_FILE_RANGE_WRITE);
	if (close(fd) != 0) {
		kf_err_errno(&p->werr, "cannot close", le->path);
		rc = -1;
	}
	return rc;
}

void kf_ar_stage_free(struct kf_ar_pass *p)
{
	if (p->cdirfd >= 0)
		close(p->cdirfd);
	p->cdirfd = -1;
}
