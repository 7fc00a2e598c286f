/*
 * containerd certs.d/<registry>/hosts.toml (containerd docs/hosts.md).
 * The file points one upstream registry at the kubeferry mirror. Both the
 * [host] table and `server` name the mirror: containerd falls back to
 * `server` when the mirror answers 404/401 and, without a `server`, to the
 * image's own registry, which in a closed network means a silent attempt to
 * reach the internet. See kf_mirror.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/kf_mirror.h"

/* Values end up inside TOML basic strings: refuse anything that could close
 * the string or start a new line, rather than escaping it. */
static int toml_safe(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

/* A registry host as it appears in an image reference: host[:port], no
 * path, so it is also a safe directory name under certs.d. */
static int registry_valid(const char *r)
{
	if (!r || !*r || !strcmp(r, ".") || !strcmp(r, "..") || strlen(r) > 255)
		return 0;
	for (const char *p = r; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
		      c == '_' || c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

static int url_valid(const char *u)
{
	return toml_safe(u) &&
	       (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7)) &&
	       !strchr(u, ' ');
}

char *kf_hosts_toml_render_list(const char *registry, const char *const *mirror_urls,
                                size_t n, const char *ca_path)
{
	kf_buf b;

	if (!registry_valid(registry) || n == 0 || (ca_path && !toml_safe(ca_path)))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!url_valid(mirror_urls[i]))
			return NULL;
	kf_buf_init(&b);
	if (n == 1)
		kf_buf_addf(&b, "# Written by kubeferry: images of %s come from the kubeferry mirror.\n"
		            "# server is the mirror as well, so a node never falls back to the\n"
		            "# internet when the mirror answers 404.\n", registry);
	else
		kf_buf_addf(&b, "# Written by kubeferry: images of %s come from the kubeferry mirrors,\n"
		            "# tried in this order. server is the first mirror as well, so a node\n"
		            "# never falls back to the internet when the mirrors answer 404.\n", registry);
	kf_buf_addf(&b, "server = \"%s\"\ncapabilities = [\"pull\", \"resolve\"]\n", mirror_urls[0]);
	/* The CA only means something for an https mirror. */
	if (ca_path && !strncmp(mirror_urls[0], "https://", 8))
		kf_buf_addf(&b, "ca = \"%s\"\n", ca_path);
	for (size_t i = 0; i < n; i++) {
		kf_buf_addf(&b, "\n[host.\"%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
		            mirror_urls[i]);
		if (ca_path && !strncmp(mirror_urls[i], "https://", 8))
			kf_buf_addf(&b, "  ca = \"%s\"\n", ca_path);
	}
	return kf_buf_take(&b);
}

char *kf_hosts_toml_render(const char *registry, const char *mirror_url,
                           const char *ca_path)
{
	return kf_hosts_toml_render_list(registry, &mirror_url, 1, ca_path);
}

int kf_hosts_toml_write(const char *certs_d, const char *registry,
                        const char *mirror_url, const char *ca_path,
                        kf_err *e)
{
	int rc = KF_OK;
	char dir[PATH_MAX], path[PATH_MAX];
	char *text = NULL;

	if (!registry_valid(registry)) {
		rc = kf_err_set(e, KF_EUSAGE, "invalid registry host '%s' for %s",
		                registry ? registry : "(null)", certs_d);
		goto out;
	}
	if (!url_valid(mirror_url)) {
		rc = kf_err_set(e, KF_EUSAGE, "invalid mirror URL '%s' (want https://HOST:PORT)",
		                mirror_url ? mirror_url : "(null)");
		goto out;
	}
	if (ca_path && !toml_safe(ca_path)) {
		rc = kf_err_set(e, KF_EUSAGE, "invalid CA path '%s'", ca_path);
		goto out;
	}
	if (snprintf(dir, sizeof dir, "%s/%s", certs_d, registry) >= (int)sizeof dir ||
	    snprintf(path, sizeof path, "%s/hosts.toml", dir) >= (int)sizeof path) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s/%s", certs_d, registry);
		goto out;
	}
	text = kf_hosts_toml_render(registry, mirror_url, ca_path);
	if (!text) {
		rc = kf_err_set(e, KF_EIO, "out of memory rendering %s", path);
		goto out;
	}
	rc = kf_mkdir_p(dir, 0755, e);
	if (rc)
		goto out;
	rc = kf_write_file_atomic(path, text, strlen(text), 0644, 1, e);
out:
	free(text);
	return rc;
}
