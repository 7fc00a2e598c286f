/*
 * Push an OCI layout (an unpacked bundle's images/) into a site registry
 * (distribution, Harbor): the way large sites run, instead of the bundle's
 * own mirror.
 *
 * Order matters to registries that check references: blobs first, then
 * each platform manifest, then the index, all by digest; the tag is set
 * last, so a tag never points at something incomplete. Everything that is
 * already there (HEAD) is skipped, so a second run uploads nothing.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bundler/kf_bundler.h"
#include "mirror/kf_mirror.h"

#define MANIFEST_MAX (4u << 20)
#define ERRBODY_MAX (64u << 10)

/* Without the OCI types in Accept, distribution answers 404 for an OCI
 * index it holds. */
static const char *const accept_all[] = {
	"Accept: " KF_MT_OCI_INDEX ", " KF_MT_DOCKER_LIST ", " KF_MT_OCI_MANIFEST
	", " KF_MT_DOCKER_MANIFEST,
	NULL};

struct seen {
	char *digest, *repo;
};

struct push {
	kf_registry r;
	const char *layout;
	const char *host;          /* for messages */
	struct seen *seen;         /* blobs known present, by repository */
	size_t nseen, capseen;
	unsigned long blobs_pushed, blobs_skipped, blobs_mounted;
	unsigned long mf_pushed, mf_skipped, tags_set, tags_same;
	unsigned long long bytes;
};

static int seen_add(struct push *p, const char *digest, const char *repo)
{
	if (p->nseen == p->capseen) {
		size_t ncap = p->capseen ? p->capseen * 2 : 64;
		struct seen *n = realloc(p->seen, ncap * sizeof *n);
		if (!n)
			return -1;
		p->seen = n;
		p->capseen = ncap;
	}
	p->seen[p->nseen].digest = strdup(digest);
	p->seen[p->nseen].repo = strdup(repo);
	p->nseen++;
	return p->seen[p->nseen - 1].digest && p->seen[p->nseen - 1].repo ? 0 : -1;
}

/* *here: known present in repo. Returns index+1 of another repository
 * that has the blob (a mount source), or 0. */
static size_t seen_find(const struct push *p, const char *digest,
                        const char *repo, int *here)
{
	size_t other = 0;

	*here = 0;
	for (size_t i = 0; i < p->nseen; i++) {
		if (strcmp(p->seen[i].digest, digest))
			continue;
		if (!strcmp(p->seen[i].repo, repo))
			*here = 1;
		else if (!other)
			other = i + 1;
	}
	return other;
}

/* The registry's error, for a message: the first error code and text of an
 * OCI error body, else the HTTP status. */
static void describe(const kf_http_resp *resp, char *out, size_t n)
{
	json_t *root = resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
	json_t *err = json_array_get(json_object_get(root, "errors"), 0);
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));

	snprintf(out, n, "HTTP %ld%s%s%s%s", resp->status, code ? " " : "",
	         code ? code : "", msg ? ": " : "", msg ? msg : "");
	json_decref(root);
}

/* Map a blob file: uploads come from the unpacked bundle without holding a
 * heap copy. */
static int map_file(const char *path, void **data, size_t *len, kf_err *e)
{
	int rc = KF_OK, fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	*data = NULL;
	*len = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = kf_err_errno(e, "cannot open", path);
		goto out;
	}
	*len = (size_t)st.st_size;
	if (*len == 0)
		goto out;
	*data = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (*data == MAP_FAILED) {
		*data = NULL;
		rc = kf_err_errno(e, "cannot map", path);
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int push_blob(struct push *p, const char *repo, const char *digest,
                     kf_err *e)
{
	int rc = KF_OK, here = 0;
	char *path = NULL, *url = NULL, *blob_path = NULL;
	kf_http_resp resp = {0};
	void *data = NULL;
	size_t len = 0, from;
	char why[512];

	if (!kf_oci_digest_valid(digest)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: malformed blob digest '%s'",
		                p->layout, digest ? digest : "(null)");
		goto out;
	}
	from = seen_find(p, digest, repo, &here);
	if (here)
		goto out;
	blob_path = kf_layout_blob_path(p->layout, digest);
	if (!blob_path || asprintf(&path, "/v2/%s/blobs/%s", repo, digest) < 0) {
		path = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_registry_request(&p->r, "HEAD", path, repo, NULL, NULL, 0, 0,
	                         &resp, e);
	if (rc)
		goto out;
	if (resp.status == 200) {
		p->blobs_skipped++;
		printf("skipped blob     %s/%s@%s (present)\n", p->host, repo, digest);
		goto done;
	}
	if (!kf_layout_has_blob(p->layout, digest)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: blob %s is missing from the layout",
		                p->layout, digest);
		goto out;
	}
	free(path);
	path = NULL;
	/* A blob this run already pushed to another repository is mounted
	 * from there instead of sent again. */
	if (from) {
		if (asprintf(&path, "/v2/%s/blobs/uploads/?mount=%s&from=%s", repo,
		             digest, p->seen[from - 1].repo) < 0)
			path = NULL;
	} else if (asprintf(&path, "/v2/%s/blobs/uploads/", repo) < 0) {
		path = NULL;
	}
	if (!path) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_registry_request(&p->r, "POST", path, repo, NULL, NULL, 0,
	                         ERRBODY_MAX, &resp, e);
	if (rc)
		goto out;
	if (from && resp.status == 201) {
		p->blobs_mounted++;
		printf("mounted blob     %s/%s@%s (from %s)\n", p->host, repo, digest,
		       p->seen[from - 1].repo);
		goto done;
	}
	if (resp.status != 202 || !resp.location) {
		describe(&resp, why, sizeof why);
		rc = kf_err_set(e, KF_EIO, "%s%s: cannot start upload of %s: %s",
		                p->r.base, path, digest, why);
		goto out;
	}
	if (asprintf(&url, "%s%sdigest=%s", resp.location,
	             strchr(resp.location, '?') ? "&" : "?", digest) < 0) {
		url = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = map_file(blob_path, &data, &len, e);
	if (rc)
		goto out;
	/* One monolithic PUT: every registry accepts it, and the digest
	 * parameter makes the registry check the bytes it stored. */
	rc = kf_registry_request(&p->r, "PUT", url, repo, NULL, data ? data : "",
	                         len, ERRBODY_MAX, &resp, e);
	if (rc)
		goto out;
	if (resp.status != 201) {
		describe(&resp, why, sizeof why);
		rc = kf_err_set(e, KF_EIO, "%s/%s: upload of blob %s failed: %s",
		                p->host, repo, digest, why);
		goto out;
	}
	p->blobs_pushed++;
	p->bytes += len;
	printf("pushed blob      %s/%s@%s (%zu bytes)\n", p->host, repo, digest, len);
done:
	if (seen_add(p, digest, repo))
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	if (data)
		munmap(data, len);
	kf_http_resp_clear(&resp);
	free(path);
	free(url);
	free(blob_path);
	return rc;
}

/* PUT a manifest under ref (digest or tag) unless the registry already
 * resolves ref to this digest. With refused not NULL, a registry's
 * MANIFEST_BLOB_UNKNOWN answer sets *refused instead of failing. */
static int put_manifest(struct push *p, const char *repo, const char *ref,
                        const char *digest, const char *mt, const char *body,
                        size_t len, int is_tag, int *refused, kf_err *e)
{
	int rc = KF_OK;
	char *path = NULL, *ct = NULL, why[512];
	const char *h[2] = {NULL, NULL};
	kf_http_resp resp = {0};

	if (asprintf(&path, "/v2/%s/manifests/%s", repo, ref) < 0 ||
	    asprintf(&ct, "Content-Type: %s", mt) < 0) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_registry_request(&p->r, "HEAD", path, repo, accept_all, NULL, 0,
	                         0, &resp, e);
	if (rc)
		goto out;
	if (resp.status == 200 && (!is_tag || (resp.docker_content_digest &&
	                                       !strcmp(resp.docker_content_digest,
	                                               digest)))) {
		if (is_tag) {
			p->tags_same++;
			printf("unchanged tag    %s/%s:%s -> %s\n", p->host, repo, ref, digest);
		} else {
			p->mf_skipped++;
			printf("skipped manifest %s/%s@%s (present)\n", p->host, repo, digest);
		}
		goto out;
	}
	h[0] = ct;
	rc = kf_registry_request(&p->r, "PUT", path, repo, h, body, len,
	                         ERRBODY_MAX, &resp, e);
	if (rc)
		goto out;
	if (resp.status != 201 && resp.status != 200) {
		describe(&resp, why, sizeof why);
		if (refused && resp.status == 400 && strstr(why, "MANIFEST_BLOB_UNKNOWN")) {
			*refused = 1;
			goto out;
		}
		rc = kf_err_set(e, KF_EIO, "%s/%s: cannot push manifest %s as %s: %s",
		                p->host, repo, digest, ref, why);
		goto out;
	}
	if (is_tag) {
		p->tags_set++;
		printf("tagged           %s/%s:%s -> %s\n", p->host, repo, ref, digest);
	} else {
		p->mf_pushed++;
		printf("pushed manifest  %s/%s@%s\n", p->host, repo, digest);
	}
out:
	kf_http_resp_clear(&resp);
	free(path);
	free(ct);
	return rc;
}

static int read_blob(struct push *p, const char *digest, char **body,
                     size_t *len, kf_err *e)
{
	int rc = KF_OK;
	char *path = kf_layout_blob_path(p->layout, digest);

	*body = NULL;
	if (!path) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: malformed digest '%s'", p->layout,
		                digest ? digest : "(null)");
		goto out;
	}
	rc = kf_read_file(path, MANIFEST_MAX, body, len, e);
out:
	free(path);
	return rc;
}

/* What ends up under the tag: the upstream bytes, or a filtered index. */
struct pushed {
	char *digest, *mt, *body;
	size_t len;
};

static void pushed_clear(struct pushed *x)
{
	free(x->digest);
	free(x->mt);
	free(x->body);
	memset(x, 0, sizeof *x);
}

/* The index without the platforms the bundle left out. */
static int filter_index(struct push *p, json_t *root, struct pushed *f,
                        kf_err *e)
{
	int rc = KF_OK;
	json_t *copy = json_deep_copy(root);
	json_t *list = json_object_get(copy, "manifests");
	char hex[KF_SHA256_HEX];

	for (size_t i = json_array_size(list); i-- > 0;) {
		const char *d = json_string_value(json_object_get(json_array_get(list, i), "digest"));
		if (!kf_oci_digest_valid(d) || !kf_layout_has_blob(p->layout, d))
			json_array_remove(list, i);
	}
	f->body = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
	if (!f->body) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	f->len = strlen(f->body);
	kf_sha256_buf(f->body, f->len, hex);
	if (asprintf(&f->digest, "sha256:%s", hex) < 0) {
		f->digest = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
	}
out:
	json_decref(copy);
	return rc;
}

static int push_tree(struct push *p, const char *repo, const char *digest,
                     const char *mt_hint, int depth, struct pushed *res,
                     kf_err *e);

/* One level of a walk: an index's manifests or a manifest's blobs. */
struct tree_walk {
	struct push *p;
	const char *repo;
	int index, depth, partial;
};

static int push_child(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct tree_walk *w = arg;
	int rc = KF_OK;

	if (w->index != (d->role == KF_OCI_CHILD_MANIFEST))
		goto out;
	if (!w->index) {
		rc = push_blob(w->p, w->repo, d->digest, e);
		goto out;
	}
	/* Platforms the bundle left out are simply not pushed. */
	if (!kf_oci_digest_valid(d->digest) || !kf_layout_has_blob(w->p->layout, d->digest)) {
		w->partial = 1;
		goto out;
	}
	rc = push_tree(w->p, w->repo, d->digest, d->media_type, w->depth + 1, NULL, e);
out:
	return rc;
}

/* A manifest and everything below it, by digest, children first. */
static int push_tree(struct push *p, const char *repo, const char *digest,
                     const char *mt_hint, int depth, struct pushed *res,
                     kf_err *e)
{
	int rc = KF_OK, partial = 0, refused = 0;
	char *body = NULL;
	size_t len = 0;
	json_t *root = NULL;
	const char *mt;
	struct pushed f = {0};
	struct tree_walk w = {p, repo, 0, depth, 0};

	rc = read_blob(p, digest, &body, &len, e);
	if (rc)
		goto out;
	mt = kf_manifest_media_type(body, len, mt_hint);
	if (!mt) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: blob %s is not a manifest",
		                p->layout, digest);
		goto out;
	}
	root = json_loadb(body, len, 0, NULL);
	w.index = !strcmp(mt, KF_MT_OCI_INDEX) || !strcmp(mt, KF_MT_DOCKER_LIST);
	if (w.index && depth > 0) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: nested index %s", p->layout, digest);
		goto out;
	}
	rc = kf_oci_children(body, len, push_child, &w, NULL, e);
	if (rc)
		goto out;
	partial = w.partial;
	/* A registry that checks references (distribution, Harbor) refuses
	 * the upstream index when some of its platforms are not in the
	 * bundle. Then the index goes up without them: the tag works, but
	 * resolves to a new digest, which is said loudly. A filtered index
	 * pushed by an earlier run is reused. */
	if (partial) {
		rc = filter_index(p, root, &f, e);
		if (rc)
			goto out;
		if (asprintf(&f.mt, "%s", mt) < 0) {
			f.mt = NULL;
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		kf_http_resp hr = {0};
		char *path = NULL;
		if (asprintf(&path, "/v2/%s/manifests/%s", repo, f.digest) < 0)
			path = NULL;
		rc = path ? kf_registry_request(&p->r, "HEAD", path, repo, accept_all,
		                                NULL, 0, 0, &hr, e) :
		            kf_err_set(e, KF_EIO, "out of memory");
		refused = !rc && hr.status == 200;
		kf_http_resp_clear(&hr);
		free(path);
		if (rc)
			goto out;
	}
	if (!refused)
		rc = put_manifest(p, repo, digest, digest, mt, body, len, 0,
		                  partial ? &refused : NULL, e);
	if (rc)
		goto out;
	if (refused) {
		fprintf(stderr,
		        "push: warning: %s/%s refuses index %s, which names platforms not in the bundle; pushing it without them as %s (the tag will not resolve to the upstream digest)\n",
		        p->host, repo, digest, f.digest);
		rc = put_manifest(p, repo, f.digest, f.digest, mt, f.body, f.len, 0,
		                  NULL, e);
		if (rc)
			goto out;
	}
	if (res) {
		if (refused) {
			*res = f;
			memset(&f, 0, sizeof f);
		} else {
			res->digest = strdup(digest);
			res->mt = strdup(mt);
			res->body = body;
			res->len = len;
			body = NULL;
			if (!res->digest || !res->mt)
				rc = kf_err_set(e, KF_EIO, "out of memory");
		}
	}
out:
	pushed_clear(&f);
	json_decref(root);
	free(body);
	return rc;
}

/* --to REGISTRY[/PREFIX], optionally with a scheme. */
static int parse_to(const char *to, char **base, char **prefix, kf_err *e)
{
	int rc = KF_OK;
	const char *scheme = "https://", *rest = to, *slash;
	size_t hl;

	*base = *prefix = NULL;
	if (!strncmp(to, "https://", 8)) {
		rest = to + 8;
	} else if (!strncmp(to, "http://", 7)) {
		scheme = "http://";
		rest = to + 7;
	}
	slash = strchr(rest, '/');
	hl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (hl == 0 || strcspn(rest, "?#@ ") < strlen(rest)) {
		rc = kf_err_set(e, KF_EUSAGE, "--to %s: want REGISTRY[:PORT][/PREFIX]", to);
		goto out;
	}
	if (asprintf(base, "%s%.*s", scheme, (int)hl, rest) < 0)
		*base = NULL;
	if (slash) {
		const char *pf = slash;
		size_t pl;
		while (*pf == '/')
			pf++;
		pl = strlen(pf);
		while (pl && pf[pl - 1] == '/')
			pl--;
		*prefix = pl ? strndup(pf, pl) : NULL;
		if (pl && !*prefix)
			*base = NULL;
	}
	if (!*base)
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	return rc;
}

/* One image named in the layout's index.json. */
struct layout_walk {
	struct push *p;
	const char *prefix, *index_path;
};

static int push_named(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct layout_walk *w = arg;
	kf_oci_ref ref = {0};
	char *repo = NULL;
	struct pushed res = {0};
	int rc = KF_OK;

	if (d->role != KF_OCI_CHILD_MANIFEST)
		goto out;
	if (!d->ref_name || !kf_oci_digest_valid(d->digest)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: manifest %zu has no image name or digest",
		                w->index_path, d->index);
		goto out;
	}
	rc = kf_oci_ref_parse(d->ref_name, &ref, e);
	if (rc) {
		kf_err_prefix(e, "%s", w->index_path);
		goto out;
	}
	/* The repository path is kept and the source registry dropped:
	 * registry.k8s.io/pause -> <to>/pause,
	 * docker.io/library/nginx -> <to>/library/nginx. */
	if (asprintf(&repo, "%s%s%s", w->prefix ? w->prefix : "", w->prefix ? "/" : "",
	             ref.repository) < 0) {
		repo = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = push_tree(w->p, repo, d->digest, d->media_type, 0, &res, e);
	if (!rc && ref.tag)
		rc = put_manifest(w->p, repo, ref.tag, res.digest, res.mt, res.body,
		                  res.len, 1, NULL, e);
out:
	pushed_clear(&res);
	free(repo);
	kf_oci_ref_clear(&ref);
	return rc;
}

int kf_push_layout(const char *layout_dir, const kf_push_opts *o, kf_err *e)
{
	int rc = KF_OK, opened = 0;
	struct push p = {.layout = layout_dir};
	char *base = NULL, *prefix = NULL, *text = NULL, index_path[PATH_MAX];
	size_t len = 0;
	kf_oci_shape shape;
	struct layout_walk w = {&p, NULL, index_path};

	rc = parse_to(o->to, &base, &prefix, e);
	if (rc)
		goto out;
	w.prefix = prefix;
	if (snprintf(index_path, sizeof index_path, "%s/index.json", layout_dir) >=
	    (int)sizeof index_path) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", layout_dir);
		goto out;
	}
	rc = kf_read_file(index_path, MANIFEST_MAX, &text, &len, e);
	if (rc)
		goto out;
	if (kf_oci_children(text, len, NULL, NULL, &shape, e) || !shape.index) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: no manifests list", index_path);
		goto out;
	}
	rc = kf_registry_open(&p.r, base, o->creds, &o->fetch, e);
	if (rc)
		goto out;
	opened = 1;
	p.r.push = 1;
	p.host = p.r.host;
	rc = kf_oci_children(text, len, push_named, &w, NULL, e);
	if (rc)
		goto out;
	printf("push: blobs %lu pushed (%llu bytes), %lu mounted, %lu skipped; manifests %lu pushed, %lu skipped; tags %lu set, %lu unchanged\n",
	       p.blobs_pushed, p.bytes, p.blobs_mounted, p.blobs_skipped,
	       p.mf_pushed, p.mf_skipped, p.tags_set, p.tags_same);
out:
	fflush(stdout);
	if (opened)
		kf_registry_close(&p.r);
	for (size_t k = 0; k < p.nseen; k++) {
		free(p.seen[k].digest);
		free(p.seen[k].repo);
	}
	free(p.seen);
	free(text);
	free(base);
	free(prefix);
	return rc;
}
