/*
 * The content-addressed OCI image layout store (image-spec image-layout.md):
 * dir/oci-layout, dir/index.json and dir/blobs/sha256/<hex>. A blob's file
 * name is its digest, so a blob shared by several images is stored once and
 * a stored blob never changes. See kf_mirror.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mirror/kf_mirror.h"

#define OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"

char *kf_layout_blob_path(const char *dir, const char *digest)
{
	char *p = NULL;

	if (!dir || !kf_oci_digest_valid(digest))
		return NULL;
	if (asprintf(&p, "%s/blobs/sha256/%s", dir, digest + 7) < 0)
		p = NULL;
	return p;
}

int kf_layout_init(const char *dir, kf_err *e)
{
	int rc;
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof path, "%s/blobs/sha256", dir) >= (int)sizeof path) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", dir);
		goto out;
	}
	rc = kf_mkdir_p(path, 0755, e);
	if (rc)
		goto out;
	snprintf(path, sizeof path, "%s/oci-layout", dir);
	/* An existing oci-layout is kept: init runs on every pull into the
	 * same store and must not rewrite what is there. */
	if (lstat(path, &st) == 0)
		goto out;
	rc = kf_write_file_atomic(path, OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT),
	                          0644, 1, e);
out:
	return rc;
}

int kf_layout_has_blob(const char *dir, const char *digest)
{
	struct stat st;
	char *p = kf_layout_blob_path(dir, digest);
	int has = p && lstat(p, &st) == 0 && S_ISREG(st.st_mode);

	free(p);
	return has;
}

/* Copy src into a temporary name next to dst while hashing it; the copy is
 * renamed into place only when its bytes hash to want_hex, so a blob file
 * with a digest name always holds exactly those bytes. */
static int copy_verified(const char *src, const char *dst, const char *want_hex,
                         const char *digest, kf_err *e)
{
	int rc = KF_OK, in = -1, out = -1;
	char tmp[PATH_MAX], got[KF_SHA256_HEX];
	kf_digest *d = NULL;
	char *buf = NULL;
	const size_t bufsz = 1 << 16;
	ssize_t n;

	tmp[0] = '\0';
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = kf_err_errno(e, "cannot open", src);
		goto out;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", dst) >= (int)sizeof tmp) {
		tmp[0] = '\0';
		rc = kf_err_set(e, KF_EIO, "path too long: %s", dst);
		goto out;
	}
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		rc = kf_err_errno(e, "cannot create", tmp);
		tmp[0] = '\0';
		goto out;
	}
	d = kf_digest_new(KF_DIGEST_SHA256);
	buf = malloc(bufsz);
	if (!d || !buf) {
		rc = kf_err_set(e, KF_EIO, "out of memory hashing %s", src);
		goto out;
	}
	for (;;) {
		n = read(in, buf, bufsz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kf_err_errno(e, "cannot read", src);
			goto out;
		}
		if (n == 0)
			break;
		kf_digest_update(d, buf, (size_t)n);
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = kf_err_errno(e, "cannot write", tmp);
				goto out;
			}
			off += w;
		}
	}
	kf_digest_final_hex(d, got);
	if (strcmp(got, want_hex)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: digest mismatch for blob %s: got sha256:%s",
		                src, digest, got);
		goto out;
	}
	if (fchmod(out, 0644) != 0 || fsync(out) != 0) {
		rc = kf_err_errno(e, "cannot sync", tmp);
		goto out;
	}
	if (close(out) != 0) {
		out = -1;
		rc = kf_err_errno(e, "cannot close", tmp);
		goto out;
	}
	out = -1;
	if (rename(tmp, dst) != 0) {
		rc = kf_err_errno(e, "cannot rename into", dst);
		goto out;
	}
	tmp[0] = '\0';
	rc = kf_fsync_parent(dst, e);
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (tmp[0])
		unlink(tmp);
	kf_digest_free(d);
	free(buf);
	return rc;
}

int kf_layout_add_blob_file(const char *dir, const char *digest,
                            const char *src_path, kf_err *e)
{
	int rc = KF_OK;
	char *dst = NULL, got[KF_SHA256_HEX];
	uint64_t size;

	dst = kf_layout_blob_path(dir, digest);
	if (!dst) {
		rc = kf_err_set(e, KF_EUSAGE, "malformed digest '%s' for %s",
		                digest ? digest : "(null)", src_path);
		goto out;
	}
	if (kf_layout_has_blob(dir, digest))
		goto out;
	/* Hard link first: a cache on the same filesystem then costs no
	 * space. The source is hashed before it is linked, so a corrupt cache
	 * entry never enters the store under a digest name. */
	rc = kf_sha256_file(src_path, got, &size, e);
	if (rc)
		goto out;
	if (strcmp(got, digest + 7)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: digest mismatch for blob %s: got sha256:%s",
		                src_path, digest, got);
		goto out;
	}
	if (link(src_path, dst) == 0) {
		rc = kf_fsync_parent(dst, e);
		goto out;
	}
	if (errno == EEXIST)
		goto out;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP && errno != EACCES) {
		rc = kf_err_errno(e, "cannot link blob", dst);
		goto out;
	}
	rc = copy_verified(src_path, dst, digest + 7, digest, e);
out:
	free(dst);
	return rc;
}

int kf_layout_add_blob_buf(const char *dir, const char *digest,
                           const void *data, size_t n, kf_err *e)
{
	int rc = KF_OK;
	char *dst = NULL, got[KF_SHA256_HEX];

	dst = kf_layout_blob_path(dir, digest);
	if (!dst) {
		rc = kf_err_set(e, KF_EUSAGE, "malformed digest '%s'",
		                digest ? digest : "(null)");
		goto out;
	}
	kf_sha256_buf(data, n, got);
	if (strcmp(got, digest + 7)) {
		rc = kf_err_set(e, KF_EVERIFY, "digest mismatch for blob %s: got sha256:%s",
		                digest, got);
		goto out;
	}
	if (kf_layout_has_blob(dir, digest))
		goto out;
	rc = kf_write_file_atomic(dst, data, n, 0644, 1, e);
out:
	free(dst);
	return rc;
}

static int ref_cmp(const void *a, const void *b)
{
	const kf_layout_ref *x = *(const kf_layout_ref *const *)a;
	const kf_layout_ref *y = *(const kf_layout_ref *const *)b;
	return strcmp(x->name, y->name);
}

int kf_layout_write_index(const char *dir, const kf_layout_ref *refs,
                          size_t n, kf_err *e)
{
	int rc = KF_OK;
	const kf_layout_ref **sorted = NULL;
	json_t *root = NULL, *list = NULL;
	char *text = NULL, path[PATH_MAX];

	if (snprintf(path, sizeof path, "%s/index.json", dir) >= (int)sizeof path) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", dir);
		goto out;
	}
	sorted = calloc(n ? n : 1, sizeof *sorted);
	root = json_object();
	list = json_array();
	if (!sorted || !root || !list) {
		rc = kf_err_set(e, KF_EIO, "out of memory writing %s", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const kf_layout_ref *r = &refs[i];
		if (!r->name || !*r->name || !kf_oci_digest_valid(r->digest) ||
		    !r->media_type || !*r->media_type) {
			rc = kf_err_set(e, KF_EUSAGE, "%s: image %zu (%s) has no valid name, digest or media type",
			                path, i, r->name ? r->name : "(null)");
			goto out;
		}
		sorted[i] = r;
	}
	/* Sorted by name so the same image set always gives the same bytes
	 * (reproducible bundles). */
	qsort(sorted, n, sizeof *sorted, ref_cmp);
	for (size_t i = 0; i < n; i++) {
		const kf_layout_ref *r = sorted[i];
		json_t *desc, *ann;
		if (i > 0 && !strcmp(sorted[i - 1]->name, r->name)) {
			rc = kf_err_set(e, KF_EUSAGE, "%s: image %s is named twice", path, r->name);
			goto out;
		}
		desc = json_object();
		ann = json_object();
		if (!desc || !ann || json_array_append_new(list, desc)) {
			json_decref(ann);
			rc = kf_err_set(e, KF_EIO, "out of memory writing %s", path);
			goto out;
		}
		json_object_set_new(desc, "mediaType", json_string(r->media_type));
		json_object_set_new(desc, "digest", json_string(r->digest));
		json_object_set_new(desc, "size", json_integer((json_int_t)r->size));
		json_object_set_new(ann, "io.containerd.image.name", json_string(r->name));
		json_object_set_new(ann, "org.opencontainers.image.ref.name", json_string(r->name));
		json_object_set_new(desc, "annotations", ann);
	}
	json_object_set_new(root, "schemaVersion", json_integer(2));
	json_object_set_new(root, "mediaType", json_string(KF_MT_OCI_INDEX));
	json_object_set_new(root, "manifests", list);
	list = NULL;
	text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2));
	if (!text) {
		rc = kf_err_set(e, KF_EIO, "cannot encode %s", path);
		goto out;
	}
	rc = kf_write_file_atomic(path, text, strlen(text), 0644, 1, e);
out:
	free(text);
	json_decref(list);
	json_decref(root);
	free(sorted);
	return rc;
}
