/*
 * The bundle writer's hashing thread: SHA-256 of every source (checked
 * against the lock) and BLAKE2b-512 of the whole output (for the detached
 * .minisig), computed beside the main thread, which only reads the
 * sources and feeds libarchive and the zstd workers. The sources are still
 * read once: the main thread reads each piece into a pool buffer, hands it
 * to libarchive (which copies it) and then to this thread.
 *
 * A source whose digest differs from the lock is found a little later than
 * in a serial writer, but always before the bundle is committed: the write
 * fails and its temporary file goes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_internal.h"

#define HBUFS 8
#define HJOBS 64

enum { H_SRC, H_END, H_OUT, H_STOP };

struct hjob {
	int kind;
	unsigned char *buf;     /* H_SRC, H_OUT: back to the pool after */
	size_t len;
	size_t idx;             /* H_END: which source */
	const char *want;       /* H_END: the lock's sha256 */
};

struct kf_ar_hasher {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv_job, cv_free;
	struct hjob q[HJOBS];
	size_t qhead, qlen;
	unsigned char *pool[HBUFS], *free_bufs[HBUFS];
	size_t nfree;
	kf_digest *sha, *b2;
	/* The first source that did not match, set by the thread. */
	int bad;
	size_t bad_idx;
	char bad_hex[KF_SHA256_HEX];
	int started, inited;
};

static void *hasher_main(void *arg)
{
	struct kf_ar_hasher *h = arg;
	char hex[KF_SHA256_HEX];

	for (;;) {
		struct hjob j;
		int mismatch = 0;
		pthread_mutex_lock(&h->mu);
		while (h->qlen == 0)
			pthread_cond_wait(&h->cv_job, &h->mu);
		j = h->q[h->qhead];
		pthread_mutex_unlock(&h->mu);

		if (j.kind == H_SRC) {
			kf_digest_update(h->sha, j.buf, j.len);
		} else if (j.kind == H_OUT) {
			kf_digest_update(h->b2, j.buf, j.len);
		} else if (j.kind == H_END) {
			kf_digest_final_hex(h->sha, hex);
			mismatch = strcmp(hex, j.want) != 0;
		}

		pthread_mutex_lock(&h->mu);
		/* Under the lock: the writer polls it (kf_ar_hasher_failed). */
		if (mismatch && !h->bad) {
			h->bad = 1;
			h->bad_idx = j.idx;
			memcpy(h->bad_hex, hex, sizeof hex);
		}
		h->qhead = (h->qhead + 1) % HJOBS;
		h->qlen--;
		if (j.buf)
			h->free_bufs[h->nfree++] = j.buf;
		pthread_cond_broadcast(&h->cv_free);
		pthread_mutex_unlock(&h->mu);
		if (j.kind == H_STOP)
			break;
	}
	return NULL;
}

static void post(struct kf_ar_hasher *h, const struct hjob *j)
{
	pthread_mutex_lock(&h->mu);
	while (h->qlen == HJOBS)
		pthread_cond_wait(&h->cv_free, &h->mu);
	h->q[(h->qhead + h->qlen) % HJOBS] = *j;
	h->qlen++;
	pthread_cond_signal(&h->cv_job);
	pthread_mutex_unlock(&h->mu);
}

struct kf_ar_hasher *kf_ar_hasher_new(kf_err *e)
{
	struct kf_ar_hasher *h = calloc(1, sizeof *h);

	if (!h) {
		kf_err_set(e, KF_EIO, "out of memory");
		return NULL;
	}
	h->sha = kf_digest_new(KF_DIGEST_SHA256);
	h->b2 = kf_digest_new(KF_DIGEST_BLAKE2B512);
	if (!h->sha || !h->b2)
		goto oom;
	for (size_t i = 0; i < HBUFS; i++) {
		h->pool[i] = malloc(KF_AR_BUF_SIZE);
		if (!h->pool[i])
			goto oom;
		h->free_bufs[h->nfree++] = h->pool[i];
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv_job, NULL);
	pthread_cond_init(&h->cv_free, NULL);
	h->inited = 1;
	if (pthread_create(&h->th, NULL, hasher_main, h) != 0) {
		kf_err_set(e, KF_EIO, "cannot start the hashing thread");
		goto fail;
	}
	h->started = 1;
	return h;
oom:
	kf_err_set(e, KF_EIO, "out of memory");
fail:
	kf_ar_hasher_free(h);
	return NULL;
}

unsigned char *kf_ar_hasher_buf(struct kf_ar_hasher *h)
{
	unsigned char *b;

	pthread_mutex_lock(&h->mu);
	while (h->nfree == 0)
		pthread_cond_wait(&h->cv_free, &h->mu);
	b = h->free_bufs[--h->nfree];
	pthread_mutex_unlock(&h->mu);
	return b;
}

void kf_ar_hasher_src(struct kf_ar_hasher *h, unsigned char *buf, size_t len)
{
	struct hjob j = {.kind = H_SRC, .buf = buf, .len = len};
	post(h, &j);
}

void kf_ar_hasher_end(struct kf_ar_hasher *h, size_t idx, const char *want)
{
	struct hjob j = {.kind = H_END, .idx = idx, .want = want};
	post(h, &j);
}

int kf_ar_hasher_failed(struct kf_ar_hasher *h)
{
	int bad;

	pthread_mutex_lock(&h->mu);
	bad = h->bad;
	pthread_mutex_unlock(&h->mu);
	return bad;
}

void kf_ar_hasher_out(struct kf_ar_hasher *h, const void *data, size_t len)
{
	const unsigned char *p = data;

	/* libarchive reuses its buffer when the callback returns: copy. */
	while (len > 0) {
		size_t n = len < KF_AR_BUF_SIZE ? len : KF_AR_BUF_SIZE;
		struct hjob j = {.kind = H_OUT, .buf = kf_ar_hasher_buf(h), .len = n};
		memcpy(j.buf, p, n);
		post(h, &j);
		p += n;
		len -= n;
	}
}

int kf_ar_hasher_finish(struct kf_ar_hasher *h, size_t *bad_idx,
                        char bad_hex[KF_SHA256_HEX],
                        unsigned char b2[KF_BLAKE2B_LEN])
{
	struct hjob j = {.kind = H_STOP};

	if (h->started) {
		post(h, &j);
		pthread_join(h->th, NULL);
		h->started = 0;
	}
	if (h->bad) {
		*bad_idx = h->bad_idx;
		memcpy(bad_hex, h->bad_hex, KF_SHA256_HEX);
		return -1;
	}
	if (b2)
		kf_digest_final(h->b2, b2);
	return 0;
}

void kf_ar_hasher_free(struct kf_ar_hasher *h)
{
	size_t ignore_idx;
	char ignore_hex[KF_SHA256_HEX];

	if (!h)
		return;
	kf_ar_hasher_finish(h, &ignore_idx, ignore_hex, NULL);
	if (h->inited) {
		pthread_mutex_destroy(&h->mu);
		pthread_cond_destroy(&h->cv_job);
		pthread_cond_destroy(&h->cv_free);
	}
	for (size_t i = 0; i < HBUFS; i++)
		free(h->pool[i]);
	kf_digest_free(h->sha);
	kf_digest_free(h->b2);
	free(h);
}
