/*
 * The commit: the one place where what archive/ produces becomes visible.
 *
 * Every output (an unpacked tree, a bundle, its .minisig) is built under a
 * temporary name next to its final name, in the same directory and so on
 * the same filesystem, made durable there, and only then renamed into
 * place; the outputs of one commit are renamed back to back after all of
 * them are complete, then their directories are fsynced. A failure before
 * the renames leaves every final name as it was, and the temporaries go.
 *
 * Directories are renamed with renameat2(RENAME_NOREPLACE), so two unpacks
 * racing for one name cannot both win; replacing one swaps old and new in
 * a single step (RENAME_EXCHANGE) and removes the old tree afterwards.
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

enum { C_TEMP, C_RENAMED, C_SWAPPED, C_GONE };

void kf_commit_init(kf_commit *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < KF_COMMIT_MAX; i++)
		c->it[i].fd = -1;
}

/* A new item for final, its temporary name from mktemp-style pattern
 * "<final><suffix>XXXXXX" (not yet created). */
static kf_commit_item *add_item(kf_commit *c, const char *final,
                                const char *suffix, kf_err *e)
{
	kf_commit_item *it;

	if (c->n == KF_COMMIT_MAX) {
		kf_err_set(e, KF_EIO, "%s: too many outputs in one commit", final);
		return NULL;
	}
	it = &c->it[c->n];
	if (snprintf(it->tmp, sizeof it->tmp, "%s%sXXXXXX", final, suffix) >=
	    (int)sizeof it->tmp ||
	    snprintf(it->final, sizeof it->final, "%s", final) >=
	    (int)sizeof it->final) {
		kf_err_set(e, KF_EUSAGE, "path too long: %s", final);
		return NULL;
	}
	it->fd = -1;
	it->state = C_GONE;
	return it;
}

int kf_commit_add_file(kf_commit *c, const char *final, mode_t mode,
                       int *fd, kf_err *e)
{
	kf_commit_item *it = add_item(c, final, ".tmp-", e);

	if (!it)
		return e->code;
	it->fd = mkostemp(it->tmp, O_CLOEXEC);
	if (it->fd < 0)
		return kf_err_errno(e, "cannot create", it->tmp);
	it->mode = mode;
	it->state = C_TEMP;
	c->n++;
	*fd = it->fd;
	return KF_OK;
}

int kf_commit_add_data(kf_commit *c, const char *final, mode_t mode,
                       const void *data, size_t len, kf_err *e)
{
	int fd = -1, rc = kf_commit_add_file(c, final, mode, &fd, e);

	if (rc == KF_OK && kf_write_all(fd, data, len) != 0)
		rc = kf_err_errno(e, "cannot write", c->it[c->n - 1].tmp);
	return rc;
}

int kf_commit_add_dir(kf_commit *c, const char *final, int *dirfd,
                      kf_err *e)
{
	kf_commit_item *it = add_item(c, final, ".kf-staging-", e);

	if (!it)
		return e->code;
	if (!mkdtemp(it->tmp))
		return kf_err_errno(e, "cannot create staging directory", it->tmp);
	it->is_dir = 1;
	it->state = C_TEMP;
	c->n++;
	/* 0755 whatever the umask: the tree is read by services. */
	if (chmod(it->tmp, 0755) != 0)
		return kf_err_errno(e, "cannot chmod", it->tmp);
	it->fd = open(it->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (it->fd < 0)
		return kf_err_errno(e, "cannot open", it->tmp);
	*dirfd = it->fd;
	return KF_OK;
}

/* Make one temporary durable and close it. */
static int seal(kf_commit_item *it, kf_err *e)
{
	int rc = KF_OK, fd = it->fd;

	it->fd = -1;
	/* A tree is made durable as a whole: syncfs writes back every file
	 * and directory of its filesystem and, since Linux 5.8, reports any
	 * writeback error since dirfd was opened (before the first file). One
	 * call per unpack instead of one fsync per file. */
	if (it->is_dir && syncfs(fd) != 0)
		rc = kf_err_errno(e, "cannot sync the filesystem of", it->tmp);
	else if (!it->is_dir && fsync(fd) != 0)
		rc = kf_err_errno(e, "cannot fsync", it->tmp);
	else if (!it->is_dir && fchmod(fd, it->mode) != 0)
		rc = kf_err_errno(e, "cannot chmod", it->tmp);
	if (close(fd) != 0 && rc == KF_OK)
		rc = kf_err_errno(e, "cannot close", it->tmp);
	return rc;
}

static int rename_one(kf_commit_item *it, int replace, kf_err *e)
{
	/* A file replaces its old version in one rename. */
	if (!it->is_dir && replace) {
		if (rename(it->tmp, it->final) != 0)
			return kf_err_errno(e, "cannot rename into", it->final);
		it->state = C_RENAMED;
		return KF_OK;
	}
	if (renameat2(AT_FDCWD, it->tmp, AT_FDCWD, it->final,
	              RENAME_NOREPLACE) == 0) {
		it->state = C_RENAMED;
		return KF_OK;
	}
	if (errno == EEXIST && replace) {
		/* Swap old and new in one step; the old tree, now under the
		 * temporary name, is removed afterwards. */
		if (renameat2(AT_FDCWD, it->tmp, AT_FDCWD, it->final,
		              RENAME_EXCHANGE) != 0)
			return kf_err_errno(e, "cannot replace", it->final);
		it->state = C_SWAPPED;
		return KF_OK;
	}
	if (errno == EEXIST)
		return kf_err_set(e, KF_EUSAGE,
		                  "%s already exists (use --force to replace it)",
		                  it->final);
	return kf_err_errno(e, it->is_dir ? "cannot rename staging directory to"
	                                  : "cannot rename into", it->final);
}

/* fsync each directory that received an output, once. */
static int sync_parents(kf_commit *c, kf_err *e)
{
	char dir[PATH_MAX], prev[PATH_MAX] = "";
	int rc = KF_OK;

	for (size_t i = 0; i < c->n && rc == KF_OK; i++) {
		kf_dirname(c->it[i].final, dir, sizeof dir);
		if (strcmp(dir, prev) != 0)
			rc = kf_fsync_path(dir, e);
		snprintf(prev, sizeof prev, "%s", dir);
	}
	return rc;
}

int kf_commit_finish(kf_commit *c, int replace, kf_err *e)
{
	int rc = KF_OK;
	kf_err ignore;

	for (size_t i = 0; i < c->n && rc == KF_OK; i++)
		rc = seal(&c->it[i], e);
	for (size_t i = 0; i < c->n && rc == KF_OK; i++) {
		rc = rename_one(&c->it[i], replace, e);
		/* The outputs go together: a bundle without its signature is
		 * not left behind. */
		for (size_t j = 0; rc != KF_OK && j < i; j++) {
			if (c->it[j].state == C_RENAMED && !c->it[j].is_dir) {
				unlink(c->it[j].final);
				c->it[j].state = C_GONE;
			}
		}
	}
	if (rc == KF_OK)
		rc = sync_parents(c, e);
	/* After a swap the temporary name holds the old tree. A failure to
	 * remove it is reported, although the new one is already in place. */
	for (size_t i = 0; i < c->n; i++) {
		kf_commit_item *it = &c->it[i];
		if (it->state != C_SWAPPED)
			continue;
		if (kf_remove_tree(it->tmp, &ignore) != KF_OK && rc == KF_OK) {
			*e = ignore;
			rc = kf_err_prefix(e, "%s is in place, but the old tree remains at %s",
			                   it->final, it->tmp);
		}
		it->state = C_GONE;
	}
	return rc;
}

void kf_commit_clear(kf_commit *c)
{
	kf_err ignore;

	for (size_t i = 0; i < c->n; i++) {
		kf_commit_item *it = &c->it[i];
		if (it->fd >= 0)
			close(it->fd);
		it->fd = -1;
		if (it->state == C_TEMP || it->state == C_SWAPPED)
			kf_remove_tree(it->tmp, &ignore);
		it->state = C_GONE;
	}
	c->n = 0;
}
