/*
 * Remote transfers: one libcurl multi handle drives up to o->jobs
 * downloads at once (multiplexed over HTTP/2 where the server offers it).
 * Each download streams into <cache>/tmp/<hex>.part while its SHA-256 is
 * computed on the same bytes, so verifying costs no second pass; only a
 * file whose digest matches is renamed to <cache>/sha256/<hex>.
 *
 * Faults: network errors, timeouts, 429 and 5xx are retried with
 * exponential backoff and jitter (429/503 honour Retry-After); a transfer
 * cut off midway resumes with a Range request from the bytes already in
 * the temporary file, whose hash state carries on. Other 4xx are final.
 * With defer_401 a 401 (an expired registry token) ends only its own
 * transfer; the others carry on and the batch fails at its end, so the
 * caller can renew the token and re-run just those.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

enum { X_WAIT, X_ACTIVE, X_DONE };

struct xfer {
	kf_fetch_item *it;
	const char *url;            /* effective URL (after rewrites) */
	char *final_path, *tmp_path;
	int fd;
	kf_digest *dg;              /* hash of the bytes in the tmp file */
	uint64_t have;              /* bytes in the tmp file */
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

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t x_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nitems;

	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		x->retry_after[0] = '\0';
	} else if (len > 12 && !strncasecmp(buf, "retry-after:", 12)) {
		size_t vl = len - 12;
		if (vl >= sizeof x->retry_after)
			vl = sizeof x->retry_after - 1;
		memcpy(x->retry_after, buf + 12, vl);
		x->retry_after[vl] = '\0';
	}
	return len;
}

/* Throw away what the tmp file holds and start hashing from zero. */
static int x_truncate(struct xfer *x)
{
	unsigned char scratch[64];

	if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)
		return -1;
	kf_digest_final(x->dg, scratch); /* resets the state */
	x->have = 0;
	x->resume_at = 0;
	return 0;
}

static size_t x_write(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nitems;

	if (!x->status_checked) {
		long st = 0;
		x->status_checked = 1;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
		/* An error page is not the artifact: never let it into the
		 * file or the hash. */
		if (st < 200 || st >= 300)
			x->discard = 1;
	}
	if (x->discard)
		return len;
	/* A hostile or broken server may send without end: stop at the size
	 * the caller knows (a descriptor's), before the bytes reach the disk. */
	if (x->it->max_size && (x->have > x->it->max_size ||
	                        len > x->it->max_size - x->have)) {
		x->too_big = 1;
		return 0;
	}
	if (write_all(x->fd, buf, len) != 0) {
		x->write_errno = errno ? errno : EIO;
		return 0;
	}
	kf_digest_update(x->dg, buf, len);
	x->have += len;
	return len;
}

/* Open (or pick up) the temporary file: bytes a killed earlier run left
 * there are hashed first, so the download resumes after them. */
static int x_open(struct xfer *x, kf_err *e)
{
	int rc = KF_OK;
	char *buf = NULL;
	const size_t bufsz = 1 << 20;

	x->fd = open(x->tmp_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (x->fd < 0) {
		rc = kf_err_errno(e, "cannot create", x->tmp_path);
		goto out;
	}
	/* Two builds sharing a cache must not write one file together. */
	if (flock(x->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = kf_err_set(e, KF_EIO, "%s: %s is locked by another kubeferry "
		                "(downloading the same file); try again when it is done",
		                x->it->url, x->tmp_path);
		close(x->fd);
		x->fd = -1;
		goto out;
	}
	x->dg = kf_digest_new(KF_DIGEST_SHA256);
	buf = malloc(bufsz);
	if (!x->dg || !buf) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r = read(x->fd, buf, bufsz);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = kf_err_errno(e, "cannot read", x->tmp_path);
			goto out;
		}
		if (r == 0)
			break;
		kf_digest_update(x->dg, buf, (size_t)r);
		x->have += (uint64_t)r;
	}
out:
	free(buf);
	return rc;
}

static int x_start(struct xfer *x, CURLM *m, const kf_fetch_opts *o,
                   kf_progress *pg, kf_err *e)
{
	int rc = KF_OK;
	struct curl_slist *t;

	if (x->fd < 0 && (rc = x_open(x, e)) != KF_OK)
		goto out;
	if (!x->hl) {
		for (const char *const *p = x->it->headers; p && *p; p++) {
			if (!(t = curl_slist_append(x->hl, *p))) {
				rc = kf_err_set(e, KF_EIO, "out of memory");
				goto out;
			}
			x->hl = t;
		}
	}
	if (!(x->h = curl_easy_init())) {
		rc = kf_err_set(e, KF_EIO, "out of memory starting %s", x->url);
		goto out;
	}
	kf_fetch_curl_common(x->h, o);
	curl_easy_setopt(x->h, CURLOPT_URL, x->url);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, x_write);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, x_header);
	curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, 256L * 1024);
	/* Prefer a stream on an existing HTTP/2 connection to yet another
	 * TLS handshake with the same host. */
	curl_easy_setopt(x->h, CURLOPT_PIPEWAIT, 1L);
	if (x->hl)
		curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hl);
	x->resume_at = x->have;
	if (x->have > 0) {
		curl_easy_setopt(x->h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->have);
		x->resumed = 1;
	}
	x->status_checked = 0;
	x->discard = 0;
	x->too_big = 0;
	x->write_errno = 0;
	x->errbuf[0] = '\0';
	x->retry_after[0] = '\0';
	if (curl_multi_add_handle(m, x->h) != CURLM_OK) {
		rc = kf_err_set(e, KF_EIO, "cannot start transfer of %s", x->url);
		curl_easy_cleanup(x->h);
		x->h = NULL;
		goto out;
	}
	x->state = X_ACTIVE;
	x->slot = kf_progress_start(pg, x->url);
out:
	return rc;
}

static void x_close(struct xfer *x, int remove_tmp)
{
	if (x->fd >= 0) {
		/* Unlink while the lock is held, so no other run adopts a file
		 * that is about to vanish. */
		if (remove_tmp)
			unlink(x->tmp_path);
		close(x->fd);
		x->fd = -1;
	}
	kf_digest_free(x->dg);
	x->dg = NULL;
}

/* The rewritten URL, when it differs, in messages: the operator must see
 * both what the spec asked for and where it was fetched. */
static const char *via(const struct xfer *x, char *buf, size_t n)
{
	if (!strcmp(x->url, x->it->url))
		return "";
	snprintf(buf, n, " (fetched from %s)", x->url);
	return buf;
}

/* The digest matched: make the file durable and put it in place. */
static int x_commit(struct xfer *x, kf_err *e)
{
	int rc = KF_OK;

	if (fsync(x->fd) != 0) {
		rc = kf_err_errno(e, "cannot fsync", x->tmp_path);
		goto out;
	}
	if (rename(x->tmp_path, x->final_path) != 0) {
		rc = kf_err_errno(e, "cannot rename into", x->final_path);
		goto out;
	}
	if ((rc = kf_fsync_parent(x->final_path, e)) != KF_OK)
		goto out;
	x->it->path = strdup(x->final_path);
	if (!x->it->path) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	x->it->size = x->have;
	x->it->from_cache = 0;
out:
	return rc;
}

enum { F_DONE, F_RETRY, F_FAIL, F_DEFER };

/* One attempt ended: decide between done, retry (after a delay) and
 * failure. */
static int x_finish(struct xfer *x, CURLcode cc, const kf_fetch_opts *o,
                    kf_progress *pg, long *delay_ms, kf_err *e)
{
	int res = F_FAIL;
	long status = 0, ra = -1;
	char got[KF_SHA256_HEX], vb[600], sz[32];

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	*delay_ms = 0;
	x->it->http_status = status;

	if (x->write_errno) {
		errno = x->write_errno;
		kf_err_errno(e, "cannot write", x->tmp_path);
		goto out;
	}
	if (x->too_big) {
		kf_err_set(e, KF_EVERIFY, "download of %s%s is larger than the %llu bytes "
		           "expected (expected sha256 %s)", x->it->url, via(x, vb, sizeof vb),
		           (unsigned long long)x->it->max_size, x->it->sha256);
		goto out;
	}
	if (cc == CURLE_RANGE_ERROR && status >= 200 && status < 300) {
		/* The server ignores Range: start over from byte 0, at once. */
		if (x_truncate(x) != 0) {
			kf_err_errno(e, "cannot truncate", x->tmp_path);
			goto out;
		}
		snprintf(x->last_error, sizeof x->last_error,
		         "server does not support ranges");
		res = F_RETRY;
		goto out;
	}
	if (status == 416 && x->resume_at > 0) {
		/* Nothing left to send past our bytes: the file may already be
		 * complete (a run killed before the rename). Check, else start
		 * over. */
		kf_err tmp = {0};
		uint64_t n = 0;
		if (kf_sha256_file(x->tmp_path, got, &n, &tmp) == KF_OK &&
		    !strcmp(got, x->it->sha256)) {
			x->have = n;
			res = x_commit(x, e) == KF_OK ? F_DONE : F_FAIL;
			goto out;
		}
		if (x_truncate(x) != 0) {
			kf_err_errno(e, "cannot truncate", x->tmp_path);
			goto out;
		}
		res = F_RETRY;
		goto out;
	}
	if (status >= 300 || (cc == CURLE_OK && status < 200)) {
		snprintf(x->last_error, sizeof x->last_error, "HTTP %ld", status);
		if (status == 429 || status >= 500) {
			ra = kf_fetch_parse_retry_after(x->retry_after);
			res = F_RETRY;
			goto retry;
		}
		kf_err_set(e, KF_EIO, "download of %s%s failed: HTTP %ld", x->it->url,
		           via(x, vb, sizeof vb), status);
		if (status == 401 && o->defer_401)
			res = F_DEFER;
		goto out;
	}
	if (cc != CURLE_OK) {
		snprintf(x->last_error, sizeof x->last_error, "%s",
		         x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
		if (kf_fetch_curl_retryable(cc)) {
			res = F_RETRY;
			goto retry;
		}
		kf_err_set(e, KF_EIO, "download of %s%s failed: %s", x->it->url,
		           via(x, vb, sizeof vb), x->last_error);
		goto out;
	}
	kf_digest_final_hex(x->dg, got);
	if (strcmp(got, x->it->sha256) != 0) {
		/* Bytes from an earlier attempt (or an earlier run) may belong to
		 * another version of the file: one clean download decides. */
		if (x->resumed && !x->restarted) {
			x->restarted = 1;
			x->resumed = 0;
			if (x_truncate(x) != 0) {
				kf_err_errno(e, "cannot truncate", x->tmp_path);
				goto out;
			}
			kf_progress_log(pg, "kubeferry: %s: checksum mismatch after resuming, "
			                "downloading it again from the start", x->it->url);
			res = F_RETRY;
			goto out;
		}
		kf_err_set(e, KF_EVERIFY,
		           "checksum mismatch for %s%s: expected sha256 %s, got %s",
		           x->it->url, via(x, vb, sizeof vb), x->it->sha256, got);
		goto out;
	}
	if (x_commit(x, e) != KF_OK)
		goto out;
	res = F_DONE;
	goto out;
retry:
	if (x->attempt >= o->max_retries) {
		kf_err_set(e, KF_EIO, "download of %s%s failed after %d attempts: %s",
		           x->it->url, via(x, vb, sizeof vb), x->attempt + 1,
		           x->last_error);
		res = F_FAIL;
		goto out;
	}
	x->attempt++;
	*delay_ms = kf_fetch_backoff_ms(o, x->attempt, ra);
	kf_progress_size(x->have, sz, sizeof sz);
	kf_progress_log(pg, "kubeferry: %s: %s; retry %d/%d in %.1f s%s%s",
	                x->it->url, x->last_error, x->attempt, o->max_retries,
	                (double)*delay_ms / 1000.0, x->have ? ", resuming at " : "",
	                x->have ? sz : "");
out:
	return res;
}

struct lookup_job {
	struct xfer *xs;
	int quiet;
	int *hits;
	kf_err *errs;
};

/* A cache entry is trusted only after hashing it again. */
static void lookup_one(size_t i, void *ctx)
{
	struct lookup_job *j = ctx;
	struct xfer *x = &j->xs[i];
	j->hits[i] = kf_cache_lookup(x->final_path, x->it->sha256, &x->it->size,
	                             j->quiet, &j->errs[i]);
}

int kf_fetch_remote(kf_fetch_item *items, const size_t *idx,
                    char *const *urls, size_t n, const kf_fetch_opts *o,
                    kf_err *e)
{
	int rc = KF_OK, jobs = o->jobs > 0 ? o->jobs : 8, active = 0;
	size_t i, ndone = 0;
	struct xfer *xs = NULL;
	CURLM *m = NULL;
	kf_progress *pg = NULL;
	struct lookup_job lj = {0};
	kf_err deferred = {0};

	if ((rc = kf_cache_prepare(o->cache_dir, e)) != KF_OK)
		goto out;
	xs = calloc(n, sizeof *xs);
	lj.hits = calloc(n, sizeof *lj.hits);
	lj.errs = calloc(n, sizeof *lj.errs);
	if (!xs || !lj.hits || !lj.errs) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		x->fd = -1;
		x->slot = -1;
		x->it = &items[idx[i]];
		x->url = urls[i];
		x->final_path = kf_cache_entry_path(o->cache_dir, x->it->sha256);
		x->tmp_path = kf_cache_tmp_path(o->cache_dir, x->it->sha256);
		if (!x->final_path || !x->tmp_path) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	/* A warm cache costs one hash of every file: spread it over the
	 * cores. */
	lj.xs = xs;
	lj.quiet = o->quiet;
	kf_fetch_parallel(n, jobs, lookup_one, &lj);
	for (i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		if (lj.hits[i] < 0) {
			rc = lj.errs[i].code ? lj.errs[i].code : KF_EIO;
			if (e)
				*e = lj.errs[i];
			kf_err_prefix(e, "%s", x->it->url);
			goto out;
		}
		if (lj.hits[i]) {
			x->it->path = strdup(x->final_path);
			if (!x->it->path) {
				rc = kf_err_set(e, KF_EIO, "out of memory");
				goto out;
			}
			x->it->from_cache = 1;
			x->state = X_DONE;
			ndone++;
		}
	}
	if (ndone == n)
		goto out;
	if ((rc = kf_fetch_curl_init(e)) != KF_OK)
		goto out;
	m = curl_multi_init();
	pg = kf_progress_new(o->quiet, n - ndone);
	if (!m || !pg) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

	while (ndone < n) {
		int64_t now = kf_fetch_now_ms(), wake = now + 200;
		int running = 0, left;
		CURLMsg *msg;

		for (i = 0; i < n && active < jobs; i++) {
			struct xfer *x = &xs[i];
			if (x->state != X_WAIT)
				continue;
			if (x->not_before > now) {
				if (x->not_before < wake)
					wake = x->not_before;
				continue;
			}
			if ((rc = x_start(x, m, o, pg, e)) != KF_OK)
				goto out;
			active++;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = kf_err_set(e, KF_EIO, "libcurl transfer loop failed");
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left))) {
			struct xfer *x = NULL;
			long delay = 0;
			int res;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			res = x_finish(x, msg->data.result, o, pg, &delay, e);
			curl_multi_remove_handle(m, x->h);
			curl_easy_cleanup(x->h);
			x->h = NULL;
			active--;
			kf_progress_done(pg, x->slot, res == F_DONE, x->it->url, x->have);
			x->slot = -1;
			if (res == F_FAIL) {
				rc = e ? e->code : KF_EIO;
				if (rc == KF_OK)
					rc = KF_EIO;
				goto out;
			}
			if (res == F_DEFER) {
				/* Reported when the batch is over; the first
				 * one names the URL. */
				if (!deferred.code && e)
					deferred = *e;
				if (!deferred.code)
					deferred.code = KF_EIO;
				x_close(x, 1);
				x->state = X_DONE;
				ndone++;
			} else if (res == F_DONE) {
				x_close(x, 0);
				x->state = X_DONE;
				ndone++;
			} else {
				x->state = X_WAIT;
				x->not_before = kf_fetch_now_ms() + delay;
			}
		}
		for (i = 0; i < n; i++) {
			struct xfer *x = &xs[i];
			curl_off_t cl = -1;
			if (x->state != X_ACTIVE)
				continue;
			curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
			kf_progress_update(pg, x->slot, x->have,
			                   cl > 0 ? x->resume_at + (uint64_t)cl : 0);
		}
		kf_progress_draw(pg, 0);
		if (ndone == n)
			break;
		now = kf_fetch_now_ms();
		if (wake > now || active)
			curl_multi_poll(m, NULL, 0, wake > now ? (int)(wake - now) : 0, NULL);
	}
	if (deferred.code) {
		rc = deferred.code;
		if (e)
			*e = deferred;
	}
out:
	kf_progress_free(pg);
	if (xs) {
		for (i = 0; i < n; i++) {
			struct xfer *x = &xs[i];
			if (x->h) {
				curl_multi_remove_handle(m, x->h);
				curl_easy_cleanup(x->h);
			}
			/* After a failure nothing of this run stays in the cache:
			 * a partial file is only picked up again when a run was
			 * killed before it could clean up. */
			x_close(x, rc != KF_OK);
			curl_slist_free_all(x->hl);
			free(x->final_path);
			free(x->tmp_path);
		}
	}
	free(xs);
	free(lj.hits);
	free(lj.errs);
	if (m)
		curl_multi_cleanup(m);
	return rc;
}
