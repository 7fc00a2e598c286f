/*
 * The image puller's shared state, internal to bundler/registry/pull*.c:
 * pull.c plans (manifests and indexes, verified against their digests),
 * pull_blobs.c fetches the planned blobs through the transfer engine,
 * pull_layout.c lists the finished layout as bundle entries.
 */
#ifndef KF_PULL_INT_H
#define KF_PULL_INT_H

#include <limits.h>

#include "bundler/kf_bundler.h"

struct blob {
	char *digest;
	uint64_t size;
	char *url;
	size_t src;            /* index of the image whose session fetches it */
	char *what;            /* image name, for messages */
	int done;
};

/* One image's registry session: its token is scoped to the repository. */
struct source {
	kf_registry r;
	char *repo;
	int opened;
	const char *hdr[2];
};

struct image {
	kf_oci_ref ref;
	char *digest, *media_type;
	uint64_t size;
	char *config;          /* single-manifest image: its config digest */
	char *platforms[KF_ARCH_MAX];
	size_t nplat;
};

struct pull {
	const kf_spec *spec;
	const kf_build_opts *o;
	char layout[PATH_MAX];
	struct blob *blobs;
	size_t nblob, cap;
	struct source *srcs;   /* one per image */
	size_t cur;            /* the image being planned */
	char **stored;         /* every digest in the layout, for the set */
	size_t nstored, capstored;
};

/* "images: ..." progress on stderr unless quiet. */
void kf_pull_say(const struct pull *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Record a digest stored in the layout (once). */
int kf_pull_remember(struct pull *p, const char *digest, kf_err *e);
/* Fetch every planned blob into the layout, renewing registry tokens that
 * expire or are refused (pull_blobs.c). */
int kf_pull_fetch_blobs(struct pull *p, kf_err *e);
/* Add the layout, its blobs and the certs.d files to the bundle's entry
 * set (pull_layout.c). */
int kf_pull_collect(struct pull *p, const char *work_dir, struct image *ims,
                    size_t n, kf_build_set *set, kf_err *e);

#endif
