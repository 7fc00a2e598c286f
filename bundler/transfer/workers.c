/*
 * A small worker pool for CPU-bound jobs (hashing local sources and cache
 * entries): fn(i) for every i, on as many threads as there are cores.
 * Depends on no other file of bundler/transfer/.
 */
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

struct pool {
	size_t n, next;
	pthread_mutex_t mu;
	void (*fn)(size_t i, void *ctx);
	void *ctx;
};

static void *pool_main(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i;
		pthread_mutex_lock(&p->mu);
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i >= p->n)
			break;
		p->fn(i, p->ctx);
	}
	return NULL;
}

void kf_fetch_parallel(size_t n, int threads, void (*fn)(size_t i, void *ctx),
                       void *ctx)
{
	struct pool p = {n, 0, PTHREAD_MUTEX_INITIALIZER, fn, ctx};
	pthread_t tid[16];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int extra = 0, i;

	/* Hashing is CPU-bound: more threads than cores only adds seeks. */
	if (cpus > 0 && threads > cpus)
		threads = (int)cpus;
	if ((size_t)threads > n)
		threads = (int)n;
	if (threads > 16)
		threads = 16;
	for (i = 1; i < threads; i++) {
		/* Fewer threads than asked is fine: the caller's runs too. */
		if (pthread_create(&tid[extra], NULL, pool_main, &p) != 0)
			break;
		extra++;
	}
	pool_main(&p);
	for (i = 0; i < extra; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_destroy(&p.mu);
}
