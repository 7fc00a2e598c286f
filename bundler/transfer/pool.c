/*
 * Remote transfers: the one libcurl multi handle and its loop. Up to
 * o->jobs downloads (xfer.c) run at once, multiplexed over HTTP/2 where
 * the server offers it; a download that must be retried waits out its
 * delay here and starts again. A warm cache is checked first (cache.c,
 * hashed on every core by workers.c), so only missing files travel.
 * progress.c shows what runs.
 *
 * This is the top of the remote side: it uses xfer.c, sink.c (started
 * here, one thread hashing and writing for every download), cache.c,
 * progress.c, workers.c and curl.c; none of them calls back into it.
 */
#include <stdlib.h>
#include <string.h>

#include "bundler/transfer/fetch_int.h"

struct lookup_job {
	kf_xfer *xs;
	int hash, quiet;
	int *hits;
	kf_err *errs;
};

/* A cache entry is trusted only after hashing it again: here, or by the
 * caller while it reads it (verify_later). */
static void lookup_one(size_t i, void *ctx)
{
	struct lookup_job *j = ctx;
	kf_xfer *x = &j->xs[i];
	j->hits[i] = kf_cache_lookup(x->final_path, x->it->sha256, &x->it->size,
	                             j->hash, j->quiet, &j->errs[i]);
}

int kf_fetch_remote(kf_fetch_item *items, const size_t *idx,
                    char *const *urls, size_t n, const kf_fetch_opts *o,
                    kf_err *e)
{
	int rc = KF_OK, jobs = o->jobs > 0 ? o->jobs : 8, active = 0;
	size_t i, ndone = 0;
	kf_xfer *xs = NULL;
	CURLM *m = NULL;
	kf_progress *pg = NULL;
	kf_sink *sink = NULL;
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
		kf_xfer *x = &xs[i];
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
	/* A warm cache costs one hash of every file (none with
	 * verify_later): spread it over the cores. */
	lj.xs = xs;
	lj.hash = !o->verify_later;
	lj.quiet = o->quiet;
	kf_fetch_parallel(n, jobs, lookup_one, &lj);
	for (i = 0; i < n; i++) {
		kf_xfer *x = &xs[i];
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
			x->it->unverified = o->verify_later != 0;
			x->state = KF_XFER_DONE;
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
	/* Hashing and writing run beside this loop; without the thread
	 * (NULL) the downloads do it themselves. */
	sink = kf_sink_new();
	for (i = 0; i < n; i++)
		xs[i].sink = sink;

	while (ndone < n) {
		int64_t now = kf_fetch_now_ms(), wake = now + 200;
		int running = 0, left;
		CURLMsg *msg;

		for (i = 0; i < n && active < jobs; i++) {
			kf_xfer *x = &xs[i];
			if (x->state != KF_XFER_WAIT)
				continue;
			if (x->not_before > now) {
				if (x->not_before < wake)
					wake = x->not_before;
				continue;
			}
			if ((rc = kf_xfer_start(x, o, e)) != KF_OK)
				goto out;
			if (curl_multi_add_handle(m, x->h) != CURLM_OK) {
				rc = kf_err_set(e, KF_EIO, "cannot start transfer of %s", x->url);
				curl_easy_cleanup(x->h);
				x->h = NULL;
				goto out;
			}
			x->state = KF_XFER_ACTIVE;
			x->slot = kf_progress_start(pg, x->url);
			active++;
		}
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = kf_err_set(e, KF_EIO, "libcurl transfer loop failed");
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left))) {
			kf_xfer *x = NULL;
			long delay = 0;
			int res;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			res = kf_xfer_finish(x, msg->data.result, o, pg, &delay, e);
			curl_multi_remove_handle(m, x->h);
			curl_easy_cleanup(x->h);
			x->h = NULL;
			active--;
			kf_progress_done(pg, x->slot, res == KF_XFER_OK, x->it->url, x->have);
			x->slot = -1;
			if (res == KF_XFER_FAIL) {
				rc = e ? e->code : KF_EIO;
				if (rc == KF_OK)
					rc = KF_EIO;
				goto out;
			}
			if (res == KF_XFER_DEFER) {
				/* Reported when the batch is over; the first
				 * one names the URL. */
				if (!deferred.code && e)
					deferred = *e;
				if (!deferred.code)
					deferred.code = KF_EIO;
				kf_xfer_close(x, 1);
				x->state = KF_XFER_DONE;
				ndone++;
			} else if (res == KF_XFER_OK) {
				kf_xfer_close(x, 0);
				x->state = KF_XFER_DONE;
				ndone++;
			} else {
				x->state = KF_XFER_WAIT;
				x->not_before = kf_fetch_now_ms() + delay;
			}
		}
		for (i = 0; i < n; i++) {
			kf_xfer *x = &xs[i];
			curl_off_t cl = -1;
			if (x->state != KF_XFER_ACTIVE)
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
			kf_xfer *x = &xs[i];
			if (x->h) {
				curl_multi_remove_handle(m, x->h);
				curl_easy_cleanup(x->h);
			}
			/* After a failure nothing of this run stays in the cache:
			 * a partial file is only picked up again when a run was
			 * killed before it could clean up. */
			kf_xfer_close(x, rc != KF_OK);
			curl_slist_free_all(x->hl);
			free(x->final_path);
			free(x->tmp_path);
		}
	}
	kf_sink_free(sink);
	free(xs);
	free(lj.hits);
	free(lj.errs);
	if (m)
		curl_multi_cleanup(m);
	return rc;
}
