/*
 * The lock's emitter: one canonical form (docs/bundle-format.md, appendix),
 * so that the same content always gives the same bytes and signature. The
 * parser (lock.c) reads exactly this form.
 */
#include <limits.h>
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
	/* Only a delta has a base: a full bundle's lock is unchanged. */
	if (l->delta) {
		puts_(&b, "base:\n");
		put_key_str(&b, "  ", "name", l->base.name);
		put_key_str(&b, "  ", "version", l->base.version);
		put_key_str(&b, "  ", "lock", l->base.lock);
	}
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
	{
		kf_buf pb;
		kf_buf_init(&pb);
		kf_lock_packages_emit(l, &pb);
		if (!kf_buf_ok(&pb))
			b.oom = 1;
		else if (pb.len)
			put(&b, pb.p, pb.len);
		kf_buf_free(&pb);
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
