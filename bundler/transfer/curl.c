/*
 * The floor of the transfer engine: default options, the libcurl settings
 * every transfer shares (TLS, proxies, timeouts, redirects), the retry
 * policy (which errors, how long to wait) and the clock. Depends on no
 * other file of bundler/transfer/.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

/* Tunables may come from the environment, so an operator (or a test) can
 * adapt timeouts to a slow proxy without new command-line flags. */
static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	char *end = NULL;
	long r;

	if (!v || !*v)
		return def;
	errno = 0;
	r = strtol(v, &end, 10);
	if (errno || !end || *end || r < 0)
		return def;
	return r;
}

void kf_fetch_opts_default(kf_fetch_opts *o)
{
	memset(o, 0, sizeof *o);
	o->jobs = 8;
	o->connect_timeout_s = env_long("KUBEFERRY_CONNECT_TIMEOUT", 30);
	/* Below 1 KiB/s for 60 s: the link is dead in practice, but a slow
	 * corporate proxy is not killed. */
	o->low_speed_limit = env_long("KUBEFERRY_LOW_SPEED_LIMIT", 1024);
	o->low_speed_time_s = env_long("KUBEFERRY_LOW_SPEED_TIME", 60);
	o->max_retries = (int)env_long("KUBEFERRY_RETRIES", 5);
	o->backoff_base_ms = env_long("KUBEFERRY_BACKOFF_MS", 1000);
}

#define BACKOFF_CAP_MS 30000L
/* A server may ask for a long pause; more than this is not worth a build
 * waiting on. */
#define RETRY_AFTER_CAP_S 300L

int kf_fetch_curl_init(kf_err *e)
{
	static int done;
	int rc = KF_OK;

	/* Not thread-safe in old libcurl; the bundler calls it from its one
	 * thread before any transfer. */
	if (!done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			rc = kf_err_set(e, KF_EIO, "cannot initialise libcurl");
			goto out;
		}
		done = 1;
	}
out:
	return rc;
}

void kf_fetch_curl_common(CURL *h, const kf_fetch_opts *o)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kubeferry/" KF_VERSION);
	/* Only web protocols, also after a redirect: a hostile server must
	 * not bounce us to file:// or anything else curl speaks. */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Upstreams (GitHub releases, registry.k8s.io) redirect to CDNs.
	 * libcurl drops Authorization and Cookie headers when a redirect
	 * leaves the original host (CURLOPT_UNRESTRICTED_AUTH stays off). */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
	/* Proxies come from http_proxy / HTTPS_PROXY / NO_PROXY, which
	 * libcurl reads itself: CURLOPT_PROXY stays unset on purpose. */
	if (o->connect_timeout_s > 0)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
	if (o->low_speed_limit > 0 && o->low_speed_time_s > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
	}
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
}

int kf_fetch_curl_retryable(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PROXY:
		return 1;
	default:
		return 0;
	}
}

static unsigned long jitter_rand(void)
{
	static unsigned long long s;
	/* xorshift: spreads retries of parallel transfers (and of several
	 * builders behind one proxy) apart; not for anything secret. */
	if (!s)
		s = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid() ^
		    0x9e3779b97f4a7c15ULL;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (unsigned long)(s >> 11);
}

long kf_fetch_backoff_ms(const kf_fetch_opts *o, int attempt, long retry_after_s)
{
	long d = o->backoff_base_ms > 0 ? o->backoff_base_ms : 0;
	int i;

	if (retry_after_s >= 0)
		return (retry_after_s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
		                                          : retry_after_s) * 1000L;
	for (i = 1; i < attempt && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	/* "Equal jitter": at least half the exponential delay, so retries
	 * still back off, plus a random share of the rest. */
	return d / 2 + (long)(jitter_rand() % (unsigned long)(d / 2 + 1));
}

long kf_fetch_parse_retry_after(const char *v)
{
	long r = -1;
	char buf[128];
	size_t n;
	char *s, *end;

	if (!v)
		goto out;
	while (isspace((unsigned char)*v))
		v++;
	n = strlen(v);
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	if (!n || n >= sizeof buf)
		goto out;
	memcpy(buf, v, n);
	buf[n] = '\0';
	s = buf;
	if (isdigit((unsigned char)s[0])) {
		errno = 0;
		r = strtol(s, &end, 10);
		if (errno || *end)
			r = -1;
	} else {
		time_t t = curl_getdate(s, NULL);
		time_t now = time(NULL);
		if (t != (time_t)-1)
			r = t > now ? (long)(t - now) : 0;
	}
out:
	return r;
}

int64_t kf_fetch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
