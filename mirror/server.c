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
 *
 * This file: the listener, TLS setup, signals and the dispatch of each
 * request (server_int.h says where the rest lives).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mirror/server_int.h"

/* A message whose length two parsers could read two ways: two
 * Content-Length headers, or one beside Transfer-Encoding (RFC 9112 6.3).
 * Whatever follows it on the connection cannot be trusted to be the next
 * request (request smuggling through a proxy in front of the mirror). */
static int framing_ambiguous(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	int ncl = 0, te = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (!evutil_ascii_strcasecmp(kv->key, "Content-Length"))
			ncl++;
		else if (!evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding"))
			te++;
	}
	return ncl > 1 || (ncl > 0 && te > 0);
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
		kf_srv_error(c, 400, "Bad Request", "NAME_INVALID", "bad request URI");
		return;
	}
	if (framing_ambiguous(req)) {
		/* evhttp closes the connection after a reply that says so */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		kf_srv_error(c, 400, "Bad Request", "UNSUPPORTED",
		             "ambiguous message length (Content-Length twice, or with "
		             "Transfer-Encoding)");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		kf_srv_error(c, 405, "Method Not Allowed", "UNSUPPORTED",
		          "this mirror is read-only");
		return;
	}
	if (!strcmp(path, "/v2") || !strncmp(path, "/v2/", 4)) {
		/* Names and digests never need escapes: a '%' is refused before
		 * anything is looked up. */
		if (strchr(path, '%')) {
			kf_srv_error(c, 400, "Bad Request", "NAME_INVALID", "escaped characters in name");
			return;
		}
		kf_srv_handle_v2(c, strcmp(path, "/v2") ? path : "/v2/", evhttp_uri_get_query(u));
		return;
	}
	if (!strncmp(path, "/files/", 7)) {
		kf_srv_handle_files(c, path + 7);
		return;
	}
	kf_srv_error(c, 404, "Not Found", "NOT_FOUND", "not found");
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
	rc = kf_srv_load_index(&s, e);
	if (rc)
		goto out;
	if (kf_strf(files, sizeof files, "%s/files", o->dir)) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", o->dir);
		goto out;
	}
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
