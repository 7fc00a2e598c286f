/*
 * Bundle reader (format v1, docs/bundle-format.md): one streaming pass that
 * enforces every rule before anything leaves staging, and the public entry
 * points that run it (verify, unpack, read the lock for inspect).
 *
 * The pass: open the bundle and check the lock and its signature
 * (verify.c), start the worker threads (pipe.c), then, on this thread,
 * check every header (verify.c) and stream its content to the worker,
 * which hashes it and, when unpacking, writes it into staging (stage.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/archive_internal.h"

/* ---- the reader ---------------------------------------------------------- */

static int read_entries(struct kf_ar_pass *p, struct archive *a,
                        struct kf_ar_input *in, kf_err *e)
{
	int rc = KF_OK;
	const kf_lock *lock = p->lock;
	unsigned char *seen = calloc(lock->nentries ? lock->nentries : 1, 1);
	struct archive_entry *ae;

	if (!seen)
		return kf_err_set(e, KF_EIO, "out of memory");
	for (;;) {
		const kf_lock_entry *le;
		const char *name;
		size_t idx;
		uint64_t left;
		int r = kf_ar_next_header(a, &ae, p->origin, e);
		if (r < 0) {
			rc = e->code;
			goto out;
		}
		if (r > 0)
			break;
		name = kf_ar_entry_name(ae);
		rc = kf_ar_check_header(ae, lock, seen, &idx, p->origin, e);
		if (rc)
			goto out;
		le = &lock->entries[idx];
		left = le->size;
		if (left == 0 &&
		    kf_ar_pipe_post(p, F_BEGIN | F_END, idx, NULL, 0) != 0)
			goto out;
		for (unsigned flags = F_BEGIN; left > 0; flags = 0) {
			size_t want = 0, got = 0;
			unsigned char *b = kf_ar_pipe_space(p, left < KF_AR_BUF_SIZE
			                                       ? (size_t)left
			                                       : KF_AR_BUF_SIZE, &want);
			if (!b)
				goto out;
			while (got < want) {
				la_ssize_t n = archive_read_data(a, b + got, want - got);
				if (n < 0) {
					rc = kf_ar_corrupt(e, p->origin, a);
					goto out;
				}
				if (n == 0)
					break;
				got += (size_t)n;
			}
			if (got != want) {
				rc = kf_err_set(e, KF_EVERIFY,
				                "%s: truncated or corrupt bundle (%s ends early)",
				                p->origin, name);
				goto out;
			}
			left -= got;
			if (kf_ar_pipe_post(p, flags | (left == 0 ? F_END : 0), idx,
			                    b, got) != 0)
				goto out;
		}
	}
	/* A delta's left-out entries come from its base (delta.c); without
	 * one, only what it carries is verified. */
	if (lock->delta && p->o->base_dir)
		rc = kf_ar_delta_fill(p, seen, e);
	else if (!lock->delta)
		rc = kf_ar_check_all_seen(lock, seen, p->origin, e);
	if (rc == KF_OK)
		rc = kf_ar_check_end(a, in, p->origin, e);
out:
	free(seen);
	return rc;
}

/* One full pass: lock, signature, every entry. dirfd < 0 only verifies.
 * The lock goes to *lock_out on success. */
static int run_pass(const char *path, int dirfd, const kf_archive_read_opts *o,
                    kf_lock **lock_out, char *tc, size_t tc_len, kf_err *e)
{
	int rc;
	struct archive *a = NULL;
	struct kf_ar_input *in = NULL;
	char *lock_yaml = NULL, *sig = NULL;
	size_t lock_len = 0, sig_len = 0;
	kf_lock *lock = NULL;
	struct kf_ar_pass *p = NULL;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";

	if (!o || !o->key) {
		rc = kf_err_set(e, KF_EUSAGE, "no public key given to check %s", origin);
		goto out;
	}
	rc = kf_ar_open_bundle(path, &in, &a, e);
	if (rc)
		goto out;
	rc = kf_ar_read_lock_entries(a, origin, &lock_yaml, &lock_len, &sig, &sig_len, e);
	if (rc)
		goto out;
	/* Nothing in the lock is believed before its signature verifies. */
	rc = kf_sig_verify_buf(o->key, sig, sig_len, lock_yaml, lock_len, tc,
	                       tc_len, KF_LOCK_SIG_PATH, e);
	if (rc) {
		kf_err_prefix(e, "%s", origin);
		goto out;
	}
	rc = kf_lock_parse(lock_yaml, lock_len, KF_LOCK_PATH, &lock, e);
	if (rc) {
		kf_err_prefix(e, "%s", origin);
		goto out;
	}

	if (lock->delta && dirfd >= 0 && !o->base_dir) {
		rc = kf_err_set(e, KF_EUSAGE, "%s is a delta of %s %s (lock sha256 %s): name its "
		                "base (--base)", origin, lock->base.name, lock->base.version,
		                lock->base.lock);
		goto out;
	}
	/* The lock bounds the disk an unpack uses: refuse before writing
	 * rather than fill the filesystem halfway. */
	if (dirfd >= 0) {
		struct statvfs vfs;
		uint64_t need = kf_lock_total_size(lock);
		if (fstatvfs(dirfd, &vfs) == 0 &&
		    (uint64_t)vfs.f_bavail * vfs.f_frsize < need) {
			rc = kf_err_set(e, KF_EIO,
			                "%s: needs %llu bytes, only %llu free next to the destination",
			                origin, (unsigned long long)need,
			                (unsigned long long)vfs.f_bavail * vfs.f_frsize);
			goto out;
		}
	}

	p = kf_ar_pipe_new(origin, lock, dirfd, o, e);
	if (!p) {
		rc = e->code;
		goto out;
	}
	rc = read_entries(p, a, in, e);
	rc = kf_ar_pipe_finish(p, rc, e);
	if (rc != KF_OK && lock->delta && o->base_dir)
		kf_err_prefix(e, "delta on the base %s", o->base_dir);
	if (rc == KF_OK && lock_out) {
		*lock_out = lock;
		lock = NULL;
	}
out:
	kf_ar_pipe_free(p);
	if (rc && lock_out && *lock_out) {
		kf_lock_free(*lock_out);
		*lock_out = NULL;
	}
	kf_lock_free(lock);
	free(lock_yaml);
	free(sig);
	kf_ar_close_bundle(a, in);
	return rc;
}

int kf_archive_verify(const char *path, const kf_archive_read_opts *o,
                      kf_lock **lock_out, char *tc, size_t tc_len, kf_err *e)
{
	if (lock_out)
		*lock_out = NULL;
	return run_pass(path, -1, o, lock_out, tc, tc_len, e);
}

/* ---- unpack --------------------------------------------------------------- */

int kf_archive_unpack(const char *path, const char *dest_arg, int replace,
                      const kf_archive_read_opts *o, kf_lock **lock_out,
                      kf_err *e)
{
	int rc = KF_OK, dirfd = -1;
	char parent[PATH_MAX], dest[PATH_MAX];
	size_t n;
	struct stat st;
	kf_commit c;

	kf_commit_init(&c);
	if (lock_out)
		*lock_out = NULL;
	if (!dest_arg || !*dest_arg) {
		rc = kf_err_set(e, KF_EUSAGE, "no destination directory given");
		goto out;
	}
	/* "dir/" names dir: without this the staging directory would be
	 * made inside it rather than next to it. */
	n = strlen(dest_arg);
	while (n > 1 && dest_arg[n - 1] == '/')
		n--;
	if (n >= sizeof dest) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", dest_arg);
		goto out;
	}
	memcpy(dest, dest_arg, n);
	dest[n] = '\0';
	if (!strcmp(dest, "/") || !strcmp(dest, ".") || !strcmp(dest, "..") ||
	    (n >= 2 && !strcmp(dest + n - 2, "/.")) ||
	    (n >= 3 && !strcmp(dest + n - 3, "/.."))) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: cannot unpack onto this directory; name a new one",
		                dest_arg);
		goto out;
	}
	if (lstat(dest, &st) == 0 && !replace) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s already exists (use --force to replace it)", dest);
		goto out;
	}
	kf_dirname(dest, parent, sizeof parent);
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = kf_err_set(e, KF_EIO, "%s: parent directory %s does not exist",
		                dest, parent);
		goto out;
	}
	rc = kf_commit_add_dir(&c, dest, &dirfd, e);
	if (rc)
		goto out;
	rc = run_pass(path, dirfd, o, lock_out, NULL, 0, e);
	if (rc)
		goto out;
	/* The only step that touches dest, and it is atomic. */
	rc = kf_commit_finish(&c, replace, e);
out:
	/* On failure the staging tree goes. */
	kf_commit_clear(&c);
	if (rc && lock_out && *lock_out) {
		kf_lock_free(*lock_out);
		*lock_out = NULL;
	}
	return rc;
}

/* ---- inspect -------------------------------------------------------------- */

int kf_archive_read_lock(const char *path, char **lock_yaml, size_t *lock_len,
                         char **sig_text, size_t *sig_len, kf_err *e)
{
	int rc;
	struct archive *a = NULL;
	struct kf_ar_input *in = NULL;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";

	*lock_yaml = NULL;
	*sig_text = NULL;
	rc = kf_ar_open_bundle(path, &in, &a, e);
	if (rc)
		goto out;
	rc = kf_ar_read_lock_entries(a, origin, lock_yaml, lock_len, sig_text,
	                       sig_len, e);
	if (rc) {
		free(*lock_yaml);
		free(*sig_text);
		*lock_yaml = NULL;
		*sig_text = NULL;
	}
out:
	kf_ar_close_bundle(a, in);
	return rc;
}
