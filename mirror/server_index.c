/*
 * What the mirror serves, decided once at start from index.json: each named
 * image, its index, its platform manifests and their config and layer
 * blobs, walked with the OCI model's kf_oci_children.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirror/server_int.h"

/* ---- index ----------------------------------------------------------------- */

/* "<kind> <a><sep><b>", or "<kind> <a>" without b; -1 when too long. */
static int map_key(char *key, size_t n, const char *kind, const char *a, char sep,
                   const char *b)
{
	if (b)
		return kf_strf(key, n, "%s %s%c%s", kind, a, sep, b);
	return kf_strf(key, n, "%s %s", kind, a);
}

int kf_srv_map_put(json_t *map, const char *kind, const char *a, char sep,
                   const char *b, json_t *val)
{
	char key[MAX_NAME + 200];

	if (map_key(key, sizeof key, kind, a, sep, b)) {
		json_decref(val);
		return -1;
	}
	return json_object_set_new(map, key, val);
}

json_t *kf_srv_map_get(json_t *map, const char *kind, const char *a, char sep,
                       const char *b)
{
	char key[MAX_NAME + 200];

	return map_key(key, sizeof key, kind, a, sep, b) ? NULL : json_object_get(map, key);
}

/* Read a manifest blob and check it against its digest: the server states
 * Docker-Content-Digest for it, so it must hold exactly those bytes. */
static int read_manifest(server *s, const char *digest, char **out, size_t *len,
                         int *missing, kf_err *e)
{
	int rc = KF_OK;
	char *path = kf_layout_blob_path(s->images, digest), *buf = NULL;
	char hex[KF_SHA256_HEX];
	struct stat st;

	*out = NULL;
	*missing = 0;
	if (!path) {
		rc = kf_err_set(e, KF_EVERIFY, "%s/index.json: malformed digest '%s'",
		                s->images, digest);
		goto out;
	}
	if (lstat(path, &st) != 0) {
		*missing = 1;
		rc = kf_err_errno(e, "cannot read manifest", path);
		goto out;
	}
	rc = kf_read_file(path, MAX_MANIFEST, &buf, len, e);
	if (rc)
		goto out;
	kf_sha256_buf(buf, *len, hex);
	if (strcmp(hex, digest + 7)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: content does not match its digest %s",
		                path, digest);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	free(path);
	return rc;
}

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, KF_MT_OCI_INDEX) || !strcmp(mt, KF_MT_DOCKER_LIST));
}

static int walk_manifest(server *s, const char *repo, const char *digest,
                         const char *desc_mt, int depth, int top, kf_err *e);

/* One level of the walk below a manifest or index. */
struct walk {
	server *s;
	const char *repo;
	int index, depth;
};

static int walk_child(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct walk *w = arg;
	int rc = KF_OK;

	if (w->index != (d->role == KF_OCI_CHILD_MANIFEST) || !kf_oci_digest_valid(d->digest))
		goto out;
	if (w->index)
		rc = walk_manifest(w->s, w->repo, d->digest, d->media_type, w->depth + 1, 0, e);
	else
		kf_srv_map_put(w->s->map, "B", w->repo, '@', d->digest, json_object());
out:
	return rc;
}

/* Record a manifest (or index) and everything it references as served
 * under repo. Children absent from the layout are skipped: the bundle holds
 * only its architectures, while the index is kept byte for byte. */
static int walk_manifest(server *s, const char *repo, const char *digest,
                         const char *desc_mt, int depth, int top, kf_err *e)
{
	int rc = KF_OK, missing = 0;
	char *body = NULL;
	size_t len = 0;
	kf_oci_shape shape;
	struct walk w = {s, repo, 0, depth};
	const char *mt;

	if (depth > 4) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: manifests nested too deep at %s",
		                repo, digest);
		goto out;
	}
	rc = read_manifest(s, digest, &body, &len, &missing, e);
	if (rc) {
		if (missing && !top)
			rc = KF_OK;
		goto out;
	}
	rc = kf_oci_children(body, len, NULL, NULL, &shape, e);
	if (rc) {
		kf_err_prefix(e, "%s@%s: not a JSON manifest", repo, digest);
		goto out;
	}
	/* The manifest's own mediaType wins; OCI lets it be absent, then the
	 * descriptor that pointed here says what it is. */
	mt = shape.media_type[0] ? shape.media_type : desc_mt;
	if (!mt) {
		rc = kf_err_set(e, KF_EVERIFY, "%s@%s: manifest has no media type", repo, digest);
		goto out;
	}
	if (kf_srv_map_put(s->map, "M", repo, '@', digest, json_pack("{ss}", "mediaType", mt))) {
		rc = kf_err_set(e, KF_EIO, "%s: name too long", repo);
		goto out;
	}
	w.index = is_index_type(mt);
	rc = kf_oci_children(body, len, walk_child, &w, NULL, e);
out:
	free(body);
	return rc;
}

/* One image named in index.json. */
struct named {
	server *s;
	const char *path;
	size_t count;
};

static int load_named(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct named *n = arg;
	server *s = n->s;
	kf_oci_ref ref = {0};
	char repo[MAX_NAME + 1];
	int rc = KF_OK;

	if (d->role != KF_OCI_CHILD_MANIFEST || !d->ref_name || !strchr(d->ref_name, '/'))
		goto out; /* not a full reference: nothing to serve it as */
	if (!kf_oci_digest_valid(d->digest) || kf_oci_ref_parse(d->ref_name, &ref, e) ||
	    kf_strf(repo, sizeof repo, "%s/%s", ref.registry, ref.repository)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: manifests[%zu] (%s): bad name or digest",
		                n->path, d->index, d->ref_name);
		goto out;
	}
	rc = walk_manifest(s, repo, d->digest, d->media_type, 0, 1, e);
	if (rc)
		goto out;
	kf_srv_map_put(s->map, "R", repo, 0, NULL, json_object());
	if (ref.tag)
		kf_srv_map_put(s->map, "T", repo, ':', ref.tag,
		        json_pack("{ssss}", "digest", d->digest, "mediaType",
		                  json_string_value(json_object_get(
		                          kf_srv_map_get(s->map, "M", repo, '@', d->digest), "mediaType"))));
	n->count++;
out:
	kf_oci_ref_clear(&ref);
	return rc;
}

int kf_srv_load_index(server *s, kf_err *e)
{
	int rc = KF_OK;
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	struct named n = {s, path, 0};

	if (kf_strf(path, sizeof path, "%s/index.json", s->images)) {
		rc = kf_err_set(e, KF_EIO, "%s: path too long", s->images);
		goto out;
	}
	rc = kf_read_file(path, MAX_INDEX, &text, &len, e);
	if (rc)
		goto out;
	rc = kf_oci_children(text, len, NULL, NULL, NULL, e);
	if (rc) {
		kf_err_prefix(e, "%s", path);
		goto out;
	}
	rc = kf_oci_children(text, len, load_named, &n, NULL, e);
	if (rc)
		goto out;
	if (n.count == 0)
		fprintf(stderr, "kubeferry-install: warning: %s names no image\n", path);
out:
	free(text);
	return rc;
}
