/*
 * Installing binaries out of the upstream .tar.gz archives that the bundle
 * carries byte for byte (containerd, etcd, CNI plugins, crictl, helm).
 *
 * Only the tar format and the gzip filter are registered: the *_all
 * variants would drag libxml2 and ICU into the static binary. Nothing is
 * extracted with libarchive's disk writer: each member is read into memory
 * and handed to the step engine, which compares, journals and writes it
 * atomically, so member names from the archive never become paths by
 * themselves (only a single, checked file name is used).
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_installer.h"

#define MEMBER_MAX ((int64_t)1 << 30)

/* The file name left after dropping a leading "./" and strip components,
 * or NULL when something other than one plain name remains. */
static const char *member_name(const char *path, int strip)
{
	const char *p = path;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	for (int i = 0; i < strip; i++) {
		const char *slash = strchr(p, '/');
		if (!slash)
			return NULL;
		p = slash + 1;
	}
	if (*p == '\0' || strchr(p, '/') || !strcmp(p, ".") || !strcmp(p, ".."))
		return NULL;
	return p;
}

static int wanted(const char *name, const char *const *names)
{
	if (!names)
		return 1;
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

int kfi_tar_install(kfi_ctx *c, const char *tgz, int strip,
                    const char *const *names, const char *dest_dir,
                    unsigned mode, int *count, kf_err *e)
{
	int rc = KF_OK, r, n = 0;
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	char *buf = NULL;

	if (!a)
		abort();
	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	if (archive_read_open_filename(a, tgz, 1 << 16) != ARCHIVE_OK) {
		rc = kf_err_set(e, KF_EIO, "cannot open archive %s: %s", tgz,
		                archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *path = archive_entry_pathname(ent), *name;
		int64_t size = archive_entry_size(ent);
		char dest[4096];
		la_ssize_t got;

		if (archive_entry_filetype(ent) != AE_IFREG || !path)
			continue;
		name = member_name(path, strip);
		if (!name || !wanted(name, names))
			continue;
		if (size < 0 || size > MEMBER_MAX) {
			rc = kf_err_set(e, KF_EIO, "%s: member %s is too large", tgz, path);
			goto out;
		}
		free(buf);
		buf = malloc(size ? (size_t)size : 1);
		if (!buf)
			abort();
		got = archive_read_data(a, buf, (size_t)size);
		if (got != size) {
			rc = kf_err_set(e, KF_EIO, "%s: cannot read member %s: %s", tgz,
			                path, archive_error_string(a));
			goto out;
		}
		snprintf(dest, sizeof dest, "%s/%s", dest_dir, name);
		if ((rc = kfi_put_file(c, dest, buf, (size_t)size, mode, NULL, e)) != KF_OK)
			goto out;
		n++;
	}
	if (r != ARCHIVE_EOF) {
		rc = kf_err_set(e, KF_EIO, "cannot read archive %s: %s", tgz,
		                archive_error_string(a));
		goto out;
	}
	if (n == 0) {
		rc = kf_err_set(e, KF_EIO, "archive %s holds none of the expected files", tgz);
		goto out;
	}
out:
	if (count)
		*count = n;
	free(buf);
	archive_read_free(a);
	return rc;
}
