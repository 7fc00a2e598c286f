/* The pulled images as bundle entries: the layout's oci-layout and
 * index.json, every stored blob (named by its verified digest, so not
 * hashed again) and one certs.d hosts.toml per upstream registry. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundler/registry/pull_int.h"

/* snprintf into a path buffer; KF_EIO naming the path when it does not
 * fit. */
static int pathf(char *buf, size_t n, kf_err *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int pathf(char *buf, size_t n, kf_err *e, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= n)
		return kf_err_set(e, KF_EIO, "path too long: %s...", buf);
	return KF_OK;
}

static int add_file(kf_build_set *set, const char *entry, const char *path,
                    kf_err *e)
{
	char hex[KF_SHA256_HEX];
	uint64_t size = 0;
	int rc = kf_sha256_file(path, hex, &size, e);

	if (!rc)
		rc = kf_build_set_add(set, entry, path, size, hex, 0644, e);
	return rc;
}

int kf_pull_collect(struct pull *p, const char *work_dir, struct image *ims,
                   size_t n, kf_build_set *set, kf_err *e)
{
	int rc = KF_OK;
	char path[PATH_MAX], entry[PATH_MAX];
	struct stat st;

	rc = pathf(path, sizeof path, e, "%s/oci-layout", p->layout);
	if (!rc)
		rc = add_file(set, "images/oci-layout", path, e);
	if (rc)
		goto out;
	rc = pathf(path, sizeof path, e, "%s/index.json", p->layout);
	if (!rc)
		rc = add_file(set, "images/index.json", path, e);
	if (rc)
		goto out;
	/* Blobs were verified on their way into the store: their name is
	 * their digest, no need to hash them again. */
	for (size_t i = 0; i < p->nstored; i++) {
		const char *hex = p->stored[i] + 7;
		rc = pathf(path, sizeof path, e, "%s/blobs/sha256/%s", p->layout, hex);
		if (rc)
			goto out;
		snprintf(entry, sizeof entry, "images/blobs/sha256/%s", hex);
		if (stat(path, &st) != 0) {
			rc = kf_err_errno(e, "cannot stat", path);
			goto out;
		}
		rc = kf_build_set_add(set, entry, path, (uint64_t)st.st_size, hex,
		                      0644, e);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = pathf(path, sizeof path, e, "%s/certs.d/%s/hosts.toml",
		           work_dir, ims[i].ref.registry);
		if (!rc)
			rc = pathf(entry, sizeof entry, e, "certs.d/%s/hosts.toml",
			           ims[i].ref.registry);
		if (!rc)
			rc = add_file(set, entry, path, e);
		if (rc)
			goto out;
	}
out:
	return rc;
}
