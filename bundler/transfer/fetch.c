/*
 * Transfer engine entry point: kf_fetch_all, which sorts
 * items into local sources (hashed in place) and remote ones (handed to
 * the libcurl multi engine in pool.c, landing in the cache).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundler/transfer/fetch_int.h"

void kf_fetch_item_clear(kf_fetch_item *it)
{
	if (!it)
		return;
	free(it->path);
	it->path = NULL;
	it->size = 0;
	it->from_cache = 0;
	it->unverified = 0;
}

/* Length of "scheme" in "scheme://...", 0 when url has no scheme. */
static size_t scheme_len(const char *url)
{
	size_t i = 0;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' ||
	       url[i] == '.')
		i++;
	return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

static int hexdig(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Local path of a source: file:///abs (or file://localhost/abs), an
 * absolute path, or a path relative to base_dir. Malloc'ed. */
static int local_path(const char *src, const char *base_dir, char **out,
                      kf_err *e)
{
	int rc = KF_OK;
	char *p = NULL;

	*out = NULL;
	if (!strncmp(src, "file://", 7)) {
		const char *s = src + 7;
		size_t i, j;
		if (!strncmp(s, "localhost/", 10))
			s += 9;
		if (s[0] != '/') {
			rc = kf_err_set(e, KF_EUSAGE,
			                "%s: a file:// URL needs an absolute path (file:///PATH)", src);
			goto out;
		}
		p = malloc(strlen(s) + 1);
		if (!p) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		for (i = 0, j = 0; s[i]; i++) {
			int hi, lo;
			if (s[i] == '%' && (hi = hexdig(s[i + 1])) >= 0 &&
			    (lo = hexdig(s[i + 2])) >= 0) {
				p[j++] = (char)(hi * 16 + lo);
				i += 2;
			} else {
				p[j++] = s[i];
			}
		}
		p[j] = '\0';
		if (strlen(p) != j) {
			rc = kf_err_set(e, KF_EUSAGE, "%s: NUL byte in file:// URL", src);
			goto out;
		}
	} else if (src[0] == '/' || !base_dir || !base_dir[0]) {
		p = strdup(src);
	} else if (asprintf(&p, "%s/%s", base_dir, src) < 0) {
		p = NULL;
	}
	if (!p) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	*out = p;
	p = NULL;
out:
	free(p);
	return rc;
}

/* The size of a local source that is not hashed here (verify_later):
 * it must be a regular file (following symbolic links, as open does). */
static int regular_size(const char *path, uint64_t *size, kf_err *e)
{
	int rc = KF_OK;
	struct stat st;

	/* path: local_path's result, never NULL on KF_OK. */
	if (stat(path, &st) != 0) // NOLINT(clang-analyzer-core.NonNullParamChecker)
		rc = kf_err_errno(e, "cannot open", path);
	else if (!S_ISREG(st.st_mode))
		rc = kf_err_set(e, KF_EIO, "%s: not a regular file", path);
	else
		*size = (uint64_t)st.st_size;
	return rc;
}

static int fetch_local(kf_fetch_item *it, const char *src, const kf_fetch_opts *o,
                       kf_err *e)
{
	int rc = KF_OK;
	char *path = NULL;
	char got[KF_SHA256_HEX];
	uint64_t size = 0;

	if ((rc = local_path(src, o->base_dir, &path, e)) != KF_OK)
		goto out;
	/* verify_later: the caller hashes it while it reads it. */
	if (o->verify_later)
		rc = regular_size(path, &size, e);
	else
		rc = kf_sha256_file(path, got, &size, e);
	if (rc != KF_OK) {
		if (strcmp(src, it->url))
			kf_err_prefix(e, "%s (rewritten to %s)", it->url, src);
		goto out;
	}
	if (!o->verify_later && strcmp(got, it->sha256) != 0) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "checksum mismatch for %s%s%s%s: expected sha256 %s, got %s",
		                it->url, strcmp(src, it->url) ? " (read from " : "",
		                strcmp(src, it->url) ? path : "",
		                strcmp(src, it->url) ? ")" : "", it->sha256, got);
		goto out;
	}
	it->unverified = o->verify_later != 0;
	it->path = path;
	path = NULL;
	it->size = size;
	it->from_cache = 1;
out:
	free(path);
	return rc;
}

struct local_job {
	kf_fetch_item *items;
	char **urls;
	const size_t *idx;
	const kf_fetch_opts *o;
	kf_err *errs;
	int *rcs;
};

static void local_one(size_t i, void *ctx)
{
	struct local_job *j = ctx;
	size_t k = j->idx[i];
	j->rcs[i] = fetch_local(&j->items[k], j->urls[k], j->o, &j->errs[i]);
}

int kf_fetch_all(kf_fetch_item *items, size_t n, const kf_fetch_opts *o,
                 kf_err *e)
{
	int rc = KF_OK;
	char **urls = NULL;
	size_t *ridx = NULL, *lidx = NULL, nremote = 0, nlocal = 0, i, j;
	kf_fetch_opts def;
	struct local_job lj = {0};

	if (!o) {
		kf_fetch_opts_default(&def);
		o = &def;
	}
	urls = calloc(n ? n : 1, sizeof *urls);
	ridx = calloc(n ? n : 1, sizeof *ridx);
	lidx = calloc(n ? n : 1, sizeof *lidx);
	if (!urls || !ridx || !lidx) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		size_t sl;
		/* Results are outputs: never free what a caller left there. */
		items[i].path = NULL;
		items[i].size = 0;
		items[i].from_cache = 0;
		items[i].unverified = 0;
		items[i].http_status = 0;
		if (!items[i].url || !items[i].url[0]) {
			rc = kf_err_set(e, KF_EUSAGE, "item %zu has no URL", i);
			goto out;
		}
		if (!items[i].sha256 || !kf_is_sha256_hex(items[i].sha256)) {
			rc = kf_err_set(e, KF_EUSAGE,
			                "%s: expected sha256 must be 64 lowercase hex digits",
			                items[i].url);
			goto out;
		}
		urls[i] = kf_rewrite_url(items[i].url, o->rewrites, o->nrewrite);
		if (!urls[i]) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		sl = scheme_len(urls[i]);
		if (sl == 0 || (sl == 4 && !strncmp(urls[i], "file", 4))) {
			lidx[nlocal++] = i;
		} else if ((sl == 4 && !strncasecmp(urls[i], "http", 4)) ||
		           (sl == 5 && !strncasecmp(urls[i], "https", 5))) {
			/* The same content twice (one file listed under two
			 * names) is downloaded once; copies are filled in below. */
			for (j = 0; j < nremote; j++)
				if (!strcmp(items[ridx[j]].sha256, items[i].sha256))
					break;
			if (j == nremote)
				ridx[nremote++] = i;
		} else {
			rc = kf_err_set(e, KF_EUSAGE, "%s: unsupported URL scheme%s%s",
			                items[i].url, strcmp(urls[i], items[i].url) ?
			                " in rewritten URL " : "",
			                strcmp(urls[i], items[i].url) ? urls[i] : "");
			goto out;
		}
	}
	if (nlocal) {
		/* Local sources are hashed in place, on every core. */
		lj.items = items;
		lj.urls = urls;
		lj.idx = lidx;
		lj.o = o;
		lj.errs = calloc(nlocal, sizeof *lj.errs);
		lj.rcs = calloc(nlocal, sizeof *lj.rcs);
		if (!lj.errs || !lj.rcs) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		kf_fetch_parallel(nlocal, o->jobs > 0 ? o->jobs : 8, local_one, &lj);
		for (j = 0; j < nlocal; j++) {
			if (lj.rcs[j] != KF_OK) {
				rc = lj.rcs[j];
				if (e)
					*e = lj.errs[j];
				goto out;
			}
		}
	}
	if (nremote) {
		char **rurls = calloc(nremote, sizeof *rurls);
		if (!rurls) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		for (j = 0; j < nremote; j++)
			rurls[j] = urls[ridx[j]];
		rc = kf_fetch_remote(items, ridx, rurls, nremote, o, e);
		free(rurls);
		if (rc != KF_OK)
			goto out;
		/* Fill in duplicates from the item that carried the transfer. */
		for (i = 0; i < n; i++) {
			if (items[i].path)
				continue;
			for (j = 0; j < nremote; j++) {
				const kf_fetch_item *src = &items[ridx[j]];
				if (!strcmp(src->sha256, items[i].sha256) && src->path) {
					items[i].path = strdup(src->path);
					items[i].size = src->size;
					items[i].from_cache = 1;
					items[i].unverified = src->unverified;
					break;
				}
			}
			if (!items[i].path) {
				rc = kf_err_set(e, KF_EIO, "%s: not fetched (out of memory?)",
				                items[i].url);
				goto out;
			}
		}
	}
out:
	/* With defer_401 the caller re-runs only the items that failed, so
	 * the ones already verified into the cache keep their results. */
	if (rc != KF_OK)
		for (i = 0; i < n; i++)
			if (!o->defer_401 || !items[i].path)
				kf_fetch_item_clear(&items[i]);
	if (urls)
		for (i = 0; i < n; i++)
			free(urls[i]);
	free(urls);
	free(ridx);
	free(lidx);
	free(lj.errs);
	free(lj.rcs);
	return rc;
}
