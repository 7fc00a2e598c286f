/*
 * The lock's parser: it reads input that is signed but may still have been
 * shaped by an attacker who holds a key, or fed to us before the signature
 * is checked, so it is strict: every key, type and value is checked and
 * any deviation is KF_EVERIFY naming origin:LINE:COL. The canonical form it
 * reads is written by lock_emit.c.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

/* ---- parser --------------------------------------------------------------- */

/* Every key of the schema is required and no other is allowed, except
 * keys written "?key": optional (their value NULL when absent). */
static int exact_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                      const char *const *keys, const kf_ynode **vals)
{
	size_t nk = 0;
	int rc = kf_ytree_want(c, map, KF_Y_MAP, what);
	if (rc)
		return rc;
	for (; keys[nk]; nk++)
		vals[nk] = NULL;
	for (size_t i = 0; i < map->n; i += 2) {
		const kf_ynode *k = map->items[i];
		size_t j;
		for (j = 0; j < nk; j++)
			if (kf_ytree_key_is(k, keys[j] + (keys[j][0] == '?')))
				break;
		if (j == nk)
			return kf_ytree_fail(c, k, "unknown key \"%s\" in %s", k->value, what);
		vals[j] = map->items[i + 1];
	}
	for (size_t j = 0; j < nk; j++)
		if (!vals[j] && keys[j][0] != '?')
			return kf_ytree_fail(c, map, "missing key \"%s\" in %s", keys[j], what);
	return KF_OK;
}

/* Lock strings are printable ASCII: they end up in messages and paths. */
static int str(kf_yctx *c, const kf_ynode *n, const char *what, char **out)
{
	return kf_ytree_str(c, n, what, 1, out);
}

static int hex(kf_yctx *c, const kf_ynode *n, const char *what, char *dst, size_t cap)
{
	char *v = NULL;
	int rc = str(c, n, what, &v);
	if (!rc && (!kf_is_sha256_hex(v) || cap < KF_SHA256_HEX))
		rc = kf_ytree_fail(c, n, "%s is not 64 lowercase hex digits", what);
	if (!rc)
		memcpy(dst, v, KF_SHA256_HEX);
	free(v);
	return rc;
}

static int u64(kf_yctx *c, const kf_ynode *n, const char *what, uint64_t *out)
{
	uint64_t v = 0;
	int rc = kf_ytree_want(c, n, KF_Y_SCALAR, what);
	if (rc)
		return rc;
	/* Canonical decimal only: no sign, no leading zeros, no 0x, no 1e3. */
	if (!n->plain || n->len == 0 || n->len > 20 || strlen(n->value) != n->len ||
	    (n->value[0] == '0' && n->len > 1))
		return kf_ytree_fail(c, n, "%s must be a decimal integer", what);
	for (const char *p = n->value; *p; p++) {
		if (*p < '0' || *p > '9')
			return kf_ytree_fail(c, n, "%s must be a decimal integer", what);
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return kf_ytree_fail(c, n, "%s is too large", what);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return KF_OK;
}

static int str_list(kf_yctx *c, const kf_ynode *n, const char *what, char **dst,
                    size_t *count, int (*valid)(const char *))
{
	int rc = kf_ytree_want(c, n, KF_Y_SEQ, what);
	if (rc)
		return rc;
	if (n->n == 0 || n->n > KF_ARCH_MAX)
		return kf_ytree_fail(c, n, "%s must hold 1 to %d items", what, KF_ARCH_MAX);
	for (size_t i = 0; i < n->n; i++) {
		if ((rc = str(c, n->items[i], what, &dst[*count])))
			return rc;
		(*count)++;
		if (!valid(dst[i]))
			return kf_ytree_fail(c, n->items[i], "bad value \"%s\" in %s", dst[i], what);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(dst[j], dst[i]))
				return kf_ytree_fail(c, n->items[i], "duplicate \"%s\" in %s", dst[i], what);
	}
	return KF_OK;
}

static int valid_rfc3339_utc(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SSZ exactly */
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
	if (strlen(s) != sizeof pat - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	return 1;
}

static int parse_component(kf_yctx *c, const kf_ynode *n, kf_lock *l, kf_lock_component *k)
{
	static const char *const keys[] = {"name", "version", "arch", "url", "sha256", "path", NULL};
	const kf_ynode *v[6];
	char sum[KF_SHA256_HEX];
	char *want_path = NULL;
	kf_err pe = {0};
	size_t a;
	int rc;

	if ((rc = exact_keys(c, n, "a component", keys, v)) ||
	    (rc = str(c, v[0], "component name", &k->name)) ||
	    (rc = str(c, v[1], "component version", &k->version)) ||
	    (rc = str(c, v[2], "component arch", &k->arch)) ||
	    (rc = str(c, v[3], "component url", &k->url)) ||
	    (rc = hex(c, v[4], "component sha256", sum, sizeof sum)) ||
	    (rc = str(c, v[5], "component path", &k->path)))
		return rc;
	if (!(k->sha256 = strdup(sum)))
		return kf_err_set(c->e, KF_EIO, "out of memory");
	if (!kf_valid_name(k->name))
		return kf_ytree_fail(c, v[0], "bad component name \"%s\"", k->name);
	if (!kf_valid_token(k->version))
		return kf_ytree_fail(c, v[1], "bad component version \"%s\"", k->version);
	for (a = 0; a < l->narch; a++)
		if (!strcmp(l->archs[a], k->arch))
			break;
	if (a == l->narch)
		return kf_ytree_fail(c, v[2], "component %s: arch \"%s\" is not in architectures",
		            k->name, k->arch);
	for (kf_lock_component *o = l->components; o < k; o++)
		if (!strcmp(o->name, k->name) && !strcmp(o->arch, k->arch))
			return kf_ytree_fail(c, n, "duplicate component %s for %s", k->name, k->arch);
	/* The path is a function of the URL: a lock cannot point a component
	 * at some other entry than the one its URL names. */
	want_path = kf_entry_path_for_url(k->url, &pe);
	if (!want_path)
		rc = kf_ytree_fail(c, v[3], "component %s: %s", k->name, pe.msg);
	else if (strcmp(want_path, k->path))
		rc = kf_ytree_fail(c, v[5], "component %s: path \"%s\" does not match its url (expected \"%s\")",
		          k->name, k->path, want_path);
	free(want_path);
	return rc;
}

static int parse_image(kf_yctx *c, const kf_ynode *n, kf_lock *l, kf_lock_image *im)
{
	static const char *const keys[] = {"ref", "digest", "platforms", NULL};
	const kf_ynode *v[3];
	const char *why;
	int rc;

	if ((rc = exact_keys(c, n, "an image", keys, v)) ||
	    (rc = str(c, v[0], "image ref", &im->ref)))
		return rc;
	if (!kf_oci_ref_valid(im->ref, &why))
		return kf_ytree_fail(c, v[0], "bad image reference \"%s\": %s", im->ref, why);
	for (kf_lock_image *o = l->images; o < im; o++)
		if (!strcmp(o->ref, im->ref))
			return kf_ytree_fail(c, v[0], "duplicate image \"%s\"", im->ref);
	if ((rc = str(c, v[1], "image digest", &im->digest)))
		return rc;
	if (!kf_oci_digest_valid(im->digest))
		return kf_ytree_fail(c, v[1], "bad digest \"%s\" (sha256:<64 lowercase hex>)", im->digest);
	return str_list(c, v[2], "platforms", im->platforms, &im->nplat, kf_valid_platform);
}

static int parse_base(kf_yctx *c, const kf_ynode *n, kf_lock_base *b)
{
	static const char *const keys[] = {"name", "version", "lock", NULL};
	const kf_ynode *v[3];
	int rc;

	if ((rc = exact_keys(c, n, "base", keys, v)) ||
	    (rc = str(c, v[0], "base.name", &b->name)) ||
	    (rc = str(c, v[1], "base.version", &b->version)) ||
	    (rc = hex(c, v[2], "base.lock", b->lock, sizeof b->lock)))
		return rc;
	if (!kf_valid_name(b->name))
		return kf_ytree_fail(c, v[0], "bad base.name \"%s\"", b->name);
	if (!kf_valid_token(b->version))
		return kf_ytree_fail(c, v[1], "bad base.version \"%s\"", b->version);
	return KF_OK;
}

static int parse_install(kf_yctx *c, const kf_ynode *n, kf_install *in)
{
	static const char *const keys[] = {"etcd", "cni", "podSubnet", "serviceSubnet", "mirror",
	                                   "?kubeProxyMode", NULL};
	const kf_ynode *v[6];
	int rc;

	if ((rc = exact_keys(c, n, "install", keys, v)) ||
	    (rc = str(c, v[0], "install.etcd", &in->etcd)) ||
	    (rc = str(c, v[1], "install.cni", &in->cni)) ||
	    (rc = str(c, v[2], "install.podSubnet", &in->pod_subnet)) ||
	    (rc = str(c, v[3], "install.serviceSubnet", &in->service_subnet)))
		return rc;
	if (strcmp(in->etcd, "host") && strcmp(in->etcd, "kubeadm"))
		return kf_ytree_fail(c, v[0], "install.etcd must be \"host\" or \"kubeadm\"");
	if (strcmp(in->cni, "flannel") && strcmp(in->cni, "none"))
		return kf_ytree_fail(c, v[1], "install.cni must be \"flannel\" or \"none\"");
	if (!kf_valid_cidr(in->pod_subnet))
		return kf_ytree_fail(c, v[2], "install.podSubnet is not a CIDR");
	if (!kf_valid_cidr(in->service_subnet))
		return kf_ytree_fail(c, v[3], "install.serviceSubnet is not a CIDR");
	if (!kf_ytree_is_null(v[4])) {
		if ((rc = str(c, v[4], "install.mirror", &in->mirror)))
			return rc;
		if (!kf_valid_https_url(in->mirror))
			return kf_ytree_fail(c, v[4], "install.mirror is not an https:// URL");
	}
	if (v[5]) {
		if ((rc = str(c, v[5], "install.kubeProxyMode", &in->kube_proxy_mode)))
			return rc;
		if (strcmp(in->kube_proxy_mode, "iptables") && strcmp(in->kube_proxy_mode, "nftables"))
			return kf_ytree_fail(c, v[5], "install.kubeProxyMode must be \"iptables\" or \"nftables\"");
	}
	return KF_OK;
}

/* Every path of a signed lock must be able to exist on disk at once, so
 * that a bundle verify accepts also unpacks: no component longer than a
 * file name may be (NAME_MAX), and no entry inside another entry (a file
 * "X" and "X/child"). The entries are sorted, so each parent is looked up
 * by binary search. */
static int check_on_disk(kf_yctx *c, const kf_ynode *n, const kf_lock *l,
                         const kf_lock_entry *en)
{
	char parent[1025];          /* kf_path_safe: at most 1024 bytes */
	const char *p = en->path, *slash;

	/* en->path was set by parse_entry before this check. */
	while ((slash = strchr(p, '/')) != NULL || *p) { // NOLINT(clang-analyzer-core.NonNullParamChecker)
		size_t seg = slash ? (size_t)(slash - p) : strlen(p);
		size_t at = (size_t)(p - en->path) + seg;
		if (seg > NAME_MAX)
			return kf_ytree_fail(c, n, "entry path \"%s\": a component of %zu bytes (at most %d fit in a file name)",
			                     en->path, seg, NAME_MAX);
		if (!slash)
			break;
		if (at < sizeof parent) {
			memcpy(parent, en->path, at);
			parent[at] = '\0';
			if (kf_lock_find(l, parent))
				return kf_ytree_fail(c, n, "entry \"%s\" cannot exist: \"%s\" is a file in the lock",
				                     en->path, parent);
		}
		p = slash + 1;
	}
	return KF_OK;
}

static int parse_entry(kf_yctx *c, const kf_ynode *n, kf_lock_entry *en, const kf_lock_entry *prev,
                       uint64_t *total)
{
	static const char *const keys[] = {"path", "size", "mode", "sha256", NULL};
	const kf_ynode *v[4];
	char *mode = NULL;
	int rc;

	if ((rc = exact_keys(c, n, "an entry", keys, v)) ||
	    (rc = str(c, v[0], "entry path", &en->path)))
		goto out;
	/* The reader extracts these paths: nothing may climb out of the
	 * destination or overwrite the lock and its signature. */
	if (!kf_path_safe(en->path)) {
		rc = kf_ytree_fail(c, v[0], "unsafe entry path \"%s\"", en->path);
		goto out;
	}
	if (!strcmp(en->path, KF_LOCK_PATH) || !strcmp(en->path, KF_LOCK_SIG_PATH)) {
		rc = kf_ytree_fail(c, v[0], "entry \"%s\" names the lock itself", en->path);
		goto out;
	}
	if (prev) {
		int cmp = strcmp(prev->path, en->path);
		if (cmp == 0) {
			rc = kf_ytree_fail(c, v[0], "duplicate entry \"%s\"", en->path);
			goto out;
		}
		if (cmp > 0) {
			rc = kf_ytree_fail(c, v[0], "entries are not sorted: \"%s\" after \"%s\"", en->path,
			          prev->path);
			goto out;
		}
	}
	if ((rc = u64(c, v[1], "entry size", &en->size)))
		goto out;
	if (en->size > UINT64_MAX - *total) {
		rc = kf_ytree_fail(c, v[1], "entry sizes overflow");
		goto out;
	}
	*total += en->size;
	if ((rc = str(c, v[2], "entry mode", &mode)))
		goto out;
	/* "0644": permission bits only, never setuid, setgid or sticky. */
	if (strlen(mode) != 4 || mode[0] != '0' || strspn(mode + 1, "01234567") != 3) {
		rc = kf_ytree_fail(c, v[2], "entry mode \"%s\" is not a quoted octal \"0NNN\"", mode);
		goto out;
	}
	en->mode = (unsigned)strtoul(mode, NULL, 8);
	rc = hex(c, v[3], "entry sha256", en->sha256, sizeof en->sha256);
out:
	free(mode);
	return rc;
}

void kf_lock_free(kf_lock *l)
{
	if (!l)
		return;
	free(l->name);
	free(l->version);
	free(l->kube_version);
	for (size_t i = 0; i < l->narch; i++)
		free(l->archs[i]);
	free(l->created);
	free(l->builder);
	free(l->base.name);
	free(l->base.version);
	for (size_t i = 0; i < l->ncomp; i++) {
		kf_lock_component *k = &l->components[i];
		free(k->name);
		free(k->version);
		free(k->arch);
		free(k->url);
		free(k->sha256);
		free(k->path);
	}
	free(l->components);
	for (size_t i = 0; i < l->nimg; i++) {
		free(l->images[i].ref);
		free(l->images[i].digest);
		for (size_t j = 0; j < l->images[i].nplat; j++)
			free(l->images[i].platforms[j]);
	}
	free(l->images);
	kf_install_clear(&l->install);
	kf_lock_packages_free(l);
	for (size_t i = 0; i < l->nentries; i++)
		free(l->entries[i].path);
	free(l->entries);
	free(l);
}

static int parse_lock(kf_yctx *c, const kf_ynode *root, kf_lock *l)
{
	static const char *const keys[] = {"format", "name", "version", "kubernetesVersion",
	                                   "architectures", "created", "builder", "components",
	                                   "images", "install", "entries", "?base", "?packages",
	                                   "?adminPackages", NULL};
	const kf_ynode *v[14], *fmt;
	uint64_t format = 0, total = 0;
	int rc;

	if ((rc = kf_ytree_want(c, root, KF_Y_MAP, "the lock")))
		return rc;
	/* The format first: a newer format must say so, not "unknown key". */
	fmt = NULL;
	for (size_t i = 0; i + 1 < root->n; i += 2)
		if (!strcmp(root->items[i]->value, "format"))
			fmt = root->items[i + 1];
	if (!fmt)
		return kf_ytree_fail(c, root, "missing key \"format\" in the lock");
	if ((rc = u64(c, fmt, "format", &format)))
		return rc;
	if (format != KF_FORMAT_VERSION)
		return kf_ytree_fail(c, fmt, "unsupported lock format %llu (this kubeferry reads %d)",
		            (unsigned long long)format, KF_FORMAT_VERSION);
	l->format = KF_FORMAT_VERSION;
	/* base:, packages: and adminPackages: are optional: bundles that are
	 * not deltas, or carry no host packages, keep their bytes. */
	if ((rc = exact_keys(c, root, "the lock", keys, v)) ||
	    (rc = str(c, v[1], "name", &l->name)) ||
	    (rc = str(c, v[2], "version", &l->version)) ||
	    (rc = str(c, v[3], "kubernetesVersion", &l->kube_version)))
		return rc;
	if (!kf_valid_name(l->name))
		return kf_ytree_fail(c, v[1], "bad name \"%s\"", l->name);
	if (!kf_valid_token(l->version))
		return kf_ytree_fail(c, v[2], "bad version \"%s\"", l->version);
	if (!kf_valid_token(l->kube_version))
		return kf_ytree_fail(c, v[3], "bad kubernetesVersion \"%s\"", l->kube_version);
	if ((rc = str_list(c, v[4], "architectures", l->archs, &l->narch, kf_arch_known)) ||
	    (rc = str(c, v[5], "created", &l->created)))
		return rc;
	if (!valid_rfc3339_utc(l->created))
		return kf_ytree_fail(c, v[5], "created \"%s\" is not YYYY-MM-DDTHH:MM:SSZ", l->created);
	if ((rc = str(c, v[6], "builder", &l->builder)) ||
	    (rc = kf_ytree_want(c, v[7], KF_Y_SEQ, "components")))
		return rc;
	if (v[11]) {
		if ((rc = parse_base(c, v[11], &l->base)))
			return rc;
		l->delta = 1;
	}
	l->components = calloc(v[7]->n ? v[7]->n : 1, sizeof *l->components);
	if (!l->components)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < v[7]->n; i++) {
		l->ncomp++;
		if ((rc = parse_component(c, v[7]->items[i], l, &l->components[i])))
			return rc;
	}
	if ((rc = kf_ytree_want(c, v[8], KF_Y_SEQ, "images")))
		return rc;
	l->images = calloc(v[8]->n ? v[8]->n : 1, sizeof *l->images);
	if (!l->images)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < v[8]->n; i++) {
		l->nimg++;
		if ((rc = parse_image(c, v[8]->items[i], l, &l->images[i])))
			return rc;
	}
	if ((rc = parse_install(c, v[9], &l->install)) ||
	    (rc = kf_ytree_want(c, v[10], KF_Y_SEQ, "entries")))
		return rc;
	l->entries = calloc(v[10]->n ? v[10]->n : 1, sizeof *l->entries);
	if (!l->entries)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < v[10]->n; i++) {
		l->nentries++;
		if ((rc = parse_entry(c, v[10]->items[i], &l->entries[i],
		                      i ? &l->entries[i - 1] : NULL, &total)))
			return rc;
	}
	for (size_t i = 0; i < l->nentries; i++)
		if ((rc = check_on_disk(c, v[10]->items[i], l, &l->entries[i])))
			return rc;
	for (int admin = 0; admin < 2; admin++) {
		const kf_ynode *pkgs = v[12 + admin];
		if (pkgs && ((rc = kf_lock_packages_parse(c, pkgs, l, admin)) ||
		             (rc = kf_lock_packages_check_entries(c, pkgs, l, admin))))
			return rc;
	}
	return KF_OK;
}

int kf_lock_parse(const char *buf, size_t len, const char *origin,
                  kf_lock **out, kf_err *e)
{
	kf_ynode *root = NULL;
	kf_lock *l = NULL;
	kf_yctx c = {origin, KF_EVERIFY, e};
	int rc;

	*out = NULL;
	if (!buf) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: no lock", origin);
		goto out;
	}
	if (len > KF_LOCK_MAX) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: lock is larger than %u bytes", origin,
		                (unsigned)KF_LOCK_MAX);
		goto out;
	}
	if ((rc = kf_ytree_parse(buf, len, origin, KF_EVERIFY, &root, e)))
		goto out;
	if (!(l = calloc(1, sizeof *l))) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = parse_lock(&c, root, l)))
		goto out;
	*out = l;
	l = NULL;
out:
	kf_lock_free(l);
	kf_ytree_free(root);
	return rc;
}

const kf_lock_entry *kf_lock_find(const kf_lock *l, const char *path)
{
	size_t lo = 0, hi = l->nentries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(path, l->entries[mid].path);
		if (cmp == 0)
			return &l->entries[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

uint64_t kf_lock_total_size(const kf_lock *l)
{
	uint64_t t = 0;
	for (size_t i = 0; i < l->nentries; i++)
		t += l->entries[i].size;
	return t;
}

/* For lock_packages.c: the lock's one rule for mappings. */
int kf_lock_exact_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                       const char *const *keys, const kf_ynode **vals)
{
	return exact_keys(c, map, what, keys, vals);
}
