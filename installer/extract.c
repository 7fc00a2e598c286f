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
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

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

/* Without a list of names, only programs: upstream archives put their
 * LICENSE and README beside the binaries (the CNI plugins at the top
 * level), and those do not belong in /opt/cni/bin or /usr/local/bin. */
static int wanted(const char *name, const char *const *names, unsigned perm)
{
	if (!names)
		return (perm & 0111) != 0;
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

int kfi_tar_install(kfi_ctx *c, const char *tgz, const char *tgz_sha256, int strip,
                    const char *const *names, const char *dest_dir,
                    unsigned mode, int *count, kf_err *e)
{
	int rc = KF_OK, r, n = 0;
	struct archive *a = NULL;
	struct archive_entry *ent;
	char *buf = NULL, key[8192], *done[256];
	size_t ndone = 0;
	int fit, stamp;

	/* The stamp names the archive by its locked digest and what is taken
	 * from it: a matching stamp means nothing needs decompressing. */
	fit = kf_strf(key, sizeof key, "tar|%s|%s|%d|%o", tgz_sha256 ? tgz_sha256 : "-",
	              dest_dir, strip, mode);
	for (size_t i = 0; names && names[i] && fit == 0; i++) {
		size_t off = strlen(key);
		fit = kf_strf(key + off, sizeof key - off, "|%s", names[i]);
	}
	/* A key cut short could match another archive's stamp: no stamp. */
	stamp = tgz_sha256 && fit == 0;
	if (stamp && kfi_stamp_match(c, key))
		goto out;
	/* Defence in depth: the archive on disk is checked against the
	 * signed lock before anything is taken out of it. */
	if (tgz_sha256 && (rc = kfi_check_sha256(tgz, NULL, 0, tgz_sha256, e)) != KF_OK)
		goto out;
	if (!(a = archive_read_new())) {
		rc = kfi_oom(e);
		goto out;
	}
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
		if (!name || !wanted(name, names, (unsigned)archive_entry_perm(ent)))
			continue;
		/* A hard link is reported as a regular file with no data of its
		 * own: installing it would put an empty binary in place. */
		if (archive_entry_hardlink(ent)) {
			rc = kf_err_set(e, KF_EVERIFY, "%s: member %s is a hard link; refusing to install it",
			                tgz, path);
			goto out;
		}
		if (size < 0 || size > MEMBER_MAX) {
			rc = kf_err_set(e, KF_EIO, "%s: member %s is too large", tgz, path);
			goto out;
		}
		free(buf);
		if (!(buf = malloc(size ? (size_t)size : 1))) {
			rc = kfi_oom(e);
			goto out;
		}
		got = archive_read_data(a, buf, (size_t)size);
		if (got != size) {
			rc = kf_err_set(e, KF_EIO, "%s: cannot read member %s: %s", tgz,
			                path, archive_error_string(a));
			goto out;
		}
		if (kf_strf(dest, sizeof dest, "%s/%s", dest_dir, name) != 0) {
			rc = kf_err_set(e, KF_EIO, "%s: member name %s too long", tgz, path);
			goto out;
		}
		if ((rc = kfi_put_file(c, dest, buf, (size_t)size, mode, NULL, e)) != KF_OK)
			goto out;
		/* The stamp must list every file installed, or none. */
		if (ndone < sizeof done / sizeof done[0] && (done[ndone] = strdup(dest)))
			ndone++;
		else
			stamp = 0;
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
	if (stamp)
		kfi_stamp_write(c, key, done, ndone);
out:
	if (count)
		*count = n;
	for (size_t i = 0; i < ndone; i++)
		free(done[i]);
	free(buf);
	if (a)
		archive_read_free(a);
	return rc;
}

/* ---- OCI layout -> tar, for `ctr images import` (--no-mirror) ---------- */

static int tar_add_file(struct archive *w, const char *path, const char *name, kf_err *e)
{
	int rc = KF_OK;
	FILE *f = fopen(path, "rbe");
	struct archive_entry *ent = archive_entry_new();
	char buf[1 << 16];
	size_t n;
	struct stat st;

	if (!f || fstat(fileno(f), &st) != 0) {
		rc = kf_err_errno(e, "cannot open", path);
		goto out;
	}
	archive_entry_set_pathname(ent, name);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_size(ent, st.st_size);
	archive_entry_set_mtime(ent, 0, 0);
	if (archive_write_header(w, ent) != ARCHIVE_OK) {
		rc = kf_err_set(e, KF_EIO, "cannot write tar header for %s: %s", name, archive_error_string(w));
		goto out;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		if (archive_write_data(w, buf, n) < 0) {
			rc = kf_err_set(e, KF_EIO, "cannot write %s: %s", name, archive_error_string(w));
			goto out;
		}
out:
	if (f)
		fclose(f);
	archive_entry_free(ent);
	return rc;
}

int kfi_oci_tar(const char *layout, const char *out_path, kf_err *e)
{
	int rc = KF_OK;
	struct archive *w = archive_write_new();
	char tmp[4096], p[4096], name[512];
	struct dirent **ents = NULL;
	int n = -1, fd = -1;

	snprintf(tmp, sizeof tmp, "%s.kf-tmp", out_path);
	archive_write_set_format_pax_restricted(w);
	archive_write_add_filter_none(w);
	/* A fresh file, never one reached through whatever sits at the
	 * temporary name (a link left there would be truncated). */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = kf_err_errno(e, "cannot create", tmp);
		goto out;
	}
	if (fchmod(fd, 0644) != 0) {
		rc = kf_err_errno(e, "cannot chmod", tmp);
		goto out;
	}
	if (archive_write_open_fd(w, fd) != ARCHIVE_OK) {
		rc = kf_err_set(e, KF_EIO, "cannot create %s: %s", tmp, archive_error_string(w));
		goto out;
	}
	snprintf(p, sizeof p, "%s/oci-layout", layout);
	if ((rc = tar_add_file(w, p, "oci-layout", e)) != KF_OK)
		goto out;
	snprintf(p, sizeof p, "%s/index.json", layout);
	if ((rc = tar_add_file(w, p, "index.json", e)) != KF_OK)
		goto out;
	snprintf(p, sizeof p, "%s/blobs/sha256", layout);
	n = scandir(p, &ents, NULL, alphasort);
	for (int i = 0; i < n && rc == KF_OK; i++) {
		if (ents[i]->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/blobs/sha256/%s", layout, ents[i]->d_name);
		snprintf(name, sizeof name, "blobs/sha256/%s", ents[i]->d_name);
		rc = tar_add_file(w, p, name, e);
	}
	if (rc != KF_OK)
		goto out;
	if (archive_write_close(w) != ARCHIVE_OK) {
		rc = kf_err_set(e, KF_EIO, "cannot finish %s: %s", tmp, archive_error_string(w));
		goto out;
	}
	if ((rc = kf_fsync_path(tmp, e)) != KF_OK)
		goto out;
	if (rename(tmp, out_path) != 0) {
		rc = kf_err_errno(e, "cannot rename into", out_path);
		goto out;
	}
	rc = kf_fsync_parent(out_path, e);
out:
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	archive_write_free(w);
	if (fd >= 0)
		close(fd);
	if (rc != KF_OK)
		unlink(tmp);
	return rc;
}
