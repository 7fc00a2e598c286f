/*
 * archive/ internals: what the reader's files (read.c, verify.c, pipe.c,
 * stage.c) and the commit (commit.c) share. Never included outside
 * archive/ (unit tests aside); everything public is in kf_archive.h.
 */
#ifndef KF_ARCHIVE_INTERNAL_H
#define KF_ARCHIVE_INTERNAL_H

#include <archive.h>
#include <archive_entry.h>

#include "archive/kf_archive.h"

#define KF_AR_BUF_SIZE (1u << 20)
/* minisign allows a 1 KiB untrusted and an 8 KiB trusted comment: a
 * signature file stays under 10 KiB. */
#define KF_AR_SIG_MAX 16384

/* ---- verify.c: header and lock rules ------------------------------------ */

/* A damaged stream: a verification failure naming libarchive's reason. */
int kf_ar_corrupt(kf_err *e, const char *origin, struct archive *a);
/* Open path ("-": stdin) as zstd-compressed tar; *fd_out is set even on
 * failure (close it when > STDIN_FILENO). */
int kf_ar_open_bundle(const char *path, struct archive **out, int *fd_out,
                      kf_err *e);
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

#endif
