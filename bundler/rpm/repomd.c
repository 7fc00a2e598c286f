/*
 * One repository's metadata. repomd.xml is the repository's mutable root:
 * it is fetched fresh every build (no pin exists for it) and names the
 * sha256 of primary and filelists, which then go through the transfer
 * engine like every pinned artifact (cache, retries, --rewrite, proxies).
 * A primary whose bytes do not match repomd fails there and is never
 * cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <solv/dataiterator.h>
#include <solv/pool.h>
#include <solv/repo.h>
#include <solv/repo_repomdxml.h>

#include "bundler/rpm/rpm_int.h"

/* A repomd.xml of Rocky's AppStream is a few KiB. */
#define REPOMD_MAX (4u << 20)
/* Bound on one metadata download (AppStream's filelists are ~60 MiB). */
#define MD_MAX ((uint64_t)2 << 30)

static int get_repomd(const char *url, const kf_fetch_opts *fo, char **body,
                      size_t *len, kf_err *e)
{
	kf_http_resp resp = {0};
	char *rw = NULL;
	int rc = KF_OK;

	*body = NULL;
	if (!strncmp(url, "file://", 7))
		return kf_read_file(url + 7, REPOMD_MAX, body, len, e);
	rw = kf_rewrite_url(url, fo->rewrites, fo->nrewrite);
	if (!rw)
		return kf_err_set(e, KF_EIO, "out of memory");
	rc = kf_http_request("GET", rw, NULL, NULL, 0, REPOMD_MAX, fo, &resp, e);
	if (rc)
		goto out;
	if (resp.status != 200) {
		rc = kf_err_set(e, KF_EIO, "%s: HTTP %ld", url, resp.status);
		goto out;
	}
	*body = resp.body;
	*len = resp.len;
	resp.body = NULL;
out:
	kf_http_resp_clear(&resp);
	free(rw);
	return rc;
}

/* The location and sha256 of one metadata type ("primary"); 0 when the
 * repository has none. */
static int find_md(Repo *repo, const char *type, char **href,
                   char hex[KF_SHA256_HEX], const char *url, kf_err *e)
{
	Pool *pool = repo->pool;
	Dataiterator di;
	int rc = KF_OK;

	*href = NULL;
	dataiterator_init(&di, pool, repo, SOLVID_META, REPOSITORY_REPOMD_TYPE, type,
	                  SEARCH_STRING);
	dataiterator_prepend_keyname(&di, REPOSITORY_REPOMD);
	if (dataiterator_step(&di)) {
		const char *loc;
		const unsigned char *sum;
		Id sumtype = 0;

		dataiterator_setpos_parent(&di);
		loc = pool_lookup_str(pool, SOLVID_POS, REPOSITORY_REPOMD_LOCATION);
		sum = pool_lookup_bin_checksum(pool, SOLVID_POS, REPOSITORY_REPOMD_CHECKSUM,
		                               &sumtype);
		if (!loc || !sum || sumtype != REPOKEY_TYPE_SHA256) {
			rc = kf_err_set(e, KF_EVERIFY, "%s: %s has no location or no sha256 checksum",
			                url, type);
		} else if (strstr(loc, "..") || loc[0] == '/' || strchr(loc, '?')) {
			rc = kf_err_set(e, KF_EVERIFY, "%s: unsafe %s location \"%s\"", url, type, loc);
		} else if (kf_strf(hex, KF_SHA256_HEX, "%s", pool_bin2hex(pool, sum, 32)) ||
		           !(*href = strdup(loc))) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
		}
	}
	dataiterator_free(&di);
	return rc;
}

static int fetch_one(const char *base, const char *href, const char *sha256,
                     const kf_fetch_opts *fo, char **path, kf_err *e)
{
	kf_fetch_item it = {0};
	char *url = NULL;
	int rc;

	if (asprintf(&url, "%s%s", base, href) < 0)
		return kf_err_set(e, KF_EIO, "out of memory");
	it.url = url;
	it.sha256 = sha256;
	it.max_size = MD_MAX;
	rc = kf_fetch_all(&it, 1, fo, e);
	if (!rc) {
		*path = it.path;
		it.path = NULL;
	}
	kf_fetch_item_clear(&it);
	free(url);
	return rc;
}

int kf_rpm_repo_fetch(kf_rpm_repo *r, const char *name, const char *base_url,
                      const kf_fetch_opts *fo, kf_err *e)
{
	Pool *pool = NULL;
	Repo *repo;
	FILE *fp = NULL;
	char *body = NULL, *url = NULL, sum[KF_SHA256_HEX];
	size_t len = 0, bl = strlen(base_url);
	int rc;

	memset(r, 0, sizeof *r);
	r->name = strdup(name);
	if (asprintf(&r->base_url, "%s%s", base_url,
	             bl && base_url[bl - 1] == '/' ? "" : "/") < 0)
		r->base_url = NULL;
	if (!r->name || !r->base_url || asprintf(&url, "%srepodata/repomd.xml", r->base_url) < 0) {
		url = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = get_repomd(url, fo, &body, &len, e)))
		goto out;
	pool = pool_create();
	repo = repo_create(pool, name);
	fp = fmemopen(body, len, "r");
	if (!fp) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (repo_add_repomdxml(repo, fp, 0) != 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: not a repomd.xml: %s", url, pool_errstr(pool));
		goto out;
	}
	if ((rc = find_md(repo, "primary", &r->primary_href, sum, url, e)))
		goto out;
	if (!r->primary_href) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: no primary metadata", url);
		goto out;
	}
	if ((rc = find_md(repo, "filelists", &r->filelists_href, r->filelists_sha256, url, e)) ||
	    (rc = fetch_one(r->base_url, r->primary_href, sum, fo, &r->primary, e)))
		goto out;
out:
	if (fp)
		fclose(fp);
	if (pool)
		pool_free(pool);
	free(body);
	free(url);
	return rc;
}

int kf_rpm_repo_fetch_filelists(kf_rpm_repo *r, const kf_fetch_opts *fo, kf_err *e)
{
	if (r->filelists || !r->filelists_href)
		return KF_OK;
	return fetch_one(r->base_url, r->filelists_href, r->filelists_sha256, fo,
	                 &r->filelists, e);
}

void kf_rpm_repo_clear(kf_rpm_repo *r)
{
	free(r->name);
	free(r->base_url);
	free(r->primary);
	free(r->primary_href);
	free(r->filelists);
	free(r->filelists_href);
	memset(r, 0, sizeof *r);
}
