/*
 * The OCI distribution pull API under /v2/: the version check, manifests by
 * tag or digest, blobs by digest, tags/list. A request for anything outside
 * the served set, or any path that is not a well-formed name and
 * reference, gets a 4xx and nothing from the disk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "mirror/server_int.h"

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

/* out = [reg "/"] name, when that repository is served. */
static int try_repo(server *s, const char *reg, const char *name, char *out, size_t n)
{
	return !kf_strf(out, n, "%s%s%s", reg ? reg : "", reg ? "/" : "", name) &&
	       kf_srv_map_get(s->map, "R", out, 0, NULL) != NULL;
}

/* The image repository a request names: containerd's ?ns=<registry> says
 * which registry the client wanted; a path-prefixed name carries it itself;
 * a bare name is a docker.io one (library/ for official images). */
static int resolve_repo(server *s, const char *name, const char *ns, char *out,
                        size_t n)
{
	int official = !strchr(name, '/');

	if (ns)
		return try_repo(s, ns, name, out, n) ||
		       (!strcmp(ns, "docker.io") && official &&
		        try_repo(s, "docker.io/library", name, out, n));
	if (kf_oci_domain_len(name))
		return try_repo(s, NULL, name, out, n);
	return try_repo(s, "docker.io", name, out, n) ||
	       (official && try_repo(s, "docker.io/library", name, out, n));
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

	if (kf_strf(prefix, sizeof prefix, "T %s:", repo)) {
		kf_srv_error(c, 500, "Internal Server Error", "UNKNOWN", "name too long");
		goto out;
	}
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
		kf_srv_error(c, 500, "Internal Server Error", "UNKNOWN", "out of memory");
		goto out;
	}
	evhttp_add_header(h, "Content-Type", "application/json");
	if (evhttp_request_get_command(c->req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof len, "%zu", strlen(text));
		evhttp_add_header(h, "Content-Length", len);
	} else {
		evbuffer_add(b, text, strlen(text));
	}
	kf_srv_reply(c, 200, "OK", b);
out:
	if (b)
		evbuffer_free(b);
	free(text);
	free(sorted);
	json_decref(out);
	json_decref(tags);
}

/* The first "ns" parameter of the query, decoded as evhttp decodes query
 * values ('+' is a space): 0 when absent, 1 with out set, -1 when it is too
 * long, decodes to a NUL byte (which would cut "docker.io%00x" short to a
 * valid name) or cannot be decoded. What is decoded is what gets checked. */
static int query_ns(const char *query, char *out, size_t n)
{
	const char *p = query;
	int rc = 0;

	while (p && *p && rc == 0) {
		size_t seg = strcspn(p, "&");
		if (seg > 3 && !memcmp(p, "ns=", 3)) {
			char *raw = strndup(p + 3, seg - 3), *v = NULL;
			size_t len = 0;
			v = raw ? evhttp_uridecode(raw, 1, &len) : NULL;
			rc = -1;
			if (v && len == strlen(v) && len < n) {
				memcpy(out, v, len + 1);
				rc = 1;
			}
			free(v);
			free(raw);
		} else if (seg == 3 && !memcmp(p, "ns=", 3)) {
			rc = -1; /* an empty registry name */
		}
		p += seg;
		if (*p == '&')
			p++;
	}
	return rc;
}

static int open_blob(server *s, const char *digest)
{
	char *p = kf_layout_blob_path(s->images, digest);
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	free(p);
	return fd;
}

void kf_srv_handle_v2(reqctx *c, const char *path, const char *query)
{
	server *s = c->srv;
	char name[MAX_NAME + 1], repo[MAX_NAME * 2 + 32], ns[MAX_NAME + 1];
	const char *rest = path + 4, *kind, *ref, *slash;
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
		kf_srv_reply(c, 200, "OK", b);
		evbuffer_free(b);
		return;
	}
	/* <name>/(manifests|blobs)/<reference> */
	slash = strrchr(rest, '/');
	if (!slash) {
		kf_srv_error(c, 404, "Not Found", "NAME_UNKNOWN", "no such endpoint");
		return;
	}
	ref = slash + 1;
	kind = slash;
	while (kind > rest && kind[-1] != '/')
		kind--;
	if (kind == rest || (size_t)(kind - 1 - rest) > MAX_NAME ||
	    (strncmp(kind, "manifests/", 10) && strncmp(kind, "blobs/", 6) &&
	     strcmp(kind, "tags/list"))) {
		kf_srv_error(c, 404, "Not Found", "NAME_UNKNOWN", "no such endpoint");
		return;
	}
	memcpy(name, rest, (size_t)(kind - 1 - rest));
	name[kind - 1 - rest] = '\0';
	if (!name_valid(name)) {
		kf_srv_error(c, 400, "Bad Request", "NAME_INVALID", "invalid repository name");
		return;
	}
	have_ns = query_ns(query, ns, sizeof ns);
	if (have_ns < 0 || (have_ns && !kf_oci_domain_valid(ns, strlen(ns)))) {
		kf_srv_error(c, 400, "Bad Request", "NAME_INVALID", "invalid ns parameter");
		return;
	}
	if (!resolve_repo(s, name, have_ns ? ns : NULL, repo, sizeof repo)) {
		kf_srv_error(c, 404, "Not Found", "NAME_UNKNOWN", "repository not in this bundle");
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
				kf_srv_error(c, 400, "Bad Request", "DIGEST_INVALID", "invalid digest");
				return;
			}
			d = kf_srv_map_get(s->map, "M", repo, '@', ref);
		} else if (!kf_oci_tag_valid(ref)) {
			kf_srv_error(c, 400, "Bad Request", "TAG_INVALID", "invalid tag");
			return;
		} else {
			d = kf_srv_map_get(s->map, "T", repo, ':', ref);
			digest = json_string_value(json_object_get(d, "digest"));
		}
		mt = json_string_value(json_object_get(d, "mediaType"));
		if (!d || !digest || !mt) {
			kf_srv_error(c, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest unknown");
			return;
		}
		fd = open_blob(s, digest);
		if (fd < 0) {
			kf_srv_error(c, 404, "Not Found", "MANIFEST_UNKNOWN", "manifest missing from the layout");
			return;
		}
		kf_srv_send_fd(c, fd, mt, digest);
		return;
	}
	if (!kf_oci_digest_valid(ref)) {
		kf_srv_error(c, 400, "Bad Request", "DIGEST_INVALID", "invalid digest");
		return;
	}
	/* Only blobs an image of this repository references: the layout's
	 * directory is never browsed by name. */
	if (!kf_srv_map_get(s->map, "B", repo, '@', ref) && !kf_srv_map_get(s->map, "M", repo, '@', ref)) {
		kf_srv_error(c, 404, "Not Found", "BLOB_UNKNOWN", "blob unknown to this repository");
		return;
	}
	fd = open_blob(s, ref);
	if (fd < 0) {
		kf_srv_error(c, 404, "Not Found", "BLOB_UNKNOWN", "blob missing from the layout");
		return;
	}
	kf_srv_send_fd(c, fd, "application/octet-stream", ref);
}
