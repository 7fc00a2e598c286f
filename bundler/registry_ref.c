/*
 * Image references and the registry endpoint they are pulled from.
 *
 * The bundle keeps the name the operator wrote, normalised the way docker
 * and containerd normalise it (docker.io/library/...), because that is the
 * name nodes ask the mirror for. Where the bytes come from is a separate
 * question answered by kf_registry_endpoint (docker.io's API host, or a
 * --rewrite to a proxy).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

void kf_image_ref_clear(kf_image_ref *r)
{
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	free(r->name);
	memset(r, 0, sizeof *r);
}

/* Repository path components: lowercase alphanumerics with single
 * separators (., _, __, -), per the distribution reference grammar. Kept
 * strict because the path ends up in URLs and registry API paths. */
static int component_ok(const char *s, size_t n)
{
	int ok = n > 0 && (islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]));

	for (size_t i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (islower(c) || isdigit(c))
			continue;
		if (c != '.' && c != '_' && c != '-')
			ok = 0;
		else if (i + 1 == n)
			ok = 0;
	}
	return ok;
}

static int repository_ok(const char *s)
{
	const char *p = s, *slash;
	int ok = *s != '\0' && strlen(s) <= 255;

	while (ok) {
		slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		ok = component_ok(p, n);
		if (!slash)
			break;
		p = slash + 1;
	}
	return ok;
}

static int tag_ok(const char *t)
{
	size_t n = strlen(t);
	int ok = n > 0 && n <= 128 && (isalnum((unsigned char)t[0]) || t[0] == '_');

	for (size_t i = 1; ok && i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		ok = isalnum(c) || c == '_' || c == '.' || c == '-';
	}
	return ok;
}

static int host_ok(const char *h)
{
	int ok = *h != '\0' && strlen(h) <= 253;

	for (const char *p = h; ok && *p; p++) {
		unsigned char c = (unsigned char)*p;
		ok = isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' ||
		     c == ']';
	}
	return ok;
}

/* Same rule as docker: the first component is a registry host when it has
 * a dot or a port, or is "localhost". */
static int looks_like_host(const char *s, size_t n)
{
	return memchr(s, '.', n) || memchr(s, ':', n) ||
	       (n == 9 && !memcmp(s, "localhost", 9));
}

int kf_image_ref_parse(const char *s, kf_image_ref *r, kf_err *e)
{
	int rc = KF_OK;
	char *work = strdup(s ? s : "");
	char *name, *at, *colon, *slash;
	const char *repo;

	memset(r, 0, sizeof *r);
	if (!work) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	name = work;
	at = strchr(name, '@');
	if (at) {
		*at = '\0';
		if (strncmp(at + 1, "sha256:", 7) || !kf_is_sha256_hex(at + 8)) {
			rc = kf_err_set(e, KF_EUSAGE,
			                "image %s: digest must be sha256:<64 lowercase hex>", s);
			goto out;
		}
		r->digest = strdup(at + 1);
	}
	/* A tag is after the last ':' that follows the last '/', so a port
	 * in the host is not mistaken for one. */
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1)) {
			rc = kf_err_set(e, KF_EUSAGE, "image %s: invalid tag '%s'", s,
			                colon + 1);
			goto out;
		}
		r->tag = strdup(colon + 1);
	} else if (!r->digest) {
		r->tag = strdup("latest");
	}
	slash = strchr(name, '/');
	if (slash && looks_like_host(name, (size_t)(slash - name))) {
		*slash = '\0';
		r->registry = strdup(name);
		repo = slash + 1;
	} else {
		r->registry = strdup("docker.io");
		repo = name;
	}
	if (!strcmp(r->registry, "index.docker.io") ||
	    !strcmp(r->registry, "registry-1.docker.io")) {
		free(r->registry);
		r->registry = strdup("docker.io");
	}
	if (!r->registry) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Official docker.io images live under library/. */
	if (!strcmp(r->registry, "docker.io") && !strchr(repo, '/')) {
		if (asprintf(&r->repository, "library/%s", repo) < 0)
			r->repository = NULL;
	} else {
		r->repository = strdup(repo);
	}
	if (!r->repository || (!r->tag && !r->digest)) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (!host_ok(r->registry) || !repository_ok(r->repository)) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "image %s: invalid reference (registry '%s', repository '%s')",
		                s, r->registry, r->repository);
		goto out;
	}
	if (asprintf(&r->name, "%s/%s%s%s%s%s", r->registry, r->repository,
	             r->tag ? ":" : "", r->tag ? r->tag : "",
	             r->digest ? "@" : "", r->digest ? r->digest : "") < 0) {
		r->name = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
out:
	free(work);
	if (rc)
		kf_image_ref_clear(r);
	return rc;
}

int kf_registry_endpoint(const char *registry, const char *repository,
                         const kf_rewrite *rw, size_t nrw, char **base_url,
                         char **repo_out, kf_err *e)
{
	int rc = KF_OK;
	char *full = NULL, *mapped = NULL;
	const kf_rewrite *best = NULL;
	size_t best_len = 0;
	const char *scheme = "https://", *rest, *slash;

	*base_url = NULL;
	*repo_out = NULL;
	if (asprintf(&full, "%s/%s", registry, repository) < 0) {
		full = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Longest prefix, and only at a path boundary: a rule for
	 * "registry.k8s.io" must not catch "registry.k8s.io.evil.example". */
	for (size_t i = 0; i < nrw; i++) {
		size_t n = strlen(rw[i].prefix);
		while (n > 0 && rw[i].prefix[n - 1] == '/')
			n--;
		if (n == 0 || n < best_len || strncmp(full, rw[i].prefix, n) ||
		    (full[n] != '/' && full[n] != '\0'))
			continue;
		best = &rw[i];
		best_len = n;
	}
	if (best) {
		const char *repl = best->replacement;
		if (!strncmp(repl, "http://", 7)) {
			scheme = "http://";
			repl += 7;
		} else if (!strncmp(repl, "https://", 8)) {
			repl += 8;
		}
		size_t rl = strlen(repl);
		while (rl > 0 && repl[rl - 1] == '/')
			rl--;
		if (asprintf(&mapped, "%.*s%s", (int)rl, repl, full + best_len) < 0)
			mapped = NULL;
	} else {
		mapped = strdup(full);
	}
	if (!mapped) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	slash = strchr(mapped, '/');
	if (!slash || slash == mapped || !slash[1]) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "image %s: rewrite gives no HOST/REPOSITORY (%s)",
		                full, mapped);
		goto out;
	}
	rest = slash + 1;
	{
		char host[512];
		snprintf(host, sizeof host, "%.*s", (int)(slash - mapped), mapped);
		if (!host_ok(host) || !repository_ok(rest)) {
			rc = kf_err_set(e, KF_EUSAGE,
			                "image %s: rewritten to an invalid location %s",
			                full, mapped);
			goto out;
		}
		/* docker.io names an index, not an API host. */
		if (!strcmp(host, "docker.io") || !strcmp(host, "index.docker.io"))
			snprintf(host, sizeof host, "registry-1.docker.io");
		if (asprintf(base_url, "%s%s", scheme, host) < 0)
			*base_url = NULL;
	}
	*repo_out = strdup(rest);
	if (!*base_url || !*repo_out) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
out:
	if (rc) {
		free(*base_url);
		free(*repo_out);
		*base_url = *repo_out = NULL;
	}
	free(full);
	free(mapped);
	return rc;
}
