/*
 * Registry credentials and the Www-Authenticate challenge.
 *
 * Credentials come from the files operators already have (docker login,
 * podman/skopeo login), so kubeferry never asks for a password of its own.
 * Nothing here does I/O on the network: registry.c drives the flow.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bundler/kf_bundler.h"

#define AUTH_FILE_MAX (1u << 20)

void kf_creds_clear(kf_creds *c)
{
	if (c->pass)
		memset(c->pass, 0, strlen(c->pass));
	free(c->user);
	free(c->pass);
	c->user = c->pass = NULL;
}

int kf_creds_parse(const char *userpass, kf_creds *c, kf_err *e)
{
	int rc = KF_OK;
	const char *colon = strchr(userpass, ':');

	memset(c, 0, sizeof *c);
	if (!colon || colon == userpass) {
		rc = kf_err_set(e, KF_EUSAGE, "credentials must be USER:PASSWORD");
		goto out;
	}
	c->user = strndup(userpass, (size_t)(colon - userpass));
	c->pass = strdup(colon + 1);
	if (!c->user || !c->pass) {
		kf_creds_clear(c);
		rc = kf_err_set(e, KF_EIO, "out of memory");
	}
out:
	return rc;
}

char *kf_auth_basic_header(const kf_creds *c)
{
	char *plain = NULL, *b64 = NULL, *hdr = NULL;
	size_t n;

	if (asprintf(&plain, "%s:%s", c->user, c->pass) < 0)
		return NULL;
	n = strlen(plain);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (b64) {
		kf_b64_encode((const unsigned char *)plain, n, b64);
		if (asprintf(&hdr, "Authorization: Basic %s", b64) < 0)
			hdr = NULL;
	}
	memset(plain, 0, n);
	free(plain);
	if (b64)
		memset(b64, 0, 4 * ((n + 2) / 3) + 1);
	free(b64);
	return hdr;
}

/* The "auth" value: base64("user:pass"). */
static int decode_auth(const char *b64, const char *file, const char *key,
                       kf_creds *c, kf_err *e)
{
	int rc = KF_OK;
	size_t n = strlen(b64);
	unsigned char *buf = malloc(n + 4);
	long len;

	if (!buf) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	len = kf_b64_decode(b64, n, buf, n + 3);
	if (len < 0) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: auths.\"%s\".auth is not base64",
		                file, key);
		goto out;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', (size_t)len)) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: auths.\"%s\".auth is not user:password",
		                file, key);
		goto out;
	}
	rc = kf_creds_parse((char *)buf, c, e);
	if (rc)
		kf_err_set(e, rc, "%s: auths.\"%s\".auth is not base64(user:password)",
		           file, key);
out:
	if (buf) {
		memset(buf, 0, n + 4);
		free(buf);
	}
	return rc;
}

/* Keys under which a host may be stored: docker login writes docker.io as
 * https://index.docker.io/v1/, others write the bare host or a URL. */
static int key_matches(const char *key, const char *host)
{
	const char *k = key;
	size_t hl = strlen(host);
	int docker = !strcmp(host, "registry-1.docker.io") ||
	             !strcmp(host, "docker.io") || !strcmp(host, "index.docker.io");

	if (!strncmp(k, "https://", 8))
		k += 8;
	else if (!strncmp(k, "http://", 7))
		k += 7;
	if (docker && (!strncmp(k, "index.docker.io", 15) ||
	               !strncmp(k, "registry-1.docker.io", 20) ||
	               !strncmp(k, "docker.io", 9))) {
		size_t kl = !strncmp(k, "index", 5) ? 15 : !strncmp(k, "registry-1", 10) ? 20 : 9;
		return k[kl] == '\0' || k[kl] == '/';
	}
	return !strncmp(k, host, hl) && (k[hl] == '\0' || k[hl] == '/');
}

/* 1 found, 0 not found, or -code. */
static int lookup_file(const char *file, const char *host, kf_creds *c,
                       kf_err *e)
{
	int rc = 0;
	char *text = NULL;
	size_t len = 0;
	json_t *root = NULL, *auths, *v;
	json_error_t je;
	const char *key;
	kf_err ignore;

	/* A missing file is the common case, not an error. */
	if (kf_read_file(file, AUTH_FILE_MAX, &text, &len, &ignore) != KF_OK)
		goto out;
	root = json_loadb(text, len, 0, &je);
	if (!root || !json_is_object(root)) {
		rc = -kf_err_set(e, KF_EUSAGE, "%s:%d:%d: not a JSON object: %s", file,
		                 je.line, je.column, root ? "" : je.text);
		goto out;
	}
	auths = json_object_get(root, "auths");
	if (!auths)
		goto out;
	if (!json_is_object(auths)) {
		rc = -kf_err_set(e, KF_EUSAGE, "%s: \"auths\" is not an object", file);
		goto out;
	}
	json_object_foreach(auths, key, v) {
		json_t *a = json_is_object(v) ? json_object_get(v, "auth") : NULL;
		if (!key_matches(key, host) || !json_is_string(a) ||
		    !*json_string_value(a))
			continue;
		int r = decode_auth(json_string_value(a), file, key, c, e);
		rc = r ? -r : 1;
		goto out;
	}
out:
	json_decref(root);
	if (text) {
		memset(text, 0, len);
		free(text);
	}
	return rc;
}

int kf_creds_lookup(const char *host, kf_creds *c, kf_err *e)
{
	int rc = KF_OK, r = 0;
	char files[4][4096];
	size_t nf = 0;
	const char *v;

	memset(c, 0, sizeof *c);
	/* The order podman and skopeo use: their own file first, docker's
	 * last. */
	if ((v = getenv("REGISTRY_AUTH_FILE")) && *v)
		snprintf(files[nf++], sizeof files[0], "%s", v);
	if ((v = getenv("XDG_RUNTIME_DIR")) && *v)
		snprintf(files[nf++], sizeof files[0], "%s/containers/auth.json", v);
	if ((v = getenv("DOCKER_CONFIG")) && *v)
		snprintf(files[nf++], sizeof files[0], "%s/config.json", v);
	else if ((v = getenv("HOME")) && *v)
		snprintf(files[nf++], sizeof files[0], "%s/.docker/config.json", v);
	for (size_t i = 0; i < nf && r == 0; i++)
		r = lookup_file(files[i], host, c, e);
	if (r < 0)
		rc = -r;
	return rc;
}

void kf_auth_challenge_clear(kf_auth_challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof *c);
}

/* Parses RFC 7235 auth-params: name=token or name="quoted \" string". */
int kf_auth_parse_challenge(const char *hdr, kf_auth_challenge *c, kf_err *e)
{
	int rc = KF_OK;
	const char *p = hdr;
	size_t n;

	memset(c, 0, sizeof *c);
	while (*p == ' ' || *p == '\t')
		p++;
	for (n = 0; p[n] && p[n] != ' ' && p[n] != '\t'; n++)
		;
	if (n == 0) {
		rc = kf_err_set(e, KF_EIO, "empty Www-Authenticate challenge");
		goto out;
	}
	c->scheme = strndup(p, n);
	if (!c->scheme) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (char *s = c->scheme; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	p += n;
	while (*p) {
		char name[32], val[2048];
		size_t nl = 0, vl = 0;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		while (*p && *p != '=' && *p != ',' && nl + 1 < sizeof name)
			name[nl++] = (char)tolower((unsigned char)*p++);
		name[nl] = '\0';
		if (*p != '=') {
			rc = kf_err_set(e, KF_EIO, "malformed Www-Authenticate challenge: %s",
			                hdr);
			goto out;
		}
		p++;
		if (*p == '"') {
			p++;
			while (*p && *p != '"' && vl + 1 < sizeof val) {
				if (*p == '\\' && p[1])
					p++;
				val[vl++] = *p++;
			}
			if (*p != '"') {
				rc = kf_err_set(e, KF_EIO,
				                "malformed Www-Authenticate challenge: %s", hdr);
				goto out;
			}
			p++;
		} else {
			while (*p && *p != ',' && *p != ' ' && vl + 1 < sizeof val)
				val[vl++] = *p++;
		}
		val[vl] = '\0';
		char **dst = !strcmp(name, "realm") ? &c->realm :
		             !strcmp(name, "service") ? &c->service :
		             !strcmp(name, "scope") ? &c->scope : NULL;
		if (dst) {
			free(*dst);
			*dst = strdup(val);
			if (!*dst) {
				rc = kf_err_set(e, KF_EIO, "out of memory");
				goto out;
			}
		}
	}
	if (!strcmp(c->scheme, "bearer") &&
	    (!c->realm || (strncmp(c->realm, "https://", 8) &&
	                   strncmp(c->realm, "http://", 7)))) {
		rc = kf_err_set(e, KF_EIO,
		                "Bearer challenge without an http(s) realm: %s", hdr);
		goto out;
	}
out:
	if (rc)
		kf_auth_challenge_clear(c);
	return rc;
}

/* Append s to the growing buffer, percent-encoded unless raw. */
static int append(char **buf, size_t *len, size_t *cap, const char *s, int raw)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (*len + 4 > *cap) {
			size_t ncap = *cap * 2 + 64;
			char *nb = realloc(*buf, ncap);
			if (!nb)
				return -1;
			*buf = nb;
			*cap = ncap;
		}
		if (raw || isalnum(ch) || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '~') {
			(*buf)[(*len)++] = (char)ch;
		} else {
			(*buf)[(*len)++] = '%';
			(*buf)[(*len)++] = hex[ch >> 4];
			(*buf)[(*len)++] = hex[ch & 15];
		}
		(*buf)[*len] = '\0';
	}
	return 0;
}

char *kf_auth_token_url(const kf_auth_challenge *c, const char *fallback_scope)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *dup = NULL, *save = NULL;
	const char *sep = strchr(c->realm, '?') ? "&" : "?";
	const char *scope = c->scope ? c->scope : fallback_scope;
	int bad = append(&buf, &len, &cap, c->realm, 1);

	if (!bad && c->service) {
		bad = append(&buf, &len, &cap, sep, 1) ||
		      append(&buf, &len, &cap, "service=", 1) ||
		      append(&buf, &len, &cap, c->service, 0);
		sep = "&";
	}
	/* A challenge may carry several scopes separated by spaces; each is
	 * its own scope parameter. */
	if (!bad && scope) {
		dup = strdup(scope);
		bad = !dup;
		for (char *t = dup ? strtok_r(dup, " ", &save) : NULL; t && !bad;
		     t = strtok_r(NULL, " ", &save)) {
			bad = append(&buf, &len, &cap, sep, 1) ||
			      append(&buf, &len, &cap, "scope=", 1) ||
			      append(&buf, &len, &cap, t, 0);
			sep = "&";
		}
	}
	free(dup);
	if (bad) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

int kf_auth_parse_token(const char *body, size_t len, const char *origin,
                        char **token, kf_err *e)
{
	int rc = KF_OK;
	json_error_t je;
	json_t *root = json_loadb(body ? body : "", len, 0, &je);
	json_t *t = NULL;

	*token = NULL;
	if (!json_is_object(root)) {
		rc = kf_err_set(e, KF_EIO, "token from %s: not a JSON object", origin);
		goto out;
	}
	t = json_object_get(root, "token");
	if (!json_is_string(t) || !*json_string_value(t))
		t = json_object_get(root, "access_token");
	if (!json_is_string(t) || !*json_string_value(t)) {
		rc = kf_err_set(e, KF_EIO, "token from %s: no \"token\" or \"access_token\"",
		                origin);
		goto out;
	}
	/* The token goes into a header line: refuse anything that could
	 * split it. */
	for (const char *p = json_string_value(t); *p; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			rc = kf_err_set(e, KF_EIO, "token from %s: invalid characters", origin);
			goto out;
		}
	}
	*token = strdup(json_string_value(t));
	if (!*token)
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	json_decref(root);
	return rc;
}

long kf_auth_token_lifetime(const char *body, size_t len)
{
	json_t *root = json_loadb(body ? body : "", len, 0, NULL);
	json_t *v = json_object_get(root, "expires_in");
	long s = 60;

	/* A lifetime below a few seconds (or a silly large one) is still
	 * taken as given: the caller only uses it to renew early. */
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) < 10L * 365 * 24 * 3600)
		s = (long)json_integer_value(v);
	json_decref(root);
	return s;
}
