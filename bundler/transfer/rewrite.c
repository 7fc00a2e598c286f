/*
 * --rewrite PREFIX=REPLACEMENT: the operator's mirror or artifact proxy
 * (Artifactory, Nexus, a local tree) stands in for upstream. Only the URL
 * fetched changes; callers keep the upstream URL for the lock.
 */
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

int kf_rewrite_parse(const char *arg, kf_rewrite *out, kf_err *e)
{
	int rc = KF_OK;
	const char *eq = arg ? strchr(arg, '=') : NULL;

	out->prefix = NULL;
	out->replacement = NULL;
	/* Split at the first '=': upstream prefixes carry no '=', while a
	 * replacement may (a proxy URL with a query string). */
	if (!eq || eq == arg || !eq[1]) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "--rewrite '%s': expected PREFIX=REPLACEMENT, both non-empty",
		                arg ? arg : "");
		goto out;
	}
	out->prefix = strndup(arg, (size_t)(eq - arg));
	out->replacement = strdup(eq + 1);
	if (!out->prefix || !out->replacement) {
		kf_rewrite_clear(out);
		rc = kf_err_set(e, KF_EIO, "out of memory parsing --rewrite '%s'", arg);
		goto out;
	}
out:
	return rc;
}

void kf_rewrite_clear(kf_rewrite *rw)
{
	if (!rw)
		return;
	free(rw->prefix);
	free(rw->replacement);
	rw->prefix = NULL;
	rw->replacement = NULL;
}

char *kf_rewrite_url(const char *url, const kf_rewrite *rw, size_t n)
{
	const kf_rewrite *best = NULL;
	size_t best_len = 0, i, rest_len, rep_len;
	char *out = NULL;

	if (!url)
		return NULL;
	/* Longest prefix wins, so a specific mapping (one release directory)
	 * can override a general one (the whole host). */
	for (i = 0; i < n; i++) {
		size_t pl;
		if (!rw[i].prefix || !rw[i].replacement)
			continue;
		pl = strlen(rw[i].prefix);
		if (pl > best_len && !strncmp(url, rw[i].prefix, pl)) {
			best = &rw[i];
			best_len = pl;
		}
	}
	if (!best)
		return strdup(url);
	rep_len = strlen(best->replacement);
	rest_len = strlen(url + best_len);
	out = malloc(rep_len + rest_len + 1);
	if (!out)
		return NULL;
	memcpy(out, best->replacement, rep_len);
	memcpy(out + rep_len, url + best_len, rest_len + 1);
	return out;
}
