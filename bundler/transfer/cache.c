/*
 * The content-addressed download cache:
 *   <cache>/sha256/<hex>      complete, verified files (named by content)
 *   <cache>/tmp/<hex>.part    downloads in progress, named by the digest
 *                             they should have so a later attempt (or a
 *                             later run) resumes them
 * Nothing reaches sha256/ without its digest matching, and nothing there
 * is trusted without hashing it again: a disk or a person may have
 * changed it since. That hash is here, or, with verify_later, the
 * caller's while it reads the file (the bundle writer), which then evicts
 * an entry that failed (kf_fetch_evict).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

char *kf_fetch_default_cache(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *out = NULL;

	/* XDG says a relative $XDG_CACHE_HOME is invalid and must be ignored. */
	if (xdg && xdg[0] == '/') {
		if (asprintf(&out, "%s/kubeferry", xdg) < 0)
			out = NULL;
	} else if (home && home[0]) {
		if (asprintf(&out, "%s/.cache/kubeferry", home) < 0)
			out = NULL;
	} else {
		out = strdup(".kubeferry-cache");
	}
	return out;
}

int kf_cache_prepare(const char *cache_dir, kf_err *e)
{
	int rc = KF_OK;
	char *p = NULL;

	if (!cache_dir || !cache_dir[0]) {
		rc = kf_err_set(e, KF_EUSAGE, "no cache directory given");
		goto out;
	}
	if (asprintf(&p, "%s/sha256", cache_dir) < 0) {
		p = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = kf_mkdir_p(p, 0755, e)) != KF_OK)
		goto out;
	free(p);
	if (asprintf(&p, "%s/tmp", cache_dir) < 0) {
		p = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_mkdir_p(p, 0755, e);
out:
	free(p);
	return rc;
}

char *kf_cache_entry_path(const char *cache_dir, const char *hex)
{
	char *p = NULL;
	if (asprintf(&p, "%s/sha256/%s", cache_dir, hex) < 0)
		p = NULL;
	return p;
}

char *kf_cache_tmp_path(const char *cache_dir, const char *hex)
{
	char *p = NULL;
	if (asprintf(&p, "%s/tmp/%s.part", cache_dir, hex) < 0)
		p = NULL;
	return p;
}

int kf_cache_lookup(const char *path, const char *hex, uint64_t *size,
                    int hash, int quiet, kf_err *e)
{
	int rc = 0;
	struct stat st;
	char got[KF_SHA256_HEX];
	uint64_t sz = 0;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			goto out;
		rc = -kf_err_errno(e, "cannot stat", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -kf_err_set(e, KF_EIO, "cache entry %s is not a regular file", path);
		goto out;
	}
	if (!hash) {
		*size = (uint64_t)st.st_size;
		rc = 1;
		goto out;
	}
	if (kf_sha256_file(path, got, &sz, e) != KF_OK) {
		rc = -KF_EIO;
		goto out;
	}
	if (strcmp(got, hex) != 0) {
		/* A corrupt entry is worthless and would fail every later build:
		 * drop it so the caller downloads a good copy. */
		if (!quiet)
			fprintf(stderr, "kubeferry: cache entry %s is corrupt "
			        "(sha256 %s), removed; downloading again\n", path, got);
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = -kf_err_errno(e, "cannot remove corrupt cache entry", path);
			goto out;
		}
		goto out;
	}
	*size = sz;
	rc = 1;
out:
	return rc;
}

int kf_fetch_evict(const kf_fetch_item *it, const kf_fetch_opts *o, kf_err *e)
{
	int rc = 0;
	char *entry = NULL;

	if (!it->path || !it->sha256 || !o->cache_dir)
		goto out;
	entry = kf_cache_entry_path(o->cache_dir, it->sha256);
	if (!entry) {
		rc = -kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Only the cache's own copy: a local source is the user's file. */
	if (strcmp(entry, it->path) != 0)
		goto out;
	if (unlink(entry) != 0 && errno != ENOENT) {
		rc = -kf_err_errno(e, "cannot remove corrupt cache entry", entry);
		goto out;
	}
	rc = 1;
out:
	free(entry);
	return rc;
}
