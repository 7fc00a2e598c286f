/*
 * One download into the cache: the temporary file (picked up and hashed
 * again after a killed run), the write and header callbacks that stream
 * the bytes to disk and into SHA-256 at once, the easy handle's settings,
 * and the decision when an attempt ends: done (renamed into place),
 * retry (network errors, timeouts, 429 and 5xx, with backoff and jitter,
 * resuming with a Range request) or failure. With defer_401 a 401 ends
 * only this download. pool.c runs many of these on one multi handle;
 * this file uses curl.c and progress.c's log line.
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
	kf_xfer *x = ud;
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
static int x_truncate(kf_xfer *x)
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
	kf_xfer *x = ud;
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
static int x_open(kf_xfer *x, kf_err *e)
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

int kf_xfer_start(kf_xfer *x, const kf_fetch_opts *o, kf_err *e)
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
out:
	return rc;
}

void kf_xfer_close(kf_xfer *x, int remove_tmp)
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
static const char *via(const kf_xfer *x, char *buf, size_t n)
{
	if (!strcmp(x->url, x->it->url))
		return "";
	snprintf(buf, n, " (fetched from %s)", x->url);
	return buf;
}

/* The digest matched: make the file durable and put it in place. */
static int x_commit(kf_xfer *x, kf_err *e)
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

int kf_xfer_finish(kf_xfer *x, CURLcode cc, const kf_fetch_opts *o,
                   kf_progress *pg, long *delay_ms, kf_err *e)
{
	int res = KF_XFER_FAIL;
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
		res = KF_XFER_RETRY;
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
			res = x_commit(x, e) == KF_OK ? KF_XFER_OK : KF_XFER_FAIL;
			goto out;
		}
		if (x_truncate(x) != 0) {
			kf_err_errno(e, "cannot truncate", x->tmp_path);
			goto out;
		}
		res = KF_XFER_RETRY;
		goto out;
	}
	if (status >= 300 || (cc == CURLE_OK && status < 200)) {
		snprintf(x->last_error, sizeof x->last_error, "HTTP %ld", status);
		if (status == 429 || status >= 500) {
			ra = kf_fetch_parse_retry_after(x->retry_after);
			res = KF_XFER_RETRY;
			goto retry;
		}
		kf_err_set(e, KF_EIO, "download of %s%s failed: HTTP %ld", x->it->url,
		           via(x, vb, sizeof vb), status);
		if (status == 401 && o->defer_401)
			res = KF_XFER_DEFER;
		goto out;
	}
	if (cc != CURLE_OK) {
		snprintf(x->last_error, sizeof x->last_error, "%s",
		         x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
		if (kf_fetch_curl_retryable(cc)) {
			res = KF_XFER_RETRY;
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
			res = KF_XFER_RETRY;
			goto out;
		}
		kf_err_set(e, KF_EVERIFY,
		           "checksum mismatch for %s%s: expected sha256 %s, got %s",
		           x->it->url, via(x, vb, sizeof vb), x->it->sha256, got);
		goto out;
	}
	if (x_commit(x, e) != KF_OK)
		goto out;
	res = KF_XFER_OK;
	goto out;
retry:
	if (x->attempt >= o->max_retries) {
		kf_err_set(e, KF_EIO, "download of %s%s failed after %d attempts: %s",
		           x->it->url, via(x, vb, sizeof vb), x->attempt + 1,
		           x->last_error);
		res = KF_XFER_FAIL;
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
