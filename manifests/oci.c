/*
 * The OCI model: image references, digests and the descriptors a manifest
 * or an index points at. One grammar for every reader (the spec and lock
 * checks, the registry client, push, the mirror server), taken from the
 * OCI distribution spec and the distribution/reference grammar it names:
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path          (at most 255 bytes)
 *   domain    := host [ ":" port ]            host: labels of [A-Za-z0-9]
 *                                             with inner '-', or [IPv6]
 *   path      := component ( "/" component )*
 *   component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" 64 lowercase hex   (the only one kubeferry uses)
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifests/kf_manifests.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

int kf_oci_digest_valid(const char *d)
{
	return d && !strncmp(d, "sha256:", 7) && kf_is_sha256_hex(d + 7);
}

static int lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: alphanumeric runs joined by exactly one separator. */
static int component_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !lower_alnum((unsigned char)s[0]))
		return 0;
	while (i < n) {
		size_t sep;
		while (i < n && lower_alnum((unsigned char)s[i]))
			i++;
		if (i == n)
			break;
		sep = i;
		if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else if (s[i] == '_' && i + 1 < n && s[i + 1] == '_') {
			i += 2;
		} else if (s[i] == '.' || s[i] == '_') {
			i++;
		} else {
			return 0;
		}
		if (i == n || i == sep || !lower_alnum((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

int kf_oci_path_valid(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '/')
			continue;
		if (!component_ok(s + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}

int kf_oci_name_valid(const char *name)
{
	return name && kf_oci_path_valid(name, strlen(name));
}

int kf_oci_tag_valid(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > TAG_MAX_LEN || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (!isascii(c) || !(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

static int label_char(unsigned char c)
{
	return isascii(c) && isalnum(c);
}

int kf_oci_domain_valid(const char *s, size_t n)
{
	size_t i = 0, hend;

	if (n == 0 || n > 253)
		return 0;
	if (s[0] == '[') {
		/* [IPv6]: hex digits and colons inside brackets */
		for (i = 1; i < n && s[i] != ']'; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
				return 0;
		if (i == n || i == 1)
			return 0;
		hend = ++i;
	} else {
		size_t lab = 0;
		for (; i < n && s[i] != ':'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '.') {
				/* a label neither empty nor ending in '-' */
				if (lab == 0 || s[i - 1] == '-')
					return 0;
				lab = 0;
			} else if (label_char(c) || (c == '-' && lab > 0)) {
				lab++;
			} else {
				return 0;
			}
		}
		if (lab == 0 || s[i - 1] == '-')
			return 0;
		hend = i;
	}
	if (hend < n) {
		/* ":port", digits only */
		if (s[hend] != ':' || hend + 1 == n)
			return 0;
		for (i = hend + 1; i < n; i++)
			if (!isdigit((unsigned char)s[i]))
				return 0;
	}
	return 1;
}

size_t kf_oci_domain_len(const char *name)
{
	const char *slash = name ? strchr(name, '/') : NULL;
	size_t n = slash ? (size_t)(slash - name) : 0;
	int upper = 0;

	/* name[0..n) lies before the slash strchr found. */
	for (size_t i = 0; i < n; i++)
		if (isupper((unsigned char)name[i])) // NOLINT(clang-analyzer-core.uninitialized.ArraySubscript)
			upper = 1;
	/* docker's rule: the first component names a registry when it has a
	 * dot, a port or an upper-case letter, or is "localhost". */
	if (slash && (memchr(name, '.', n) || memchr(name, ':', n) || upper ||
	              (n == 9 && !memcmp(name, "localhost", 9))))
		return n;
	return 0;
}

/* The pieces of a reference, as offsets into the text: no allocation, so
 * the validity check and the parser are one function. */
struct split {
	size_t dlen;          /* domain length, 0 when none written */
	const char *path;
	size_t plen;
	const char *tag;      /* NULL when none */
	const char *digest;   /* NULL when none */
};

static int split_ref(const char *s, struct split *sp, const char **why)
{
	const char *at, *end, *lslash, *colon;
	size_t nlen;
	int ok = 0;

	memset(sp, 0, sizeof *sp);
	*why = "not a reference";
	if (!s || !*s)
		goto out;
	at = strchr(s, '@');
	end = at ? at : s + strlen(s);
	if (at) {
		if (!kf_oci_digest_valid(at + 1)) {
			*why = "digest must be sha256:<64 lowercase hex>";
			goto out;
		}
		sp->digest = at + 1;
	}
	/* the tag is after the last ':' that follows the last '/', so a port
	 * in the registry is not mistaken for one */
	lslash = NULL;
	colon = NULL;
	for (const char *p = s; p < end; p++) {
		if (*p == '/')
			lslash = p;
		else if (*p == ':')
			colon = p;
	}
	if (colon && lslash && colon < lslash)
		colon = NULL;
	nlen = colon ? (size_t)(colon - s) : (size_t)(end - s);
	if (colon) {
		char tag[TAG_MAX_LEN + 2];
		size_t tl = (size_t)(end - colon - 1);
		if (tl == 0 || tl > TAG_MAX_LEN) {
			*why = "bad tag";
			goto out;
		}
		memcpy(tag, colon + 1, tl);
		tag[tl] = '\0';
		if (!kf_oci_tag_valid(tag)) {
			*why = "bad tag";
			goto out;
		}
		sp->tag = colon + 1;
	}
	if (nlen > NAME_MAX_LEN) {
		*why = "name longer than 255 bytes";
		goto out;
	}
	{
		char name[NAME_MAX_LEN + 1];
		memcpy(name, s, nlen);
		name[nlen] = '\0';
		sp->dlen = kf_oci_domain_len(name);
	}
	if (sp->dlen && !kf_oci_domain_valid(s, sp->dlen)) {
		*why = "bad registry host";
		goto out;
	}
	sp->path = s + sp->dlen + (sp->dlen ? 1 : 0);
	sp->plen = nlen - (size_t)(sp->path - s);
	if (sp->plen == 0) {
		*why = "empty repository name";
		goto out;
	}
	if (!kf_oci_path_valid(sp->path, sp->plen)) {
		*why = "bad repository name (lowercase letters and digits, joined by "
		       "'.', '_', '__' or '-')";
		goto out;
	}
	ok = 1;
out:
	return ok;
}

int kf_oci_ref_valid(const char *ref, const char **why)
{
	struct split sp;
	int ok = 0;

	if (ref && strchr(ref, '@')) {
		*why = "put the digest in 'digest:', not in the reference";
		goto out;
	}
	if (!split_ref(ref, &sp, why))
		goto out;
	/* Short names resolve to different registries on different nodes. */
	if (sp.dlen == 0) {
		*why = "no registry host (write e.g. registry.k8s.io/pause:3.10 or "
		       "docker.io/library/nginx:1.28)";
		goto out;
	}
	if (!sp.tag) {
		*why = "no tag (write :TAG; the bundle pins what it carries)";
		goto out;
	}
	ok = 1;
out:
	return ok;
}

void kf_oci_ref_clear(kf_oci_ref *r)
{
	free(r->registry);
	free(r->repository);
	free(r->tag);
	free(r->digest);
	free(r->name);
	memset(r, 0, sizeof *r);
}

int kf_oci_ref_parse(const char *s, kf_oci_ref *r, kf_err *e)
{
	int rc = KF_OK;
	struct split sp;
	const char *why;

	memset(r, 0, sizeof *r);
	if (!split_ref(s, &sp, &why)) {
		rc = kf_err_set(e, KF_EUSAGE, "image %s: invalid reference: %s", s ? s : "", why);
		goto out;
	}
	if (sp.dlen)
		r->registry = strndup(s, sp.dlen);
	else
		r->registry = strdup("docker.io");
	if (r->registry && (!strcmp(r->registry, "index.docker.io") ||
	                    !strcmp(r->registry, "registry-1.docker.io"))) {
		free(r->registry);
		r->registry = strdup("docker.io");
	}
	if (!r->registry)
		goto oom;
	/* Official docker.io images live under library/. */
	if (!strcmp(r->registry, "docker.io") && !memchr(sp.path, '/', sp.plen)) {
		if (asprintf(&r->repository, "library/%.*s", (int)sp.plen, sp.path) < 0)
			r->repository = NULL;
	} else {
		r->repository = strndup(sp.path, sp.plen);
	}
	if (sp.tag)
		r->tag = strndup(sp.tag, (size_t)((sp.digest ? sp.digest - 1 : sp.tag + strlen(sp.tag)) - sp.tag));
	else if (!sp.digest)
		r->tag = strdup("latest");
	if (sp.digest)
		r->digest = strdup(sp.digest);
	if (!r->repository || (!r->tag && !r->digest) || (sp.digest && !r->digest) ||
	    (sp.tag && !r->tag))
		goto oom;
	if (strlen(r->registry) + 1 + strlen(r->repository) > NAME_MAX_LEN) {
		rc = kf_err_set(e, KF_EUSAGE, "image %s: name longer than %d bytes", s,
		                NAME_MAX_LEN);
		goto out;
	}
	if (asprintf(&r->name, "%s/%s%s%s%s%s", r->registry, r->repository,
	             r->tag ? ":" : "", r->tag ? r->tag : "",
	             r->digest ? "@" : "", r->digest ? r->digest : "") < 0) {
		r->name = NULL;
		goto oom;
	}
	goto out;
oom:
	rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	if (rc)
		kf_oci_ref_clear(r);
	return rc;
}

/* ---- descriptors ------------------------------------------------------------ */

static void fill_desc(kf_oci_desc *d, kf_oci_role role, size_t idx, json_t *j)
{
	json_t *plat = json_object_get(j, "platform");
	json_t *ann = json_object_get(j, "annotations");
	json_t *size = json_object_get(j, "size");

	memset(d, 0, sizeof *d);
	d->role = role;
	d->index = idx;
	d->media_type = json_string_value(json_object_get(j, "mediaType"));
	d->digest = json_string_value(json_object_get(j, "digest"));
	d->size = json_is_integer(size) && json_integer_value(size) >= 0 ?
	          (int64_t)json_integer_value(size) : -1;
	d->os = json_string_value(json_object_get(plat, "os"));
	d->arch = json_string_value(json_object_get(plat, "architecture"));
	d->variant = json_string_value(json_object_get(plat, "variant"));
	/* containerd's name first: it is what nodes ask the mirror for */
	d->ref_name = json_string_value(json_object_get(ann, "io.containerd.image.name"));
	if (!d->ref_name)
		d->ref_name = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
}

int kf_oci_children(const char *body, size_t len, kf_oci_child_fn fn, void *arg,
                    kf_oci_shape *shape, kf_err *e)
{
	int rc = KF_OK;
	json_error_t je;
	json_t *root = json_loadb(body ? body : "", len, 0, &je), *v, *it;
	kf_oci_desc d;
	size_t i;

	if (shape)
		memset(shape, 0, sizeof *shape);
	if (!json_is_object(root)) {
		rc = kf_err_set(e, KF_EVERIFY, "not a JSON object%s%s", root ? "" : ": ",
		                root ? "" : je.text);
		goto out;
	}
	v = json_object_get(root, "mediaType");
	if (shape && json_is_string(v))
		snprintf(shape->media_type, sizeof shape->media_type, "%s", json_string_value(v));
	v = json_object_get(root, "manifests");
	if (shape)
		shape->index = json_is_array(v);
	json_array_foreach(v, i, it) {
		fill_desc(&d, KF_OCI_CHILD_MANIFEST, i, it);
		if (fn && (rc = fn(&d, arg, e)))
			goto out;
	}
	v = json_object_get(root, "config");
	if (shape) {
		shape->config = json_is_object(v);
		shape->layers = json_is_array(json_object_get(root, "layers"));
	}
	if (json_is_object(v)) {
		fill_desc(&d, KF_OCI_CHILD_CONFIG, 0, v);
		if (fn && (rc = fn(&d, arg, e)))
			goto out;
	}
	json_array_foreach(json_object_get(root, "layers"), i, it) {
		fill_desc(&d, KF_OCI_CHILD_LAYER, i, it);
		if (fn && (rc = fn(&d, arg, e)))
			goto out;
	}
out:
	json_decref(root);
	return rc;
}
