/*
 * What the registry server's files share (mirror/server*.c only): the
 * server and per-request state, and the functions one file offers the
 * others. server.c listens and dispatches, server_index.c decides what is
 * served from index.json, server_send.c writes responses and streams
 * bodies, server_api.c is the distribution API (/v2/), server_files.c the
 * /files/ tree.
 */
#ifndef KF_MIRROR_SERVER_INT_H
#define KF_MIRROR_SERVER_INT_H

#include <stdint.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

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

/* server_index.c: the served set, keyed "<kind> <a><sep><b>". */
int kf_srv_map_put(json_t *map, const char *kind, const char *a, char sep,
                   const char *b, json_t *val);
json_t *kf_srv_map_get(json_t *map, const char *kind, const char *a, char sep,
                       const char *b);
/* Read dir/images/index.json and everything its named images reference. */
int kf_srv_load_index(server *s, kf_err *e);

/* server_send.c: each ends the request (and frees c). */
void kf_srv_reply(reqctx *c, int code, const char *reason, struct evbuffer *body);
void kf_srv_error(reqctx *c, int code, const char *reason, const char *ecode,
                  const char *msg);
/* Send an open regular file (fd is owned from here), honouring Range. */
void kf_srv_send_fd(reqctx *c, int fd, const char *ctype, const char *digest);

/* server_api.c: path starts with "/v2/", query may be NULL. */
void kf_srv_handle_v2(reqctx *c, const char *path, const char *query);
/* server_files.c: raw is the path after "/files/", still escaped. */
void kf_srv_handle_files(reqctx *c, const char *raw);

#endif
