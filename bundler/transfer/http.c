/*
 * kf_http_request: one request with its body in memory, for registry APIs.
 * Uses the shared libcurl settings and retry policy of curl.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bundler/transfer/fetch_int.h"

struct req_ctx {
	kf_http_resp *r;
	size_t max_body;
	int too_big;
};

static void resp_reset_headers(kf_http_resp *r)
{
	free(r->content_type);
	free(r->docker_content_digest);
	free(r->www_authenticate);
	free(r->location);
	free(r->retry_after);
	r->content_type = r->docker_content_digest = r->www_authenticate = NULL;
	r->location = r->retry_after = NULL;
}

static size_t req_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct req_ctx *c = ud;
	size_t len = size * nitems, nl, vl;
	const char *colon, *v;
	char **slot = NULL;
	static const struct {
		const char *name;
		size_t off;
	} want[] = {
		{"content-type", offsetof(kf_http_resp, content_type)},
		{"docker-content-digest", offsetof(kf_http_resp, docker_content_digest)},
		{"www-authenticate", offsetof(kf_http_resp, www_authenticate)},
		{"location", offsetof(kf_http_resp, location)},
		{"retry-after", offsetof(kf_http_resp, retry_after)},
	};

	/* A new status line starts a new response (after a redirect or a
	 * 100 Continue): only the final response's headers count. */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		resp_reset_headers(c->r);
		goto out;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		goto out;
	nl = (size_t)(colon - buf);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (strlen(want[i].name) == nl && !strncasecmp(buf, want[i].name, nl))
			slot = (char **)((char *)c->r + want[i].off);
	if (!slot)
		goto out;
	v = colon + 1;
	vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	free(*slot);
	*slot = strndup(v, vl);
out:
	return len;
}

static size_t req_write(char *buf, size_t size, size_t nitems, void *ud)
{
	struct req_ctx *c = ud;
	size_t len = size * nitems;
	char *nb;

	if (c->r->len + len > c->max_body) {
		c->too_big = 1;
		return 0;
	}
	nb = realloc(c->r->body, c->r->len + len + 1);
	if (!nb)
		return 0;
	memcpy(nb + c->r->len, buf, len);
	c->r->body = nb;
	c->r->len += len;
	nb[c->r->len] = '\0';
	return len;
}

/* Length of the "scheme://host[:port]" part of a URL, 0 when none. */
static size_t url_origin_len(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL;

	if (!p)
		return 0;
	p += 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

/* A challenge binds only the origin the request was sent to. After libcurl
 * followed a redirect to another host (blob storage, a CDN), answering that
 * host's Www-Authenticate would hand the registry's credentials to a realm
 * the registry never named, and replace its token with a foreign one. */
static void drop_foreign_challenge(CURL *h, const char *url, kf_http_resp *r)
{
	char *eff = NULL;
	size_t la = url_origin_len(url), lb;

	if (!r->www_authenticate ||
	    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || !eff)
		return;
	lb = url_origin_len(eff);
	if (la && la == lb && !strncasecmp(url, eff, la))
		return;
	free(r->www_authenticate);
	r->www_authenticate = NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int kf_http_request(const char *method, const char *url,
                    const char *const *headers, const void *body,
                    size_t body_len, size_t max_body,
                    const kf_fetch_opts *o, kf_http_resp *r, kf_err *e)
{
	int rc = KF_OK, attempt, idempotent, has_ct = 0;
	CURL *h = NULL;
	struct curl_slist *hl = NULL, *tmp;
	struct req_ctx ctx;
	char errbuf[CURL_ERROR_SIZE];
	kf_fetch_opts def;
	CURLcode cc = CURLE_OK;

	memset(r, 0, sizeof *r);
	if (!o) {
		kf_fetch_opts_default(&def);
		o = &def;
	}
	if (!method || !url) {
		rc = kf_err_set(e, KF_EUSAGE, "HTTP request without method or URL");
		goto out;
	}
	if ((rc = kf_fetch_curl_init(e)) != KF_OK)
		goto out;
	/* Only requests that can be repeated safely are retried; an upload
	 * (POST/PUT) is the caller's to repeat. */
	idempotent = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	for (const char *const *p = headers; p && *p; p++) {
		if (!strncasecmp(*p, "content-type:", 13))
			has_ct = 1;
		if (!(tmp = curl_slist_append(hl, *p)))
			goto oom;
		hl = tmp;
	}
	if (!strcmp(method, "PUT") || !strcmp(method, "POST") || !strcmp(method, "PATCH")) {
		/* curl would label a body as a form; a registry wants bytes. */
		if (!has_ct) {
			if (!(tmp = curl_slist_append(hl, "Content-Type: application/octet-stream")))
				goto oom;
			hl = tmp;
		}
		/* No 100-continue round trip before every upload. */
		if (!(tmp = curl_slist_append(hl, "Expect:")))
			goto oom;
		hl = tmp;
	}
	ctx.r = r;
	ctx.max_body = max_body;

	for (attempt = 0;; attempt++) {
		long retry_after = -1;
		int again = 0;

		if (h)
			curl_easy_cleanup(h);
		resp_reset_headers(r);
		free(r->body);
		r->body = NULL;
		r->len = 0;
		r->status = 0;
		ctx.too_big = 0;
		errbuf[0] = '\0';
		if (!(h = curl_easy_init()))
			goto oom;
		kf_fetch_curl_common(h, o);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, req_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, req_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
		if (hl)
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
		if (!strcmp(method, "HEAD")) {
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		} else if (!strcmp(method, "POST") || !strcmp(method, "PUT") ||
		           !strcmp(method, "PATCH")) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
			if (strcmp(method, "POST"))
				curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		} else if (strcmp(method, "GET")) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		}
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		drop_foreign_challenge(h, url, r);
		if (cc == CURLE_OK) {
			if (r->status == 429 || r->status >= 500) {
				again = 1;
				retry_after = kf_fetch_parse_retry_after(r->retry_after);
			}
		} else if (ctx.too_big) {
			rc = kf_err_set(e, KF_EIO, "%s %s: response larger than %zu bytes",
			                method, url, max_body);
			goto out;
		} else if (kf_fetch_curl_retryable(cc)) {
			again = 1;
		} else {
			rc = kf_err_set(e, KF_EIO, "%s %s: %s", method, url,
			                errbuf[0] ? errbuf : curl_easy_strerror(cc));
			goto out;
		}
		if (!again || !idempotent || attempt >= o->max_retries)
			break;
		sleep_ms(kf_fetch_backoff_ms(o, attempt + 1, retry_after));
	}
	if (cc != CURLE_OK) {
		rc = kf_err_set(e, KF_EIO, "%s %s: %s (after %d attempts)", method, url,
		                errbuf[0] ? errbuf : curl_easy_strerror(cc), attempt + 1);
		goto out;
	}
	/* Any HTTP status is a result here: the registry client acts on 401,
	 * 404 and the rest itself. */
	goto out;
oom:
	rc = kf_err_set(e, KF_EIO, "out of memory for %s %s", method, url);
out:
	if (h)
		curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	if (rc != KF_OK)
		kf_http_resp_clear(r);
	return rc;
}

void kf_http_resp_clear(kf_http_resp *r)
{
	if (!r)
		return;
	resp_reset_headers(r);
	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 0;
}
