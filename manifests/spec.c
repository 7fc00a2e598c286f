/*
 * The bundle spec: what an operator asks for. Parsed strictly so that a typo
 * never silently drops a component or a checksum; every error points at
 * FILE:LINE:COL of the node at fault (exit code KF_EUSAGE).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

/* A spec is a few KB; anything this large is not one. */
#define KF_SPEC_MAX (4u << 20)

/* Refuse keys outside the schema: a misspelt "sha265" must not be ignored. */
static int check_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                      const char *const *allowed)
{
	for (size_t i = 0; i < map->n; i += 2) {
		const kf_ynode *k = map->items[i];
		size_t j;
		for (j = 0; allowed[j]; j++)
			if (!strcmp(k->value, allowed[j]))
				break;
		if (!allowed[j]) {
			char list[256] = "";
			for (j = 0; allowed[j]; j++) {
				strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
				strncat(list, allowed[j], sizeof list - strlen(list) - 1);
			}
			return kf_ytree_fail(c, k, "unknown key \"%s\" in %s (known: %s)", k->value, what, list);
		}
	}
	return KF_OK;
}

static const kf_ynode *find(const kf_ynode *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (kf_ytree_key_is(map->items[i], key))
			return map->items[i + 1];
	return NULL;
}

static int need(kf_yctx *c, const kf_ynode *map, const char *key, const char *what,
                const kf_ynode **out)
{
	*out = find(map, key);
	if (!*out)
		return kf_ytree_fail(c, map, "missing required key \"%s\" in %s", key, what);
	return KF_OK;
}

static int req_str(kf_yctx *c, const kf_ynode *map, const char *key, const char *what,
                   char **out, const kf_ynode **node)
{
	const kf_ynode *v;
	char label[128];
	int rc = need(c, map, key, what, &v);
	if (rc)
		return rc;
	if (node)
		*node = v;
	snprintf(label, sizeof label, "%s.%s", what, key);
	return kf_ytree_str(c, v, label, 0, out);
}

void kf_spec_free(kf_spec *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->dir);
	free(s->name);
	free(s->version);
	free(s->kube_version);
	for (size_t i = 0; i < s->narch; i++)
		free(s->archs[i]);
	for (size_t i = 0; i < s->ncomp; i++) {
		kf_spec_component *k = &s->components[i];
		free(k->name);
		free(k->version);
		free(k->url);
		for (size_t a = 0; a < KF_ARCH_MAX; a++)
			free(k->sha256[a]);
	}
	free(s->components);
	for (size_t i = 0; i < s->nimg; i++) {
		free(s->images[i].ref);
		free(s->images[i].digest);
	}
	free(s->images);
	kf_install_clear(&s->install);
	free(s);
}

char *kf_spec_source_url(const kf_spec_component *c, const char *arch)
{
	size_t cap = 1, vl = strlen(c->version), al = strlen(arch);
	const char *p;
	char *out, *o;

	for (p = c->url; *p; p++) {
		if (!strncmp(p, "{version}", 9)) {
			cap += vl;
			p += 8;
		} else if (!strncmp(p, "{arch}", 6)) {
			cap += al;
			p += 5;
		} else {
			cap++;
		}
	}
	out = malloc(cap);
	if (!out)
		return NULL;
	for (p = c->url, o = out; *p; p++) {
		if (!strncmp(p, "{version}", 9)) {
			memcpy(o, c->version, vl);
			o += vl;
			p += 8;
		} else if (!strncmp(p, "{arch}", 6)) {
			memcpy(o, arch, al);
			o += al;
			p += 5;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* Only {version} and {arch}: anything else in braces is a typo that would
 * otherwise end up verbatim in a download URL. */
static int check_placeholders(kf_yctx *c, const kf_ynode *n, const char *url, const char *what)
{
	for (const char *p = url; *p; p++) {
		if (*p == '{') {
			const char *end = strchr(p, '}');
			if (end && ((end - p == 8 && !strncmp(p, "{version}", 9)) ||
			            (end - p == 5 && !strncmp(p, "{arch}", 6)))) {
				p = end;
				continue;
			}
			return kf_ytree_fail(c, n, "bad placeholder \"%.*s\" in %s (only {version} and {arch})",
			            end ? (int)(end - p + 1) : (int)strlen(p), p, what);
		}
		if (*p == '}')
			return kf_ytree_fail(c, n, "bad placeholder: unmatched '}' in %s", what);
	}
	return KF_OK;
}

static int check_hex(kf_yctx *c, const kf_ynode *n, const char *hex, const char *what)
{
	if (kf_is_sha256_hex(hex))
		return KF_OK;
	if (strlen(hex) == 64) {
		int upper = 0, other = 0;
		for (const char *p = hex; *p; p++) {
			if (*p >= 'A' && *p <= 'F')
				upper = 1;
			else if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				other = 1;
		}
		if (upper && !other)
			return kf_ytree_fail(c, n, "%s has uppercase hex digits (write lowercase)", what);
	}
	return kf_ytree_fail(c, n, "%s is not 64 lowercase hex digits", what);
}

static int parse_archs(kf_yctx *c, const kf_ynode *seq, kf_spec *s)
{
	int rc = kf_ytree_want(c, seq, KF_Y_SEQ, "spec.architectures");
	if (rc)
		return rc;
	if (seq->n == 0)
		return kf_ytree_fail(c, seq, "spec.architectures is empty");
	for (size_t i = 0; i < seq->n; i++) {
		const kf_ynode *a = seq->items[i];
		char *v = NULL;
		if ((rc = kf_ytree_str(c, a, "an architecture", 0, &v)))
			return rc;
		if (!kf_arch_known(v)) {
			rc = kf_ytree_fail(c, a, "unknown architecture \"%s\" (known: amd64, arm64, arm, "
			          "ppc64le, s390x, riscv64)", v);
			free(v);
			return rc;
		}
		for (size_t j = 0; j < s->narch; j++)
			if (!strcmp(s->archs[j], v)) {
				rc = kf_ytree_fail(c, a, "duplicate architecture \"%s\"", v);
				free(v);
				return rc;
			}
		/* known and unique, so at most 6 < KF_ARCH_MAX */
		s->archs[s->narch++] = v;
	}
	return KF_OK;
}

static int arch_index(const kf_spec *s, const char *a)
{
	for (size_t i = 0; i < s->narch; i++)
		if (!strcmp(s->archs[i], a))
			return (int)i;
	return -1;
}

static int parse_component(kf_yctx *c, const kf_ynode *m, kf_spec *s, kf_spec_component *k)
{
	static const char *const keys[] = {"name", "version", "url", "sha256", NULL};
	const kf_ynode *vn, *urln, *sums;
	char what[160];
	int rc;

	k->line = m->line;
	k->col = m->col;
	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "a component")) ||
	    (rc = check_keys(c, m, "a component", keys)) ||
	    (rc = req_str(c, m, "name", "component", &k->name, &vn)))
		return rc;
	if (!kf_valid_name(k->name))
		return kf_ytree_fail(c, vn, "bad component name \"%s\" (lowercase letters, digits, '.', '_', '-')",
		            k->name);
	snprintf(what, sizeof what, "component %s", k->name);
	for (size_t i = 0; s->components + i < k; i++)
		if (!strcmp(s->components[i].name, k->name))
			return kf_ytree_fail(c, vn, "duplicate component \"%s\" (first at line %d)", k->name,
			            s->components[i].line);
	if ((rc = req_str(c, m, "version", what, &k->version, &vn)))
		return rc;
	if (!kf_valid_token(k->version))
		return kf_ytree_fail(c, vn, "bad version \"%s\" in %s (letters, digits, '.', '_', '+', '-')",
		            k->version, what);
	if ((rc = req_str(c, m, "url", what, &k->url, &urln)) ||
	    (rc = check_placeholders(c, urln, k->url, what)) ||
	    (rc = need(c, m, "sha256", what, &sums)) ||
	    (rc = kf_ytree_want(c, sums, KF_Y_MAP, "sha256")))
		return rc;
	for (size_t i = 0; i < sums->n; i += 2) {
		const kf_ynode *key = sums->items[i], *val = sums->items[i + 1];
		char label[200];
		int ai;
		if (!kf_arch_known(key->value))
			return kf_ytree_fail(c, key, "unknown architecture \"%s\" in sha256 of %s", key->value, what);
		ai = arch_index(s, key->value);
		if (ai < 0)
			return kf_ytree_fail(c, key, "sha256 of %s names architecture \"%s\", which is not in "
			            "spec.architectures", what, key->value);
		snprintf(label, sizeof label, "sha256 of %s for %s", what, key->value);
		if ((rc = kf_ytree_str(c, val, label, 0, &k->sha256[ai])) ||
		    (rc = check_hex(c, val, k->sha256[ai], label)))
			return rc;
	}
	for (size_t a = 0; a < s->narch; a++)
		if (!k->sha256[a])
			return kf_ytree_fail(c, sums, "missing sha256 for architecture %s in %s", s->archs[a], what);
	/* Check every expanded source now, so that lint catches a URL that
	 * could never be placed in a bundle. */
	for (size_t a = 0; a < s->narch; a++) {
		char *u = kf_spec_source_url(k, s->archs[a]), *p;
		if (!u)
			return kf_err_set(c->e, KF_EIO, "out of memory");
		p = kf_entry_path_for_url(u, c->e);
		free(u);
		if (!p)
			return kf_err_prefix(c->e, "%s:%d:%d: url of %s", c->origin, urln->line,
			                     urln->col, what);
		free(p);
	}
	return KF_OK;
}

/* Two sources landing on one bundle path must be the same bytes (a file
 * shared by all architectures); anything else could never be built. */
static int check_paths_unique(kf_yctx *c, kf_spec *s)
{
	int rc = KF_OK;
	size_t n = s->ncomp * s->narch, i, j;
	char **paths = calloc(n ? n : 1, sizeof *paths);
	if (!paths)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (i = 0; i < n && !rc; i++) {
		kf_spec_component *k = &s->components[i / s->narch];
		size_t a = i % s->narch;
		char *u = kf_spec_source_url(k, s->archs[a]);
		paths[i] = u ? kf_entry_path_for_url(u, c->e) : NULL;
		free(u);
		if (!paths[i]) {
			rc = c->e->code ? c->e->code : KF_EIO;
			break;
		}
		for (j = 0; j < i; j++) {
			kf_spec_component *o = &s->components[j / s->narch];
			if (strcmp(paths[i], paths[j]) || !strcmp(k->sha256[a], o->sha256[j % s->narch]))
				continue;
			{
				kf_ynode at = {.line = k->line, .col = k->col};
				rc = kf_ytree_fail(c, &at, "component %s (%s) and component %s (%s) have the same "
				          "source path %s but different sha256", k->name, s->archs[a],
				          o->name, s->archs[j % s->narch], paths[i]);
			}
			break;
		}
	}
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

static int parse_image(kf_yctx *c, const kf_ynode *m, kf_spec *s, kf_spec_image *im)
{
	static const char *const keys[] = {"ref", "digest", NULL};
	const kf_ynode *rn, *dn;
	const char *why;
	int rc;

	im->line = m->line;
	im->col = m->col;
	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "an image")) ||
	    (rc = check_keys(c, m, "an image", keys)) ||
	    (rc = req_str(c, m, "ref", "image", &im->ref, &rn)))
		return rc;
	if (!kf_valid_image_ref(im->ref, &why))
		return kf_ytree_fail(c, rn, "bad image reference \"%s\": %s", im->ref, why);
	for (size_t i = 0; s->images + i < im; i++)
		if (!strcmp(s->images[i].ref, im->ref))
			return kf_ytree_fail(c, rn, "duplicate image \"%s\" (first at line %d)", im->ref,
			            s->images[i].line);
	dn = find(m, "digest");
	if (dn && !kf_ytree_is_null(dn)) {
		if ((rc = kf_ytree_str(c, dn, "image digest", 0, &im->digest)))
			return rc;
		if (!kf_valid_image_digest(im->digest))
			return kf_ytree_fail(c, dn, "bad digest \"%s\" for image %s (sha256:<64 lowercase hex>)",
			            im->digest, im->ref);
	}
	return KF_OK;
}

static int parse_install(kf_yctx *c, const kf_ynode *m, kf_install *in)
{
	static const char *const keys[] = {"etcd", "cni", "podSubnet", "serviceSubnet",
	                                   "mirror", "kubeProxyMode", NULL};
	const kf_ynode *v;
	int rc;

	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "spec.install")) ||
	    (rc = check_keys(c, m, "spec.install", keys)))
		return rc;
	if ((v = find(m, "etcd"))) {
		if ((rc = kf_ytree_str(c, v, "install.etcd", 0, &in->etcd)))
			return rc;
		if (strcmp(in->etcd, "host") && strcmp(in->etcd, "kubeadm"))
			return kf_ytree_fail(c, v, "install.etcd must be \"host\" or \"kubeadm\", not \"%s\"", in->etcd);
	}
	if ((v = find(m, "cni"))) {
		if ((rc = kf_ytree_str(c, v, "install.cni", 0, &in->cni)))
			return rc;
		/* "none": the bundle carries no CNI addon; the site brings its own. */
		if (strcmp(in->cni, "flannel") && strcmp(in->cni, "none"))
			return kf_ytree_fail(c, v, "install.cni must be \"flannel\" or \"none\", not \"%s\"", in->cni);
	}
	if ((v = find(m, "podSubnet"))) {
		if ((rc = kf_ytree_str(c, v, "install.podSubnet", 0, &in->pod_subnet)))
			return rc;
		if (!kf_valid_cidr(in->pod_subnet))
			return kf_ytree_fail(c, v, "install.podSubnet \"%s\" is not a CIDR", in->pod_subnet);
	}
	if ((v = find(m, "serviceSubnet"))) {
		if ((rc = kf_ytree_str(c, v, "install.serviceSubnet", 0, &in->service_subnet)))
			return rc;
		if (!kf_valid_cidr(in->service_subnet))
			return kf_ytree_fail(c, v, "install.serviceSubnet \"%s\" is not a CIDR", in->service_subnet);
	}
	if ((v = find(m, "mirror")) && !kf_ytree_is_null(v)) {
		if ((rc = kf_ytree_str(c, v, "install.mirror", 0, &in->mirror)))
			return rc;
		if (!kf_valid_https_url(in->mirror))
			return kf_ytree_fail(c, v, "install.mirror \"%s\" is not an https:// URL", in->mirror);
	}
	/* Absent: the installer picks by the node (nftables on EL10). */
	if ((v = find(m, "kubeProxyMode"))) {
		if ((rc = kf_ytree_str(c, v, "install.kubeProxyMode", 0, &in->kube_proxy_mode)))
			return rc;
		if (strcmp(in->kube_proxy_mode, "iptables") && strcmp(in->kube_proxy_mode, "nftables"))
			return kf_ytree_fail(c, v, "install.kubeProxyMode must be \"iptables\" or \"nftables\", not \"%s\"",
			                     in->kube_proxy_mode);
	}
	return KF_OK;
}

static int parse_spec(kf_yctx *c, const kf_ynode *root, kf_spec *s)
{
	static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
	static const char *const meta_keys[] = {"name", "version", NULL};
	static const char *const spec_keys[] = {"kubernetesVersion", "architectures",
	                                        "components", "images", "install", NULL};
	const kf_ynode *v, *meta, *sp, *seq;
	char *tmp = NULL;
	int rc;

	if ((rc = kf_ytree_want(c, root, KF_Y_MAP, "a spec")) ||
	    (rc = check_keys(c, root, "the spec", top_keys)) ||
	    (rc = req_str(c, root, "apiVersion", "the spec", &tmp, &v)))
		goto out;
	if (strcmp(tmp, "kubeferry.io/v1")) {
		rc = kf_ytree_fail(c, v, "apiVersion must be \"kubeferry.io/v1\", not \"%s\"", tmp);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if ((rc = req_str(c, root, "kind", "the spec", &tmp, &v)))
		goto out;
	if (strcmp(tmp, "Bundle")) {
		rc = kf_ytree_fail(c, v, "kind must be \"Bundle\", not \"%s\"", tmp);
		goto out;
	}
	if ((rc = need(c, root, "metadata", "the spec", &meta)) ||
	    (rc = kf_ytree_want(c, meta, KF_Y_MAP, "metadata")) ||
	    (rc = check_keys(c, meta, "metadata", meta_keys)) ||
	    (rc = req_str(c, meta, "name", "metadata", &s->name, &v)))
		goto out;
	if (!kf_valid_name(s->name)) {
		rc = kf_ytree_fail(c, v, "bad metadata.name \"%s\" (lowercase letters, digits, '.', '_', '-')",
		          s->name);
		goto out;
	}
	if ((rc = req_str(c, meta, "version", "metadata", &s->version, &v)))
		goto out;
	if (!kf_valid_token(s->version)) {
		rc = kf_ytree_fail(c, v, "bad metadata.version \"%s\"", s->version);
		goto out;
	}
	if ((rc = need(c, root, "spec", "the spec", &sp)) ||
	    (rc = kf_ytree_want(c, sp, KF_Y_MAP, "spec")) ||
	    (rc = check_keys(c, sp, "spec", spec_keys)))
		goto out;
	if ((v = find(sp, "kubernetesVersion"))) {
		if ((rc = kf_ytree_str(c, v, "spec.kubernetesVersion", 0, &s->kube_version)))
			goto out;
		if (!kf_valid_token(s->kube_version)) {
			rc = kf_ytree_fail(c, v, "bad spec.kubernetesVersion \"%s\"", s->kube_version);
			goto out;
		}
	} else if (!(s->kube_version = strdup(s->version))) {
		rc = kf_err_set(c->e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = need(c, sp, "architectures", "spec", &seq)) ||
	    (rc = parse_archs(c, seq, s)) ||
	    (rc = need(c, sp, "components", "spec", &seq)) ||
	    (rc = kf_ytree_want(c, seq, KF_Y_SEQ, "spec.components")))
		goto out;
	s->components = calloc(seq->n ? seq->n : 1, sizeof *s->components);
	if (!s->components) {
		rc = kf_err_set(c->e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < seq->n; i++) {
		s->ncomp++;
		if ((rc = parse_component(c, seq->items[i], s, &s->components[i])))
			goto out;
	}
	if ((rc = check_paths_unique(c, s)))
		goto out;
	if ((seq = find(sp, "images")) && !kf_ytree_is_null(seq)) {
		if ((rc = kf_ytree_want(c, seq, KF_Y_SEQ, "spec.images")))
			goto out;
		s->images = calloc(seq->n ? seq->n : 1, sizeof *s->images);
		if (!s->images) {
			rc = kf_err_set(c->e, KF_EIO, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < seq->n; i++) {
			s->nimg++;
			if ((rc = parse_image(c, seq->items[i], s, &s->images[i])))
				goto out;
		}
	}
	if ((v = find(sp, "install")) && (rc = parse_install(c, v, &s->install)))
		goto out;
	if (kf_install_set_defaults(&s->install))
		rc = kf_err_set(c->e, KF_EIO, "out of memory");
out:
	free(tmp);
	return rc;
}

int kf_spec_load(const char *path, kf_spec **out, kf_err *e)
{
	char *buf = NULL;
	size_t len = 0;
	kf_ynode *root = NULL;
	kf_spec *s = NULL;
	char dir[PATH_MAX];
	kf_yctx c = {path, KF_EUSAGE, e};
	int rc;

	*out = NULL;
	if ((rc = kf_read_file(path, KF_SPEC_MAX, &buf, &len, e)))
		goto out;
	if ((rc = kf_ytree_parse(buf, len, path, KF_EUSAGE, &root, e)))
		goto out;
	s = calloc(1, sizeof *s);
	kf_dirname(path, dir, sizeof dir);
	if (!s || !(s->path = strdup(path)) || !(s->dir = strdup(dir))) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = parse_spec(&c, root, s)))
		goto out;
	*out = s;
	s = NULL;
out:
	kf_spec_free(s);
	kf_ytree_free(root);
	free(buf);
	return rc;
}
