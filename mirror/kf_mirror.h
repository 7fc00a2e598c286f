/*
 * mirror: the serving side of images. The content-addressed OCI image
 * layout store (layout.c), the containerd certs.d hosts.toml writer
 * (hosts.c), and the read-only registry server (server*.c, linked into the
 * installer only). No libcurl here.
 *
 * May include base/, keys/ and manifests/ (for the OCI model); sits beside
 * archive/, and bundler/ and installer/ stand on it.
 */
#ifndef KF_MIRROR_H
#define KF_MIRROR_H

#include <stddef.h>
#include <stdint.h>
#include "manifests/kf_manifests.h"

/* ---- OCI image layout store ---------------------------------------------- */

/* Create dir/oci-layout and dir/blobs/sha256 (idempotent). */
int kf_layout_init(const char *dir, kf_err *e);
/* "<dir>/blobs/sha256/<hex>" for a "sha256:<hex>" digest; NULL for a
 * malformed digest. Caller frees. */
char *kf_layout_blob_path(const char *dir, const char *digest);
int kf_layout_has_blob(const char *dir, const char *digest);
/* Store a blob: src_path is hashed and must match digest; it is hard-linked
 * when possible (same filesystem), else copied (temporary name, fsync,
 * rename). Storing a blob that is present is a no-op. */
int kf_layout_add_blob_file(const char *dir, const char *digest,
                            const char *src_path, kf_err *e);
int kf_layout_add_blob_buf(const char *dir, const char *digest,
                           const void *data, size_t n, kf_err *e);

/* One named image in index.json. */
typedef struct kf_layout_ref {
	const char *name;         /* full reference: registry.k8s.io/pause:3.10 */
	const char *digest;       /* top-level manifest or index digest */
	const char *media_type;
	uint64_t size;
} kf_layout_ref;

/* Write dir/index.json: one descriptor per ref, sorted by name, with the
 * name in both org.opencontainers.image.ref.name and
 * io.containerd.image.name (deterministic bytes). */
int kf_layout_write_index(const char *dir, const kf_layout_ref *refs,
                          size_t n, kf_err *e);

/* ---- containerd hosts.toml --------------------------------------------- */

/* The hosts.toml text for one upstream registry served by mirror_url
 * ("https://HOST:PORT"): server = mirror, one [host] table for the mirror
 * with capabilities ["pull", "resolve"], and ca = ca_path when not NULL.
 * Caller frees. */
char *kf_hosts_toml_render(const char *registry, const char *mirror_url,
                           const char *ca_path);
/* The same for several mirrors (a cluster's mirror hosts): one [host]
 * table each, tried in the given order; server is the first. NULL when a
 * value is invalid or out of memory. */
char *kf_hosts_toml_render_list(const char *registry, const char *const *mirror_urls,
                                size_t n, const char *ca_path);
/* certs.d directory name for a registry host ("host:port" -> "host:port";
 * docker.io stays docker.io). */
int kf_hosts_toml_write(const char *certs_d, const char *registry,
                        const char *mirror_url, const char *ca_path,
                        kf_err *e);

/* ---- the registry server (server*.c: installer only) ---------------------- */

/* Where the hosts.toml files of a bundle expect the mirror's CA on a node
 * (`kubeferry-install mirror serve` writes it there, under --root). */
#define KF_MIRROR_CA_PATH "/etc/kubeferry/mirror-ca.crt"

/* "AB:CD:..." : 32 bytes as colon-separated upper-case hex, and NUL. */
#define KF_MIRROR_FP_LEN 96

/* SHA-256 fingerprint of the first certificate in a PEM file, in the form
 * `openssl x509 -fingerprint -sha256` prints. */
int kf_mirror_cert_fingerprint(const char *pem_path, char fp[KF_MIRROR_FP_LEN],
                               kf_err *e);

/* The full chain the mirror serves with generated material, in state_dir:
 * the server certificate, then the CA. */
#define KF_MIRROR_CHAIN_FILE "chain.crt"

/* Load or create the mirror's TLS material in state_dir (created 0700):
 * ca.crt, ca.key, server.crt, server.key (keys 0600, ECDSA P-256) and
 * chain.crt (server.crt then ca.crt: the file to serve, so that nodes can
 * take the CA from the handshake and pin it). An existing CA is always
 * reused; the server certificate is reused when the CA signed it, it names
 * exactly the given SANs and is not about to expire, and is issued anew
 * otherwise; chain.crt is rewritten when it does not hold exactly the two.
 * sans are IP addresses or DNS names. */
int kf_mirror_tls_ensure(const char *state_dir, const char *const *sans,
                         size_t nsans, kf_err *e);

typedef struct kf_mirror_serve_opts {
	const char *dir;       /* unpacked bundle: dir/images (OCI layout), dir/files */
	const char *listen;    /* numeric "ADDR:PORT" or "[V6ADDR]:PORT" */
	const char *tls_cert;  /* PEM chain and key; both NULL only with plain_http */
	const char *tls_key;
	int plain_http;        /* explicit opt-in: serve without TLS */
	int quiet;             /* no request log */
} kf_mirror_serve_opts;

/* Serve until SIGTERM or SIGINT: the OCI distribution pull API over the
 * layout in dir/images and the tree dir/files under /files/, read-only.
 * Logs one line per request on stdout. */
int kf_mirror_serve(const kf_mirror_serve_opts *o, kf_err *e);

#endif
