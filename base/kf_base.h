/*
 * base: the floor every module stands on. Error values that are also the
 * programs' exit codes, process-wide crypto setup, durable file operations
 * (temporary name, fsync, rename, fsync the directory), bounded string
 * building and base64.
 *
 * Includes only the C library and OpenSSL's init; nothing of the project.
 * Out of memory is an error like any other: functions that allocate return
 * KF_EIO ("out of memory") or NULL, and no code below main() aborts or
 * exits.
 */
#ifndef KF_BASE_H
#define KF_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- errors ---------------------------------------------------------- */

/* These values are also the programs' exit codes. */
enum {
	KF_OK = 0,
	KF_EVERIFY = 1, /* signature, checksum or bundle rule failed */
	KF_EUSAGE = 2,  /* bad command line or spec */
	KF_EIO = 3      /* I/O, network or resource error */
};

typedef struct kf_err {
	int code;
	char msg[2048];
} kf_err;

/* Set *e (when e is not NULL) and return code. The message names the file,
 * entry, URL or line at fault; callers do not add a trailing newline. */
int kf_err_set(kf_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* KF_EIO with "<what> <path>: strerror(errno)". */
int kf_err_errno(kf_err *e, const char *what, const char *path);
/* Prefix an existing message: "<prefix>: <old message>". Returns e->code. */
int kf_err_prefix(kf_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "<prog>: error: <msg>" on stderr; returns e->code (KF_EIO when
 * the code was never set). */
int kf_err_print(const char *prog, const kf_err *e);

/* ---- process-wide setup ------------------------------------------------ */

/* Initialise OpenSSL without reading the host's openssl.cnf (a FIPS provider
 * configured there would break a static binary). Call first in main(). */
void kf_crypto_init(void);

/* ---- durable files ----------------------------------------------------- */

/* Write data to path via "<path>.tmp-XXXXXX" in the same directory: write,
 * fchmod(mode), fsync, rename, fsync the directory. With overwrite == 0 an
 * existing path is refused (KF_EUSAGE) without touching it. */
int kf_write_file_atomic(const char *path, const void *data, size_t len,
                         mode_t mode, int overwrite, kf_err *e);
/* write(2) until all of data is written (EINTR retried); -1 with errno
 * on failure. */
int kf_write_all(int fd, const void *data, size_t len);
/* Read a whole file (at most max bytes, else KF_EIO naming the file); the
 * buffer is NUL-terminated (not counted in *len). Caller frees *out. */
int kf_read_file(const char *path, size_t max, char **out, size_t *len,
                 kf_err *e);
int kf_fsync_path(const char *path, kf_err *e);
/* fsync the directory that holds path. */
int kf_fsync_parent(const char *path, kf_err *e);
/* mkdir -p; existing directories are fine. */
int kf_mkdir_p(const char *path, mode_t mode, kf_err *e);
/* rm -rf without following symlinks; 0 when path does not exist. */
int kf_remove_tree(const char *path, kf_err *e);
/* Directory part of path into out ("." when there is none). */
void kf_dirname(const char *path, char *out, size_t n);

/* ---- bounded strings ---------------------------------------------------- */

/* snprintf that reports truncation: 0 when the whole text fit into out[n],
 * -1 (out still NUL-terminated) when it did not or n is 0. */
int kf_strf(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A growing string. Appends after an allocation failure are no-ops and
 * remembered: check once, at the end, with kf_buf_ok or kf_buf_take. */
typedef struct kf_buf {
	char *p;      /* NUL-terminated while len > 0 or after any append */
	size_t len;
	size_t cap;
	int oom;
} kf_buf;

void kf_buf_init(kf_buf *b);
void kf_buf_add(kf_buf *b, const void *data, size_t n);
void kf_buf_adds(kf_buf *b, const char *s);
void kf_buf_addf(kf_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kf_buf_vaddf(kf_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* 1 while no append has failed. */
int kf_buf_ok(const kf_buf *b);
/* The string (caller frees; "" for an empty buffer), or NULL after an
 * allocation failure; b is empty afterwards either way. */
char *kf_buf_take(kf_buf *b);
void kf_buf_free(kf_buf *b);

/* ---- helper programs (run.c) ------------------------------------------ */

/* Run argv (argv[0] looked up on this process's PATH, posix_spawnp) with
 * exactly the environment envp, stdin from /dev/null; stdout and stderr
 * together into *output (may be NULL; at most 1 MiB kept). *status is the
 * exit status (128 + signal when killed), -1 when it could not run. */
int kf_run_capture(char *const *argv, char *const *envp, char **output,
                   int *status, kf_err *e);

/* ---- base64 (RFC 4648, '=' padding) ------------------------------------- */

/* out needs 4*ceil(n/3)+1 bytes. */
void kf_b64_encode(const unsigned char *in, size_t n, char *out);
/* Strict alphabet and padding; returns the decoded length, or -1 when s is
 * not valid base64 or decodes to more than cap bytes. */
long kf_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#endif
