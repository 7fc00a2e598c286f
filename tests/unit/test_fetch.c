/* Transfer engine: rewrites, local sources, the cache's trust rules. The
 * HTTP paths are tested against real servers in tests/integration/40-*. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundler/kf_bundler.h"
#include "bundler/transfer/fetch_int.h"
#include "kf_test.h"

static char lab[256];

static void put(const char *rel, const char *data)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", lab, rel);
	f = fopen(p, "wb");
	if (!f)
		abort();
	fputs(data, f);
	fclose(f);
}

static void setup(void)
{
	kf_err e = {0};
	snprintf(lab, sizeof lab, "%s/kf-fetch-unit-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	kf_remove_tree(lab, &e);
	kf_mkdir_p(lab, 0755, &e);
}

static void t_rewrite(void)
{
	kf_rewrite rw[3];
	kf_err e = {0};
	char *u;

	CHECK_INT(kf_rewrite_parse("https://dl.k8s.io=https://m.example/dl", &rw[0], &e), KF_OK);
	CHECK_STR(rw[0].prefix, "https://dl.k8s.io");
	CHECK_STR(rw[0].replacement, "https://m.example/dl");
	CHECK_INT(kf_rewrite_parse("https://dl.k8s.io/release/v1.33.3=file:///srv/k8s?a=b", &rw[1], &e), KF_OK);
	CHECK_STR(rw[1].replacement, "file:///srv/k8s?a=b");
	CHECK_INT(kf_rewrite_parse("https://github.com=http://gh", &rw[2], &e), KF_OK);

	/* Longest prefix wins, regardless of order. */
	u = kf_rewrite_url("https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm", rw, 3);
	CHECK_STR(u, "file:///srv/k8s?a=b/bin/linux/amd64/kubeadm");
	free(u);
	u = kf_rewrite_url("https://dl.k8s.io/release/v1.32.0/x", rw, 3);
	CHECK_STR(u, "https://m.example/dl/release/v1.32.0/x");
	free(u);
	u = kf_rewrite_url("https://example.org/x", rw, 3);
	CHECK_STR(u, "https://example.org/x");
	free(u);
	u = kf_rewrite_url("https://github.com/a", rw, 3);
	CHECK_STR(u, "http://gh/a");
	free(u);
	for (int i = 0; i < 3; i++)
		kf_rewrite_clear(&rw[i]);

	CHECK_INT(kf_rewrite_parse("no-equals", &rw[0], &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "no-equals");
	CHECK_INT(kf_rewrite_parse("=x", &rw[0], &e), KF_EUSAGE);
	CHECK_INT(kf_rewrite_parse("x=", &rw[0], &e), KF_EUSAGE);
	CHECK(rw[0].prefix == NULL);
}

static void t_default_cache(void)
{
	char *c;
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	c = kf_fetch_default_cache();
	CHECK_STR(c, "/x/cache/kubeferry");
	free(c);
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", "/home/u", 1);
	c = kf_fetch_default_cache();
	CHECK_STR(c, "/home/u/.cache/kubeferry");
	free(c);
	unsetenv("XDG_CACHE_HOME");
}

static void t_opts(void)
{
	kf_fetch_opts o;
	setenv("KUBEFERRY_RETRIES", "2", 1);
	kf_fetch_opts_default(&o);
	CHECK_INT(o.jobs, 8);
	CHECK_INT(o.max_retries, 2);
	CHECK(o.connect_timeout_s > 0);
	CHECK(o.low_speed_time_s > 0);
	unsetenv("KUBEFERRY_RETRIES");
	kf_fetch_opts_default(&o);
	CHECK_INT(o.max_retries, 5);
}

static void t_local(void)
{
	kf_fetch_opts o;
	kf_err e = {0};
	kf_fetch_item it[3];
	char hex[KF_SHA256_HEX], url[600], want[600];

	kf_fetch_opts_default(&o);
	o.base_dir = lab;
	put("a.bin", "hello");
	put("b c.bin", "world");
	kf_sha256_buf("hello", 5, hex);
	char hex2[KF_SHA256_HEX];
	kf_sha256_buf("world", 5, hex2);

	memset(it, 0, sizeof it);
	it[0].url = "a.bin";
	it[0].sha256 = hex;
	snprintf(url, sizeof url, "file://%s/b%%20c.bin", lab);
	it[1].url = url;
	it[1].sha256 = hex2;
	CHECK_INT(kf_fetch_all(it, 2, &o, &e), KF_OK);
	snprintf(want, sizeof want, "%s/a.bin", lab);
	CHECK_STR(it[0].path, want);
	CHECK_INT(it[0].size, 5);
	CHECK_INT(it[0].from_cache, 1);
	snprintf(want, sizeof want, "%s/b c.bin", lab);
	CHECK_STR(it[1].path, want);
	kf_fetch_item_clear(&it[0]);
	kf_fetch_item_clear(&it[1]);
	CHECK(it[0].path == NULL);

	/* A rewrite to a local tree: upstream URL kept by the caller. */
	kf_rewrite rw;
	char arg[600];
	snprintf(arg, sizeof arg, "https://dl.k8s.io/release=file://%s", lab);
	CHECK_INT(kf_rewrite_parse(arg, &rw, &e), KF_OK);
	o.rewrites = &rw;
	o.nrewrite = 1;
	memset(it, 0, sizeof it);
	it[0].url = "https://dl.k8s.io/release/a.bin";
	it[0].sha256 = hex;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_OK);
	snprintf(want, sizeof want, "%s/a.bin", lab);
	CHECK_STR(it[0].path, want);
	kf_fetch_item_clear(&it[0]);

	/* Mismatch: names the source, expected and actual digest. */
	it[0].sha256 = hex2;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "https://dl.k8s.io/release/a.bin");
	CHECK_CONTAINS(e.msg, hex2);
	CHECK_CONTAINS(e.msg, hex);

	/* verify_later: stat'ed, not hashed, and marked so; without it the
	 * same items are hashed and marked verified. */
	o.verify_later = 1;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_OK);
	CHECK_STR(it[0].path, want);
	CHECK_INT(it[0].size, 5);
	CHECK_INT(it[0].unverified, 1);
	kf_fetch_item_clear(&it[0]);
	CHECK_INT(it[0].unverified, 0);
	it[0].url = "no-such-file.bin";
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "no-such-file.bin");
	it[0].url = ".";
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "not a regular file");
	o.verify_later = 0;
	it[0].url = "https://dl.k8s.io/release/a.bin";
	it[0].sha256 = hex;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_OK);
	CHECK_INT(it[0].unverified, 0);
	kf_fetch_item_clear(&it[0]);
	CHECK(it[0].path == NULL);
	o.rewrites = NULL;
	o.nrewrite = 0;
	kf_rewrite_clear(&rw);

	/* Missing file: I/O error naming it. */
	memset(it, 0, sizeof it);
	it[0].url = "missing.bin";
	it[0].sha256 = hex;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "missing.bin");

	/* Bad digest syntax and unknown schemes are usage errors. */
	it[0].url = "a.bin";
	it[0].sha256 = "ABC";
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EUSAGE);
	it[0].url = "ftp://x/a";
	it[0].sha256 = hex;
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "ftp://x/a");
	it[0].url = "file://relative/x";
	CHECK_INT(kf_fetch_all(it, 1, &o, &e), KF_EUSAGE);
}

static void t_cache_lookup(void)
{
	kf_err e = {0};
	char cache[512], hex[KF_SHA256_HEX], *p;
	uint64_t sz = 0;

	snprintf(cache, sizeof cache, "%s/cache", lab);
	CHECK_INT(kf_cache_prepare(cache, &e), KF_OK);
	kf_sha256_buf("hello", 5, hex);
	p = kf_cache_entry_path(cache, hex);
	CHECK_INT(kf_cache_lookup(p, hex, &sz, 1, 1, &e), 0);
	put("cache/sha256/x", "");
	FILE *f = fopen(p, "wb");
	fputs("hello", f);
	fclose(f);
	CHECK_INT(kf_cache_lookup(p, hex, &sz, 1, 1, &e), 1);
	CHECK_INT(sz, 5);
	/* Corrupt entry: removed, reported absent. */
	f = fopen(p, "wb");
	fputs("hellO", f);
	fclose(f);
	CHECK_INT(kf_cache_lookup(p, hex, &sz, 1, 1, &e), 0);
	CHECK(access(p, F_OK) != 0);

	/* Without hashing (verify_later) a present entry is a hit, even a
	 * corrupt one: the caller's own hash must catch it, and then
	 * kf_fetch_evict removes the cache's copy. */
	f = fopen(p, "wb");
	fputs("hellO!", f);
	fclose(f);
	CHECK_INT(kf_cache_lookup(p, hex, &sz, 0, 1, &e), 1);
	CHECK_INT(sz, 6);
	CHECK(access(p, F_OK) == 0);
	kf_fetch_opts o;
	kf_fetch_opts_default(&o);
	o.cache_dir = cache;
	kf_fetch_item it = {.url = "https://example.org/x", .sha256 = hex};
	/* A path outside the cache (a local source) is never removed. */
	it.path = strdup(lab);
	CHECK_INT(kf_fetch_evict(&it, &o, &e), 0);
	free(it.path);
	it.path = strdup(p);
	CHECK_INT(kf_fetch_evict(&it, &o, &e), 1);
	CHECK(access(p, F_OK) != 0);
	free(it.path);
	free(p);
}

static void t_backoff(void)
{
	kf_fetch_opts o;
	kf_fetch_opts_default(&o);
	o.backoff_base_ms = 100;
	for (int a = 1; a <= 4; a++) {
		long d = kf_fetch_backoff_ms(&o, a, -1);
		long full = 100L << (a - 1);
		CHECK(d >= full / 2 && d <= full);
	}
	CHECK(kf_fetch_backoff_ms(&o, 30, -1) <= 30000);
	CHECK_INT(kf_fetch_backoff_ms(&o, 1, 3), 3000);
	CHECK_INT(kf_fetch_parse_retry_after("7"), 7);
	CHECK_INT(kf_fetch_parse_retry_after(" 2 "), 2);
	CHECK_INT(kf_fetch_parse_retry_after(NULL), -1);
	CHECK_INT(kf_fetch_parse_retry_after("soon"), -1);
	CHECK(kf_fetch_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0);
	CHECK(kf_fetch_curl_retryable(CURLE_COULDNT_CONNECT));
	CHECK(kf_fetch_curl_retryable(CURLE_OPERATION_TIMEDOUT));
	CHECK(kf_fetch_curl_retryable(CURLE_PARTIAL_FILE));
	CHECK(!kf_fetch_curl_retryable(CURLE_PEER_FAILED_VERIFICATION));
	CHECK(!kf_fetch_curl_retryable(CURLE_WRITE_ERROR));
}

/* kf_http_request against tests/nginx/flaky.py (a real HTTP server in a
 * child process); skipped with a note when python3 is not there. */
static int free_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t l = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int wait_port(int port)
{
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in a = {0};
		int s = socket(AF_INET, SOCK_STREAM, 0), ok;
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
		close(s);
		if (ok)
			return 0;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void t_http_request(void)
{
	char port_s[16], www[600], log[600], url[700], hex[KF_SHA256_HEX], want[80];
	int port = free_port();
	pid_t pid;
	kf_fetch_opts o;
	kf_http_resp r;
	kf_err e = {0};

	if (access("tests/nginx/flaky.py", R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0) {
		fprintf(stderr, "t_http_request: skipped (needs python3 and tests/nginx/flaky.py)\n");
		return;
	}
	snprintf(port_s, sizeof port_s, "%d", port);
	snprintf(www, sizeof www, "%s/www", lab);
	snprintf(log, sizeof log, "%s/flaky.log", lab);
	kf_mkdir_p(www, 0755, &e);
	put("www/f.bin", "0123456789");
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"python3", "tests/nginx/flaky.py", port_s, www, log, NULL};
		execv("/usr/bin/python3", argv);
		_exit(127);
	}
	CHECK(pid > 0);
	CHECK_INT(wait_port(port), 0);
	kf_fetch_opts_default(&o);
	o.backoff_base_ms = 10;
	o.max_retries = 3;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/plain/f.bin", port);
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.len, 10);
	CHECK_STR(r.body, "0123456789");
	kf_http_resp_clear(&r);

	/* The body limit is enforced. */
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 5, &o, &r, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, url);
	CHECK_CONTAINS(e.msg, "larger than 5 bytes");
	CHECK(r.body == NULL);

	CHECK_INT(kf_http_request("HEAD", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.len, 0);
	CHECK_STR(r.content_type, "application/octet-stream");
	kf_http_resp_clear(&r);

	/* 503 twice, then 200: GET is retried. */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/503twice/f.bin", port);
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "0123456789");
	kf_http_resp_clear(&r);

	/* 503 forever: the last status is the caller's to act on. */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/always503/f.bin", port);
	o.max_retries = 1;
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 503);
	kf_http_resp_clear(&r);
	o.max_retries = 3;

	/* 429 then 200, after Retry-After. */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/429/f.bin", port);
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 200);
	kf_http_resp_clear(&r);

	snprintf(url, sizeof url, "http://127.0.0.1:%d/auth", port);
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 401);
	CHECK_STR(r.www_authenticate, "Bearer realm=\"http://127.0.0.1/token\",service=\"t\"");
	kf_http_resp_clear(&r);

	/* Uploads: body, headers and the response headers a registry sets. */
	const char *hdrs[] = {"Content-Type: application/vnd.test+json", NULL};
	snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
	CHECK_INT(kf_http_request("PUT", url, hdrs, "hello", 5, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 201);
	CHECK_STR(r.body, "hello");
	CHECK_STR(r.content_type, "application/vnd.test+json");
	kf_sha256_buf("hello", 5, hex);
	snprintf(want, sizeof want, "sha256:%s", hex);
	CHECK_STR(r.docker_content_digest, want);
	CHECK_STR(r.location, "/v2/x/blobs/uploads/1");
	kf_http_resp_clear(&r);
	CHECK_INT(kf_http_request("POST", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_OK);
	CHECK_INT(r.status, 201);
	CHECK_INT(r.len, 0);
	CHECK_STR(r.content_type, "application/octet-stream");
	kf_http_resp_clear(&r);

	/* defer_401: a 401 fails only its own item; the batch finishes, the
	 * verified item keeps its result and the 401 one is marked. */
	{
		char good[700], bad[700], cache[600], sha[KF_SHA256_HEX];
		kf_fetch_item it[2];
		kf_sha256_buf("0123456789", 10, sha);
		snprintf(good, sizeof good, "http://127.0.0.1:%d/plain/f.bin", port);
		snprintf(bad, sizeof bad, "http://127.0.0.1:%d/auth", port);
		snprintf(cache, sizeof cache, "%s/cache401", lab);
		o.cache_dir = cache;
		o.quiet = 1;
		memset(it, 0, sizeof it);
		it[0].url = bad;
		it[0].sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
		it[1].url = good;
		it[1].sha256 = sha;
		o.defer_401 = 1;
		CHECK_INT(kf_fetch_all(it, 2, &o, &e), KF_EIO);
		CHECK_CONTAINS(e.msg, bad);
		CHECK_CONTAINS(e.msg, "HTTP 401");
		CHECK_INT(it[0].http_status, 401);
		CHECK(it[0].path == NULL);
		CHECK_INT(it[1].http_status, 200);
		CHECK(it[1].path != NULL);
		kf_fetch_item_clear(&it[1]);
		/* Without it the 401 ends the batch and no result is kept. */
		o.defer_401 = 0;
		CHECK_INT(kf_fetch_all(it, 2, &o, &e), KF_EIO);
		CHECK_CONTAINS(e.msg, "HTTP 401");
		CHECK(it[0].path == NULL && it[1].path == NULL);
		o.cache_dir = NULL;
	}

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);

	/* Nothing listens any more: a network error naming the URL. */
	o.max_retries = 1;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/plain/f.bin", port);
	CHECK_INT(kf_http_request("GET", url, NULL, NULL, 0, 1024, &o, &r, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, url);
	CHECK_CONTAINS(e.msg, "after 2 attempts");
}

static void t_cleanup(void)
{
	kf_err e = {0};
	CHECK_INT(kf_remove_tree(lab, &e), KF_OK);
}

KF_TEST_MAIN(setup, t_rewrite, t_default_cache, t_opts, t_local, t_cache_lookup,
             t_backoff, t_http_request, t_cleanup)
