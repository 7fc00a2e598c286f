/*
 * archive: the bundle file (format v1, docs/bundle-format.md): writing it,
 * verifying and unpacking it, and the commit that makes either's output
 * visible. May include base/, keys/ and manifests/ (kf_base.h, kf_keys.h,
 * kf_manifests.h) and nothing above; bundler/ and installer/ stand on it.
 *
 * Writer (write.c, hash.c): lock, lock signature, then every entry sorted
 * by path, as a pax tar stream compressed with zstd (libarchive), with
 * fixed metadata so the same inputs give the same bytes; hashing runs on
 * its own thread.
 *
 * Reader (read.c the pass, input.c the file and zstd decoding to its last
 * byte, verify.c header and lock rules, pipe.c threads and buffers,
 * stage.c staging writes): one streaming pass that enforces every rule of
 * the format before anything leaves staging. Decompression and tar parsing
 * run on one thread, hashing and writing on another.
 *
 * Commit (commit.c): outputs are built under temporary names and renamed
 * into place together, durably (see kf_commit below).
 */
#ifndef KF_ARCHIVE_H
#define KF_ARCHIVE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>
#include "keys/kf_keys.h"
#include "manifests/kf_manifests.h"

/* One file going into a bundle. sha256/size must equal the lock entry. */
typedef struct kf_archive_source {
	const char *entry_path;   /* path inside the bundle */
	const char *src_path;     /* local file to read */
} kf_archive_source;

/* ---- commit ------------------------------------------------------------ */

/* One commit makes up to KF_COMMIT_MAX outputs visible together: each is
 * built under a temporary name next to its final name ("<final>.tmp-XXXXXX"
 * for a file, "<final>.kf-staging-XXXXXX" for a directory) and written
 * through the descriptor the commit hands out (the commit owns it).
 * kf_commit_finish makes each durable (fsync for a file, which also gets
 * its mode; syncfs of its filesystem for a directory tree), renames them in
 * the order added, back to back, and fsyncs their directories; if a rename
 * fails, the files already renamed are removed again. Without replace a
 * directory that exists is refused (KF_EUSAGE); with it the old tree is
 * swapped out (RENAME_EXCHANGE) and removed. kf_commit_clear always ends a
 * commit: it removes every temporary not renamed. Users: the bundle writer
 * and the builder (a bundle and its .minisig), the unpacker (the tree). */
#define KF_COMMIT_MAX 4
typedef struct kf_commit_item {
	char tmp[PATH_MAX], final[PATH_MAX];
	int fd, is_dir, state;
	mode_t mode;
} kf_commit_item;
typedef struct kf_commit {
	size_t n;
	kf_commit_item it[KF_COMMIT_MAX];
} kf_commit;

void kf_commit_init(kf_commit *c);
int kf_commit_add_file(kf_commit *c, const char *final, mode_t mode,
                       int *fd, kf_err *e);
int kf_commit_add_data(kf_commit *c, const char *final, mode_t mode,
                       const void *data, size_t len, kf_err *e);
int kf_commit_add_dir(kf_commit *c, const char *final, int *dirfd,
                      kf_err *e);
int kf_commit_finish(kf_commit *c, int replace, kf_err *e);
void kf_commit_clear(kf_commit *c);

/* ---- writer ------------------------------------------------------------ */

typedef struct kf_archive_write_opts {
	int level;            /* zstd level, 1..19 (default 3) */
	int threads;          /* zstd worker threads (0: number of CPUs) */
	time_t mtime;         /* every entry's mtime (SOURCE_DATE_EPOCH) */
	/* A delta: the sources are the entries the base lacks, a subset of
	 * the lock's (which must name a base). */
	int partial;
	/* Progress: called after each entry with bytes written so far. */
	void (*progress)(void *arg, const char *entry, uint64_t done,
	                 uint64_t total);
	void *progress_arg;
	/* When set, the bundle joins this commit (file mode 0644) and is not
	 * renamed until the caller finishes it; otherwise it is committed
	 * alone before kf_archive_write returns. */
	kf_commit *commit;
	/* When set, receives the source whose size or sha256 differed from
	 * the lock (NULL for any other outcome): the builder evicts it when
	 * it is a cache entry. */
	const kf_archive_source **mismatch;
} kf_archive_write_opts;

/* Write a bundle to out_path (temporary name, fsync, rename, fsync dir).
 * lock must already list every source with its size, mode and sha256; each
 * source is hashed while it is written, checked at the end of its entry,
 * and a difference fails the write (KF_EVERIFY, naming the entry), so a
 * caller may hand over sources it has not hashed itself (the builder's
 * cache hits and local files: each is read once). The BLAKE2b-512 of the
 * finished file is returned in file_digest (for the detached .minisig)
 * without a second read. Nothing is left at out_path (nor a temporary
 * file) on failure. */
int kf_archive_write(const char *out_path, const char *lock_yaml,
                     size_t lock_len, const char *lock_sig, size_t sig_len,
                     const kf_lock *lock, const kf_archive_source *src,
                     size_t nsrc, const kf_archive_write_opts *o,
                     unsigned char file_digest[KF_BLAKE2B_LEN], kf_err *e);

/* ---- reader ------------------------------------------------------------ */

/* Progress during reading: bytes of entry content processed so far. */
typedef void (*kf_archive_progress_fn)(void *arg, uint64_t done,
                                       uint64_t total);

typedef struct kf_archive_read_opts {
	const kf_pubkey *key;       /* required: the lock must verify */
	/* A delta's base (archive/delta.c): the directory of the base's
	 * unpacked entries, and optionally its lock (to find an entry whose
	 * content sits at another path there). Every entry the delta leaves
	 * out is read from it and must match the delta's lock. Without
	 * base_dir a delta only verifies (what it carries) and never unpacks;
	 * a full bundle ignores both. */
	const char *base_dir;
	const kf_lock *base_lock;
	kf_archive_progress_fn progress;
	void *progress_arg;
} kf_archive_read_opts;

/* Verify a bundle in one pass without writing anything: lock first and
 * signed by key, every entry listed, regular, within size, matching sha256,
 * no duplicates, every listed entry present. path "-" reads stdin.
 * On success *lock_out (may be NULL) receives the verified lock and tc the
 * lock signature's trusted comment. */
int kf_archive_verify(const char *path, const kf_archive_read_opts *o,
                      kf_lock **lock_out, char *tc, size_t tc_len,
                      kf_err *e);

/* The full check both programs' `verify` commands run: the detached
 * BUNDLE.minisig over the whole file when one sits next to the bundle (a
 * bad one fails), then kf_archive_verify. */
typedef struct kf_verify_report {
	kf_lock *lock;          /* the verified lock */
	char tc[8192];          /* the lock signature's trusted comment (at
	                         * most 8173 bytes, keys/minisig.c) */
	char *sigpath;          /* BUNDLE.minisig; NULL for standard input */
	int detached;           /* the detached signature was checked */
	int base_checked;       /* a delta's left-out entries checked in its base */
} kf_verify_report;

int kf_archive_verify_all(const char *path, const kf_archive_read_opts *o,
                          kf_verify_report *r, kf_err *e);
/* Human-readable summary of a verified bundle on f. */
void kf_verify_report_print(FILE *f, const char *bundle,
                            const kf_pubkey *key, const kf_verify_report *r);
void kf_verify_report_clear(kf_verify_report *r);

/* Verify and unpack into dest: extracts into a staging directory next to
 * dest ("<dest>.kf-staging-XXXXXX"), syncs its filesystem once, then
 * renames it to dest. dest must not exist unless replace is set, in which
 * case the old tree is swapped out and removed after the rename. On any
 * failure the staging directory is removed and dest is untouched. */
int kf_archive_unpack(const char *path, const char *dest, int replace,
                      const kf_archive_read_opts *o, kf_lock **lock_out,
                      kf_err *e);

/* Read only the lock and its signature (the first two entries), without
 * verifying: for inspect. Caller frees *lock_yaml and *sig_text. */
int kf_archive_read_lock(const char *path, char **lock_yaml, size_t *lock_len,
                         char **sig_text, size_t *sig_len, kf_err *e);

/* What --base names for a delta: an unpacked bundle directory (its lock
 * read from DIR.bundle.yaml when there), or a full bundle file verified
 * with key and unpacked into scratch space beside near (removed by
 * close). Fill kf_archive_read_opts.base_dir and .base_lock from it. */
typedef struct kf_archive_base {
	char *dir;          /* the base's entries */
	kf_lock *lock;      /* may be NULL */
	char *scratch;      /* our scratch directory, or NULL */
} kf_archive_base;
int kf_archive_base_open(const char *arg, const kf_pubkey *key, const char *near,
                         kf_archive_base *b, kf_err *e);
void kf_archive_base_close(kf_archive_base *b);

/* What a bundle's stream carries (entry headers after the signature,
 * contents skipped, nothing verified): for inspect's view of a delta. */
int kf_archive_carried(const char *path, uint64_t *bytes, size_t *n, kf_err *e);

#endif
