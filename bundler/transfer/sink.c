/*
 * The sink: one thread that hashes downloaded bytes and writes them to
 * their temporary files, so that the libcurl thread only receives and
 * decrypts. SHA-256 of every byte and the copy into the page cache cost
 * about as much CPU as the transfer itself; here they run on another core
 * while the next megabyte arrives ("hashing hidden").
 *
 * Each download owns two buffers (xfer.c fills one while the sink works
 * on the other). Buffers are processed in the order they are handed over,
 * so a file's bytes reach its hash and its file in order. The downloading
 * thread touches a download's hash state and file only after
 * kf_sink_wait() has returned for both of its buffers.
 * Depends on no other file of bundler/transfer/ (xfer.c calls it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

struct kf_sink {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	kf_sinkbuf *head, *tail;
	pthread_t tid;
	int stop;
};

/* Write and hash one buffer; the first write error sticks (errno value). */
static void process(kf_sinkbuf *b)
{
	if (!*b->err && kf_write_all(b->fd, b->data, b->len) != 0)
		*b->err = errno ? errno : EIO;
	if (!*b->err)
		kf_digest_update(b->dg, b->data, b->len);
}

static void *sink_main(void *arg)
{
	kf_sink *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		kf_sinkbuf *b;
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->work, &s->mu);
		if (!s->head)
			break;
		b = s->head;
		s->head = b->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->mu);
		process(b);
		pthread_mutex_lock(&s->mu);
		b->busy = 0;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

kf_sink *kf_sink_new(void)
{
	kf_sink *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	if (pthread_create(&s->tid, NULL, sink_main, s) != 0) {
		pthread_cond_destroy(&s->done);
		pthread_cond_destroy(&s->work);
		pthread_mutex_destroy(&s->mu);
		free(s);
		s = NULL;
	}
	return s;
}

void kf_sink_free(kf_sink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	/* The thread drains what is queued before it ends. */
	pthread_join(s->tid, NULL);
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void kf_sink_put(kf_sink *s, kf_sinkbuf *b)
{
	if (!b->len)
		return;
	if (!s) {
		/* No sink thread (it could not be started): do it here. */
		process(b);
		return;
	}
	pthread_mutex_lock(&s->mu);
	b->busy = 1;
	b->next = NULL;
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
}

void kf_sink_wait(kf_sink *s, kf_sinkbuf *b)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	while (b->busy)
		pthread_cond_wait(&s->done, &s->mu);
	pthread_mutex_unlock(&s->mu);
}
