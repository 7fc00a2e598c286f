/*
 * Path and value rules shared by the spec and the lock: where an upstream URL
 * lands inside a bundle, which entry paths are safe to extract, and the
 * small grammars (image references, CIDRs, names) both files use.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

#define KF_PATH_MAX_LEN 1024

static const char *const known_archs[] = {
	"amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64",
};

int kf_arch_known(const char *arch)
{
	for (size_t i = 0; i < sizeof known_archs / sizeof known_archs[0]; i++)
		if (arch && !strcmp(arch, known_archs[i]))
			return 1;
	return 0;
}

/* Printable ASCII only: control characters could forge terminal output or
 * log lines, and non-ASCII names invite normalisation tricks on extraction. */
static int printable_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

int kf_path_safe(const char *path)
{
	size_t len, seg;
	const char *p;

	if (!path)
		return 0;
	len = strlen(path);
	if (len == 0 || len > KF_PATH_MAX_LEN || path[0] == '/')
		return 0;
	seg = 0;
	for (p = path;; p++) {
		if (*p == '/' || *p == '\0') {
			const char *s = p - seg;
			/* empty (a//b, trailing /), "." and ".." segments */
			if (seg == 0 || (seg == 1 && s[0] == '.') ||
			    (seg == 2 && s[0] == '.' && s[1] == '.'))
				return 0;
			if (*p == '\0')
				break;
			seg = 0;
			continue;
		}
		if (*p == '\\' || !printable_ascii((unsigned char)*p))
			return 0;
		seg++;
	}
	return 1;
}

/* Common refusals for every URL form: characters that would either change
 * what a server returns (query, fragment) or what a filesystem sees. */
static int url_chars_ok(const char *url, char *bad)
{
	for (const char *p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '?' || c == '#' || c == '\\' || !printable_ascii(c)) {
			*bad = (char)c;
			return 0;
		}
	}
	return 1;
}

char *kf_entry_path_for_url(const char *url, kf_err *e)
{
	char *out = NULL;
	char bad = 0;
	const char *rest;
	size_t n;

	if (!url || !*url) {
		kf_err_set(e, KF_EUSAGE, "empty URL");
		goto out;
	}
	if (!url_chars_ok(url, &bad)) {
		if (printable_ascii((unsigned char)bad))
			kf_err_set(e, KF_EUSAGE, "%s: '%c' is not allowed in a source URL", url, bad);
		else
			kf_err_set(e, KF_EUSAGE, "%s: control or non-ASCII byte 0x%02x in a source URL",
			           url, (unsigned char)bad);
		goto out;
	}
	if (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)) {
		const char *host = url + (url[4] == 's' ? 8 : 7);
		const char *slash = strchr(host, '/');
		size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
		if (hlen == 0 || memchr(host, '@', hlen)) {
			kf_err_set(e, KF_EUSAGE, "%s: URL needs a host (and no user:password@)", url);
			goto out;
		}
		if (!slash || !slash[1]) {
			kf_err_set(e, KF_EUSAGE, "%s: URL names no file", url);
			goto out;
		}
		n = strlen("files/") + strlen(host) + 1;
		out = malloc(n);
		if (!out)
			goto oom;
		snprintf(out, n, "files/%s", host);
		/* Host names are case-insensitive: one spelling per host. */
		for (size_t i = 6; i < 6 + hlen; i++)
			out[i] = (char)tolower((unsigned char)out[i]);
	} else if (!strncmp(url, "file://", 7)) {
		rest = url + 7;
		if (rest[0] != '/') {
			kf_err_set(e, KF_EUSAGE, "%s: file URLs must be absolute (file:///path)", url);
			goto out;
		}
		n = strlen("files/local") + strlen(rest) + 1;
		out = malloc(n);
		if (!out)
			goto oom;
		snprintf(out, n, "files/local%s", rest);
	} else if (strstr(url, "://") || url[0] == '/') {
		kf_err_set(e, KF_EUSAGE, "%s: unsupported source (use https://, http://, "
		           "file:/// or a path relative to the spec)", url);
		goto out;
	} else {
		n = strlen("files/local/") + strlen(url) + 1;
		out = malloc(n);
		if (!out)
			goto oom;
		snprintf(out, n, "files/local/%s", url);
	}
	if (!kf_path_safe(out)) {
		kf_err_set(e, KF_EUSAGE, "%s: unsafe path (\"..\", \".\" or empty segments, "
		           "or longer than %d bytes)", url, KF_PATH_MAX_LEN);
		free(out);
		out = NULL;
	}
	goto out;
oom:
	kf_err_set(e, KF_EIO, "out of memory");
out:
	return out;
}

/* ---- small grammars ----------------------------------------------------- */

int kf_valid_token(const char *s)
{
	if (!s || !*s || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._+-", *s))
			return 0;
	return 1;
}

int kf_valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 128 || !(islower((unsigned char)*s) || isdigit((unsigned char)*s)))
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("._-", *s))
			return 0;
	return 1;
}

int kf_valid_image_digest(const char *d)
{
	return d && !strncmp(d, "sha256:", 7) && kf_is_sha256_hex(d + 7);
}

/* One repository path component: [a-z0-9]+ joined by '.', '_', '__' or
 * runs of '-' (the distribution reference grammar). */
static int repo_component_ok(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (islower(c) || isdigit(c))
			continue;
		if (c == '.' || c == '_' || c == '-') {
			if (c == '.' && !isalnum((unsigned char)s[i + 1]))
				return 0;
			if (c == '_' && s[i + 1] == '_' && s[i + 2] == '_')
				return 0;
			continue;
		}
		return 0;
	}
	return 1;
}

int kf_valid_image_ref(const char *ref, const char **why)
{
	const char *slash, *p, *tag = NULL, *path, *end;
	size_t hlen;
	int ok = 0;

	*why = "not a reference";
	if (!ref || !*ref || strlen(ref) > 255)
		goto out;
	if (strchr(ref, '@')) {
		*why = "put the digest in 'digest:', not in the reference";
		goto out;
	}
	slash = strchr(ref, '/');
	hlen = slash ? (size_t)(slash - ref) : 0;
	/* The first component is a registry only when it looks like a host:
	 * it has a dot or a port, or it is localhost. Short names resolve to
	 * different registries on different nodes, so they are refused. */
	if (!slash || !(memchr(ref, '.', hlen) || memchr(ref, ':', hlen) ||
	                (hlen == 9 && !memcmp(ref, "localhost", 9)))) {
		*why = "no registry host (write e.g. registry.k8s.io/pause:3.10 or "
		       "docker.io/library/nginx:1.28)";
		goto out;
	}
	for (p = ref; p < slash; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p)) {
			*why = "bad registry host";
			goto out;
		}
	/* The host names a directory (certs.d/<host>) and a URL: ".." or a
	 * label that starts or ends with a dot is no host name. */
	if (!(isalnum((unsigned char)ref[0]) || ref[0] == '[') ||
	    !(isalnum((unsigned char)ref[hlen - 1]) || ref[hlen - 1] == ']') ||
	    memmem(ref, hlen, "..", 2) || memmem(ref, hlen, ".:", 2)) {
		*why = "bad registry host";
		goto out;
	}
	path = slash + 1;
	/* the tag is after the last ':' that follows the last '/' */
	tag = strrchr(path, ':');
	if (tag && strchr(tag, '/'))
		tag = NULL;
	if (!tag) {
		*why = "no tag (write :TAG; the bundle pins what it carries)";
		goto out;
	}
	end = tag;
	while (path < end) {
		const char *s = memchr(path, '/', (size_t)(end - path));
		size_t n = s ? (size_t)(s - path) : (size_t)(end - path);
		if (!repo_component_ok(path, n)) {
			*why = "bad repository name (lowercase letters, digits, '.', '_', '-')";
			goto out;
		}
		path += n + (s ? 1 : 0);
		if (s && path == end) {
			*why = "bad repository name";
			goto out;
		}
	}
	if (path == slash + 1) {
		*why = "empty repository name";
		goto out;
	}
	tag++;
	if (!*tag || strlen(tag) > 128 || !(isalnum((unsigned char)*tag) || *tag == '_')) {
		*why = "bad tag";
		goto out;
	}
	for (p = tag; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
			*why = "bad tag";
			goto out;
		}
	ok = 1;
out:
	return ok;
}

int kf_valid_cidr(const char *s)
{
	char addr[64];
	const char *slash = s ? strchr(s, '/') : NULL;
	unsigned char buf[16];
	long bits;
	char *end;
	int max;

	if (!slash || (size_t)(slash - s) >= sizeof addr || !isdigit((unsigned char)slash[1]))
		return 0;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		max = 128;
	else
		return 0;
	bits = strtol(slash + 1, &end, 10);
	return *end == '\0' && bits >= 0 && bits <= max && strlen(slash + 1) <= 3;
}

int kf_valid_https_url(const char *s)
{
	char bad;
	if (!s || strncmp(s, "https://", 8) || !s[8] || s[8] == '/' || !url_chars_ok(s, &bad))
		return 0;
	return strchr(s + 8, '@') == NULL;
}

int kf_valid_platform(const char *s)
{
	int parts = 1;
	size_t seg = 0;
	if (!s || !*s)
		return 0;
	for (; ; s++) {
		if (*s == '/' || *s == '\0') {
			if (seg == 0)
				return 0;
			if (*s == '\0')
				break;
			parts++;
			seg = 0;
			continue;
		}
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return 0;
		seg++;
	}
	return parts == 2 || parts == 3;
}

/* ---- install defaults --------------------------------------------------- */

static int set_if_null(char **dst, const char *v)
{
	if (*dst)
		return 0;
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

int kf_install_set_defaults(kf_install *i)
{
	if (set_if_null(&i->etcd, "host") || set_if_null(&i->cni, "flannel") ||
	    set_if_null(&i->pod_subnet, "10.244.0.0/16") ||
	    set_if_null(&i->service_subnet, "10.96.0.0/12"))
		return -1;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void kf_install_copy(kf_install *dst, const kf_install *src)
{
	dst->etcd = dup_or_null(src->etcd);
	dst->cni = dup_or_null(src->cni);
	dst->pod_subnet = dup_or_null(src->pod_subnet);
	dst->service_subnet = dup_or_null(src->service_subnet);
	dst->mirror = dup_or_null(src->mirror);
	dst->kube_proxy_mode = dup_or_null(src->kube_proxy_mode);
}

void kf_install_clear(kf_install *i)
{
	free(i->etcd);
	free(i->cni);
	free(i->pod_subnet);
	free(i->service_subnet);
	free(i->mirror);
	free(i->kube_proxy_mode);
	memset(i, 0, sizeof *i);
}
