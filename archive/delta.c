/*
 * Delta bundles, read side (docs/bundle-format.md, "Delta bundles"). A
 * delta's stream carries only the entries its base lacks; its signed lock
 * still lists the whole tree. After the stream has passed every rule, each
 * entry it left out is taken from the base: the unpacked base directory,
 * at the path the base's lock gives for that content (else the same path),
 * streamed through the same pass as the delta's own entries (the worker
 * hashes each against the delta's lock and writes it into the same staging
 * directory), so the full tree is committed in one step as a full unpack
 * is. An entry whose base copy is missing, not a regular
 * file, of another size or another sha256 fails verification by name, and
 * nothing is committed.
 *
 * What --base names (kf_archive_base_open): an unpacked bundle directory
 * (apply leaves its lock beside it as DIR.bundle.yaml, which tells where
 * each content sits), or a full bundle file, verified and unpacked into
 * scratch space next to the destination first and removed afterwards.
 * The base itself need not be trusted: every entry taken from it is
 * checked against the delta's signed lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/archive_internal.h"

/* Open the base's copy of le: the content's path in the base lock first. */
static int open_base(int basefd, const kf_lock_entry *le, const kf_lock_entry *const *idx,
                     size_t nidx, const char **from)
{
	const kf_lock_entry *be = idx ? kf_lock_find_sha(idx, nidx, le->sha256) : NULL;
	int fd = -1;

	*from = le->path;
	if (be && (fd = openat(basefd, be->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0)
		*from = be->path;
	else
		fd = openat(basefd, le->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd;
}

/* Stream one entry from the base into the pass, as if the delta carried
 * it: the worker hashes it against the lock and stages it. KF_OK also
 * when the worker has failed (kf_ar_pipe_finish reports why). */
static int feed(struct kf_ar_pass *p, int basefd, size_t idx, const kf_lock_entry *const *bidx,
                size_t nb, kf_err *e)
{
	const kf_lock_entry *le = &p->lock->entries[idx];
	const char *from, *base = p->o->base_dir;
	struct stat st;
	int fd = open_base(basefd, le, bidx, nb, &from), rc = KF_OK;
	uint64_t left = le->size;

	if (fd < 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: %s is not in the delta and not in the base %s (%s)",
		                p->origin, le->path, base, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != le->size) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: %s: the base's copy %s/%s is not a regular file "
		                "of %llu bytes", p->origin, le->path, base, from,
		                (unsigned long long)le->size);
		goto out;
	}
	if (left == 0 && kf_ar_pipe_post(p, F_BEGIN | F_END, idx, NULL, 0) != 0)
		goto out;
	for (unsigned flags = F_BEGIN; left > 0; flags = 0) {
		size_t want = 0, got = 0;
		unsigned char *b = kf_ar_pipe_space(p, left < KF_AR_BUF_SIZE ? (size_t)left
		                                                              : KF_AR_BUF_SIZE, &want);
		if (!b)
			goto out;
		while (got < want) {
			ssize_t n = read(fd, b + got, want - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != want) {
			rc = kf_err_set(e, KF_EVERIFY, "%s: %s: the base's copy %s/%s ends early",
			                p->origin, le->path, base, from);
			goto out;
		}
		left -= got;
		if (kf_ar_pipe_post(p, flags | (left == 0 ? F_END : 0), idx, b, got) != 0)
			goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int kf_ar_delta_fill(struct kf_ar_pass *p, const unsigned char *seen, kf_err *e)
{
	const kf_lock *lock = p->lock;
	const kf_lock *bl = p->o->base_lock;
	const kf_lock_entry **idx = NULL;
	int basefd = -1, rc = KF_OK;

	if (bl && !(idx = kf_lock_sha_index(bl))) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	basefd = open(p->o->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: the base %s cannot be opened: %s", p->origin,
		                p->o->base_dir, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < lock->nentries && rc == KF_OK; i++)
		if (!seen[i])
			rc = feed(p, basefd, i, idx, bl ? bl->nentries : 0, e);
out:
	if (basefd >= 0)
		close(basefd);
	free(idx);
	return rc;
}

int kf_archive_carried(const char *path, uint64_t *bytes, size_t *n, kf_err *e)
{
	struct archive *a = NULL;
	struct kf_ar_input *in = NULL;
	struct archive_entry *ae;
	char *lock = NULL, *sig = NULL;
	size_t ll = 0, sl = 0;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";
	int rc, r;

	*bytes = 0;
	*n = 0;
	if ((rc = kf_ar_open_bundle(path, &in, &a, e)) != KF_OK ||
	    (rc = kf_ar_read_lock_entries(a, origin, &lock, &ll, &sig, &sl, e)) != KF_OK)
		goto out;
	while ((r = kf_ar_next_header(a, &ae, origin, e)) == 0) {
		*bytes += (uint64_t)archive_entry_size(ae);
		(*n)++;
		if (archive_read_data_skip(a) != ARCHIVE_OK) {
			rc = kf_ar_corrupt(e, origin, a);
			goto out;
		}
	}
	if (r < 0)
		rc = e->code;
out:
	free(lock);
	free(sig);
	kf_ar_close_bundle(a, in);
	return rc;
}

int kf_archive_base_open(const char *arg, const kf_pubkey *key, const char *near, kf_archive_base *b,
                  kf_err *e)
{
	struct stat st;
	char *text = NULL, parent[4096];
	size_t len = 0;
	int rc = KF_OK;

	memset(b, 0, sizeof *b);
	if (stat(arg, &st) != 0) {
		rc = kf_err_errno(e, "cannot find the base", arg);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		char lp[4200];
		kf_err ign;
		if (!(b->dir = strdup(arg))) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		/* Only a map of where contents sit: a bad one finds nothing. */
		if (kf_strf(lp, sizeof lp, "%s.bundle.yaml", arg) == 0 &&
		    kf_read_file(lp, KF_LOCK_MAX, &text, &len, &ign) == KF_OK &&
		    kf_lock_parse(text, len, lp, &b->lock, &ign) != KF_OK)
			b->lock = NULL;
		goto out;
	}
	kf_dirname(near, parent, sizeof parent);
	if (kf_strf(parent + strlen(parent), sizeof parent - strlen(parent),
	            "/.kf-base-XXXXXX") != 0 || !(b->scratch = strdup(parent))) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", near);
		goto out;
	}
	if (!mkdtemp(b->scratch)) {
		rc = kf_err_errno(e, "cannot create", b->scratch);
		free(b->scratch);
		b->scratch = NULL;
		goto out;
	}
	if (asprintf(&b->dir, "%s/tree", b->scratch) < 0) {
		b->dir = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	{
		kf_archive_read_opts ro = {.key = key};
		if ((rc = kf_archive_unpack(arg, b->dir, 0, &ro, &b->lock, e)) != KF_OK) {
			kf_err_prefix(e, "the base");
			goto out;
		}
	}
	if (b->lock->delta) {
		rc = kf_err_set(e, KF_EUSAGE, "the base %s is itself a delta: give a full bundle or "
		                "an unpacked directory", arg);
		goto out;
	}
out:
	free(text);
	if (rc != KF_OK)
		kf_archive_base_close(b);
	return rc;
}

void kf_archive_base_close(kf_archive_base *b)
{
	if (b->scratch) {
		kf_err ign;
		kf_remove_tree(b->scratch, &ign);
	}
	free(b->scratch);
	free(b->dir);
	kf_lock_free(b->lock);
	memset(b, 0, sizeof *b);
}
