/*
 * Download progress on stderr. On a terminal: one live line per active
 * transfer (bytes, rate, ETA) and a total, redrawn in place at most ~5
 * times a second so a fast link does not turn into terminal load. In a
 * log (CI, a pipe): one line per finished transfer and nothing else.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bundler/transfer/fetch_int.h"

#define REDRAW_MS 200

struct slot {
	int used;
	char name[96];
	uint64_t now, total;
	int64_t start_ms;
};

struct kf_progress {
	int quiet, tty;
	size_t nfiles, ndone;
	uint64_t done_bytes;
	int64_t start_ms, last_draw_ms;
	int drawn;             /* live lines currently on screen */
	struct slot *slots;
	size_t nslots;
};

void kf_progress_size(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

kf_progress *kf_progress_new(int quiet, size_t nfiles)
{
	kf_progress *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->quiet = quiet;
	p->tty = !quiet && isatty(2);
	p->nfiles = nfiles;
	p->start_ms = kf_fetch_now_ms();
	return p;
}

int kf_progress_start(kf_progress *p, const char *name)
{
	size_t i;
	const char *base;
	struct slot *ns;

	if (!p)
		return -1;
	for (i = 0; i < p->nslots; i++)
		if (!p->slots[i].used)
			break;
	if (i == p->nslots) {
		ns = realloc(p->slots, (p->nslots + 1) * sizeof *ns);
		if (!ns)
			return -1;
		p->slots = ns;
		p->nslots++;
	}
	/* The file name says which download it is; the host rarely helps. */
	base = strrchr(name, '/');
	base = base && base[1] ? base + 1 : name;
	memset(&p->slots[i], 0, sizeof p->slots[i]);
	p->slots[i].used = 1;
	snprintf(p->slots[i].name, sizeof p->slots[i].name, "%s", base);
	p->slots[i].start_ms = kf_fetch_now_ms();
	return (int)i;
}

void kf_progress_update(kf_progress *p, int slot, uint64_t now_bytes,
                        uint64_t total_bytes)
{
	if (!p || slot < 0 || (size_t)slot >= p->nslots)
		return;
	p->slots[slot].now = now_bytes;
	p->slots[slot].total = total_bytes;
}

static void erase(kf_progress *p)
{
	if (p->tty && p->drawn) {
		fprintf(stderr, "\033[%dA\r\033[J", p->drawn);
		p->drawn = 0;
	}
}

static int term_width(void)
{
	struct winsize ws;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

static void rate_eta(uint64_t now, uint64_t total, int64_t elapsed_ms,
                     char *rate, size_t rl, char *eta, size_t el)
{
	double bps = elapsed_ms > 0 ? (double)now * 1000.0 / (double)elapsed_ms : 0;
	char sz[32];

	kf_progress_size((uint64_t)bps, sz, sizeof sz);
	snprintf(rate, rl, "%s/s", sz);
	if (total > now && bps > 1.0) {
		unsigned long s = (unsigned long)((double)(total - now) / bps);
		snprintf(eta, el, "ETA %lu:%02lu", s / 60, s % 60);
	} else {
		snprintf(eta, el, "%s", total && now >= total ? "done" : "ETA --:--");
	}
}

void kf_progress_draw(kf_progress *p, int force)
{
	int64_t now_ms;
	int w, lines = 0;
	uint64_t sum = 0;
	char a[32], b[32], rate[48], eta[32];

	if (!p || !p->tty)
		return;
	now_ms = kf_fetch_now_ms();
	if (!force && now_ms - p->last_draw_ms < REDRAW_MS)
		return;
	p->last_draw_ms = now_ms;
	w = term_width() - 1;
	erase(p);
	for (size_t i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		if (!s->used)
			continue;
		sum += s->now;
		kf_progress_size(s->now, a, sizeof a);
		if (s->total)
			kf_progress_size(s->total, b, sizeof b);
		else
			snprintf(b, sizeof b, "?");
		rate_eta(s->now, s->total, now_ms - s->start_ms, rate, sizeof rate,
		         eta, sizeof eta);
		fprintf(stderr, "  %-*.*s %10s / %-10s %12s  %s\n", w > 70 ? w - 58 : 12,
		        w > 70 ? w - 58 : 12, s->name, a, b, rate, eta);
		lines++;
	}
	sum += p->done_bytes;
	kf_progress_size(sum, a, sizeof a);
	rate_eta(sum, 0, now_ms - p->start_ms, rate, sizeof rate, eta, sizeof eta);
	fprintf(stderr, "  total: %zu/%zu files, %s, %s\n", p->ndone, p->nfiles, a, rate);
	lines++;
	p->drawn = lines;
	fflush(stderr);
}

void kf_progress_log(kf_progress *p, const char *fmt, ...)
{
	va_list ap;

	if (!p || p->quiet)
		return;
	erase(p);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kf_progress_draw(p, 1);
}

void kf_progress_done(kf_progress *p, int slot, int ok, const char *url,
                      uint64_t bytes)
{
	int64_t ms;
	char sz[32], rate[48], eta[32];

	if (!p || slot < 0 || (size_t)slot >= p->nslots)
		return;
	ms = kf_fetch_now_ms() - p->slots[slot].start_ms;
	p->slots[slot].used = 0;
	if (!ok)
		return;
	p->ndone++;
	p->done_bytes += bytes;
	if (p->quiet)
		return;
	if (p->tty) {
		kf_progress_draw(p, 1);
		return;
	}
	kf_progress_size(bytes, sz, sizeof sz);
	rate_eta(bytes, 0, ms, rate, sizeof rate, eta, sizeof eta);
	fprintf(stderr, "kubeferry: fetched %s (%s in %.1f s, %s)\n", url, sz,
	        (double)ms / 1000.0, rate);
}

void kf_progress_free(kf_progress *p)
{
	if (!p)
		return;
	erase(p);
	fflush(stderr);
	free(p->slots);
	free(p);
}
