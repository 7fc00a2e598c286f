/*
 * archive/ internals: what the reader's files (read.c, verify.c, pipe.c,
 * stage.c) and the commit (commit.c) share. Never included outside
 * archive/ (unit tests aside); everything public is in kf_archive.h.
 */
#ifndef KF_ARCHIVE_INTERNAL_H
#define KF_ARCHIVE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/kf_archive.h"

#define KF_AR_BUF_SIZE (1u << 20)
/* minisign allows a 1 KiB untrusted and an 8 KiB trusted comment: a
 * signature file stays under 10 KiB. */
#define KF_AR_SIG_MAX 16384

/* ---- hash.c: the writer's hashing thread -------------------------------- */

struct kf_ar_hasher;
struct kf_ar_hasher *kf_ar_hasher_new(kf_err *e);
/* A free pool buffer (KF_AR_BUF_SIZE bytes) to read a source into. */
unsigned char *kf_ar_hasher_buf(struct kf_ar_hasher *h);
/* buf (from kf_ar_hasher_buf) holds the next len bytes of the current
 * source: hashed, then back to the pool. */
void kf_ar_hasher_src(struct kf_ar_hasher *h, unsigned char *buf, size_t len);
/* The current source (idx) is complete; its SHA-256 must equal want. */
void kf_ar_hasher_end(struct kf_ar_hasher *h, size_t idx, const char *want);
/* Has a source already failed its check (without waiting)? The writer
 * asks after each entry, so a bad source stops it early. */
int kf_ar_hasher_failed(struct kf_ar_hasher *h);
/* The next bytes of the output file (copied). */
void kf_ar_hasher_out(struct kf_ar_hasher *h, const void *data, size_t len);
/* Wait for everything posted: -1 with the first mismatching source's
 * index and digest, else 0 and the output's BLAKE2b-512 in b2 (if not
 * NULL; once). */
int kf_ar_hasher_finish(struct kf_ar_hasher *h, size_t *bad_idx,
                        char bad_hex[KF_SHA256_HEX],
                        unsigned char b2[KF_BLAKE2B_LEN]);
void kf_ar_hasher_free(struct kf_ar_hasher *h);

/* ---- input.c: the file, zstd decoding, the end of the stream ----------- */

struct kf_ar_input;
/* Open path ("-": stdin) as zstd-compressed tar. */
int kf_ar_open_bundle(const char *path, struct kf_ar_input **in,
                      struct archive **a, kf_err *e);
/* After the tar reader's end of archive: the rest of the file must decode
 * as complete zstd frames holding only zero padding. */
int kf_ar_check_end(struct archive *a, struct kf_ar_input *in,
                    const char *origin, kf_err *e);
/* Free both (either may be NULL) and close the file. */
void kf_ar_close_bundle(struct archive *a, struct kf_ar_input *in);

/* ---- verify.c: header and lock rules ------------------------------------ */

/* A damaged stream: a verification failure naming libarchive's reason. */
int kf_ar_corrupt(kf_err *e, const char *origin, struct archive *a);
/* Next header; 1 at the end of the archive, -1 on error (e set). */
int kf_ar_next_header(struct archive *a, struct archive_entry **ae,
                      const char *origin, kf_err *e);
const char *kf_ar_entry_name(struct archive_entry *ae);
/* First two entries: the lock and its signature, nothing verified. */
int kf_ar_read_lock_entries(struct archive *a, const char *origin,
                            char **lock, size_t *lock_len, char **sig,
                            size_t *sig_len, kf_err *e);
/* Every rule one header after the signature must meet: regular file, safe
 * path, listed in the lock, not seen before, the lock's size. Marks it in
 * seen[] and returns its lock index in *idx. */
int kf_ar_check_header(struct archive_entry *ae, const kf_lock *lock,
                       unsigned char *seen, size_t *idx, const char *origin,
                       kf_err *e);
/* After the last entry: every lock entry was seen. */
int kf_ar_check_all_seen(const kf_lock *lock, const unsigned char *seen,
                         const char *origin, kf_err *e);

/* ---- the read pass (pipe.c, stage.c, read.c) --------------------------- */

#define NBUF 8
#define QCAP 1024               /* queued messages */
#define WAKE_AT 256             /* queued messages that wake an idle worker */
#define KICK_BYTES (8u << 20)   /* start writeback every 8 MiB */

/* A message from the reader to the worker: a piece of one entry's content
 * (the first piece carries F_BEGIN, the last F_END; a small entry is one
 * message with both). Pieces of many entries share one pool buffer; the
 * last message that uses a buffer gives it back (release). */
enum { F_BEGIN = 1, F_END = 2, F_STOP = 4 };

struct kf_ar_msg {
	unsigned flags;
	size_t idx;                     /* lock entry */
	const unsigned char *data;
	size_t len;
	unsigned char *release;         /* back to the pool after this one */
};

/* Everything one read pass shares between its two threads (pipe.c): the
 * reader and the worker that hashes and writes. */
struct kf_ar_pass {
	const char *origin;         /* bundle path for messages */
	const kf_lock *lock;
	int dirfd;                  /* staging directory, -1 when verifying */
	const kf_archive_read_opts *o;

	pthread_mutex_t mu;
	pthread_cond_t cv_msg, cv_space;
	struct kf_ar_msg q[QCAP];
	size_t qhead, qlen;
	unsigned char *pool[NBUF];
	unsigned char *free_bufs[NBUF];
	size_t nfree;
	/* Who sleeps, so that the other side wakes it only when needed. */
	int worker_idle, reader_waits;
	size_t qbufs;               /* full buffers queued since the worker looked */
	int failed;                 /* set by either side, under mu */
	kf_err werr;                /* the worker's error */

	/* Reader state: the pool buffer being filled. */
	unsigned char *cur;
	size_t cur_used;

	/* Worker state. */
	kf_digest *sha;
	int fd;
	uint64_t count, kicked;
	uint64_t done, total;
	mode_t umask;               /* bits the process umask clears */
	char cdir[PATH_MAX];        /* parent directory of the last entry */
	size_t cdir_len;
	int cdirfd;                 /* open on cdir, or -1 */

	/* The worker thread, owned by pipe.c. */
	pthread_t worker;
	int started, sync_inited;
};

/* ---- pipe.c: the threads and the buffer pool ---------------------------- */

/* Start a pass's worker; NULL on error. */
struct kf_ar_pass *kf_ar_pipe_new(const char *origin, const kf_lock *lock,
                                  int dirfd, const kf_archive_read_opts *o,
                                  kf_err *e);
/* The reader's side: room for up to want bytes of content in the current
 * pool buffer (*avail, at least 1), NULL once the worker failed; then the
 * bytes read there go to the worker as one message (-1 once the worker
 * failed). */
unsigned char *kf_ar_pipe_space(struct kf_ar_pass *p, size_t want,
                                size_t *avail);
int kf_ar_pipe_post(struct kf_ar_pass *p, unsigned flags, size_t idx,
                    const unsigned char *data, size_t len);
/* The reader is done with status rc: stop and join the worker and return
 * the pass's status, the worker's error taking precedence. */
int kf_ar_pipe_finish(struct kf_ar_pass *p, int rc, kf_err *e);
/* Stop whatever still runs and free the pass (NULL is fine). */
void kf_ar_pipe_free(struct kf_ar_pass *p);

/* ---- stage.c: writing into the staging directory ------------------------ */

/* Set up the worker's staging state (the umask, no directory cached). */
void kf_ar_stage_init(struct kf_ar_pass *p);
/* Create path's parents under the staging directory (never following a
 * symlink) and the file itself; its fd, or -1 with p->werr set. */
int kf_ar_stage_open(struct kf_ar_pass *p, const char *path, unsigned mode);
/* Write one piece of the open file (p->fd); starts writeback as it goes. */
int kf_ar_stage_write(struct kf_ar_pass *p, const kf_lock_entry *le,
                      const unsigned char *buf, size_t len);
/* The file is complete and verified: close it (its data reaches the disk
 * with the whole tree when the commit syncs the filesystem). */
int kf_ar_stage_seal(struct kf_ar_pass *p, const kf_lock_entry *le);
void kf_ar_stage_free(struct kf_ar_pass *p);

/* ---- delta.c: a delta's left-out entries, from its base ---------------- */

/* After the delta's stream, on the reader's side: every entry not in
 * seen[] read from o->base_dir and handed to the worker like a streamed
 * one (hashed against the lock and, when unpacking, staged). */
int kf_ar_delta_fill(struct kf_ar_pass *p, const unsigned char *seen, kf_err *e);

#endif
