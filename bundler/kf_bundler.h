/*
 * bundler: the kubeferry program. This header is shared by the bundler's
 * own files and its unit tests; nothing outside bundler/ includes it.
 *
 * Parts: the transfer engine (fetch*.c, libcurl multi), the cache, the
 * registry client (images), and the build / verify / inspect commands.
 */
#ifndef KF_BUNDLER_H
#define KF_BUNDLER_H

#include <stddef.h>
#include <stdint.h>
#include "../keys/kf_keys.h"
#include "../manifests/kf_manifests.h"
#include "../archive/kf_archive.h"

/* ---- transfer engine ----------------------------------------------------- */

/* --rewrite PREFIX=REPLACEMENT: an upstream URL (or registry host) that
 * starts with prefix is fetched from replacement + rest instead. */
typedef struct kf_rewrite {
	char *prefix;
	char *replacement;
} kf_rewrite;

typedef struct kf_fetch_opts {
	int jobs;                 /* parallel transfers (default 8) */
	const char *cacert;       /* CA bundle; NULL: the system store */
	const char *cache_dir;    /* content-addressed cache directory */
	const char *base_dir;     /* base of relative source paths (spec dir) */
	const kf_rewrite *rewrites;
	size_t nrewrite;
	int quiet;                /* -q: no progress, no per-file lines */
	long connect_timeout_s;   /* default 30 */
	long low_speed_time_s;    /* abort a transfer slower than ... */
	long low_speed_limit;     /* ... low_speed_limit B/s for this long */
	int max_retries;          /* default 5 */
	long backoff_base_ms;     /* first retry delay (doubles, with jitter) */
} kf_fetch_opts;

typedef struct kf_fetch_item {
	const char *url;            /* upstream URL, file:// URL or a path
	                               relative to base_dir */
	const char *sha256;         /* expected digest, 64 lowercase hex */
	const char *const *headers; /* extra request headers (NULL-terminated
	                               array) or NULL; never sent across a
	                               redirect to another host */
	/* Results. */
	char *path;                 /* verified local file: a cache entry, or
	                               the local source itself; malloc'ed */
	uint64_t size;
	int from_cache;             /* no transfer was needed */
} kf_fetch_item;

void kf_fetch_opts_default(kf_fetch_opts *o);
/* Default cache: $XDG_CACHE_HOME/kubeferry or ~/.cache/kubeferry. */
char *kf_fetch_default_cache(void);

/* Make every item available as a verified local file. Remote items land in
 * the content-addressed cache (<cache>/sha256/<hex>) through a temporary
 * name, hashed while streaming, renamed only when the digest matches; a
 * cached file is used only after its hash matches. Local items are hashed
 * in place. On failure e names the URL (and expected/actual digests), and
 * no partial file remains in the cache. */
int kf_fetch_all(kf_fetch_item *items, size_t n, const kf_fetch_opts *o,
                 kf_err *e);
void kf_fetch_item_clear(kf_fetch_item *it);

int kf_rewrite_parse(const char *arg, kf_rewrite *out, kf_err *e);
void kf_rewrite_clear(kf_rewrite *rw);
/* url with the longest matching prefix rewritten; a malloc'ed copy of url
 * when none matches. */
char *kf_rewrite_url(const char *url, const kf_rewrite *rw, size_t n);

/* One HTTP request, for registry APIs (manifests, tokens, uploads). The body
 * (at most max_body bytes) is kept in memory. Same TLS, proxy and timeout
 * settings as kf_fetch_all. */
typedef struct kf_http_resp {
	long status;
	char *body;
	size_t len;
	char *content_type;
	char *docker_content_digest;
	char *www_authenticate;
	char *location;
	char *retry_after;
} kf_http_resp;

int kf_http_request(const char *method, const char *url,
                    const char *const *headers, const void *body,
                    size_t body_len, size_t max_body,
                    const kf_fetch_opts *o, kf_http_resp *r, kf_err *e);
void kf_http_resp_clear(kf_http_resp *r);

/* ---- build --------------------------------------------------------------- */

typedef struct kf_build_opts {
	const char *spec_path;
	const char *secret_key;     /* -s */
	const char *out_path;       /* -o; default <name>-<version>-linux-<archs>.tar.zst */
	int level;                  /* --level, zstd 1..19 */
	const char *mirror;         /* --mirror https://HOST:PORT for hosts.toml */
	kf_fetch_opts fetch;
} kf_build_opts;

/* Files collected for a bundle: entry path -> local file, with digest. */
typedef struct kf_build_set {
	kf_archive_source *src;
	kf_lock_entry *entries;     /* parallel to src */
	size_t n, cap;
} kf_build_set;

/* Add a file to the set (copies the strings). */
int kf_build_set_add(kf_build_set *set, const char *entry_path,
                     const char *src_path, uint64_t size, const char *sha256,
                     unsigned mode, kf_err *e);
void kf_build_set_clear(kf_build_set *set);

/* The whole build: load spec, fetch, collect, lock, sign, write, sign the
 * file. Returns an exit code; prints progress on stderr unless quiet. */
int kf_build(const kf_build_opts *o, kf_err *e);

/* ---- commands (argv[0] is the command name; return an exit code) ------- */

int kf_cmd_keygen(int argc, char **argv);  /* cmd_keys.c */
int kf_cmd_sign(int argc, char **argv);    /* cmd_keys.c */
int kf_cmd_lint(int argc, char **argv);    /* cmd_lint.c */
int kf_cmd_build(int argc, char **argv);   /* cmd_build.c */
int kf_cmd_verify(int argc, char **argv);  /* cmd_verify.c */
int kf_cmd_inspect(int argc, char **argv); /* cmd_verify.c */

#endif
