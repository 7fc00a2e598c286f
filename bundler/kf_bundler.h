/*
 * bundler: the kubeferry program. This header is shared by the bundler's
 * own files and its unit tests; nothing outside bundler/ includes it.
 *
 * Parts: the transfer engine (transfer/, libcurl multi: pool, transfers,
 * retries, progress, cache, rewrites), the registry client (registry/:
 * references, auth, pull, push), the build, and the commands (cmd_*.c).
 *
 * May include every module below it: base/, keys/, manifests/, archive/
 * and mirror/ (the layout store and hosts.toml, not the server). Never
 * installer/.
 */
#ifndef KF_BUNDLER_H
#define KF_BUNDLER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <jansson.h>
#include "keys/kf_keys.h"
#include "manifests/kf_manifests.h"
#include "archive/kf_archive.h"

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
	int defer_401;            /* an HTTP 401 fails only its own item
	                             (http_status 401) while the batch carries
	                             on; kf_fetch_all then fails naming it and
	                             keeps the results of verified items, so a
	                             caller can renew credentials and re-run
	                             just the 401 items */
	int verify_later;         /* local sources and cache hits are only
	                             stat'ed (regular file, size), not hashed:
	                             their items come back with unverified
	                             set, and the caller must hash every byte
	                             it uses against sha256 before trusting
	                             it (kubeferry build: the bundle writer
	                             checks each entry as it streams, so each
	                             source is read once). Downloads are
	                             always hashed before they enter the
	                             cache. */
} kf_fetch_opts;

typedef struct kf_fetch_item {
	const char *url;            /* upstream URL, file:// URL or a path
	                               relative to base_dir */
	const char *sha256;         /* expected digest, 64 lowercase hex */
	const char *const *headers; /* extra request headers (NULL-terminated
	                               array) or NULL; an Authorization
	                               header (and cookies) is not sent
	                               across a redirect to another host,
	                               other headers are */
	uint64_t max_size;          /* > 0: a download that grows past this
	                               many bytes fails at once (KF_EVERIFY)
	                               instead of filling the disk */
	/* Results. */
	char *path;                 /* verified local file: a cache entry, or
	                               the local source itself; malloc'ed */
	uint64_t size;
	int from_cache;             /* no transfer was needed */
	int unverified;             /* verify_later: path was not hashed */
	long http_status;           /* remote item: HTTP status of its last
	                               attempt; 0 when none was made */
} kf_fetch_item;

void kf_fetch_opts_default(kf_fetch_opts *o);
/* Default cache: $XDG_CACHE_HOME/kubeferry or ~/.cache/kubeferry. */
char *kf_fetch_default_cache(void);

/* Make every item available as a verified local file. Remote items land in
 * the content-addressed cache (<cache>/sha256/<hex>) through a temporary
 * name, hashed while streaming, renamed only when the digest matches; a
 * cached file is used only after its hash matches. Local items are hashed
 * in place (both only stat'ed with verify_later). On failure e names the URL (and expected/actual digests), and
 * no partial file remains in the cache. */
int kf_fetch_all(kf_fetch_item *items, size_t n, const kf_fetch_opts *o,
                 kf_err *e);
void kf_fetch_item_clear(kf_fetch_item *it);
/* An item whose content failed a later check (verify_later): when its path
 * is a cache entry, remove it so the next run downloads it again. 1 when
 * removed, 0 when path is not in the cache (a local source is never
 * removed), <0 with e set on an I/O error. */
int kf_fetch_evict(const kf_fetch_item *it, const kf_fetch_opts *o, kf_err *e);

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
	int json;                   /* --json: report on stdout (build_report.c) */
	const char *base_path;      /* --base OLD.tar.zst: build a delta of it */
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

/* build --json: what the bundle at out (signature sig) holds. */
int kf_build_report_json(const kf_lock *l, const char *out, const char *sig,
                         FILE *f);
/* Delta bundles (delta.c). The base's verified lock (signed by pub, not
 * itself a delta) and the SHA-256 of its lock file. */
int kf_delta_base_load(const char *base_path, const kf_pubkey *pub, kf_lock **base,
                       char lock_sha[KF_SHA256_HEX], kf_err *e);
/* Name base in lock (lock->delta, lock->base). */
int kf_delta_name_base(kf_lock *lock, const kf_lock *base, const char *lock_sha, kf_err *e);
/* The sources of set whose sha256 no entry of base has (caller frees
 * *out; the strings stay set's), and their total size. */
int kf_delta_select(const kf_lock *base, const kf_build_set *set, kf_archive_source **out,
                    size_t *nout, uint64_t *bytes, kf_err *e);
/* NAME.tar.zst -> NAME.delta-from-BASEVERSION.tar.zst (caller frees). */
char *kf_delta_out_name(const char *full, const char *base_version);

/* The whole build: load spec, fetch, collect, lock, sign, write, sign the
 * file. Returns an exit code; prints progress on stderr unless quiet. */
int kf_build(const kf_build_opts *o, kf_err *e);

/* ---- registry client (registry/: endpoint, client, auth, pull, push) --- */

/* Image references are the OCI model's: kf_oci_ref (manifests/). */

/* Where registry/repository is pulled from: base URL ("https://host[:port]")
 * and the repository path on that host, after the longest matching
 * --rewrite (registry names as prefixes, matched at a '/' boundary) and the
 * docker.io -> registry-1.docker.io mapping. Caller frees both. */
int kf_registry_endpoint(const char *registry, const char *repository,
                         const kf_rewrite *rw, size_t nrw, char **base_url,
                         char **repo_out, kf_err *e);

typedef struct kf_creds {
	char *user, *pass;
} kf_creds;

/* Credentials for a registry host from $REGISTRY_AUTH_FILE,
 * $XDG_RUNTIME_DIR/containers/auth.json, then $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json ("auths": {host: {"auth": base64(user:pass)}}).
 * KF_OK with c->user NULL when none is found; KF_EUSAGE naming a malformed
 * file. */
int kf_creds_lookup(const char *host, kf_creds *c, kf_err *e);
/* "user:pass" into c; KF_EUSAGE without a colon. */
int kf_creds_parse(const char *userpass, kf_creds *c, kf_err *e);
void kf_creds_clear(kf_creds *c);
/* "Authorization: Basic <base64(user:pass)>", malloc'ed. */
char *kf_auth_basic_header(const kf_creds *c);

/* A Www-Authenticate challenge: Basic or Bearer with its parameters. */
typedef struct kf_auth_challenge {
	char *scheme;      /* "bearer" or "basic" (lowercased) */
	char *realm, *service, *scope;
} kf_auth_challenge;

int kf_auth_parse_challenge(const char *hdr, kf_auth_challenge *c,
                            kf_err *e);
void kf_auth_challenge_clear(kf_auth_challenge *c);
/* realm?service=...&scope=... (percent-encoded); scope falls back to
 * fallback_scope when the challenge names none. Caller frees. */
char *kf_auth_token_url(const kf_auth_challenge *c, const char *fallback_scope);
/* The token from a token endpoint's JSON answer ("token" or
 * "access_token"). origin names the endpoint in messages. */
int kf_auth_parse_token(const char *body, size_t len, const char *origin,
                        char **token, kf_err *e);
/* Lifetime in seconds that a token endpoint's answer gives its token
 * ("expires_in"); 60, the distribution spec's default, when absent or
 * invalid. */
long kf_auth_token_lifetime(const char *body, size_t len);

/* One registry host, with its current Authorization header. */
typedef struct kf_registry {
	char *base;              /* "https://host[:port]" */
	char *host;              /* "host[:port]" */
	kf_creds creds;          /* may be empty: anonymous */
	char *auth;              /* "Authorization: ..." or NULL */
	const kf_fetch_opts *fo;
	int push;                /* ask tokens for pull,push */
	char *challenge;         /* last Www-Authenticate answered, or NULL */
	int64_t auth_expires_ms; /* monotonic ms when the Bearer token in auth
	                            expires; 0: no expiry known (Basic, none) */
} kf_registry;

/* creds NULL: looked up in the auth files for the host. */
int kf_registry_open(kf_registry *r, const char *base_url,
                     const kf_creds *creds, const kf_fetch_opts *o,
                     kf_err *e);
void kf_registry_close(kf_registry *r);
/* One API request: path ("/v2/...") or an absolute URL on the host. A 401
 * with a challenge is answered once (Basic, or a Bearer token for repo's
 * scope) and the request retried. HTTP errors are left in resp->status.
 * resp must be zeroed or hold an earlier answer, which is released. */
int kf_registry_request(kf_registry *r, const char *method, const char *path,
                        const char *repo, const char *const *headers,
                        const void *body, size_t body_len, size_t max_body,
                        kf_http_resp *resp, kf_err *e);
/* Renew the Authorization header: answer the last challenge again (a
 * fresh Bearer token for repo's scope). KF_OK without a change when no
 * challenge was ever answered. */
int kf_registry_reauth(kf_registry *r, const char *repo, kf_err *e);
/* Does the Bearer token expire within margin_s seconds (or has it)? */
int kf_registry_auth_stale(const kf_registry *r, long margin_s);
/* GET a manifest (tag or digest) with the four accepted media types; its
 * sha256 is checked against ref when ref is a digest, and against the
 * Docker-Content-Digest header. Schema 1 is refused (KF_EUSAGE naming
 * what). *media_type and *digest_out ("sha256:...") are malloc'ed. */
int kf_registry_get_manifest(kf_registry *r, const char *repo,
                             const char *ref, const char *what, char **body,
                             size_t *len, char **media_type,
                             char **digest_out, kf_err *e);
/* The media type of a manifest body: its mediaType field, else
 * content_type, else guessed from its keys. NULL for schema 1 or unknown. */
const char *kf_manifest_media_type(const char *body, size_t len,
                                   const char *content_type);

/* Pull the spec's images into work_dir/images (one OCI layout), write
 * work_dir/certs.d/<registry>/hosts.toml for every registry named (mirror:
 * o->mirror, else spec install.mirror, else KF_DEFAULT_MIRROR), add every
 * file to set and fill lock->images. No-op without images. */
#define KF_DEFAULT_MIRROR "https://kubeferry-mirror:5443"
int kf_images_pull(const kf_spec *spec, const kf_build_opts *o,
                   const char *work_dir, kf_build_set *set, kf_lock *lock,
                   kf_err *e);

/* ---- host packages (bundler/rpm/, docs/packages.md) ------------------- */

/* For every spec.packages set and architecture: fetch the repositories'
 * metadata, resolve the install: list against the base (libsolv), download
 * each RPM pinned by primary's sha256, check its signature against the
 * pinned distribution key, write work_dir/rpms/<set>/<rpm arch>/ (Packages/,
 * repodata/ by createrepo_c with timestamps `when`, RPM-GPG-KEY), add those
 * files to set and each package to lock->packages. A set's admin: list
 * goes the same way into rpms/<set>-admin/<rpm arch>/ and
 * lock->admin_pkgs. No-op without sets. */
int kf_rpm_collect(const kf_spec *spec, const kf_build_opts *o,
                   const char *work_dir, time_t when, kf_build_set *set,
                   kf_lock *lock, kf_err *e);

/* The lock's packages for inspect and build --json (bundler/rpm/report.c):
 * a JSON array of the nodes' set (admin 0) or the admin host's (admin 1;
 * NULL on out of memory), and text of both grouped by set and
 * architecture. */
json_t *kf_rpm_packages_json(const kf_lock *l, int admin);
void kf_rpm_packages_print(const kf_lock *l, FILE *f);

/* ---- addons (addons.c) ------------------------------------------------- */

/* Manifests applied after kubeadm init. With install.cni "flannel" (the
 * default) and spec images whose repositories end in "flannel/flannel" and
 * "flannel/flannel-cni-plugin", writes work_dir/addons/flannel.yaml (0644)
 * rendered from kubeferry's own template with those references and the
 * spec's podSubnet, and adds it to set as "addons/flannel.yaml". Without
 * the images: a warning on stderr, nothing added. cni "none": nothing.
 * work_dir may be NULL when the spec has no images. */
int kf_addons_render(const kf_spec *spec, const char *work_dir,
                     kf_build_set *set, kf_err *e);
/* The flannel manifest itself (deterministic bytes), malloc'ed. KF_EUSAGE
 * when a value holds characters that do not belong in an image reference
 * or CIDR. */
int kf_addons_flannel_yaml(const char *flannel_image, const char *cni_image,
                           const char *pod_subnet, char **out, size_t *len,
                           kf_err *e);

/* ---- ansible/ playbooks (ansible.c) -------------------------------------- */

/* One file compiled into the bundler: its bundle entry path and bytes. */
typedef struct kf_embedded_file {
	const char *path;
	const unsigned char *data;
	size_t len;
} kf_embedded_file;
/* The repository's ansible/ tree as built (generated; ends with a NULL path). */
extern const kf_embedded_file kf_ansible_files[];
/* Write every playbook under work_dir/ansible/ and add it to set as its
 * ansible/... entry (0644), so the lock lists and signs them. */
int kf_ansible_add(const char *work_dir, kf_build_set *set, kf_err *e);

typedef struct kf_push_opts {
	const char *to;              /* REGISTRY[/PREFIX], optional http(s):// */
	const kf_creds *creds;       /* NULL: from the auth files */
	kf_fetch_opts fetch;
} kf_push_opts;

/* Push every image of an OCI layout directory (an unpacked bundle's
 * images/) into a registry: blobs skipped when present, manifests by digest
 * (children first), then tags. Prints a line per blob and manifest and a
 * total on stdout. */
int kf_push_layout(const char *layout_dir, const kf_push_opts *o, kf_err *e);

/* ---- commands (argv[0] is the command name; return an exit code) ------- */

int kf_cmd_keygen(int argc, char **argv);  /* cmd_keys.c */
int kf_cmd_sign(int argc, char **argv);    /* cmd_keys.c */
int kf_cmd_lint(int argc, char **argv);    /* cmd_lint.c */
int kf_cmd_build(int argc, char **argv);   /* cmd_build.c */
int kf_cmd_verify(int argc, char **argv);  /* cmd_verify.c */
int kf_cmd_inspect(int argc, char **argv); /* cmd_verify.c */
int kf_cmd_push(int argc, char **argv);    /* cmd_push.c */
int kf_cmd_fetch(int argc, char **argv);   /* cmd_fetch.c */

#endif
