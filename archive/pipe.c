/*
 * The read pass's two threads. The reader thread (read.c) decompresses and
 * parses tar (libarchive), checks each header against the signed lock and
 * copies the content into buffers from a small fixed pool; the worker
 * thread hashes each piece and, when unpacking, writes it (stage.c).
 * Decompression and SHA-256 each take about one core, so splitting them
 * keeps the pass close to the speed of "zstd -dc | tar -x". The pool bounds
 * memory; either side stops the other on its first error.
 *
 * The hand-over costs nothing per entry: the pieces of many small entries
 * share one pool buffer, a small entry is one message, the worker takes
 * every queued message at once, and neither side wakes the other unless it
 * sleeps (an idle worker only once WAKE_AT messages or half the pool's
 * buffers wait, or the reader itself must wait). A bundle of many small files would
 * otherwise spend most of its time in futex calls.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/archive_internal.h"

/* Below this much room left, a small entry starts a new buffer rather
 * than being split across two. */
#define TAIL_MIN (64u << 10)

/* ---- the queue ---------------------------------------------------------- */

static void wake_worker_locked(struct kf_ar_pass *p)
{
	if (p->worker_idle)
		pthread_cond_signal(&p->cv_msg);
}

/* Wait for cv_space; the worker is woken first so that it can make room. */
static void reader_wait_locked(struct kf_ar_pass *p)
{
	wake_worker_locked(p);
	p->reader_waits = 1;
	pthread_cond_wait(&p->cv_space, &p->mu);
	p->reader_waits = 0;
}

/* Queue one message. -1 when the worker has failed; F_STOP is always
 * delivered. */
static int enqueue(struct kf_ar_pass *p, const struct kf_ar_msg *m)
{
	int rc = 0, stop = (m->flags & F_STOP) != 0;

	pthread_mutex_lock(&p->mu);
	while (p->qlen == QCAP && (stop || !p->failed))
		reader_wait_locked(p);
	if (p->failed && !stop) {
		rc = -1;
	} else {
		p->q[(p->qhead + p->qlen) % QCAP] = *m;
		p->qlen++;
		if (m->release)
			p->qbufs++;
		/* Half the pool full is enough work to be worth a wake-up:
		 * under load every sleep costs a trip through the run queue. */
		if (stop || p->qbufs >= NBUF / 2 || p->qlen >= WAKE_AT)
			wake_worker_locked(p);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Take a free buffer; NULL when the worker failed meanwhile. */
static unsigned char *get_buf(struct kf_ar_pass *p)
{
	unsigned char *b = NULL;

	pthread_mutex_lock(&p->mu);
	while (!p->failed && p->nfree == 0)
		reader_wait_locked(p);
	if (!p->failed)
		b = p->free_bufs[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return b;
}

unsigned char *kf_ar_pipe_space(struct kf_ar_pass *p, size_t want,
                                size_t *avail)
{
	size_t room = p->cur ? KF_AR_BUF_SIZE - p->cur_used : 0;

	/* A nearly full buffer goes to the worker as it is. */
	if (p->cur && room < want && room < TAIL_MIN) {
		struct kf_ar_msg m = {.release = p->cur};
		p->cur = NULL;
		if (enqueue(p, &m) != 0)
			return NULL;
	}
	if (!p->cur) {
		p->cur = get_buf(p);
		if (!p->cur)
			return NULL;
		p->cur_used = 0;
	}
	room = KF_AR_BUF_SIZE - p->cur_used;
	*avail = want < room ? want : room;
	return p->cur + p->cur_used;
}

int kf_ar_pipe_post(struct kf_ar_pass *p, unsigned flags, size_t idx,
                    const unsigned char *data, size_t len)
{
	struct kf_ar_msg m = {.flags = flags, .idx = idx, .data = data,
	                      .len = len};

	/* data lies at the end of what is used of p->cur. */
	if (len > 0) {
		p->cur_used += len;
		if (p->cur_used == KF_AR_BUF_SIZE) {
			m.release = p->cur;
			p->cur = NULL;
		}
	}
	return enqueue(p, &m);
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
	const kf_lock_entry *le;
	char hex[KF_SHA256_HEX];

	if (!(m->flags & (F_BEGIN | F_END)) && m->len == 0)
		return 0;       /* only gives a buffer back */
	le = &p->lock->entries[m->idx];
	if (m->flags & F_BEGIN) {
		p->count = 0;
		p->kicked = 0;
		if (p->dirfd >= 0) {
			p->fd = kf_ar_stage_open(p, le->path, le->mode);
			if (p->fd < 0)
				return -1;
		}
	}
	if (m->len > 0) {
		p->count += m->len;
		/* The reader bounds each entry by its header, and the header
		 * by the lock; this holds even if that check were lost. */
		if (p->count > le->size) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: larger than the lock says (%llu bytes)",
			           le->path, (unsigned long long)le->size);
			return -1;
		}
		kf_digest_update(p->sha, m->data, m->len);
		if (p->fd >= 0 && kf_ar_stage_write(p, le, m->data, m->len) != 0)
			return -1;
		p->done += m->len;
		if (p->o->progress)
			p->o->progress(p->o->progress_arg, p->done, p->total);
	}
	if (m->flags & F_END) {
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
		if (p->fd >= 0 && kf_ar_stage_seal(p, le) != 0)
			return -1;
	}
	return 0;
}

/* Take every queued message at once, handle them outside the lock (the
 * reader only writes to free slots), then give their buffers back. */
static void *worker_main(void *arg)
{
	struct kf_ar_pass *p = arg;
	int stop = 0, failed = 0;

	pthread_mutex_lock(&p->mu);
	while (!stop) {
		size_t n, head;
		while (p->qlen == 0) {
			p->worker_idle = 1;
			pthread_cond_wait(&p->cv_msg, &p->mu);
			p->worker_idle = 0;
		}
		n = p->qlen;
		head = p->qhead;
		p->qbufs = 0;
		failed = p->failed;
		pthread_mutex_unlock(&p->mu);

		for (size_t i = 0; i < n; i++) {
			const struct kf_ar_msg *m = &p->q[(head + i) % QCAP];
			if (m->flags & F_STOP)
				stop = 1;
			else if (!failed && work(p, m) != 0)
				failed = 2;
		}

		pthread_mutex_lock(&p->mu);
		for (size_t i = 0; i < n; i++) {
			unsigned char *b = p->q[(head + i) % QCAP].release;
			if (b)
				p->free_bufs[p->nfree++] = b;
		}
		p->qhead = (head + n) % QCAP;
		p->qlen -= n;
		if (failed == 2) {
			if (!p->failed && p->werr.code == KF_OK)
				p->werr.code = KF_EIO;
			p->failed = 2;  /* 2: the worker's error counts */
			pthread_cond_broadcast(&p->cv_space);
		} else if (p->reader_waits) {
			pthread_cond_broadcast(&p->cv_space);
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	return NULL;
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
	kf_ar_stage_init(p);
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
	p->sync_inited = 1;
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

/* The last message: the buffer being filled goes back with it. */
static void stop_worker(struct kf_ar_pass *p)
{
	struct kf_ar_msg m = {.flags = F_STOP, .release = p->cur};

	p->cur = NULL;
	enqueue(p, &m);
	pthread_join(p->worker, NULL);
	p->started = 0;
}

int kf_ar_pipe_finish(struct kf_ar_pass *p, int rc, kf_err *e)
{
	if (rc)
		reader_failed(p);
	stop_worker(p);
	/* The worker's error explains a reader that merely stopped. */
	if (p->failed == 2) {
		*e = p->werr;
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
		stop_worker(p);
	}
	if (p->sync_inited) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv_msg);
		pthread_cond_destroy(&p->cv_space);
	}
	for (size_t i = 0; i < NBUF; i++)
		free(p->pool[i]);
	kf_digest_free(p->sha);
	kf_ar_stage_free(p);
	free(p);
}
