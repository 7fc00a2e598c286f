/*
 * Pull the spec's images into the bundle's OCI layout (work_dir/images) and
 * write the certs.d hosts.toml files that point nodes at the mirror.
 *
 * Manifests are small and fetched one by one (each verified against its
 * digest before it is parsed); blobs go through the transfer engine in one
 * batch, so they download in parallel, land in the shared content-addressed
 * cache and resume. Registry tokens expire (docker.io's after 300 s), so
 * each image's registry session stays open until its blobs are in: a
 * token about to expire is renewed before a batch starts, and blobs
 * answered with 401 get a fresh token and another batch, a bounded number
 * of times without progress. An upstream index is kept byte for byte, so the tag
 * resolves to the same digest as upstream; only the manifests for the
 * spec's architectures (and their blobs) are fetched.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "bundler/kf_bundler.h"
#include "mirror/kf_mirror.h"
#include "bundler/registry/pull_int.h"

#define CONFIG_MAX (8u << 20)

void kf_pull_say(const struct pull *p, const char *fmt, ...)
{
	va_list ap;

	if (p->o->fetch.quiet)
		return;
	va_start(ap, fmt);
	fputs("images: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int kf_pull_remember(struct pull *p, const char *digest, kf_err *e)
{
	int rc = KF_OK;

	for (size_t i = 0; i < p->nstored; i++)
		if (!strcmp(p->stored[i], digest))
			goto out;
	if (p->nstored == p->capstored) {
		size_t ncap = p->capstored ? p->capstored * 2 : 64;
		char **n = realloc(p->stored, ncap * sizeof *n);
		if (!n) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		p->stored = n;
		p->capstored = ncap;
	}
	p->stored[p->nstored] = strdup(digest);
	if (!p->stored[p->nstored]) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	p->nstored++;
out:
	return rc;
}

/* Plan one blob download; a blob shared by several images is fetched
 * once. */
static int want_blob(struct pull *p, const kf_registry *r, const char *repo,
                     const kf_oci_desc *desc, const char *what, const char *manifest,
                     kf_err *e)
{
	int rc = KF_OK;
	const char *digest = desc->digest;
	struct blob *b;

	if (!kf_oci_digest_valid(digest) || desc->size < 0) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: manifest %s has a descriptor without a valid sha256 digest and size",
		                what, manifest);
		goto out;
	}
	for (size_t i = 0; i < p->nblob; i++)
		if (!strcmp(p->blobs[i].digest, digest))
			goto out;
	if (p->nblob == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 32;
		struct blob *n = realloc(p->blobs, ncap * sizeof *n);
		if (!n) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		p->blobs = n;
		p->cap = ncap;
	}
	b = &p->blobs[p->nblob];
	memset(b, 0, sizeof *b);
	p->nblob++;
	b->digest = strdup(digest);
	b->size = (uint64_t)desc->size;
	b->what = strdup(what);
	b->src = p->cur;
	if (asprintf(&b->url, "%s/v2/%s/blobs/%s", r->base, repo, digest) < 0)
		b->url = NULL;
	if (!b->digest || !b->what || !b->url)
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	return rc;
}

/* What a walk over one image manifest needs. */
struct blobs_walk {
	struct pull *p;
	const kf_registry *r;
	const char *repo, *what, *digest;
	char **config_out;
};

static int want_child(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct blobs_walk *w = arg;
	int rc = KF_OK;

	if (d->role == KF_OCI_CHILD_MANIFEST)
		goto out;
	rc = want_blob(w->p, w->r, w->repo, d, w->what, w->digest, e);
	if (!rc && d->role == KF_OCI_CHILD_CONFIG && w->config_out) {
		*w->config_out = strdup(d->digest);
		if (!*w->config_out)
			rc = kf_err_set(e, KF_EIO, "out of memory");
	}
out:
	return rc;
}

/* Config and layers of one image manifest. */
static int want_manifest_blobs(struct pull *p, const kf_registry *r,
                               const char *repo, const char *body, size_t len,
                               const char *what, const char *digest,
                               char **config_out, kf_err *e)
{
	int rc;
	kf_oci_shape shape;
	struct blobs_walk w = {p, r, repo, what, digest, config_out};

	/* The shape first: a manifest without config or layers plans nothing. */
	rc = kf_oci_children(body, len, NULL, NULL, &shape, e);
	if (rc || !shape.config || !shape.layers) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: manifest %s has no config or layers", what,
		                digest);
		goto out;
	}
	rc = kf_oci_children(body, len, want_child, &w, NULL, e);
out:
	return rc;
}

static int add_platform(struct image *im, const char *plat, kf_err *e)
{
	int rc = KF_OK;

	for (size_t i = 0; i < im->nplat; i++)
		if (!strcmp(im->platforms[i], plat))
			goto out;
	if (im->nplat == KF_ARCH_MAX) {
		rc = kf_err_set(e, KF_EUSAGE, "image %s: more than %d platforms",
		                im->ref.name, KF_ARCH_MAX);
		goto out;
	}
	im->platforms[im->nplat] = strdup(plat);
	if (!im->platforms[im->nplat]) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	im->nplat++;
out:
	return rc;
}

static int spec_arch(const kf_spec *s, const char *arch)
{
	for (size_t i = 0; i < s->narch; i++)
		if (!strcmp(s->archs[i], arch))
			return 1;
	return 0;
}

/* What a walk over an index needs. */
struct index_walk {
	struct pull *p;
	kf_registry *r;
	const char *repo;
	struct image *im;
	char offered[512];
	size_t olen;
};

/* One entry of an index: fetched when it is linux/<spec arch>. */
static int index_child(const kf_oci_desc *m, void *arg, kf_err *e)
{
	struct index_walk *w = arg;
	struct pull *p = w->p;
	struct image *im = w->im;
	char *cbody = NULL, *cmt = NULL, *cdigest = NULL;
	char platform[128];
	size_t clen;
	int rc = KF_OK;

	if (m->role != KF_OCI_CHILD_MANIFEST || !m->os || !m->arch)
		goto out;
	snprintf(platform, sizeof platform, "%s/%s%s%s", m->os, m->arch,
	         m->variant ? "/" : "", m->variant ? m->variant : "");
	if (w->olen < sizeof w->offered - 1)
		w->olen += (size_t)snprintf(w->offered + w->olen, sizeof w->offered - w->olen,
		                            "%s%s", w->olen ? ", " : "", platform);
	if (w->olen >= sizeof w->offered)
		w->olen = sizeof w->offered - 1;
	if (strcmp(m->os, "linux") || !spec_arch(p->spec, m->arch))
		goto out;
	if (!kf_oci_digest_valid(m->digest)) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: index %s lists %s without a valid sha256 digest",
		                im->ref.name, im->digest, platform);
		goto out;
	}
	rc = kf_registry_get_manifest(w->r, w->repo, m->digest, im->ref.name, &cbody, &clen,
	                              &cmt, &cdigest, e);
	if (rc)
		goto out;
	if (strcmp(cmt, KF_MT_OCI_MANIFEST) && strcmp(cmt, KF_MT_DOCKER_MANIFEST)) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "image %s: %s entry %s is a %s, not an image manifest (nested indexes are not supported)",
		                im->ref.name, platform, m->digest, cmt);
		goto out;
	}
	rc = kf_layout_add_blob_buf(p->layout, cdigest, cbody, clen, e);
	if (!rc)
		rc = kf_pull_remember(p, cdigest, e);
	if (!rc)
		rc = want_manifest_blobs(p, w->r, w->repo, cbody, clen, im->ref.name,
		                         cdigest, NULL, e);
	if (!rc)
		rc = add_platform(im, platform, e);
out:
	free(cbody);
	free(cmt);
	free(cdigest);
	return rc;
}

/* An index: the manifests for linux/<spec arch>, every variant. */
static int pull_index(struct pull *p, kf_registry *r, const char *repo,
                      struct image *im, const char *body, size_t len,
                      kf_err *e)
{
	int rc;
	kf_oci_shape shape;
	struct index_walk w = {.p = p, .r = r, .repo = repo, .im = im};

	rc = kf_oci_children(body, len, NULL, NULL, &shape, e);
	if (rc || !shape.index) {
		rc = kf_err_set(e, KF_EVERIFY, "image %s: index %s has no manifests list",
		                im->ref.name, im->digest);
		goto out;
	}
	rc = kf_oci_children(body, len, index_child, &w, NULL, e);
	if (rc)
		goto out;
	/* Every architecture the cluster runs must be there: an image missing
	 * on some nodes would only show up as a failed pod. */
	for (size_t a = 0; a < p->spec->narch; a++) {
		char want[64];
		int found = 0;
		snprintf(want, sizeof want, "linux/%s", p->spec->archs[a]);
		for (size_t k = 0; k < im->nplat; k++)
			if (!strncmp(im->platforms[k], want, strlen(want)) &&
			    (im->platforms[k][strlen(want)] == '\0' ||
			     im->platforms[k][strlen(want)] == '/'))
				found = 1;
		if (!found) {
			rc = kf_err_set(e, KF_EUSAGE,
			                "image %s: no %s manifest upstream (offered: %s)",
			                im->ref.name, want, w.olen ? w.offered : "none");
			goto out;
		}
	}
out:
	return rc;
}

static int pull_image(struct pull *p, const kf_spec_image *si, struct image *im,
                      size_t idx, kf_err *e)
{
	int rc = KF_OK;
	struct source *src = &p->srcs[idx];
	kf_registry *r = &src->r;
	char *base = NULL, *repo = NULL, *body = NULL;
	const char *want;
	size_t len = 0;

	rc = kf_oci_ref_parse(si->ref, &im->ref, e);
	if (rc) {
		kf_err_prefix(e, "%s:%d:%d", p->spec->path, si->line, si->col);
		goto out;
	}
	/* Both pins must agree, or the spec says two different things. */
	if (si->digest && im->ref.digest && strcmp(si->digest, im->ref.digest)) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s:%d:%d: image %s: digest %s differs from the reference's",
		                p->spec->path, si->line, si->col, si->ref, si->digest);
		goto out;
	}
	want = si->digest ? si->digest : im->ref.digest;
	rc = kf_registry_endpoint(im->ref.registry, im->ref.repository,
	                          p->o->fetch.rewrites, p->o->fetch.nrewrite, &base,
	                          &repo, e);
	if (rc)
		goto out;
	rc = kf_registry_open(r, base, NULL, &p->o->fetch, e);
	if (rc)
		goto out;
	src->opened = 1;
	src->repo = strdup(repo);
	if (!src->repo) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	p->cur = idx;
	/* A pinned image is resolved by its tag when it has one, so a tag
	 * that moved upstream is reported instead of silently ignored. */
	rc = kf_registry_get_manifest(r, repo, im->ref.tag ? im->ref.tag : want,
	                              im->ref.name, &body, &len, &im->media_type,
	                              &im->digest, e);
	if (rc)
		goto out;
	if (want && strcmp(want, im->digest)) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: pinned digest %s but upstream (%s/%s) has %s",
		                im->ref.name, want, base, repo, im->digest);
		goto out;
	}
	im->size = len;
	rc = kf_layout_add_blob_buf(p->layout, im->digest, body, len, e);
	if (!rc)
		rc = kf_pull_remember(p, im->digest, e);
	if (rc)
		goto out;
	if (!strcmp(im->media_type, KF_MT_OCI_INDEX) ||
	    !strcmp(im->media_type, KF_MT_DOCKER_LIST))
		rc = pull_index(p, r, repo, im, body, len, e);
	else
		rc = want_manifest_blobs(p, r, repo, body, len, im->ref.name,
		                         im->digest, &im->config, e);
	if (rc)
		goto out;
	{
		const char *host = strstr(base, "://") + 3;
		int via = strcmp(host, im->ref.registry) != 0;
		kf_pull_say(p, "%s %s%s%s", im->ref.name, im->digest, via ? " via " : "",
		    via ? base : "");
	}
out:
	/* The session stays open (closed by kf_images_pull): the blobs are
	 * fetched later with its token, which may need renewing. */
	free(base);
	free(repo);
	free(body);
	return rc;
}

/* A single-platform image: its platform comes from its config. */
static int config_platform(struct pull *p, struct image *im, kf_err *e)
{
	int rc = KF_OK;
	char *path = kf_layout_blob_path(p->layout, im->config);
	char *text = NULL, platform[128];
	size_t len = 0;
	json_t *root = NULL;
	const char *os, *arch, *variant;

	if (!path) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_read_file(path, CONFIG_MAX, &text, &len, e);
	if (rc)
		goto out;
	root = json_loadb(text, len, 0, NULL);
	os = json_string_value(json_object_get(root, "os"));
	arch = json_string_value(json_object_get(root, "architecture"));
	variant = json_string_value(json_object_get(root, "variant"));
	if (!os || !arch) {
		rc = kf_err_set(e, KF_EVERIFY, "image %s: config %s names no os/architecture",
		                im->ref.name, im->config);
		goto out;
	}
	snprintf(platform, sizeof platform, "%s/%s%s%s", os, arch,
	         variant ? "/" : "", variant ? variant : "");
	if (strcmp(os, "linux") || !spec_arch(p->spec, arch)) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "image %s is a single-platform image for %s, not one of the spec's architectures",
		                im->ref.name, platform);
		goto out;
	}
	/* Upstream offers nothing else, so this is not an error; but nodes
	 * of the other architectures will not run it. */
	if (p->spec->narch > 1)
		kf_pull_say(p, "warning: %s is single-platform (%s) only", im->ref.name,
		    platform);
	rc = add_platform(im, platform, e);
out:
	json_decref(root);
	free(text);
	free(path);
	return rc;
}

int kf_images_pull(const kf_spec *spec, const kf_build_opts *o,
                   const char *work_dir, kf_build_set *set, kf_lock *lock,
                   kf_err *e)
{
	int rc = KF_OK;
	struct pull p = {.spec = spec, .o = o};
	struct image *ims = NULL;
	kf_layout_ref *refs = NULL;
	char certs_d[PATH_MAX];
	const char *mirror = o->mirror ? o->mirror :
	                     spec->install.mirror ? spec->install.mirror :
	                     KF_DEFAULT_MIRROR;

	if (!spec->nimg)
		goto out;
	ims = calloc(spec->nimg, sizeof *ims);
	refs = calloc(spec->nimg, sizeof *refs);
	p.srcs = calloc(spec->nimg, sizeof *p.srcs);
	if (!ims || !refs || !p.srcs) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (snprintf(p.layout, sizeof p.layout, "%s/images", work_dir) >= (int)sizeof p.layout ||
	    snprintf(certs_d, sizeof certs_d, "%s/certs.d", work_dir) >= (int)sizeof certs_d) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", work_dir);
		goto out;
	}
	rc = kf_layout_init(p.layout, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < spec->nimg; i++) {
		rc = pull_image(&p, &spec->images[i], &ims[i], i, e);
		if (rc)
			goto out;
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(ims[k].ref.name, ims[i].ref.name)) {
				rc = kf_err_set(e, KF_EUSAGE, "%s:%d:%d: image %s is listed twice",
				                spec->path, spec->images[i].line,
				                spec->images[i].col, ims[i].ref.name);
				goto out;
			}
		}
	}
	rc = kf_pull_fetch_blobs(&p, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < spec->nimg; i++) {
		if (ims[i].config) {
			rc = config_platform(&p, &ims[i], e);
			if (rc)
				goto out;
		}
		refs[i].name = ims[i].ref.name;
		refs[i].digest = ims[i].digest;
		refs[i].media_type = ims[i].media_type;
		refs[i].size = ims[i].size;
	}
	rc = kf_layout_write_index(p.layout, refs, spec->nimg, e);
	if (rc)
		goto out;
	/* One hosts.toml per upstream registry. The mirror's CA is made on the
	 * mirror node, so the file names the fixed path where the installer
	 * puts it (pinned by fingerprint) rather than its content. */
	for (size_t i = 0; i < spec->nimg; i++) {
		rc = kf_hosts_toml_write(certs_d, ims[i].ref.registry, mirror,
		                         KF_MIRROR_CA_PATH, e);
		if (rc)
			goto out;
	}
	rc = kf_pull_collect(&p, work_dir, ims, spec->nimg, set, e);
	if (rc)
		goto out;
	/* spec->nimg > 0 here (checked on entry). */
	lock->images = calloc(spec->nimg, sizeof *lock->images); // NOLINT(clang-analyzer-optin.portability.UnixAPI)
	if (!lock->images) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < spec->nimg; i++) {
		kf_lock_image *li = &lock->images[i];
		li->ref = strdup(ims[i].ref.name);
		li->digest = strdup(ims[i].digest);
		for (size_t k = 0; k < ims[i].nplat; k++)
			li->platforms[k] = strdup(ims[i].platforms[k]);
		li->nplat = ims[i].nplat;
		lock->nimg = i + 1;
		if (!li->ref || !li->digest) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	kf_pull_say(&p, "%zu images, %zu blobs in the layout", spec->nimg, p.nstored);
out:
	for (size_t i = 0; ims && i < spec->nimg; i++) {
		kf_oci_ref_clear(&ims[i].ref);
		free(ims[i].digest);
		free(ims[i].media_type);
		free(ims[i].config);
		for (size_t k = 0; k < ims[i].nplat; k++)
			free(ims[i].platforms[k]);
	}
	for (size_t i = 0; i < p.nblob; i++) {
		free(p.blobs[i].digest);
		free(p.blobs[i].url);
		free(p.blobs[i].what);
	}
	for (size_t i = 0; p.srcs && i < spec->nimg; i++) {
		if (p.srcs[i].opened)
			kf_registry_close(&p.srcs[i].r);
		free(p.srcs[i].repo);
	}
	free(p.srcs);
	for (size_t i = 0; i < p.nstored; i++)
		free(p.stored[i]);
	free(p.blobs);
	free(p.stored);
	free(ims);
	free(refs);
	return rc;
}
