/*
 * Bundle writer (format v1, docs/bundle-format.md).
 *
 * The bytes of a bundle depend only on the lock, its signature, the sources
 * and the options: entries are sorted, metadata is fixed, and zstd always
 * runs in its multi-threaded mode (whose output does not depend on the
 * number of workers, unlike single-threaded mode), so two machines with
 * different core counts write the same file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/archive_internal.h"

#define WRITE_BUF (1u << 20)

/* State shared with libarchive's write callback. */
struct sink {
	int fd;
	const char *tmp;
	struct kf_ar_hasher *h; /* BLAKE2b-512 of the whole file, and SHA-256s */
	int err;                /* errno of a failed write */
};

static ssize_t sink_write(struct archive *a, void *arg, const void *buf,
                          size_t n)
{
	struct sink *s = arg;
	if (kf_write_all(s->fd, buf, n) != 0) {
		s->err = errno;
		archive_set_error(a, errno, "write %s: %s", s->tmp, strerror(errno));
		return -1;
	}
	/* Digest the file while it is written: no second read for the
	 * detached signature. */
	kf_ar_hasher_out(s->h, buf, n);
	return (ssize_t)n;
}

static int cmp_src(const void *a, const void *b)
{
	const kf_archive_source *const *x = a, *const *y = b;
	return strcmp((*x)->entry_path, (*y)->entry_path);
}

/* A libarchive failure while writing: an I/O error unless the sink saw a
 * specific errno. */
static int ar_fail(kf_err *e, struct archive *a, const char *what,
                   const char *entry, const char *out_path)
{
	return kf_err_set(e, KF_EIO, "%s: %s %s: %s", out_path, what, entry,
	                  archive_error_string(a) ? archive_error_string(a)
	                                          : "unknown error");
}

static int write_header(struct archive *a, struct archive_entry *ae,
                        const char *path, uint64_t size, unsigned mode,
                        time_t mtime)
{
	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, path);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, mode & 07777);
	archive_entry_set_size(ae, (la_int64_t)size);
	archive_entry_set_mtime(ae, mtime, 0);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	/* No uname/gname, atime, ctime or xattrs: nothing that differs
	 * between build hosts may reach the bytes. */
	return archive_write_header(a, ae);
}

static int write_buf_entry(struct archive *a, struct archive_entry *ae,
                           const char *path, const void *data, size_t len,
                           time_t mtime, const char *out_path, kf_err *e)
{
	if (write_header(a, ae, path, len, 0644, mtime) != ARCHIVE_OK)
		return ar_fail(e, a, "cannot write header of", path, out_path);
	if (len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
		return ar_fail(e, a, "cannot write", path, out_path);
	return KF_OK;
}

/* Copy one source into the archive, hashing it on the way (on the hashing
 * thread, hash.c): the lock was made from an earlier read, and a file that
 * changed since then must not go out under the old digest. */
static int write_src_entry(struct archive *a, struct archive_entry *ae,
                           const kf_archive_source *s,
                           const kf_lock_entry *le, size_t idx, time_t mtime,
                           struct kf_ar_hasher *h, const char *out_path,
                           kf_err *e)
{
	int rc = KF_OK, fd = -1;
	struct stat st;
	uint64_t done = 0;

	fd = open(s->src_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = kf_err_errno(e, "cannot open", s->src_path);
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		rc = kf_err_errno(e, "cannot stat", s->src_path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = kf_err_set(e, KF_EUSAGE, "%s (for %s): not a regular file",
		                s->src_path, s->entry_path);
		goto out;
	}
	if ((uint64_t)st.st_size != le->size) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "%s: size mismatch: lock says %llu bytes, %s has %llu",
		                s->entry_path, (unsigned long long)le->size,
		                s->src_path, (unsigned long long)st.st_size);
		goto out;
	}
	if (write_header(a, ae, s->entry_path, le->size, le->mode, mtime) !=
	    ARCHIVE_OK) {
		rc = ar_fail(e, a, "cannot write header of", s->entry_path,
		             out_path);
		goto out;
	}
	while (done < le->size) {
		size_t want = WRITE_BUF;
		unsigned char *buf = kf_ar_hasher_buf(h);
		ssize_t n;
		if (le->size - done < want)
			want = (size_t)(le->size - done);
		do
			n = read(fd, buf, want);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			rc = kf_err_errno(e, "cannot read", s->src_path);
			goto out;
		}
		if (n == 0) {
			rc = kf_err_set(e, KF_EVERIFY,
			                "%s: %s shrank while it was written (%llu of %llu bytes)",
			                s->entry_path, s->src_path,
			                (unsigned long long)done,
			                (unsigned long long)le->size);
			goto out;
		}
		/* libarchive copies buf before it returns; then it is the
		 * hashing thread's. */
		if (archive_write_data(a, buf, (size_t)n) != n) {
			rc = ar_fail(e, a, "cannot write", s->entry_path,
			             out_path);
			goto out;
		}
		kf_ar_hasher_src(h, buf, (size_t)n);
		done += (uint64_t)n;
	}
	kf_ar_hasher_end(h, idx, le->sha256);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Check the sources against the lock before writing a byte: same set of
 * paths, no duplicates. Fills sorted[] with the write order. */
static int plan(const kf_lock *lock, const kf_archive_source *src,
                size_t nsrc, const kf_archive_source **sorted,
                const kf_lock_entry **ents, int partial, kf_err *e)
{
	if (partial && !lock->delta)
		return kf_err_set(e, KF_EUSAGE, "a partial bundle needs a lock that names its base");
	for (size_t i = 0; i < nsrc; i++) {
		if (!src[i].entry_path || !src[i].src_path)
			return kf_err_set(e, KF_EUSAGE, "source %zu has no path", i);
		sorted[i] = &src[i];
	}
	qsort(sorted, nsrc, sizeof *sorted, cmp_src);
	for (size_t i = 0; i < nsrc; i++) {
		const char *p = sorted[i]->entry_path;
		if (i > 0 && !strcmp(sorted[i - 1]->entry_path, p))
			return kf_err_set(e, KF_EUSAGE, "%s: given twice", p);
		if (!kf_path_safe(p) || !strcmp(p, KF_LOCK_PATH) ||
		    !strcmp(p, KF_LOCK_SIG_PATH))
			return kf_err_set(e, KF_EUSAGE, "%s: unsafe entry path", p);
		ents[i] = kf_lock_find(lock, p);
		if (!ents[i])
			return kf_err_set(e, KF_EUSAGE,
			                  "%s: not listed in the lock", p);
	}
	/* Every path is listed and unique, so equal counts mean every lock
	 * entry has its source: a bundle missing one would never verify. */
	if (nsrc != lock->nentries && !partial) {
		for (size_t i = 0, j = 0; i < lock->nentries; i++) {
			if (j < nsrc && !strcmp(lock->entries[i].path,
			                        sorted[j]->entry_path)) {
				j++;
				continue;
			}
			return kf_err_set(e, KF_EUSAGE,
			                  "%s: listed in the lock but no source given",
			                  lock->entries[i].path);
		}
		return kf_err_set(e, KF_EUSAGE, "lock and sources differ");
	}
	return KF_OK;
}

int kf_archive_write(const char *out_path, const char *lock_yaml,
                     size_t lock_len, const char *lock_sig, size_t sig_len,
                     const kf_lock *lock, const kf_archive_source *src,
                     size_t nsrc, const kf_archive_write_opts *o,
                     unsigned char file_digest[KF_BLAKE2B_LEN], kf_err *e)
{
	int rc = KF_OK, level = 3, threads = 0;
	char opt[128];
	kf_commit own = {0}, *c = o && o->commit ? o->commit : &own;
	struct sink s = {.fd = -1};
	struct archive *a = NULL;
	struct archive_entry *ae = NULL;
	const kf_archive_source **sorted = NULL;
	const kf_lock_entry **ents = NULL;
	uint64_t total = 0, done = 0;
	size_t at = 0, bad = 0;
	char hex[KF_SHA256_HEX];
	time_t mtime = o ? o->mtime : 0;

	if (c == &own)
		kf_commit_init(&own);
	if (o && o->mismatch)
		*o->mismatch = NULL;
	if (o && o->level)
		level = o->level;
	if (level < 1 || level > 19) {
		rc = kf_err_set(e, KF_EUSAGE, "zstd level %d: must be 1..19", level);
		goto out;
	}
	if (o && o->threads > 0)
		threads = o->threads;
	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
	}
	sorted = calloc(nsrc ? nsrc : 1, sizeof *sorted);
	ents = calloc(nsrc ? nsrc : 1, sizeof *ents);
	if (!sorted || !ents) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	s.h = kf_ar_hasher_new(e);
	if (!s.h) {
		rc = e->code;
		goto out;
	}
	rc = plan(lock, src, nsrc, sorted, ents, o && o->partial, e);
	if (rc)
		goto out;
	/* plan() filled ents[0..nsrc) or failed. */
	for (size_t i = 0; i < nsrc; i++)
		total += ents[i]->size; // NOLINT(clang-analyzer-core.NullDereference)

	rc = kf_commit_add_file(c, out_path, 0644, &s.fd, e);
	if (rc)
		goto out;
	s.tmp = c->it[c->n - 1].tmp;

	a = archive_write_new();
	ae = archive_entry_new();
	if (!a || !ae) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Restricted pax: plain ustar headers unless a path or size needs a
	 * pax record, readable by every tar. */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK) {
		rc = ar_fail(e, a, "cannot set up", "zstd/pax", out_path);
		goto out;
	}
	snprintf(opt, sizeof opt, "zstd:compression-level=%d,zstd:threads=%d",
	         level, threads);
	if (archive_write_set_options(a, opt) != ARCHIVE_OK) {
		rc = ar_fail(e, a, "cannot set options", opt, out_path);
		goto out;
	}
	/* No padding after the zstd frame: the file ends where zstd ends. */
	archive_write_set_bytes_per_block(a, WRITE_BUF);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open2(a, &s, NULL, sink_write, NULL, NULL) !=
	    ARCHIVE_OK) {
		rc = ar_fail(e, a, "cannot open", "archive", out_path);
		goto out;
	}

	rc = write_buf_entry(a, ae, KF_LOCK_PATH, lock_yaml, lock_len, mtime,
	                     out_path, e);
	if (rc)
		goto out;
	rc = write_buf_entry(a, ae, KF_LOCK_SIG_PATH, lock_sig, sig_len,
	                     mtime, out_path, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < nsrc; i++) {
		at = i;
		rc = write_src_entry(a, ae, sorted[i], ents[i], i, mtime, s.h,
		                     out_path, e);
		if (rc == KF_EVERIFY && o && o->mismatch)
			*o->mismatch = sorted[i];
		if (rc)
			goto out;
		/* An earlier source that failed its hash stops the write
		 * now, not after the rest is compressed (reported at out). */
		if (kf_ar_hasher_failed(s.h)) {
			rc = KF_EVERIFY;
			goto out;
		}
		done += ents[i]->size;
		if (o && o->progress)
			o->progress(o->progress_arg, sorted[i]->entry_path, done,
			            total);
	}
	at = nsrc;
	if (archive_write_close(a) != ARCHIVE_OK) {
		rc = ar_fail(e, a, "cannot finish", "archive", out_path);
		goto out;
	}
	if (kf_ar_hasher_finish(s.h, &bad, hex, file_digest) != 0)
		goto out;
	/* Sealed (fsync, mode 0644) and renamed by the commit. */
	if (c == &own) {
		rc = kf_commit_finish(&own, 1, e);
		if (rc)
			goto out;
	}
out:
	/* A source that changed explains any failure after it. */
	if (s.h && kf_ar_hasher_finish(s.h, &bad, hex, NULL) != 0 && bad <= at) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "%s: sha256 mismatch: lock says %s, %s is %s",
		                /* bad <= at: an entry plan() filled. */
		                sorted[bad]->entry_path, ents[bad]->sha256, // NOLINT(clang-analyzer-core.NullDereference)
		                sorted[bad]->src_path, hex);
		if (o && o->mismatch)
			*o->mismatch = sorted[bad];
	}
	if (a)
		archive_write_free(a);
	archive_entry_free(ae);
	/* The commit owns s.fd; on failure a shared one drops the bundle
	 * with everything else, and ours drops it here. */
	if (c == &own)
		kf_commit_clear(&own);
	kf_ar_hasher_free(s.h);
	free(sorted);
	free(ents);
	return rc;
}
