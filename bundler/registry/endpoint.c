/*
 * Image references and the registry endpoint they are pulled from.
 *
 * The bundle keeps the name the operator wrote, normalised the way docker
 * and containerd normalise it (docker.io/library/...), because that is the
 * name nodes ask the mirror for. Where the bytes come from is a separate
 * question answered by kf_registry_endpoint (docker.io's API host, or a
 * --rewrite to a proxy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

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
		if (!kf_oci_domain_valid(host, strlen(host)) || !kf_oci_name_valid(rest)) {
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
