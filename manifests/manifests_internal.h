/*
 * Internals shared by the manifests module's files (spec.c, lock.c,
 * paths.c, yamltree.c, kubeadm_etcd.c). Not part of the public contract:
 * other modules use kf_manifests.h only.
 */
#ifndef KF_MANIFESTS_INTERNAL_H
#define KF_MANIFESTS_INTERNAL_H

#include <stddef.h>
#include "manifests/kf_manifests.h"

/* A YAML document as a small tree. Built from libyaml events so that we see
 * every mark, refuse aliases/anchors/tags and catch duplicate keys, which
 * libyaml's own document API would silently accept. */
typedef enum { KF_Y_SCALAR, KF_Y_SEQ, KF_Y_MAP } kf_ynode_type;

typedef struct kf_ynode kf_ynode;
struct kf_ynode {
	kf_ynode_type type;
	int line, col;          /* 1-based */
	char *value;            /* scalar text (NUL-terminated) */
	size_t len;             /* scalar length (may hold NULs: refused later) */
	int plain;              /* scalar written without quotes */
	kf_ynode **items;       /* sequence items, or map keys and values
	                           interleaved: key0, val0, key1, val1 ... */
	size_t n;               /* number of items (map: 2 * pairs) */
};

/* Parse exactly one YAML document. Errors are "origin:LINE:COL: message"
 * with the given code (KF_EUSAGE for specs, KF_EVERIFY for locks). Keys of
 * a mapping must be scalars and unique. */
int kf_ytree_parse(const char *buf, size_t len, const char *origin, int code,
                   kf_ynode **out, kf_err *e);
void kf_ytree_free(kf_ynode *n);
const char *kf_ytree_type_name(kf_ynode_type t);
/* Where a tree came from, for messages: every error is
 * "origin:LINE:COL: message" with the code of the document kind. */
typedef struct kf_yctx {
	const char *origin;
	int code;               /* KF_EUSAGE for specs, KF_EVERIFY for locks */
	kf_err *e;
} kf_yctx;
int kf_ytree_fail(kf_yctx *c, const kf_ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* KF_OK when n has type t, else an error naming what was expected. */
int kf_ytree_want(kf_yctx *c, const kf_ynode *n, kf_ynode_type t,
                  const char *what);
/* A plain scalar spelling null: "", "~", "null", "Null", "NULL". */
int kf_ytree_is_null(const kf_ynode *n);
/* 1 when the map key k is exactly key (a key holding a NUL byte is no
 * key of any schema). */
int kf_ytree_key_is(const kf_ynode *k, const char *key);
/* A string value into *out (malloc'ed): a scalar that is not null and holds
 * no NUL byte; when printable, no control or non-ASCII character either. */
int kf_ytree_str(kf_yctx *c, const kf_ynode *n, const char *what, int printable,
                 char **out);

/* Value checks shared by spec and lock. Each returns 1 when valid. */
int kf_valid_cidr(const char *s);
int kf_valid_https_url(const char *s);
int kf_valid_token(const char *s);     /* versions: [A-Za-z0-9._+-]+ */
int kf_valid_name(const char *s);      /* names: [a-z0-9][a-z0-9._-]* */
int kf_valid_platform(const char *s);  /* os/arch[/variant] */
/* spec.packages (spec_packages.c); spec_dir resolves a base FILE. */
int kf_spec_parse_packages(kf_yctx *c, const kf_ynode *seq, kf_spec *s);
void kf_spec_pkgsets_free(kf_spec *s);
/* Shared by spec.c and spec_packages.c. */
int kf_spec_check_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                       const char *const *allowed);
const kf_ynode *kf_spec_find(const kf_ynode *map, const char *key);
int kf_spec_check_hex(kf_yctx *c, const kf_ynode *n, const char *hex,
                      const char *what);
/* The lock's packages: and adminPackages: sections (lock_packages.c).
 * Each is emitted only when it has packages, so that locks without any
 * keep their bytes. The parser (admin: 0 for packages:, 1 for
 * adminPackages:) checks each package's entry exists with the same sha256. */
void kf_lock_packages_emit(const kf_lock *l, kf_buf *b);
int kf_lock_packages_parse(kf_yctx *c, const kf_ynode *seq, kf_lock *l, int admin);
int kf_lock_packages_check_entries(kf_yctx *c, const kf_ynode *seq,
                                   const kf_lock *l, int admin);
void kf_lock_packages_free(kf_lock *l);
/* Every key of keys present, no other (lock.c's rule for mappings). */
int kf_lock_exact_keys(kf_yctx *c, const kf_ynode *map, const char *what,
                       const char *const *keys, const kf_ynode **vals);
/* Install defaults applied when a spec leaves them out. */
int kf_install_set_defaults(kf_install *i);
/* kubeadm_etcd.c: with install.etcd kubeadm, spec.images must hold the
 * etcd image kubeadm runs for s->kube_version; else an error at `at` (the
 * install.etcd node). KF_OK for install.etcd host. */
int kf_spec_check_kubeadm_etcd(kf_yctx *c, const kf_ynode *at, const kf_spec *s);

#endif
