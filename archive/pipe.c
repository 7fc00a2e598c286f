/*
 * The read pass's threads. The reader thread (read.c) decompresses (zstd)
 * and parses tar (libarchive), checks each header against the signed lock
 * and copies the content into buffers from a small fixed pool; the worker
 * thread hashes each buffer and, when unpacking, writes it (stage.c).
 * Decompression and SHA-256 each take about one core, so splitting them
 * keeps the pass close to the speed of "zstd -dc | tar -x". The pool bounds
 * memory; either side stops the other on its first error.
 *
 * When unpacking, a third thread fsyncs and closes finished files, so that
 * waiting for the disk overlaps with decompressing and hashing the next
 * ones; the worker starts writeback early (sync_file_range) as it writes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/archive_internal.h"

/* ---- the queue ---------------------------------------------------------- */

/* Take a free buffer; NULL when the worker failed meanwhile. */
unsigned char *kf_ar_pipe_get_buf(struct kf_ar_pass *p)
{
	unsigned char *b = NULL;
	pthread_mutex_lock(&p->mu);
	while (!p->failed && p->nfree == 0)
		pthread_cond_wait(&p->cv_space, &p->mu);
	if (!p->failed)
		b = p->free_bufs[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return b;
}

static void put_buf_locked(struct kf_ar_pass *p, unsigned char *b)
{
	p->free_bufs[p->nfree++] = b;
	pthread_cond_broadcast(&p->cv_space);
}

void kf_ar_pipe_put_buf(struct kf_ar_pass *p, unsigned char *b)
{
	pthread_mutex_lock(&p->mu);
	put_buf_locked(p, b);
	pthread_mutex_unlock(&p->mu);
}

/* Queue a message for the worker. -1 when the worker has failed (the
 * buffer, if any, goes back to the pool). M_STOP is always delivered. */
int kf_ar_pipe_post(struct kf_ar_pass *p, enum msg_kind kind, size_t idx,
                    unsigned char *buf, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	while (p->qlen == QCAP && (kind == M_STOP || !p->failed))
		pthread_cond_wait(&p->cv_space, &p->mu);
	if (p->failed && kind != M_STOP) {
		if (buf)
			put_buf_locked(p, buf);
		rc = -1;
	} else {
		struct kf_ar_msg *m = &p->q[(p->qhead + p->qlen) % QCAP];
		m->kind = kind;
		m->idx = idx;
		m->buf = buf;
		m->len = len;
		p->qlen++;
		pthread_cond_signal(&p->cv_msg);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* The reader failed: wake the worker so it drops what is queued. */
static void reader_failed(struct kf_ar_pass *p)
{
	pthread_mutex_lock(&p->mu);
	p->failed = 1;
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_msg);
	pthread_mutex_unlock(&p->mu);
}

/* ---- the worker: hash and write ----------------------------------------- */

/* Handle one message; non-zero when the worker must fail. */
static int work(struct kf_ar_pass *p, const struct kf_ar_msg *m)
{
	const kf_lock_entry *le = &p->lock->entries[m->idx];
	char hex[KF_SHA256_HEX];

	switch (m->kind) {
	case M_BEGIN:
		p->count = 0;
		p->kicked = 0;
		if (p->dirfd >= 0) {
			p->fd = kf_ar_stage_open(p, le->path, le->mode);
			if (p->fd < 0)
				return -1;
		}
		return 0;
	case M_DATA:
		p->count += m->len;
		/* The reader bounds each entry by its header, and the header
		 * by the lock; this holds even if that check were lost. */
		if (p->count > le->size) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: larger than the lock says (%llu bytes)",
			           le->path, (unsigned long long)le->size);
			return -1;
		}
		kf_digest_update(p->sha, m->buf, m->len);
		if (p->fd >= 0 && kf_ar_stage_write(p, le, m->buf, m->len) != 0)
			return -1;
		p->done += m->len;
		if (p->o->progress)
			p->o->progress(p->o->progress_arg, p->done, p->total);
		return 0;
	case M_END:
		kf_digest_final_hex(p->sha, hex);
		if (p->count != le->size) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: size mismatch: lock says %llu bytes, content has %llu",
			           le->path, (unsigned long long)le->size,
			           (unsigned long long)p->count);
			return -1;
		}
		if (strcmp(hex, le->sha256) != 0) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: sha256 mismatch: lock says %s, content is %s",
			           le->path, le->sha256, hex);
			return -1;
		}
		if (p->fd >= 0)
			kf_ar_stage_seal(p, m->idx);
		return 0;
	case M_STOP:
		break;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct kf_ar_pass *p = arg;
	int stop = 0;

	while (!stop) {
		struct kf_ar_msg m;
		int failed;
		pthread_mutex_lock(&p->mu);
		while (p->qlen == 0)
			pthread_cond_wait(&p->cv_msg, &p->mu);
		m = p->q[p->qhead];
		p->qhead = (p->qhead + 1) % QCAP;
		p->qlen--;
		pthread_cond_broadcast(&p->cv_space);
		failed = p->failed;
		pthread_mutex_unlock(&p->mu);

		if (m.kind == M_STOP)
			stop = 1;
		else if (!failed && work(p, &m) != 0) {
			pthread_mutex_lock(&p->mu);
			if (!p->failed && p->werr.code == KF_OK)
				p->werr.code = KF_EIO;
			p->failed = 2;  /* 2: the worker's error counts */
			pthread_cond_broadcast(&p->cv_space);
			pthread_mutex_unlock(&p->mu);
		}
		if (m.buf)
			kf_ar_pipe_put_buf(p, m.buf);
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	return NULL;
}

/* fsync and close every finished file, in order. After a failure (its own
 * or another thread's) it only closes, so the worker never waits on a
 * full queue. */
static void *syncer_main(void *arg)
{
	struct kf_ar_pass *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		int fd, failed;
		size_t idx;
		while (p->sq_len == 0 && !p->sq_stop)
			pthread_cond_wait(&p->cv_sq, &p->mu);
		if (p->sq_len == 0)
			break;
		fd = p->sq_fd[p->sq_head];
		idx = p->sq_idx[p->sq_head];
		p->sq_head = (p->sq_head + 1) % SQCAP;
		p->sq_len--;
		pthread_cond_signal(&p->cv_sq_space);
		failed = p->failed;
		pthread_mutex_unlock(&p->mu);

		if (!failed && fsync(fd) != 0)
			kf_err_errno(&p->serr, "cannot fsync",
			             p->lock->entries[idx].path);
		if (close(fd) != 0 && !failed && p->serr.code == KF_OK)
			kf_err_errno(&p->serr, "cannot close",
			             p->lock->entries[idx].path);
		pthread_mutex_lock(&p->mu);
		if (p->serr.code != KF_OK && !p->failed) {
			p->failed = 3;  /* 3: the syncer's error counts */
			pthread_cond_broadcast(&p->cv_space);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void stop_syncer(struct kf_ar_pass *p, pthread_t th)
{
	pthread_mutex_lock(&p->mu);
	p->sq_stop = 1;
	pthread_cond_signal(&p->cv_sq);
	pthread_mutex_unlock(&p->mu);
	pthread_join(th, NULL);
}

/* ---- setting up and tearing down ---------------------------------------- */

struct kf_ar_pass *kf_ar_pipe_new(const char *origin, const kf_lock *lock,
                                  int dirfd, const kf_archive_read_opts *o,
                                  kf_err *e)
{
	struct kf_ar_pass *p = calloc(1, sizeof *p);

	if (!p) {
		kf_err_set(e, KF_EIO, "out of memory");
		return NULL;
	}
	p->origin = origin;
	p->lock = lock;
	p->dirfd = dirfd;
	p->o = o;
	p->fd = -1;
	p->total = kf_lock_total_size(lock);
	p->sha = kf_digest_new(KF_DIGEST_SHA256);
	if (!p->sha) {
		kf_err_set(e, KF_EIO, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < NBUF; i++) {
		p->pool[i] = malloc(KF_AR_BUF_SIZE);
		if (!p->pool[i]) {
			kf_err_set(e, KF_EIO, "out of memory");
			goto fail;
		}
		p->free_bufs[p->nfree++] = p->pool[i];
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_msg, NULL);
	pthread_cond_init(&p->cv_space, NULL);
	pthread_cond_init(&p->cv_sq, NULL);
	pthread_cond_init(&p->cv_sq_space, NULL);
	p->sync_inited = 1;
	if (dirfd >= 0) {
		if (pthread_create(&p->syncer, NULL, syncer_main, p) != 0) {
			kf_err_set(e, KF_EIO, "cannot start the fsync thread");
			goto fail;
		}
		p->sstarted = 1;
	}
	if (pthread_create(&p->worker, NULL, worker_main, p) != 0) {
		kf_err_set(e, KF_EIO, "cannot start the hashing thread");
		goto fail;
	}
	p->started = 1;
	return p;
fail:
	kf_ar_pipe_free(p);
	return NULL;
}

int kf_ar_pipe_finish(struct kf_ar_pass *p, int rc, kf_err *e)
{
	if (rc)
		reader_failed(p);
	kf_ar_pipe_post(p, M_STOP, 0, NULL, 0);
	pthread_join(p->worker, NULL);
	p->started = 0;
	/* Every file handed to the syncer is fsynced before success. */
	if (p->sstarted) {
		stop_syncer(p, p->syncer);
		p->sstarted = 0;
	}
	/* The worker's or syncer's error explains a reader that merely
	 * stopped. */
	if (p->failed == 2 || p->failed == 3) {
		*e = p->failed == 2 ? p->werr : p->serr;
		rc = e->code;
		if (strncmp(e->msg, p->origin, strlen(p->origin)) != 0)
			kf_err_prefix(e, "%s", p->origin);
	} else if (rc == KF_OK && p->failed) {
		rc = kf_err_set(e, KF_EIO, "%s: read pass stopped", p->origin);
	}
	return rc;
}

void kf_ar_pipe_free(struct kf_ar_pass *p)
{
	if (!p)
		return;
	if (p->started) {
		reader_failed(p);
		kf_ar_pipe_post(p, M_STOP, 0, NULL, 0);
		pthread_join(p->worker, NULL);
	}
	if (p->sstarted) {
		reader_failed(p);
		stop_syncer(p, p->syncer);
	}
	if (p->sync_inited) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv_msg);
		pthread_cond_destroy(&p->cv_space);
		pthread_cond_destroy(&p->cv_sq);
		pthread_cond_destroy(&p->cv_sq_space);
	}
	for (size_t i = 0; i < NBUF; i++)
		free(p->pool[i]);
	kf_digest_free(p->sha);
	kf_ar_stage_free(p);
	free(p);
}
