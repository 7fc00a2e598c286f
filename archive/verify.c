/*
 * The reader's header and lock rules (docs/bundle-format.md): what each tar
 * header may be, the lock and its signature as the first two entries, and
 * every later entry listed in the lock once, with the lock's size. Content
 * (sha256) is checked by the worker in pipe.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive_internal.h"

int kf_ar_corrupt(kf_err *e, const char *origin, struct archive *a)
{
	const char *why = archive_error_string(a);
	return kf_err_set(e, KF_EVERIFY, "%s: truncated or corrupt bundle (%s)",
	                  origin, why ? why : "read error");
}

/* The name as stored first: a ustar name needs no conversion, and the
 * path rules admit printable ASCII only, the same in every form. */
const char *kf_ar_entry_name(struct archive_entry *ae)
{
	const char *n = archive_entry_pathname(ae);
	if (!n)
		n = archive_entry_pathname_utf8(ae);
	return n ? n : "(unnamed entry)";
}

/* A hostile name as it may appear in a message: control and non-ASCII
 * bytes (terminal escapes) become '?', and it is cut short. */
static const char *shown(const char *name, char *buf, size_t n)
{
	size_t i = 0;
	for (; name[i] && i + 1 < n; i++)
		if (name[i] >= 0x20 && name[i] < 0x7f)
			buf[i] = name[i];
		else
			buf[i] = '?';
	buf[i] = '\0';
	return buf;
}

/* Next header; ARCHIVE_EOF is returned as 1. */
int kf_ar_next_header(struct archive *a, struct archive_entry **ae,
                      const char *origin, kf_err *e)
{
	int r = archive_read_next_header(a, ae);
	if (r == ARCHIVE_EOF)
		return 1;
	if (r != ARCHIVE_OK) {
		kf_ar_corrupt(e, origin, a);
		return -1;
	}
	return 0;
}

/* Type checks shared by every entry: regular files only. */
static int check_type(struct archive_entry *ae, const char *origin,
                      kf_err *e)
{
	char nbuf[1100];
	const char *what = NULL;

	if (archive_entry_hardlink(ae))
		what = "a hard link";
	else if (archive_entry_symlink(ae) ||
	         archive_entry_filetype(ae) == AE_IFLNK)
		what = "a symbolic link";
	else {
		switch (archive_entry_filetype(ae)) {
		case AE_IFREG:
			break;
		case AE_IFDIR:
			what = "a directory (v1 bundles hold regular files only)";
			break;
		case AE_IFCHR:
			what = "a character device";
			break;
		case AE_IFBLK:
			what = "a block device";
			break;
		case AE_IFIFO:
			what = "a FIFO";
			break;
		case AE_IFSOCK:
			what = "a socket";
			break;
		default:
			what = "not a regular file";
			break;
		}
	}
	if (what)
		return kf_err_set(e, KF_EVERIFY, "%s: entry %s: %s is not allowed",
		                  origin, shown(kf_ar_entry_name(ae), nbuf, sizeof nbuf),
		                  what);
	if (!archive_entry_size_is_set(ae) || archive_entry_size(ae) < 0)
		return kf_err_set(e, KF_EVERIFY, "%s: entry %s: no size in header",
		                  origin, shown(kf_ar_entry_name(ae), nbuf, sizeof nbuf));
	if (archive_entry_sparse_count(ae) > 0)
		return kf_err_set(e, KF_EVERIFY, "%s: entry %s: sparse entries are not allowed",
		                  origin, shown(kf_ar_entry_name(ae), nbuf, sizeof nbuf));
	return KF_OK;
}

/* Read one small entry (lock or signature) into memory, bounded by max. */
static int read_small(struct archive *a, struct archive_entry *ae,
                      const char *want, size_t max, const char *origin,
                      char **out, size_t *len, kf_err *e)
{
	int rc;
	char nbuf[1100];
	const char *name = shown(kf_ar_entry_name(ae), nbuf, sizeof nbuf);
	la_int64_t size;
	char *buf = NULL;
	size_t got = 0;

	if (strcmp(kf_ar_entry_name(ae), want) != 0)
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: entry %s where %s must be (the signed lock comes first)",
		                  origin, name, want);
	rc = check_type(ae, origin, e);
	if (rc)
		return rc;
	size = archive_entry_size(ae);
	if ((uint64_t)size > max)
		return kf_err_set(e, KF_EVERIFY, "%s: %s is %lld bytes, more than the %zu allowed",
		                  origin, want, (long long)size, max);
	buf = malloc((size_t)size + 1);
	if (!buf)
		return kf_err_set(e, KF_EIO, "out of memory");
	while (got < (size_t)size) {
		la_ssize_t n = archive_read_data(a, buf + got, (size_t)size - got);
		if (n < 0) {
			free(buf);
			return kf_ar_corrupt(e, origin, a);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)size) {
		free(buf);
		return kf_err_set(e, KF_EVERIFY, "%s: truncated or corrupt bundle (%s ends early)",
		                  origin, want);
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return KF_OK;
}

/* First two entries: the lock and its signature, nothing verified. */
int kf_ar_read_lock_entries(struct archive *a, const char *origin,
                            char **lock, size_t *lock_len, char **sig,
                            size_t *sig_len, kf_err *e)
{
	int rc, r;
	struct archive_entry *ae;

	r = kf_ar_next_header(a, &ae, origin, e);
	if (r < 0)
		return e->code;
	if (r > 0)
		return kf_err_set(e, KF_EVERIFY, "%s: empty archive, no %s",
		                  origin, KF_LOCK_PATH);
	rc = read_small(a, ae, KF_LOCK_PATH, KF_LOCK_MAX, origin, lock,
	                lock_len, e);
	if (rc)
		return rc;
	r = kf_ar_next_header(a, &ae, origin, e);
	if (r < 0)
		return e->code;
	if (r > 0)
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: unsigned bundle: no %s after the lock",
		                  origin, KF_LOCK_SIG_PATH);
	if (strcmp(kf_ar_entry_name(ae), KF_LOCK_SIG_PATH) != 0) {
		char nbuf[1100];
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: unsigned bundle: entry %s where %s must be",
		                  origin, shown(kf_ar_entry_name(ae), nbuf, sizeof nbuf),
		                  KF_LOCK_SIG_PATH);
	}
	return read_small(a, ae, KF_LOCK_SIG_PATH, KF_AR_SIG_MAX, origin, sig,
	                  sig_len, e);
}

/* Every entry after the lock, checked and streamed to the worker. */

int kf_ar_check_header(struct archive_entry *ae, const kf_lock *lock,
                       unsigned char *seen, size_t *idx, const char *origin,
                       kf_err *e)
{
	const char *name = kf_ar_entry_name(ae);
	const kf_lock_entry *le;
	int rc;

	/* Type first (a directory's name ends in '/'), then the path rules,
	 * before the name is used for anything. */
	rc = check_type(ae, origin, e);
	if (rc)
		return rc;
	if (!kf_path_safe(name)) {
		char nbuf[1100];
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: entry %s: unsafe path (absolute, '..', '.', empty segment or control character)",
		                  origin, shown(name, nbuf, sizeof nbuf));
	}
	le = kf_lock_find(lock, name);
	if (!le)
		return kf_err_set(e, KF_EVERIFY, "%s: entry %s is not listed in the lock",
		                  origin, name);
	*idx = (size_t)(le - lock->entries);
	if (seen[*idx])
		return kf_err_set(e, KF_EVERIFY, "%s: duplicate entry %s",
		                  origin, name);
	seen[*idx] = 1;
	if ((uint64_t)archive_entry_size(ae) != le->size)
		return kf_err_set(e, KF_EVERIFY,
		                  "%s: %s: size mismatch: lock says %llu bytes, header says %lld",
		                  origin, name, (unsigned long long)le->size,
		                  (long long)archive_entry_size(ae));
	return KF_OK;
}

int kf_ar_check_all_seen(const kf_lock *lock, const unsigned char *seen,
                         const char *origin, kf_err *e)
{
	for (size_t i = 0; i < lock->nentries; i++)
		if (!seen[i])
			return kf_err_set(e, KF_EVERIFY,
			                  "%s: %s is listed in the lock but missing from the bundle",
			                  origin, lock->entries[i].path);
	return KF_OK;
}
