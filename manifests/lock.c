/*
 * The lock: what a bundle holds, signed. The emitter writes one canonical
 * form (docs/bundle-format.md, appendix) so that the same content always gives the same
 * bytes and signature. The parser reads input that is signed but may still
 * have been shaped by an attacker who holds a key, or fed to us before the
 * signature is checked, so it is strict: every key, type and value is
 * checked and any deviation is KF_EVERIFY naming origin:LINE:COL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

/* ---- emitter -------------------------------------------------------------- */

typedef struct {
	char *buf;
	size_t len, cap;
	int oom;
	const char *bad;       /* first field that could not be emitted */
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

static void puts_(sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(sbuf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof tmp)
		put(b, tmp, (size_t)n);
	else
		b->oom = 1;
}

/* A YAML double-quoted string: '"' and '\' escaped, other bytes below 0x20
 * and 0x7f as \xNN. Bytes above 0x7f are refused: every lock value (paths,
 * URLs, references, versions) is ASCII, and refusing the rest keeps the
 * canonical form free of Unicode escaping choices. */
static void put_str(sbuf *b, const char *s, const char *field)
{
	if (!s) {
		if (!b->bad)
			b->bad = field;
		return;
	}
	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char esc[2] = {'\\', (char)*p};
			put(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			putf(b, "\\x%02x", *p);
		} else if (*p > 0x7f) {
			if (!b->bad)
				b->bad = field;
			return;
		} else {
			put(b, (const char *)p, 1);
		}
	}
	put(b, "\"", 1);
}

static void put_key_str(sbuf *b, const char *indent, const char *key, const char *v)
{
	puts_(b, indent);
	puts_(b, key);
	puts_(b, ": ");
	put_str(b, v, key);
	puts_(b, "\n");
}

static void put_flow(sbuf *b, char *const *v, size_t n, const char *field)
{
	puts_(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			puts_(b, ", ");
		put_str(b, v[i], field);
	}
	puts_(b, "]\n");
}

static int entry_cmp(const void *a, const void *b)
{
	const kf_lock_entry *x = a, *y = b;
	if (!x->path || !y->path)
		return !x->path - !y->path;
	return strcmp(x->path, y->path);
}

int kf_lock_emit(kf_lock *l, char **out, size_t *len, kf_err *e)
{
	sbuf b = {0};
	kf_lock *check = NULL;
	kf_err pe = {0};
	int rc = KF_OK;

	*out = NULL;
	*len = 0;
	if (l->nentries)
		qsort(l->entries, l->nentries, sizeof *l->entries, entry_cmp);
	putf(&b, "format: %d\n", l->format);
	put_key_str(&b, "", "name", l->name);
	put_key_str(&b, "", "version", l->version);
	put_key_str(&b, "", "kubernetesVersion", l->kube_version);
	puts_(&b, "architectures: ");
	put_flow(&b, l->archs, l->narch, "architectures");
	put_key_str(&b, "", "created", l->created);
	put_key_str(&b, "", "builder", l->builder);
	puts_(&b, l->ncomp ? "components:\n" : "components: []\n");
	for (size_t i = 0; i < l->ncomp; i++) {
		const kf_lock_component *c = &l->components[i];
		puts_(&b, "  - ");
		put_key_str(&b, "", "name", c->name);
		put_key_str(&b, "    ", "version", c->version);
		put_key_str(&b, "    ", "arch", c->arch);
		put_key_str(&b, "    ", "url", c->url);
		put_key_str(&b, "    ", "sha256", c->sha256);
		put_key_str(&b, "    ", "path", c->path);
	}
	puts_(&b, l->nimg ? "images:\n" : "images: []\n");
	for (size_t i = 0; i < l->nimg; i++) {
		const kf_lock_image *im = &l->images[i];
		puts_(&b, "  - ");
		put_key_str(&b, "", "ref", im->ref);
		put_key_str(&b, "    ", "digest", im->digest);
		puts_(&b, "    platforms: ");
		put_flow(&b, im->platforms, im->nplat, "platforms");
	}
	puts_(&b, "install:\n");
	put_key_str(&b, "  ", "etcd", l->install.etcd);
	put_key_str(&b, "  ", "cni", l->install.cni);
	put_key_str(&b, "  ", "podSubnet", l->install.pod_subnet);
	put_key_str(&b, "  ", "serviceSubnet", l->install.service_subnet);
	if (l->install.mirror)
		put_key_str(&b, "  ", "mirror", l->install.mirror);
	else
		puts_(&b, "  mirror: null\n");
	/* Written only when the spec sets it: locks without it stay as they
	 * were byte for byte. */
	if (l->install.kube_proxy_mode)
		put_key_str(&b, "  ", "kubeProxyMode", l->install.kube_proxy_mode);
	puts_(&b, l->nentries ? "entries:\n" : "entries: []\n");
	for (size_t i = 0; i < l->nentries; i++) {
		const kf_lock_entry *en = &l->entries[i];
		puts_(&b, "  - ");
		put_key_str(&b, "", "path", en->path);
		putf(&b, "    size: %llu\n", (unsigned long long)en->size);
		if (en->mode & ~0777u) {
			if (!b.bad)
				b.bad = "mode (only permission bits 0777 are allowed)";
		}
		putf(&b, "    mode: \"%04o\"\n", en->mode & 0777u);
		put_key_str(&b, "    ", "sha256", en->sha256);
	}
	if (b.oom) {
		rc = kf_err_set(e, KF_EIO, "out of memory writing the lock");
		goto out;
	}
	if (b.bad) {
		rc = kf_err_set(e, KF_EUSAGE, "cannot write the lock: field \"%s\" is unset or "
		                "not printable ASCII", b.bad);
		goto out;
	}
	/* Never sign what a reader would refuse: the emitted text must pass the
	 * same strict parser every installer runs. */
	if (kf_lock_parse(b.buf, b.len, KF_LOCK_PATH, &check, &pe) != KF_OK) {
		rc = kf_err_set(e, KF_EUSAGE, "refusing to write an invalid lock: %s", pe.msg);
		goto out;
	}
	*out = b.buf;
	*len = b.len;
	b.buf = NULL;
out:
	kf_lock_free(check);
	free(b.buf);
	return rc;
}

/* ---- parser --------------------------------------------------------------- */

/* Every key of the schema is required and no other is allowed. */
/* Every key of map is in keys; the first nreq of them must be present
 * (later ones are optional: fields added after format 1 was first
 * written, so older locks still parse). */
static int known_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                      const char *const *keys, const kf_ynode **vals, size_t nreq)
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
			if (kf_ytree_key_is(k, keys[j]))
				break;
		if (j == nk)
			return kf_ytree_fail(c, k, "unknown key \"%s\" in %s", k->value, what);
		vals[j] = map->items[i + 1];
	}
	for (size_t j = 0; j < nk && j < nreq; j++)
		if (!vals[j])
			return kf_ytree_fail(c, map, "missing key \"%s\" in %s", keys[j], what);
	return KF_OK;
}

static int exact_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                      const char *const *keys, const kf_ynode **vals)
{
	return known_keys(c, map, what, keys, vals, (size_t)-1);
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
	if (!kf_valid_image_ref(im->ref, &why))
		return kf_ytree_fail(c, v[0], "bad image reference \"%s\": %s", im->ref, why);
	for (kf_lock_image *o = l->images; o < im; o++)
		if (!strcmp(o->ref, im->ref))
			return kf_ytree_fail(c, v[0], "duplicate image \"%s\"", im->ref);
	if ((rc = str(c, v[1], "image digest", &im->digest)))
		return rc;
	if (!kf_valid_image_digest(im->digest))
		return kf_ytree_fail(c, v[1], "bad digest \"%s\" (sha256:<64 lowercase hex>)", im->digest);
	return str_list(c, v[2], "platforms", im->platforms, &im->nplat, kf_valid_platform);
}

static int parse_install(kf_yctx *c, const kf_ynode *n, kf_install *in)
{
	static const char *const keys[] = {"etcd", "cni", "podSubnet", "serviceSubnet", "mirror",
	                                   "kubeProxyMode", NULL};
	const kf_ynode *v[6];
	int rc;

	if ((rc = known_keys(c, n, "install", keys, v, 5)) ||
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
	for (size_t i = 0; i < l->nentries; i++)
		free(l->entries[i].path);
	free(l->entries);
	free(l);
}

static int parse_lock(kf_yctx *c, const kf_ynode *root, kf_lock *l)
{
	static const char *const keys[] = {"format", "name", "version", "kubernetesVersion",
	                                   "architectures", "created", "builder", "components",
	                                   "images", "install", "entries", NULL};
	const kf_ynode *v[11], *fmt;
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
