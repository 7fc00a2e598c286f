/*
 * The read-only registry server: the OCI distribution pull API over an
 * unpacked bundle's image layout (dir/images) and its files/ tree, served
 * straight from the files with libevent's evhttp (HTTP/1.1) and
 * bufferevent_openssl (TLS). One event loop serves every client; blob
 * bodies go out in bounded chunks, each queued only when the previous one
 * left the process, so a slow client costs one chunk of memory and never
 * stalls the others.
 *
 * What is served is decided once at start from index.json: each named image,
 * its index, its platform manifests and their config and layer blobs. A
 * request for anything else, or any path that is not a well-formed name and
 * digest, gets a 4xx and nothing from the disk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mirror/kf_mirror.h"

/* Bytes queued per step of a body: bounds memory per client. */
#define CHUNK (256 * 1024)
/* Manifests and indexes are small; anything larger is not one. */
#define MAX_MANIFEST (4 * 1024 * 1024)
/* index.json names every image of the bundle. */
#define MAX_INDEX (64 * 1024 * 1024)
#define MAX_NAME 255

typedef struct server {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ssl;
	char *images;     /* dir/images */
	int files_fd;     /* dir/files, or -1 */
	/* "T repo:tag" -> descriptor; "M repo@digest" -> {mediaType};
	 * "B repo@digest" -> {} ; "R repo" -> {}. */
	json_t *map;
	int quiet;
} server;

typedef struct reqctx {
	server *srv;
	struct evhttp_request *req;
	struct timespec start;
	char method[8];
	char *uri;
	char peer[64];
	int status;
	uint64_t bytes;
	/* streaming state */
	int fd;
	uint64_t off, end;
	struct evhttp_connection *evcon;
} reqctx;

/* ---- index ----------------------------------------------------------------- */

static int map_put(json_t *map, const char *kind, const char *a, char sep,
                   const char *b, json_t *val)
{
	char key[MAX_NAME + 200];
	int r;

	if (b)
		r = snprintf(key, sizeof key, "%s %s%c%s", kind, a, sep, b);
	else
		r = snprintf(key, sizeof key, "%s %s", kind, a);
	if (r < 0 || (size_t)r >= sizeof key) {
		json_decref(val);
		return -1;
	}
	return json_object_set_new(map, key, val);
}

static json_t *map_get(json_t *map, const char *kind, const char *a, char sep,
                       const char *b)
{
	char key[MAX_NAME + 200];
	int r;

	if (b)
		r = snprintf(key, sizeof key, "%s %s%c%s", kind, a, sep, b);
	else
		r = snprintf(key, sizeof key, "%s %s", kind, a);
	if (r < 0 || (size_t)r >= sizeof key)
		return NULL;
	return json_object_get(map, key);
}

/* Read a manifest blob and check it against its digest: the server states
 * Docker-Content-Digest for it, so it must hold exactly those bytes. */
static int read_manifest(server *s, const char *digest, char **out, size_t *len,
                         int *missing, kf_err *e)
{
	int rc = KF_OK;
	char *path = kf_layout_blob_path(s->images, digest), *buf = NULL;
	char hex[KF_SHA256_HEX];
	struct stat st;

	*out = NULL;
	*missing = 0;
	if (!path) {
		rc = kf_err_set(e, KF_EVERIFY, "%s/index.json: malformed digest '%s'",
		                s->images, digest);
		goto out;
	}
	if (lstat(path, &st) != 0) {
		*missing = 1;
		rc = kf_err_errno(e, "cannot read manifest", path);
		goto out;
	}
	rc = kf_read_file(path, MAX_MANIFEST, &buf, len, e);
	if (rc)
		goto out;
	kf_sha256_buf(buf, *len, hex);
	if (strcmp(hex, digest + 7)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: content does not match its digest %s",
		                path, digest);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	free(buf);
	free(path);
	return rc;
}

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, KF_MT_OCI_INDEX) || !strcmp(mt, KF_MT_DOCKER_LIST));
}

static int walk_manifest(server *s, const char *repo, const char *digest,
                         const char *desc_mt, int depth, int top, kf_err *e);

/* One level of the walk below a manifest or index. */
struct walk {
	server *s;
	const char *repo;
	int index, depth;
};

static int walk_child(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct walk *w = arg;
	int rc = KF_OK;

	if (w->index != (d->role == KF_OCI_CHILD_MANIFEST) || !kf_oci_digest_valid(d->digest))
		goto out;
	if (w->index)
		rc = walk_manifest(w->s, w->repo, d->digest, d->media_type, w->depth + 1, 0, e);
	else
		map_put(w->s->map, "B", w->repo, '@', d->digest, json_object());
out:
	return rc;
}

/* Record a manifest (or index) and everything it references as served
 * under repo. Children absent from the layout are skipped: the bundle holds
 * only its architectures, while the index is kept byte for byte. */
static int walk_manifest(server *s, const char *repo, const char *digest,
                         const char *desc_mt, int depth, int top, kf_err *e)
{
	int rc = KF_OK, missing = 0;
	char *body = NULL;
	size_t len = 0;
	kf_oci_shape shape;
	struct walk w = {s, repo, 0, depth};
	const char *mt;

	if (depth > 4) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: manifests nested too deep at %s",
		                repo, digest);
		goto out;
	}
	rc = read_manifest(s, digest, &body, &len, &missing, e);
	if (rc) {
		if (missing && !top)
			rc = KF_OK;
		goto out;
	}
	rc = kf_oci_children(body, len, NULL, NULL, &shape, e);
	if (rc) {
		kf_err_prefix(e, "%s@%s: not a JSON manifest", repo, digest);
		goto out;
	}
	/* The manifest's own mediaType wins; OCI lets it be absent, then the
	 * descriptor that pointed here says what it is. */
	mt = shape.media_type[0] ? shape.media_type : desc_mt;
	if (!mt) {
		rc = kf_err_set(e, KF_EVERIFY, "%s@%s: manifest has no media type", repo, digest);
		goto out;
	}
	if (map_put(s->map, "M", repo, '@', digest, json_pack("{ss}", "mediaType", mt))) {
		rc = kf_err_set(e, KF_EIO, "%s: name too long", repo);
		goto out;
	}
	w.index = is_index_type(mt);
	rc = kf_oci_children(body, len, walk_child, &w, NULL, e);
out:
	free(body);
	return rc;
}

/* One image named in index.json. */
struct named {
	server *s;
	const char *path;
	size_t count;
};

static int load_named(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct named *n = arg;
	server *s = n->s;
	kf_oci_ref ref = {0};
	char repo[MAX_NAME + 1];
	int rc = KF_OK;

	if (d->role != KF_OCI_CHILD_MANIFEST || !d->ref_name || !strchr(d->ref_name, '/'))
		goto out; /* not a full reference: nothing to serve it as */
	if (!kf_oci_digest_valid(d->digest) || kf_oci_ref_parse(d->ref_name, &ref, e) ||
	    kf_strf(repo, sizeof repo, "%s/%s", ref.registry, ref.repository)) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: manifests[%zu] (%s): bad name or digest",
		                n->path, d->index, d->ref_name);
		goto out;
	}
	rc = walk_manifest(s, repo, d->digest, d->media_type, 0, 1, e);
	if (rc)
		goto out;
	map_put(s->map, "R", repo, 0, NULL, json_object());
	if (ref.tag)
		map_put(s->map, "T", repo, ':', ref.tag,
		        json_pack("{ssss}", "digest", d->digest, "mediaType",
		                  json_string_value(json_object_get(
		                          map_get(s->map, "M", repo, '@', d->digest), "mediaType"))));
	n->count++;
out:
	kf_oci_ref_clear(&ref);
	return rc;
}

static int load_index(server *s, kf_err *e)
{
	int rc = KF_OK;
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	struct named n = {s, path, 0};

	if (kf_strf(path, sizeof path, "%s/index.json", s->images)) {
		rc = kf_err_set(e, KF_EIO, "%s: path too long", s->images);
		goto out;
	}
	rc = kf_read_file(path, MAX_INDEX, &text, &len, e);
	if (rc)
		goto out;
	rc = kf_oci_children(text, len, NULL, NULL, NULL, e);
	if (rc) {
		kf_err_prefix(e, "%s", path);
		goto out;
	}
	rc = kf_oci_children(text, len, load_named, &n, NULL, e);
	if (rc)
		goto out;
	if (n.count == 0)
		fprintf(stderr, "kubeferry-install: warning: %s names no image\n", path);
out:
	free(text);
	return rc;
}

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

static void reply(reqctx *c, int code, const char *reason, struct evbuffer *body)
{
	c->status = code;
	if (body)
		c->bytes = evbuffer_get_length(body);
	evhttp_send_reply(c->req, code, reason, body);
	ctx_done(c);
}

static void oci_error(reqctx *c, int code, const char *reason, const char *ecode,
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
	reply(c, code, reason, b);
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
static void send_fd(reqctx *c, int fd, const char *ctype, const char *digest)
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
		oci_error(c, 500, "Internal Server Error", "UNKNOWN", "cannot read the file");
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
		oci_error(c, 416, "Range Not Satisfiable", "BLOB_UNKNOWN" /* no better code */,
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
		reply(c, code, code == 206 ? "Partial Content" : "OK", NULL);
		return;
	}
	c->off = from;
	c->end = to;
	c->evcon = evhttp_request_get_connection(req);
	b = next_chunk(c);
	if (!b) {
		c->bytes = 0;
		evhttp_remove_header(h, "Content-Length");
		oci_error(c, 503, "Service Unavailable", "UNKNOWN", "out of file descriptors");
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

/* ---- names ---------------------------------------------------------------- */

/* A repository name in a request path: the OCI grammar, after an
 * optional registry host (a path-prefixed name, "h:5000/x"). */
static int name_valid(const char *name)
{
	size_t d = kf_oci_domain_len(name);

	if (strlen(name) > MAX_NAME)
		return 0;
	return d ? kf_oci_domain_valid(name, d) && kf_oci_name_valid(name + d + 1) :
	           kf_oci_name_valid(name);
}

/* The image repository a request names: containerd's ?ns=<registry> says
 * which registry the client wanted; a path-prefixed name carries it itself;
 * a bare name is a docker.io one (library/ for official images). */
static int resolve_repo(server *s, const char *name, const char *ns, char *out,
                        size_t n)
{
	char cand[3][MAX_NAME * 2 + 32];
	int nc = 0;

	if (ns) {
		snprintf(cand[nc++], sizeof cand[0], "%s/%s", ns, name);
		if (!strcmp(ns, "docker.io") && !strchr(name, '/'))
			snprintf(cand[nc++], sizeof cand[0], "docker.io/library/%s", name);
	} else if (kf_oci_domain_len(name)) {
		snprintf(cand[nc++], sizeof cand[0], "%s", name);
	} else {
		snprintf(cand[nc++], sizeof cand[0], "docker.io/%s", name);
		if (!strchr(name, '/'))
			snprintf(cand[nc++], sizeof cand[0], "docker.io/library/%s", name);
	}
	for (int i = 0; i < nc; i++) {
		size_t len = strlen(cand[i]);
		if (len < n && map_get(s->map, "R", cand[i], 0, NULL)) {
			memcpy(out, cand[i], len + 1);
			return 1;
		}
	}
	return 0;
}

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	              json_string_value(*(json_t *const *)b));
}

/* GET /v2/<name>/tags/list: the tags the bundle holds for one repository,
 * sorted (skopeo list-tags, operators checking a mirror). */
static void send_tags(reqctx *c, const char *name, const char *repo)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	struct evbuffer *b = evbuffer_new();
	json_t *tags = json_array(), *v, *out = NULL;
	const char *key;
	char prefix[MAX_NAME * 2 + 40], *text = NULL, len[32];
	size_t plen, n;
	json_t **sorted = NULL;

	snprintf(prefix, sizeof prefix, "T %s:", repo);
	plen = strlen(prefix);
	json_object_foreach(c->srv->map, key, v) {
		if (!strncmp(key, prefix, plen) && !strpbrk(key + plen, "/:"))
			json_array_append_new(tags, json_string(key + plen));
	}
	n = json_array_size(tags);
	sorted = calloc(n ? n : 1, sizeof *sorted);
	for (size_t i = 0; sorted && i < n; i++)
		sorted[i] = json_array_get(tags, i);
	if (sorted)
		qsort(sorted, n, sizeof *sorted, cmp_json_str);
	out = json_pack("{s:s,s:[]}", "name", name, "tags");
	for (size_t i = 0; out && sorted && i < n; i++)
		json_array_append(json_object_get(out, "tags"), sorted[i]);
	text = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (!b || !text) {
		oci_error(c, 500, "Internal Server Error", "UNKNOWN", "out of memory");
		goto out;
	}
	evhttp_add_header(h, "Content-Type", "application/json");
	if (evhttp_request_get_command(c->req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof len, "%zu", strlen(text));
		evhttp_add_header(h, "Content-Length", len);
	} else {
		evbuffer_add(b, text, strlen(text));
	}
	reply(c, 200, "OK", b);
out:
	if (b)
		evbuffer_free(b);
	free(text);
	free(sorted);
	json_decref(out);
	json_decref(tags);
}

static int open_blob(server *s, const char *digest)
{
	char *p = kf_layout_blob_path(s->images, digest);
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	free(p);
	return fd;
}

static void handle_v2(reqctx *c, const char *path, const char *query)
{
	server *s = c->srv;
	char name[MAX_NAME + 1], repo[MAX_NAME * 2 + 32], ns[MAX_NAME + 1];
	const char *rest = path + 4, *kind, *ref, *slash;
	struct evkeyvalq q;
	const char *nsv;
	json_t *d;
	int fd, have_ns = 0;

	if (*rest == '\0') {
		struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
		struct evbuffer *b = evbuffer_new();
		evhttp_add_header(h, "Content-Type", "application/json");
		if (b && evhttp_request_get_command(c->req) != EVHTTP_REQ_HEAD)
			evbuffer_add(b, "{}", 2);
		else
			evhttp_add_header(h, "Content-Length", "2");
		reply(c, 200, "OK", b);
		evbuffer_free(b);
		return;
	}
	/* <name>/(manifests|blobs)/<reference> */
	slash = strrchr(rest, '/');
	if (!slash) {
		oci_error(c, 404, "Not Found", "NAME_UNKNOWN", "no such endpoint");
		return;
	}
	ref = slash + 1;
	kind = slash;
	while (kind > rest && kind[-1] != '/')
		kind--;
	if (kind == rest || (size_t)(kind - 1 - rest) > MAX_NAME ||
	    (strncmp(kind, "manifests/", 10) && strncmp(kind, "blobs/", 6) &&
	     strcmp(kind, "tags/list"))) {
		oci_error(c, 404, "Not Found", "NAME_UNKNOWN", "no such endpoint");
		return;
	}
	memcpy(name, rest, (size_t)(kind - 1 - rest));
	name[kind - 1 - rest] = '\0';
	if (!name_valid(name)) {
		oci_error(c, 400, "Bad Request", "NAME_INVALID", "invalid repository name");
		return;
	}
	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) == 0 &&
	    (nsv = evhttp_find_header(&q, "ns")) != NULL) {
		if (strlen(nsv) > MAX_NAME || !kf_oci_domain_valid(nsv, strlen(nsv))) {
			evhttp_clear_headers(&q);
			oci_error(c, 400, "Bad Request", "NAME_INVALID", "invalid ns parameter");
			return;
		}
		snprintf(ns, sizeof ns, "%s", nsv);
		have_ns = 1;
	}
	evhttp_clear_headers(&q);
	if (!resolve_repo(s, name, have_ns ? ns : NULL, repo, sizeof repo)) {
		oci_error(c, 404, "Not Found", "NAME_UNKNOWN", "repository not in this bundle");
		return;
	}

	if (kind[0] == 't') {
		send_tags(c, name, repo);
		return;
	}
	if (kind[0] == 'm') {
		const char *digest = ref, *mt;
		if (!strncmp(ref, "sha256:", 7) || strchr(ref, ':')) {
			if (!kf_oci_digest_valid(ref)) {
				oci_error(c, 400, "Bad Request", "DIGEST_INVALID", "invalid digest");
				return;
			}
			d = map_get(s->map, "M", repo, '@', ref);
		} else if (!kf_oci_tag_valid(ref)) {
			oci_error(c, 400, "Bad Request", "TAG_INVALID", "invalid tag");
			return;
		} else {
			d = map_get(s->map, "T", repo, ':', ref);
			digest = json_string_value(json_object_get(d, "digest"));
		}
		mt = json_string_value(json_object_get(d, "mediaType"));
		if (!d || !digest || !mt) {
			oci_error(c, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest unknown");
			return;
		}
		fd = open_blob(s, digest);
		if (fd < 0) {
			oci_error(c, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest missing from the layout");
			return;
		}
		send_fd(c, fd, mt, digest);
		return;
	}
	if (!kf_oci_digest_valid(ref)) {
		oci_error(c, 400, "Bad Request", "DIGEST_INVALID", "invalid digest");
		return;
	}
	/* Only blobs an image of this repository references: the layout's
	 * directory is never browsed by name. */
	if (!map_get(s->map, "B", repo, '@', ref) && !map_get(s->map, "M", repo, '@', ref)) {
		oci_error(c, 404, "Not Found", "BLOB_UNKNOWN", "blob unknown to this repository");
		return;
	}
	fd = open_blob(s, ref);
	if (fd < 0) {
		oci_error(c, 404, "Not Found", "BLOB_UNKNOWN", "blob missing from the layout");
		return;
	}
	send_fd(c, fd, "application/octet-stream", ref);
}

/* files/<path>: walk component by component from the files/ directory
 * with O_NOFOLLOW, so no symlink, "..", or absolute path leads out. */
static void handle_files(reqctx *c, const char *raw)
{
	server *s = c->srv;
	size_t len = 0;
	char *path = evhttp_uridecode(raw, 0, &len), *p, *save = NULL, *tok, *next;
	int dirfd = -1, fd = -1;
	struct stat st;

	if (s->files_fd < 0 || !path || len != strlen(path) || !*path) {
		oci_error(c, path && len != strlen(path) ? 400 : 404,
		          path && len != strlen(path) ? "Bad Request" : "Not Found",
		          "NOT_FOUND", "no such file");
		goto out;
	}
	dirfd = fcntl(s->files_fd, F_DUPFD_CLOEXEC, 0);
	p = path;
	tok = strtok_r(p, "/", &save);
	while (tok) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(tok, "..") || !strcmp(tok, ".")) {
			oci_error(c, 400, "Bad Request", "NAME_INVALID", "path not allowed");
			goto out;
		}
		fd = openat(dirfd, tok, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
		                        (next ? O_DIRECTORY : 0));
		if (fd < 0) {
			oci_error(c, 404, "Not Found", "NOT_FOUND", "no such file");
			goto out;
		}
		close(dirfd);
		dirfd = fd;
		fd = -1;
		tok = next;
	}
	if (fstat(dirfd, &st) != 0 || !S_ISREG(st.st_mode)) {
		oci_error(c, 404, "Not Found", "NOT_FOUND", "no such file");
		goto out;
	}
	send_fd(c, dirfd, "application/octet-stream", NULL);
	dirfd = -1;
out:
	if (dirfd >= 0)
		close(dirfd);
	free(path);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	server *s = arg;
	reqctx *c = calloc(1, sizeof *c);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char *peer = NULL;
	ev_uint16_t port = 0;

	if (!c) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	c->srv = s;
	c->req = req;
	c->fd = -1;
	snprintf(c->method, sizeof c->method, "%s",
	         cmd == EVHTTP_REQ_GET ? "GET" : cmd == EVHTTP_REQ_HEAD ? "HEAD" :
	         cmd == EVHTTP_REQ_PUT ? "PUT" : cmd == EVHTTP_REQ_POST ? "POST" :
	         cmd == EVHTTP_REQ_DELETE ? "DELETE" : cmd == EVHTTP_REQ_PATCH ? "PATCH" :
	         "OTHER");
	c->uri = strdup(evhttp_request_get_uri(req));
	/* The log is one line per request: control bytes from the client
	 * never reach it. */
	for (char *q = c->uri; q && *q; q++)
		if ((unsigned char)*q < 0x21 || (unsigned char)*q == 0x7f)
			*q = '?';
	if (evcon)
		evhttp_connection_get_peer(evcon, &peer, &port);
	snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "-");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Docker-Distribution-Api-Version", "registry/2.0");
	if (!c->uri || !path) {
		if (!c->uri)
			c->uri = strdup("-");
		oci_error(c, 400, "Bad Request", "NAME_INVALID", "bad request URI");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		oci_error(c, 405, "Method Not Allowed", "UNSUPPORTED",
		          "this mirror is read-only");
		return;
	}
	if (!strcmp(path, "/v2") || !strncmp(path, "/v2/", 4)) {
		/* Names and digests never need escapes: a '%' is refused before
		 * anything is looked up. */
		if (strchr(path, '%')) {
			oci_error(c, 400, "Bad Request", "NAME_INVALID", "escaped characters in name");
			return;
		}
		handle_v2(c, strcmp(path, "/v2") ? path : "/v2/", evhttp_uri_get_query(u));
		return;
	}
	if (!strncmp(path, "/files/", 7)) {
		handle_files(c, path + 7);
		return;
	}
	oci_error(c, 404, "Not Found", "NOT_FOUND", "not found");
}

/* ---- setup ------------------------------------------------------------------ */

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	server *s = arg;
	SSL *ssl = SSL_new(s->ssl);
	struct bufferevent *bev;

	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	/* Clients that hang up without close_notify are normal (curl,
	 * containerd): not an error worth a failed request. */
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	server *s = arg;
	(void)what;
	fprintf(stderr, "kubeferry-install: mirror: signal %d, shutting down\n", (int)sig);
	event_base_loopexit(s->base, NULL);
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

/* accept() failed for a reason that does not go away by itself (out of
 * descriptors or memory). libevent would retry at once, forever: a busy loop
 * with one warning per turn. Stop accepting for a moment instead, so the
 * connections being served can finish and free their descriptors. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 250 * 1000};
	(void)arg;
	fprintf(stderr, "kubeferry-install: mirror: cannot accept a connection: %s; "
	        "pausing new connections for 250 ms\n", evutil_socket_error_to_string(err));
	evconnlistener_disable(lev);
	if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT,
	                    resume_accepting, lev, &tv) != 0)
		evconnlistener_enable(lev);
}

/* Every blob in flight holds two descriptors: let many nodes pull at once
 * up to what the administrator allows (the hard limit), not the soft
 * default of 1024. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int setup_tls(server *s, const char *cert, const char *key, kf_err *e)
{
	int rc = KF_OK;
	char buf[256];

	s->ssl = SSL_CTX_new(TLS_server_method());
	if (!s->ssl) {
		rc = kf_err_set(e, KF_EIO, "cannot create a TLS context");
		goto out;
	}
	SSL_CTX_set_min_proto_version(s->ssl, TLS1_2_VERSION);
	SSL_CTX_set_options(s->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* The whole chain in the file is served (server certificate first,
	 * then intermediates and CA): nodes take the CA out of the handshake
	 * and pin it by fingerprint. */
	if (SSL_CTX_use_certificate_chain_file(s->ssl, cert) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		rc = kf_err_set(e, KF_EIO, "cannot load certificate %s: %s", cert, buf);
		goto out;
	}
	{
		STACK_OF(X509) *extra = NULL;
		X509 *leaf = SSL_CTX_get0_certificate(s->ssl);
		SSL_CTX_get0_chain_certs(s->ssl, &extra);
		/* A lone certificate signed by someone else still serves
		 * clients that hold its CA, but gives `apply
		 * --mirror-ca-fingerprint` nothing to pin: say so. */
		if ((!extra || sk_X509_num(extra) == 0) && leaf &&
		    X509_check_issued(leaf, leaf) != X509_V_OK)
			fprintf(stderr, "kubeferry-install: warning: %s holds only the server "
			                "certificate; append its CA (and intermediates) so that "
			                "nodes can pin the CA with apply --mirror-ca-fingerprint\n",
			        cert);
	}
	if (SSL_CTX_use_PrivateKey_file(s->ssl, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(s->ssl) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		rc = kf_err_set(e, KF_EIO, "cannot load key %s (for %s): %s", key, cert, buf);
		goto out;
	}
out:
	ERR_clear_error();
	return rc;
}

int kf_mirror_serve(const kf_mirror_serve_opts *o, kf_err *e)
{
	int rc = KF_OK;
	server s;
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	struct evconnlistener *lev = NULL;
	struct event *sigterm = NULL, *sigint = NULL;
	char files[PATH_MAX];
	struct stat st;

	memset(&s, 0, sizeof s);
	s.files_fd = -1;
	s.quiet = o->quiet;
	if (!o->dir || !o->listen) {
		rc = kf_err_set(e, KF_EUSAGE, "mirror serve needs a directory and --listen");
		goto out;
	}
	if (!o->plain_http && (!o->tls_cert || !o->tls_key)) {
		rc = kf_err_set(e, KF_EUSAGE, "TLS needs a certificate and a key (or --plain-http)");
		goto out;
	}
	/* Numeric only: a static glibc binary must not resolve names. */
	memset(&ss, 0, sizeof ss);
	if (evutil_parse_sockaddr_port(o->listen, (struct sockaddr *)&ss, &sslen) != 0 ||
	    ((struct sockaddr_in *)&ss)->sin_port == 0) {
		rc = kf_err_set(e, KF_EUSAGE, "--listen %s: want a numeric ADDR:PORT or [ADDR]:PORT",
		                o->listen);
		goto out;
	}
	if (asprintf(&s.images, "%s/images", o->dir) < 0) {
		s.images = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	s.map = json_object();
	if (!s.map) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = load_index(&s, e);
	if (rc)
		goto out;
	snprintf(files, sizeof files, "%s/files", o->dir);
	if (stat(files, &st) == 0) {
		s.files_fd = open(files, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s.files_fd < 0) {
			rc = kf_err_errno(e, "cannot open", files);
			goto out;
		}
	}
	if (!o->plain_http) {
		rc = setup_tls(&s, o->tls_cert, o->tls_key, e);
		if (rc)
			goto out;
	}
	/* A client that vanishes must not take the server with it. */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	s.base = event_base_new();
	s.http = s.base ? evhttp_new(s.base) : NULL;
	if (!s.http) {
		rc = kf_err_set(e, KF_EIO, "cannot create the event loop");
		goto out;
	}
	evhttp_set_allowed_methods(s.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	                                   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                   EVHTTP_REQ_OPTIONS);
	/* Pushes are refused anyway: never buffer a large upload first. */
	evhttp_set_max_body_size(s.http, 64 * 1024);
	evhttp_set_max_headers_size(s.http, 64 * 1024);
	evhttp_set_timeout(s.http, 120);
	evhttp_set_gencb(s.http, on_request, &s);
	if (s.ssl)
		evhttp_set_bevcb(s.http, make_bev, &s);
	lev = evconnlistener_new_bind(s.base, NULL, NULL,
	                              LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	                              1024, (struct sockaddr *)&ss, sslen);
	if (!lev) {
		rc = kf_err_set(e, KF_EIO, "cannot listen on %s: %s", o->listen, strerror(errno));
		goto out;
	}
	if (!evhttp_bind_listener(s.http, lev)) {
		evconnlistener_free(lev);
		rc = kf_err_set(e, KF_EIO, "cannot listen on %s", o->listen);
		goto out;
	}
	evconnlistener_set_error_cb(lev, on_accept_error);
	sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
	sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
	if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
		rc = kf_err_set(e, KF_EIO, "cannot install signal handlers");
		goto out;
	}
	printf("kubeferry mirror: serving %s on %s://%s\n", o->dir,
	       o->plain_http ? "http" : "https", o->listen);
	fflush(stdout);
	if (event_base_dispatch(s.base) < 0)
		rc = kf_err_set(e, KF_EIO, "event loop failed");
	printf("kubeferry mirror: stopped\n");
out:
	if (sigterm)
		event_free(sigterm);
	if (sigint)
		event_free(sigint);
	if (s.http)
		evhttp_free(s.http);
	if (s.base)
		event_base_free(s.base);
	if (s.ssl)
		SSL_CTX_free(s.ssl);
	if (s.files_fd >= 0)
		close(s.files_fd);
	json_decref(s.map);
	free(s.images);
	return rc;
}
