/*
 * Internals of the transfer engine, bundler/transfer/. Not part of the
 * bundler's contract: only the files of bundler/transfer/ (and their unit
 * test) include it. Sections follow the files, floor first; a file uses
 * only the sections above its own:
 *
 *   fetch.c (kf_fetch_all) -> pool.c, workers.c, rewrite.c, curl.c
 *   http.c (kf_http_request) -> curl.c
 *   pool.c -> xfer.c, cache.c, progress.c, workers.c, curl.c
 *   xfer.c -> sink.c, progress.c (its log line), curl.c
 *   progress.c -> curl.c (the clock)
 *   pool.c also starts the sink (sink.c) and hands it to each xfer
 *   sink.c, cache.c, workers.c, rewrite.c, curl.c -> nothing in transfer/
 */
#ifndef KF_TRANSFER_FETCH_INT_H
#define KF_TRANSFER_FETCH_INT_H

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include "bundler/kf_bundler.h"

/* ---- curl.c: shared libcurl settings, retry policy, clock ------------- */

/* curl_global_init once per process; KF_EIO when libcurl cannot start. */
int kf_fetch_curl_init(kf_err *e);
/* TLS, proxy (from the environment), timeouts, redirects, HTTP/2 and
 * protocol limits on an easy handle. */
void kf_fetch_curl_common(CURL *h, const kf_fetch_opts *o);
/* Is this curl result worth another attempt (network trouble, timeouts)
 * rather than a fixed fact (bad certificate, bad URL, local disk)? */
int kf_fetch_curl_retryable(CURLcode c);
/* Delay before attempt number `attempt` (1 = first retry): exponential
 * from base_ms, capped, with jitter. retry_after_s >= 0 overrides. */
long kf_fetch_backoff_ms(const kf_fetch_opts *o, int attempt,
                         long retry_after_s);
/* Seconds from a Retry-After value (delta-seconds or HTTP date); -1 when
 * absent or unparseable. */
long kf_fetch_parse_retry_after(const char *v);
/* Monotonic milliseconds. */
int64_t kf_fetch_now_ms(void);

/* ---- workers.c: CPU-bound jobs on every core ------------------------------ */

/* Run fn(i, ctx) for i in [0, n) on up to `threads` threads (hashing
 * many files uses both cores); returns when all are done. */
void kf_fetch_parallel(size_t n, int threads, void (*fn)(size_t i, void *ctx),
                       void *ctx);

/* ---- progress.c: live lines on a terminal, one line per file in a log --- */

typedef struct kf_progress kf_progress;

kf_progress *kf_progress_new(int quiet, size_t nfiles);
/* Slot for an active transfer; name is copied. */
int kf_progress_start(kf_progress *p, const char *name);
void kf_progress_update(kf_progress *p, int slot, uint64_t now_bytes,
                        uint64_t total_bytes);
/* The transfer in slot finished: on a terminal its line goes away; else
 * one log line "fetched URL (SIZE in TIME)". ok == 0 prints nothing. */
void kf_progress_done(kf_progress *p, int slot, int ok, const char *url,
                      uint64_t bytes);
/* A message line (retries, warnings) that must not garble the live
 * lines; silenced by quiet. */
void kf_progress_log(kf_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Redraw on a terminal, at most ~5 times a second unless force. */
void kf_progress_draw(kf_progress *p, int force);
/* Erase the live lines (terminal) and free. */
void kf_progress_free(kf_progress *p);
/* Human size "12.3 MiB" into buf. */
void kf_progress_size(uint64_t n, char *buf, size_t len);

/* ---- cache.c: the content-addressed cache's layout and trust rule --------- */

/* <cache>/sha256 and <cache>/tmp exist afterwards. */
int kf_cache_prepare(const char *cache_dir, kf_err *e);
/* Malloc'ed <cache>/sha256/<hex> and <cache>/tmp/<hex>.part. */
char *kf_cache_entry_path(const char *cache_dir, const char *hex);
char *kf_cache_tmp_path(const char *cache_dir, const char *hex);
/* Look up a cache entry: 1 when present and its content hashes to hex
 * (size stored), 0 when absent (a corrupt entry is removed and 0
 * returned), <0 with e set on I/O errors. Without hash (verify_later) a
 * present regular file is a hit at once: the caller hashes it later. */
int kf_cache_lookup(const char *path, const char *hex, uint64_t *size,
                    int hash, int quiet, kf_err *e);

/* ---- sink.c: hashing and writing on their own thread ---------------------- */

typedef struct kf_sink kf_sink;
/* A buffer of downloaded bytes on its way into fd and dg. */
typedef struct kf_sinkbuf kf_sinkbuf;
struct kf_sinkbuf {
	char *data;
	size_t len;
	int fd;
	kf_digest *dg;
	int *err;                   /* first write error (errno value) */
	int busy;                   /* queued or being processed */
	kf_sinkbuf *next;
};
/* Start the sink thread; NULL when it cannot start (then kf_sink_put
 * does the work in the caller, and kf_sink_wait returns at once). */
kf_sink *kf_sink_new(void);
/* Drain the queue, stop the thread and free. */
void kf_sink_free(kf_sink *s);
/* Queue b (nothing for an empty b); write then hash it in order. */
void kf_sink_put(kf_sink *s, kf_sinkbuf *b);
/* Wait until b is no longer queued or in work. */
void kf_sink_wait(kf_sink *s, kf_sinkbuf *b);

/* ---- xfer.c: one download into the cache --------------------------------- */

enum { KF_XFER_WAIT, KF_XFER_ACTIVE, KF_XFER_DONE };

/* One remote item on its way into the cache (state is pool.c's). */
typedef struct kf_xfer kf_xfer;
struct kf_xfer {
	kf_fetch_item *it;
	const char *url;            /* effective URL (after rewrites) */
	char *final_path, *tmp_path;
	int fd;
	kf_digest *dg;              /* hash of the bytes in the tmp file */
	uint64_t have;              /* bytes taken in (file and buffers) */
	kf_sink *sink;              /* set by pool.c before kf_xfer_start */
	kf_sinkbuf buf[2];          /* one fills while the sink has the other */
	int cur;                    /* the buffer that fills */
	int sink_err;               /* the sink's write error (errno value) */
	uint64_t resume_at;         /* have when this attempt started */
	CURL *h;
	struct curl_slist *hl;
	int state, attempt, slot;
	int64_t not_before;
	int status_checked, discard, restarted, resumed, too_big;
	int write_errno;
	char retry_after[64];
	char last_error[256];
	char errbuf[CURL_ERROR_SIZE];
};

/* Open (or pick up) the temporary file and make a configured easy handle
 * in x->h (CURLOPT_PRIVATE is x), ready for curl_multi_add_handle. */
int kf_xfer_start(kf_xfer *x, const kf_fetch_opts *o, kf_err *e);
/* Results of kf_xfer_finish. */
enum { KF_XFER_OK, KF_XFER_RETRY, KF_XFER_FAIL, KF_XFER_DEFER };
/* One attempt ended with cc: decide between done (verified and renamed
 * into the cache), retry (after *delay_ms), failure and, with defer_401,
 * a deferred 401. e is set for FAIL and DEFER; retries are logged on pg. */
int kf_xfer_finish(kf_xfer *x, CURLcode cc, const kf_fetch_opts *o,
                   kf_progress *pg, long *delay_ms, kf_err *e);
/* Close the temporary file (removing it first when remove_tmp) and drop
 * the hash state. */
void kf_xfer_close(kf_xfer *x, int remove_tmp);

/* ---- pool.c: the multi handle and its loop (remote items) ----------------- */

/* Fetch items idx[0..n) (remote, deduplicated by digest) into the cache.
 * urls[i] is the effective URL (after rewrites) of items[idx[i]]. */
int kf_fetch_remote(kf_fetch_item *items, const size_t *idx,
                    char *const *urls, size_t n, const kf_fetch_opts *o,
                    kf_err *e);

#endif
