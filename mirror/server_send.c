/*
 * Responses: error bodies in the distribution spec's form, and file bodies
 * streamed in bounded chunks, each queued only when the previous one left
 * the process, so a slow client costs one chunk of memory and never stalls
 * the others. Range requests (one range) get 206.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "mirror/server_int.h"

/* ---- responses --------------------------------------------------------------- */

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void ctx_done(reqctx *c)
{
	if (!c->srv->quiet)
		printf("%s %s %s %d %" PRIu64 " %.1fms\n", c->peer, c->method, c->uri,
		       c->status, c->bytes, elapsed_ms(&c->start));
	if (c->fd >= 0)
		close(c->fd);
	free(c->uri);
	free(c);
}

void kf_srv_reply(reqctx *c, int code, const char *reason, struct evbuffer *body)
{
	c->status = code;
	if (body)
		c->bytes = evbuffer_get_length(body);
	evhttp_send_reply(c->req, code, reason, body);
	ctx_done(c);
}

void kf_srv_error(reqctx *c, int code, const char *reason, const char *ecode,
                      const char *msg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	struct evbuffer *b = evbuffer_new();
	json_t *j = json_pack("{s[{ssss}]}", "errors", "code", ecode, "message", msg);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	evhttp_add_header(h, "Content-Type", "application/json");
	if (b && text && evhttp_request_get_command(c->req) != EVHTTP_REQ_HEAD) {
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
	} else if (text) {
		char len[32];
		snprintf(len, sizeof len, "%zu", strlen(text) + 1);
		evhttp_add_header(h, "Content-Length", len);
	}
	kf_srv_reply(c, code, reason, b);
	evbuffer_free(b);
	free(text);
	json_decref(j);
}

static void stream_next(struct evhttp_connection *evcon, void *arg);

/* The connection closes mid-body. When the client went away, libevent has
 * detached the request from the connection and ending it frees it; when the
 * server shuts down (evhttp_free), the request is still attached and the
 * connection frees it right after this callback. */
static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
	reqctx *c = arg;
	(void)evcon;
	c->status = 499; /* as nginx logs a client that closed early */
	if (evhttp_request_get_connection(c->req) == NULL)
		evhttp_send_reply_end(c->req);
	ctx_done(c);
}

/* The next piece of the body, or NULL when out of descriptors or memory.
 * evbuffer_add_file owns its descriptor: one per chunk keeps each chunk's
 * mapping (TLS) or sendfile (plain TCP) independent and short-lived. */
static struct evbuffer *next_chunk(reqctx *c)
{
	struct evbuffer *b = evbuffer_new();
	uint64_t n = c->end - c->off;
	int fd = b ? fcntl(c->fd, F_DUPFD_CLOEXEC, 0) : -1;

	if (n > CHUNK)
		n = CHUNK;
	if (fd < 0 || evbuffer_add_file(b, fd, (ev_off_t)c->off, (ev_off_t)n) != 0) {
		if (fd >= 0)
			close(fd);
		if (b)
			evbuffer_free(b);
		return NULL;
	}
	c->off += n;
	c->bytes += n;
	return b;
}

static void stream_next(struct evhttp_connection *evcon, void *arg)
{
	reqctx *c = arg;
	struct evbuffer *b;

	if (c->off == c->end) {
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		evhttp_send_reply_end(c->req);
		ctx_done(c);
		return;
	}
	b = next_chunk(c);
	if (!b) {
		/* Headers are out: the only honest signal left is to cut the
		 * connection short of Content-Length. Freeing it frees the
		 * request too. */
		c->status = 500;
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		evhttp_connection_free(evcon);
		ctx_done(c);
		return;
	}
	evhttp_send_reply_chunk_with_cb(c->req, b, stream_next, c);
	evbuffer_free(b);
}

/* Parse a single "bytes=" range against size. Returns 1 with [*from,*to)
 * set, 0 when the header is absent or not something we honour (then the
 * whole body is sent, as RFC 9110 allows), -1 when unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	const char *p;
	char *end;
	unsigned long long a, b;

	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 0;
	p = h + 6;
	if (*p == '-') {
		/* digits only: strtoull would take a sign or blanks */
		if (p[1] < '0' || p[1] > '9')
			return 0;
		errno = 0;
		b = strtoull(p + 1, &end, 10);
		if (errno || end == p + 1 || *end)
			return 0;
		if (b == 0)
			return -1;
		*from = b >= size ? 0 : size - b;
		*to = size;
		return size ? 1 : -1;
	}
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	a = strtoull(p, &end, 10);
	if (errno || *end != '-')
		return 0;
	p = end + 1;
	if (*p == '\0') {
		b = size ? size - 1 : 0;
	} else {
		if (*p < '0' || *p > '9')
			return 0;
		b = strtoull(p, &end, 10);
		if (errno || *end || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*from = a;
	*to = b + 1;
	return 1;
}

/* Send an open file (fd is owned from here) with the given headers. */
void kf_srv_send_fd(reqctx *c, int fd, const char *ctype, const char *digest)
{
	struct evhttp_request *req = c->req;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct stat st;
	uint64_t from = 0, to;
	struct evbuffer *b;
	char num[96];
	int r, code = 200;

	c->fd = fd;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		kf_srv_error(c, 500, "Internal Server Error", "UNKNOWN", "cannot read the file");
		return;
	}
	to = (uint64_t)st.st_size;
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Accept-Ranges", "bytes");
	if (digest) {
		evhttp_add_header(h, "Docker-Content-Digest", digest);
		/* Content-addressed: the bytes behind a digest never change. */
		snprintf(num, sizeof num, "\"%s\"", digest);
		evhttp_add_header(h, "ETag", num);
	}
	r = parse_range(evhttp_find_header(evhttp_request_get_input_headers(req), "Range"),
	                (uint64_t)st.st_size, &from, &to);
	if (r < 0) {
		snprintf(num, sizeof num, "bytes */%" PRIu64, (uint64_t)st.st_size);
		evhttp_add_header(h, "Content-Range", num);
		evhttp_remove_header(h, "Content-Type");
		kf_srv_error(c, 416, "Range Not Satisfiable", "BLOB_UNKNOWN" /* no better code */,
		          "requested range not satisfiable");
		return;
	}
	if (r > 0) {
		code = 206;
		snprintf(num, sizeof num, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		         from, to - 1, (uint64_t)st.st_size);
		evhttp_add_header(h, "Content-Range", num);
	}
	snprintf(num, sizeof num, "%" PRIu64, to - from);
	evhttp_add_header(h, "Content-Length", num);
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD || to == from) {
		kf_srv_reply(c, code, code == 206 ? "Partial Content" : "OK", NULL);
		return;
	}
	c->off = from;
	c->end = to;
	c->evcon = evhttp_request_get_connection(req);
	b = next_chunk(c);
	if (!b) {
		c->bytes = 0;
		evhttp_remove_header(h, "Content-Length");
		kf_srv_error(c, 503, "Service Unavailable", "UNKNOWN", "out of file descriptors");
		return;
	}
	c->status = code;
	/* Content-Length is set, so evhttp sends the body as is (no chunked
	 * transfer coding) and we pace it chunk by chunk. */
	evhttp_send_reply_start(req, code, code == 206 ? "Partial Content" : "OK");
	evhttp_connection_set_closecb(c->evcon, stream_closed, c);
	evhttp_send_reply_chunk_with_cb(req, b, stream_next, c);
	evbuffer_free(b);
}
