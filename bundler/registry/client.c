/*
 * Registry API client: one host, its credentials, and the 401 challenge
 * flow (anonymous, Basic, Bearer token) that registry.k8s.io, docker.io,
 * Harbor and distribution use. Requests go through kf_http_request, so TLS
 * (--cacert), proxies and timeouts are the transfer engine's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bundler/kf_bundler.h"
#include "mirror/kf_mirror.h"

#define MANIFEST_MAX (4u << 20)
#define TOKEN_MAX (1u << 20)
#define REDIRECT_MAX 5

static const char accept_manifests[] =
	"Accept: " KF_MT_OCI_INDEX ", " KF_MT_DOCKER_LIST ", " KF_MT_OCI_MANIFEST
	", " KF_MT_DOCKER_MANIFEST;

int kf_registry_open(kf_registry *r, const char *base_url,
                     const kf_creds *creds, const kf_fetch_opts *o, kf_err *e)
{
	int rc = KF_OK;
	const char *h = strstr(base_url, "://");

	memset(r, 0, sizeof *r);
	r->fo = o;
	r->base = strdup(base_url);
	r->host = strdup(h ? h + 3 : base_url);
	if (!r->base || !r->host) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (creds && creds->user) {
		r->creds.user = strdup(creds->user);
		r->creds.pass = strdup(creds->pass ? creds->pass : "");
		if (!r->creds.user || !r->creds.pass)
			rc = kf_err_set(e, KF_EIO, "out of memory");
	} else if (!creds) {
		rc = kf_creds_lookup(r->host, &r->creds, e);
	}
out:
	if (rc)
		kf_registry_close(r);
	return rc;
}

void kf_registry_close(kf_registry *r)
{
	free(r->base);
	free(r->host);
	free(r->auth);
	free(r->challenge);
	kf_creds_clear(&r->creds);
	memset(r, 0, sizeof *r);
}

/* "scheme://host[:port]" part of a URL, for same-host checks. */
static size_t origin_len(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

static int same_origin(const char *a, const char *b)
{
	size_t la = origin_len(a), lb = origin_len(b);
	return la && la == lb && !strncmp(a, b, la);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answer a challenge: sets r->auth, and remembers the challenge so that
 * the token can be renewed later without another round trip. */
static int answer_challenge(kf_registry *r, const char *hdr, const char *repo,
                            const char *url, kf_err *e)
{
	int rc = KF_OK;
	kf_auth_challenge ch;
	char *token_url = NULL, *scope = NULL, *basic = NULL, *token = NULL;
	kf_http_resp tr = {0};
	const char *th[2] = {NULL, NULL};

	rc = kf_auth_parse_challenge(hdr, &ch, e);
	if (rc) {
		kf_err_prefix(e, "%s", url);
		goto out;
	}
	if (hdr != r->challenge) {
		char *c = strdup(hdr);
		if (!c) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		free(r->challenge);
		r->challenge = c;
	}
	r->auth_expires_ms = 0;
	if (r->creds.user) {
		basic = kf_auth_basic_header(&r->creds);
		if (!basic) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	if (!strcmp(ch.scheme, "basic")) {
		if (!basic) {
			rc = kf_err_set(e, KF_EIO,
			                "%s: registry %s asks for a password; none found for it in $REGISTRY_AUTH_FILE, containers auth.json or ~/.docker/config.json",
			                url, r->host);
			goto out;
		}
		free(r->auth);
		r->auth = basic;
		basic = NULL;
		goto out;
	}
	if (strcmp(ch.scheme, "bearer")) {
		rc = kf_err_set(e, KF_EIO, "%s: unsupported authentication scheme '%s'",
		                url, ch.scheme);
		goto out;
	}
	if (repo && asprintf(&scope, "repository:%s:%s", repo,
	                     r->push ? "pull,push" : "pull") < 0) {
		scope = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	token_url = kf_auth_token_url(&ch, scope);
	if (!token_url) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Passwords go only to a TLS realm: a token endpoint over plain HTTP
	 * would hand them to anyone on the path. */
	if (basic && !strncmp(token_url, "https://", 8))
		th[0] = basic;
	rc = kf_http_request("GET", token_url, th, NULL, 0, TOKEN_MAX, r->fo, &tr, e);
	if (rc)
		goto out;
	if (tr.status != 200) {
		rc = kf_err_set(e, KF_EIO, "token endpoint %s answered HTTP %ld%s",
		                ch.realm, tr.status,
		                tr.status != 401 ? "" :
		                basic && !th[0] ? " (credentials are sent to https realms only)" :
		                basic ? " (credentials refused)" :
		                " (no credentials found for this registry)");
		goto out;
	}
	rc = kf_auth_parse_token(tr.body, tr.len, ch.realm, &token, e);
	if (rc)
		goto out;
	free(r->auth);
	if (asprintf(&r->auth, "Authorization: Bearer %s", token) < 0) {
		r->auth = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* Counted from when the answer arrived: a token is never thought
	 * fresher than it is. */
	r->auth_expires_ms = now_ms() + kf_auth_token_lifetime(tr.body, tr.len) * 1000;
out:
	kf_http_resp_clear(&tr);
	kf_auth_challenge_clear(&ch);
	free(token_url);
	free(scope);
	free(basic);
	free(token);
	return rc;
}

int kf_registry_reauth(kf_registry *r, const char *repo, kf_err *e)
{
	int rc = KF_OK;

	if (r->challenge)
		rc = answer_challenge(r, r->challenge, repo, r->base, e);
	return rc;
}

int kf_registry_auth_stale(const kf_registry *r, long margin_s)
{
	return r->auth_expires_ms &&
	       now_ms() >= r->auth_expires_ms - (int64_t)margin_s * 1000;
}

static int is_redirect(long s)
{
	return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

int kf_registry_request(kf_registry *r, const char *method, const char *path,
                        const char *repo, const char *const *headers,
                        const void *body, size_t body_len, size_t max_body,
                        kf_http_resp *resp, kf_err *e)
{
	int rc = KF_OK;
	char *url = NULL, *next = NULL;
	const char **h = NULL;
	size_t nh = 0;
	int answered = 0, hops = 0;

	/* resp may hold an earlier answer (callers reuse one struct). */
	kf_http_resp_clear(resp);
	while (headers && headers[nh])
		nh++;
	h = calloc(nh + 2, sizeof *h);
	if (!h) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (!strncmp(path, "https://", 8) || !strncmp(path, "http://", 7))
		url = strdup(path);
	else if (asprintf(&url, "%s%s", r->base, path) < 0)
		url = NULL;
	if (!url) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (;;) {
		size_t k = 0;
		for (size_t i = 0; i < nh; i++)
			h[k++] = headers[i];
		/* Credentials only ever go to the registry's own origin, never
		 * to a storage host it redirects to. */
		if (r->auth && same_origin(url, r->base))
			h[k++] = r->auth;
		h[k] = NULL;
		kf_http_resp_clear(resp);
		rc = kf_http_request(method, url, h, body, body_len, max_body, r->fo,
		                     resp, e);
		if (rc)
			goto out;
		if (resp->status == 401 && !answered && resp->www_authenticate &&
		    same_origin(url, r->base)) {
			answered = 1;
			rc = answer_challenge(r, resp->www_authenticate, repo, url, e);
			if (rc)
				goto out;
			continue;
		}
		if (is_redirect(resp->status) && resp->location &&
		    (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
			if (++hops > REDIRECT_MAX) {
				rc = kf_err_set(e, KF_EIO, "%s: too many redirects", url);
				goto out;
			}
			if (resp->location[0] == '/') {
				if (asprintf(&next, "%.*s%s", (int)origin_len(url), url,
				             resp->location) < 0)
					next = NULL;
			} else {
				next = strdup(resp->location);
			}
			if (!next || (strncmp(next, "https://", 8) &&
			              strncmp(next, "http://", 7))) {
				rc = kf_err_set(e, KF_EIO, "%s: bad redirect to %s", url,
				                resp->location);
				goto out;
			}
			free(url);
			url = next;
			next = NULL;
			continue;
		}
		break;
	}
out:
	free(h);
	free(url);
	free(next);
	return rc;
}

const char *kf_manifest_media_type(const char *body, size_t len,
                                   const char *content_type)
{
	static const char *const known[] = {KF_MT_OCI_MANIFEST, KF_MT_OCI_INDEX,
	                                    KF_MT_DOCKER_MANIFEST, KF_MT_DOCKER_LIST};
	const char *mt = NULL;
	json_t *root = json_loadb(body, len, 0, NULL);
	json_t *v = json_object_get(root, "mediaType");
	json_t *sv = json_object_get(root, "schemaVersion");
	char ct[128] = "";

	if (content_type) {
		snprintf(ct, sizeof ct, "%s", content_type);
		ct[strcspn(ct, "; ")] = '\0';
	}
	if (!json_is_object(root) || !json_is_integer(sv) ||
	    json_integer_value(sv) != 2)
		goto out;
	for (size_t i = 0; i < 4 && !mt; i++) {
		if (json_is_string(v) && !strcmp(json_string_value(v), known[i]))
			mt = known[i];
	}
	for (size_t i = 0; i < 4 && !mt && !json_is_string(v); i++) {
		if (!strcmp(ct, known[i]))
			mt = known[i];
	}
	/* OCI made mediaType optional at first; tell the two apart by shape. */
	if (!mt && !json_is_string(v))
		mt = json_object_get(root, "manifests") ? KF_MT_OCI_INDEX :
		     json_object_get(root, "layers") ? KF_MT_OCI_MANIFEST : NULL;
out:
	json_decref(root);
	return mt;
}

int kf_registry_get_manifest(kf_registry *r, const char *repo,
                             const char *ref, const char *what, char **body,
                             size_t *len, char **media_type,
                             char **digest_out, kf_err *e)
{
	int rc = KF_OK;
	char *path = NULL, hex[KF_SHA256_HEX], digest[80];
	const char *h[] = {accept_manifests, NULL};
	const char *mt;
	kf_http_resp resp = {0};

	*body = NULL;
	*len = 0;
	*media_type = *digest_out = NULL;
	if (asprintf(&path, "/v2/%s/manifests/%s", repo, ref) < 0) {
		path = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = kf_registry_request(r, "GET", path, repo, h, NULL, 0, MANIFEST_MAX,
	                         &resp, e);
	if (rc) {
		kf_err_prefix(e, "image %s", what);
		goto out;
	}
	if (resp.status != 200) {
		rc = kf_err_set(e, KF_EIO, "image %s: %s%s answered HTTP %ld%s", what,
		                r->base, path, resp.status,
		                resp.status == 404 ? " (no such manifest)" :
		                resp.status == 401 ? " (unauthorized)" : "");
		goto out;
	}
	kf_sha256_buf(resp.body ? resp.body : "", resp.len, hex);
	snprintf(digest, sizeof digest, "sha256:%s", hex);
	/* Verified before anything else looks at the bytes. */
	if (!strncmp(ref, "sha256:", 7) && strcmp(ref, digest)) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: manifest %s has digest %s (from %s)", what,
		                ref, digest, r->base);
		goto out;
	}
	if (resp.docker_content_digest && !strncmp(resp.docker_content_digest,
	                                           "sha256:", 7) &&
	    strcmp(resp.docker_content_digest, digest)) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: registry says digest %s but the manifest hashes to %s",
		                what, resp.docker_content_digest, digest);
		goto out;
	}
	mt = kf_manifest_media_type(resp.body ? resp.body : "", resp.len,
	                            resp.content_type);
	if (!mt) {
		int v1 = (resp.content_type &&
		          strstr(resp.content_type, "manifest.v1+")) ||
		         (resp.body && strstr(resp.body, "\"schemaVersion\": 1")) ||
		         (resp.body && strstr(resp.body, "\"schemaVersion\":1"));
		rc = kf_err_set(e, KF_EUSAGE,
		                v1 ? "image %s: Docker schema 1 manifests are not supported (deprecated, unverifiable layer digests); re-push the image as schema 2 or OCI (%s)" :
		                     "image %s: unsupported manifest type (%s)",
		                what, resp.content_type ? resp.content_type : "no Content-Type");
		goto out;
	}
	*media_type = strdup(mt);
	*digest_out = strdup(digest);
	if (!*media_type || !*digest_out) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	*body = resp.body;
	*len = resp.len;
	resp.body = NULL;
out:
	if (rc) {
		free(*media_type);
		free(*digest_out);
		*media_type = *digest_out = NULL;
	}
	kf_http_resp_clear(&resp);
	free(path);
	return rc;
}
