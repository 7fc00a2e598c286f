/*
 * Bundle reader (format v1, docs/bundle-format.md): one streaming pass that
 * enforces every rule before anything leaves staging.
 *
 * Two threads. The reader thread decompresses (zstd) and parses tar
 * (libarchive), checks each header against the signed lock and copies the
 * content into buffers from a small fixed pool; the worker thread hashes
 * each buffer and, when unpacking, writes it. Decompression and SHA-256
 * each take about one core, so splitting them keeps the pass close to the
 * speed of "zstd -dc | tar -x". The pool bounds memory; either side stops
 * the other on its first error.
 *
 * When unpacking, a third thread fsyncs and closes finished files, so that
 * waiting for the disk overlaps with decompressing and hashing the next
 * ones; the worker starts writeback early (sync_file_range) as it writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive/archive_internal.h"

#define NBUF 8
#define QCAP 64
#define SQCAP 128               /* files written but not yet fsynced */
#define KICK_BYTES (8u << 20)   /* start writeback every 8 MiB */

enum msg_kind { M_BEGIN, M_DATA, M_END, M_STOP };

struct msg {
	enum msg_kind kind;
	size_t idx;             /* lock entry (M_BEGIN, M_END) */
	unsigned char *buf;     /* M_DATA */
	size_t len;
};

/* Everything one read pass shares between its two threads. */
struct pass {
	const char *origin;         /* bundle path for messages */
	const kf_lock *lock;
	int dirfd;                  /* staging directory, -1 when verifying */
	const kf_archive_read_opts *o;

	pthread_mutex_t mu;
	pthread_cond_t cv_msg, cv_space;
	struct msg q[QCAP];
	size_t qhead, qlen;
	unsigned char *pool[NBUF];
	unsigned char *free_bufs[NBUF];
	size_t nfree;
	int failed;                 /* set by either side, under mu */
	kf_err werr;                /* the worker's error */

	/* Syncer queue: finished files to fsync and close, under mu. */
	pthread_cond_t cv_sq, cv_sq_space;
	int sq_fd[SQCAP];
	size_t sq_idx[SQCAP];
	size_t sq_head, sq_len;
	int sq_stop;
	kf_err serr;                /* the syncer's error */

	/* Worker state. */
	kf_digest *sha;
	int fd;
	uint64_t count, kicked;
	uint64_t done, total;
	char **dirs;                /* directories created under staging */
	size_t ndirs, capdirs;
};

/* ---- the queue ---------------------------------------------------------- */

/* Take a free buffer; NULL when the worker failed meanwhile. */
static unsigned char *get_buf(struct pass *p)
{
	unsigned char *b = NULL;
	pthread_mutex_lock(&p->mu);
	while (!p->failed && p->nfree == 0)
		pthread_cond_wait(&p->cv_space, &p->mu);
	if (!p->failed)
		b = p->free_bufs[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return b;
}

static void put_buf_locked(struct pass *p, unsigned char *b)
{
	p->free_bufs[p->nfree++] = b;
	pthread_cond_broadcast(&p->cv_space);
}

static void put_buf(struct pass *p, unsigned char *b)
{
	pthread_mutex_lock(&p->mu);
	put_buf_locked(p, b);
	pthread_mutex_unlock(&p->mu);
}

/* Queue a message for the worker. -1 when the worker has failed (the
 * buffer, if any, goes back to the pool). M_STOP is always delivered. */
static int post(struct pass *p, enum msg_kind kind, size_t idx,
                unsigned char *buf, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	while (p->qlen == QCAP && (kind == M_STOP || !p->failed))
		pthread_cond_wait(&p->cv_space, &p->mu);
	if (p->failed && kind != M_STOP) {
		if (buf)
			put_buf_locked(p, buf);
		rc = -1;
	} else {
		struct msg *m = &p->q[(p->qhead + p->qlen) % QCAP];
		m->kind = kind;
		m->idx = idx;
		m->buf = buf;
		m->len = len;
		p->qlen++;
		pthread_cond_signal(&p->cv_msg);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* The reader failed: wake the worker so it drops what is queued. */
static void reader_failed(struct pass *p)
{
	pthread_mutex_lock(&p->mu);
	p->failed = 1;
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_msg);
	pthread_mutex_unlock(&p->mu);
}

/* ---- the worker: hash and write ------------------------------------------ */

static int write_all(int fd, const unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int remember_dir(struct pass *p, const char *path, size_t len)
{
	if (p->ndirs == p->capdirs) {
		size_t cap = p->capdirs ? p->capdirs * 2 : 64;
		char **d = realloc(p->dirs, cap * sizeof *d);
		if (!d)
			return -1;
		p->dirs = d;
		p->capdirs = cap;
	}
	p->dirs[p->ndirs] = strndup(path, len);
	if (!p->dirs[p->ndirs])
		return -1;
	p->ndirs++;
	return 0;
}

/* Create the parents of path under the staging directory, one component
 * at a time relative to directory fds and never following a symlink, then
 * the file itself with O_EXCL. Returns the file's fd or -1 (werr set). */
static int open_entry(struct pass *p, const char *path, unsigned mode)
{
	int dfd = p->dirfd, fd = -1;
	const char *s = path, *slash;
	char comp[NAME_MAX + 1];

	while ((slash = strchr(s, '/')) != NULL) {
		size_t n = (size_t)(slash - s);
		int nfd, created;
		if (n == 0 || n > NAME_MAX) {
			kf_err_set(&p->werr, KF_EVERIFY, "%s: bad path component", path);
			goto out;
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		created = mkdirat(dfd, comp, 0755) == 0;
		if (created) {
			if (remember_dir(p, path, (size_t)(slash - path)) != 0) {
				kf_err_set(&p->werr, KF_EIO, "out of memory");
				goto out;
			}
		} else if (errno != EEXIST) {
			kf_err_errno(&p->werr, "cannot create directory for", path);
			goto out;
		}
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			kf_err_errno(&p->werr, "cannot open directory for", path);
			goto out;
		}
		/* 0755 whatever the umask: the tree is read by services. */
		if (created && fchmod(nfd, 0755) != 0) {
			kf_err_errno(&p->werr, "cannot chmod directory for", path);
			close(nfd);
			goto out;
		}
		if (dfd != p->dirfd)
			close(dfd);
		dfd = nfd;
		s = slash + 1;
	}
	/* Only 0644 and 0755 leave a bundle: no setuid, sticky or
	 * group-writable bits, whatever the lock says. */
	fd = openat(dfd, s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	            (mode & 0111) ? 0755 : 0644);
	if (fd < 0) {
		kf_err_errno(&p->werr, "cannot create", path);
		goto out;
	}
	if (fchmod(fd, (mode & 0111) ? 0755 : 0644) != 0) {
		kf_err_errno(&p->werr, "cannot chmod", path);
		close(fd);
		fd = -1;
	}
out:
	if (dfd != p->dirfd)
		close(dfd);
	return fd;
}

/* Handle one message; non-zero when the worker must fail. */
static int work(struct pass *p, const struct msg *m)
{
	const kf_lock_entry *le = &p->lock->entries[m->idx];
	char hex[KF_SHA256_HEX];

	switch (m->kind) {
	case M_BEGIN:
		p->count = 0;
		p->kicked = 0;
		if (p->dirfd >= 0) {
			p->fd = open_entry(p, le->path, le->mode);
			if (p->fd < 0)
				return -1;
		}
		return 0;
	case M_DATA:
		p->count += m->len;
		/* The reader bounds each entry by its header, and the header
		 * by the lock; this holds even if that check were lost. */
		if (p->count > le->size) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: larger than the lock says (%llu bytes)",
			           le->path, (unsigned long long)le->size);
			return -1;
		}
		kf_digest_update(p->sha, m->buf, m->len);
		if (p->fd >= 0 && write_all(p->fd, m->buf, m->len) != 0) {
			kf_err_errno(&p->werr, "cannot write", le->path);
			return -1;
		}
		/* Hand written pages to the disk now rather than all at once
		 * at fsync time: keeps the disk busy while we decompress. */
		if (p->fd >= 0 && p->count - p->kicked >= KICK_BYTES) {
			sync_file_range(p->fd, (off_t)p->kicked,
			                (off_t)(p->count - p->kicked),
			                SYNC_FILE_RANGE_WRITE);
			p->kicked = p->count;
		}
		p->done += m->len;
		if (p->o->progress)
			p->o->progress(p->o->progress_arg, p->done, p->total);
		return 0;
	case M_END:
		kf_digest_final_hex(p->sha, hex);
		if (p->count != le->size) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: size mismatch: lock says %llu bytes, content has %llu",
			           le->path, (unsigned long long)le->size,
			           (unsigned long long)p->count);
			return -1;
		}
		if (strcmp(hex, le->sha256) != 0) {
			kf_err_set(&p->werr, KF_EVERIFY,
			           "%s: sha256 mismatch: lock says %s, content is %s",
			           le->path, le->sha256, hex);
			return -1;
		}
		if (p->fd >= 0) {
			int fd = p->fd;
			p->fd = -1;
			if (p->count > p->kicked)
				sync_file_range(fd, (off_t)p->kicked,
				                (off_t)(p->count - p->kicked),
				                SYNC_FILE_RANGE_WRITE);
			/* The syncer fsyncs and closes it. */
			pthread_mutex_lock(&p->mu);
			while (p->sq_len == SQCAP)
				pthread_cond_wait(&p->cv_sq_space, &p->mu);
			p->sq_fd[(p->sq_head + p->sq_len) % SQCAP] = fd;
			p->sq_idx[(p->sq_head + p->sq_len) % SQCAP] = m->idx;
			p->sq_len++;
			pthread_cond_signal(&p->cv_sq);
			pthread_mutex_unlock(&p->mu);
		}
		return 0;
	case M_STOP:
		break;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct pass *p = arg;
	int stop = 0;

	while (!stop) {
		struct msg m;
		int failed;
		pthread_mutex_lock(&p->mu);
		while (p->qlen == 0)
			pthread_cond_wait(&p->cv_msg, &p->mu);
		m = p->q[p->qhead];
		p->qhead = (p->qhead + 1) % QCAP;
		p->qlen--;
		pthread_cond_broadcast(&p->cv_space);
		failed = p->failed;
		pthread_mutex_unlock(&p->mu);

		if (m.kind == M_STOP)
			stop = 1;
		else if (!failed && work(p, &m) != 0) {
			pthread_mutex_lock(&p->mu);
			if (!p->failed && p->werr.code == KF_OK)
				p->werr.code = KF_EIO;
			p->failed = 2;  /* 2: the worker's error counts */
			pthread_cond_broadcast(&p->cv_space);
			pthread_mutex_unlock(&p->mu);
		}
		if (m.buf)
			put_buf(p, m.buf);
	}
	if (p->fd >= 0) {
		close(p->fd);
		p->fd = -1;
	}
	return NULL;
}

/* fsync and close every finished file, in order. After a failure (its own
 * or another thread's) it only closes, so the worker never waits on a
 * full queue. */
static void *syncer_main(void *arg)
{
	struct pass *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		int fd, failed;
		size_t idx;
		while (p->sq_len == 0 && !p->sq_stop)
			pthread_cond_wait(&p->cv_sq, &p->mu);
		if (p->sq_len == 0)
			break;
		fd = p->sq_fd[p->sq_head];
		idx = p->sq_idx[p->sq_head];
		p->sq_head = (p->sq_head + 1) % SQCAP;
		p->sq_len--;
		pthread_cond_signal(&p->cv_sq_space);
		failed = p->failed;
		pthread_mutex_unlock(&p->mu);

		if (!failed && fsync(fd) != 0)
			kf_err_errno(&p->serr, "cannot fsync",
			             p->lock->entries[idx].path);
		if (close(fd) != 0 && !failed && p->serr.code == KF_OK)
			kf_err_errno(&p->serr, "cannot close",
			             p->lock->entries[idx].path);
		pthread_mutex_lock(&p->mu);
		if (p->serr.code != KF_OK && !p->failed) {
			p->failed = 3;  /* 3: the syncer's error counts */
			pthread_cond_broadcast(&p->cv_space);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void stop_syncer(struct pass *p, pthread_t th)
{
	pthread_mutex_lock(&p->mu);
	p->sq_stop = 1;
	pthread_cond_signal(&p->cv_sq);
	pthread_mutex_unlock(&p->mu);
	pthread_join(th, NULL);
}

/* ---- the reader ---------------------------------------------------------- */

static int read_entries(struct pass *p, struct archive *a, kf_err *e)
{
	int rc = KF_OK;
	const kf_lock *lock = p->lock;
	unsigned char *seen = calloc(lock->nentries ? lock->nentries : 1, 1);
	struct archive_entry *ae;

	if (!seen)
		return kf_err_set(e, KF_EIO, "out of memory");
	for (;;) {
		const kf_lock_entry *le;
		const char *name;
		size_t idx;
		uint64_t left;
		int r = kf_ar_next_header(a, &ae, p->origin, e);
		if (r < 0) {
			rc = e->code;
			goto out;
		}
		if (r > 0)
			break;
		name = kf_ar_entry_name(ae);
		rc = kf_ar_check_header(ae, lock, seen, &idx, p->origin, e);
		if (rc)
			goto out;
		le = &lock->entries[idx];
		if (post(p, M_BEGIN, idx, NULL, 0) != 0)
			goto out;
		left = le->size;
		while (left > 0) {
			unsigned char *b = get_buf(p);
			size_t want = left < KF_AR_BUF_SIZE ? (size_t)left : KF_AR_BUF_SIZE;
			size_t got = 0;
			if (!b)
				goto out;
			while (got < want) {
				la_ssize_t n = archive_read_data(a, b + got, want - got);
				if (n < 0) {
					put_buf(p, b);
					rc = kf_ar_corrupt(e, p->origin, a);
					goto out;
				}
				if (n == 0)
					break;
				got += (size_t)n;
			}
			if (got != want) {
				put_buf(p, b);
				rc = kf_err_set(e, KF_EVERIFY,
				                "%s: truncated or corrupt bundle (%s ends early)",
				                p->origin, name);
				goto out;
			}
			if (post(p, M_DATA, idx, b, got) != 0)
				goto out;
			left -= got;
		}
		if (post(p, M_END, idx, NULL, 0) != 0)
			goto out;
	}
	rc = kf_ar_check_all_seen(lock, seen, p->origin, e);
out:
	free(seen);
	return rc;
}

/* One full pass: lock, signature, every entry. dirfd < 0 only verifies.
 * The lock goes to *lock_out on success. */
static int run_pass(const char *path, int dirfd, const kf_archive_read_opts *o,
                    kf_lock **lock_out, char *tc, size_t tc_len, kf_err *e)
{
	int rc, fd = -1, started = 0, sstarted = 0, sync_inited = 0;
	struct archive *a = NULL;
	char *lock_yaml = NULL, *sig = NULL;
	size_t lock_len = 0, sig_len = 0;
	kf_lock *lock = NULL;
	struct pass *p = NULL;
	pthread_t th, sth;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";

	if (!o || !o->key) {
		rc = kf_err_set(e, KF_EUSAGE, "no public key given to check %s", origin);
		goto out;
	}
	rc = kf_ar_open_bundle(path, &a, &fd, e);
	if (rc)
		goto out;
	rc = kf_ar_read_lock_entries(a, origin, &lock_yaml, &lock_len, &sig, &sig_len, e);
	if (rc)
		goto out;
	/* Nothing in the lock is believed before its signature verifies. */
	rc = kf_sig_verify_buf(o->key, sig, sig_len, lock_yaml, lock_len, tc,
	                       tc_len, KF_LOCK_SIG_PATH, e);
	if (rc) {
		kf_err_prefix(e, "%s", origin);
		goto out;
	}
	rc = kf_lock_parse(lock_yaml, lock_len, KF_LOCK_PATH, &lock, e);
	if (rc) {
		kf_err_prefix(e, "%s", origin);
		goto out;
	}

	/* The lock bounds the disk an unpack uses: refuse before writing
	 * rather than fill the filesystem halfway. */
	if (dirfd >= 0) {
		struct statvfs vfs;
		uint64_t need = kf_lock_total_size(lock);
		if (fstatvfs(dirfd, &vfs) == 0 &&
		    (uint64_t)vfs.f_bavail * vfs.f_frsize < need) {
			rc = kf_err_set(e, KF_EIO,
			                "%s: needs %llu bytes, only %llu free next to the destination",
			                origin, (unsigned long long)need,
			                (unsigned long long)vfs.f_bavail * vfs.f_frsize);
			goto out;
		}
	}

	p = calloc(1, sizeof *p);
	if (!p) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	p->origin = origin;
	p->lock = lock;
	p->dirfd = dirfd;
	p->o = o;
	p->fd = -1;
	p->total = kf_lock_total_size(lock);
	p->sha = kf_digest_new(KF_DIGEST_SHA256);
	if (!p->sha) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < NBUF; i++) {
		p->pool[i] = malloc(KF_AR_BUF_SIZE);
		if (!p->pool[i]) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		p->free_bufs[p->nfree++] = p->pool[i];
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_msg, NULL);
	pthread_cond_init(&p->cv_space, NULL);
	pthread_cond_init(&p->cv_sq, NULL);
	pthread_cond_init(&p->cv_sq_space, NULL);
	sync_inited = 1;
	if (dirfd >= 0) {
		if (pthread_create(&sth, NULL, syncer_main, p) != 0) {
			rc = kf_err_set(e, KF_EIO, "cannot start the fsync thread");
			goto out;
		}
		sstarted = 1;
	}
	if (pthread_create(&th, NULL, worker_main, p) != 0) {
		rc = kf_err_set(e, KF_EIO, "cannot start the hashing thread");
		goto out;
	}
	started = 1;

	rc = read_entries(p, a, e);
	if (rc)
		reader_failed(p);
	post(p, M_STOP, 0, NULL, 0);
	pthread_join(th, NULL);
	started = 0;
	/* Every file handed to the syncer is fsynced before success. */
	if (sstarted) {
		stop_syncer(p, sth);
		sstarted = 0;
	}
	/* The worker's or syncer's error explains a reader that merely
	 * stopped. */
	if (p->failed == 2 || p->failed == 3) {
		*e = p->failed == 2 ? p->werr : p->serr;
		rc = e->code;
		if (strncmp(e->msg, origin, strlen(origin)) != 0)
			kf_err_prefix(e, "%s", origin);
	} else if (rc == KF_OK && p->failed) {
		rc = kf_err_set(e, KF_EIO, "%s: read pass stopped", origin);
	}
	if (rc == KF_OK && lock_out) {
		*lock_out = lock;
		lock = NULL;
	}
out:
	if (started) {
		reader_failed(p);
		post(p, M_STOP, 0, NULL, 0);
		pthread_join(th, NULL);
	}
	if (sstarted) {
		reader_failed(p);
		stop_syncer(p, sth);
	}
	if (p) {
		if (sync_inited) {
			pthread_mutex_destroy(&p->mu);
			pthread_cond_destroy(&p->cv_msg);
			pthread_cond_destroy(&p->cv_space);
			pthread_cond_destroy(&p->cv_sq);
			pthread_cond_destroy(&p->cv_sq_space);
		}
		for (size_t i = 0; i < NBUF; i++)
			free(p->pool[i]);
		kf_digest_free(p->sha);
		/* Every directory the worker created is fsynced, so that the
		 * tree survives a crash once it is renamed into place. */
		if (dirfd >= 0 && rc == KF_OK) {
			for (size_t i = 0; i < p->ndirs && rc == KF_OK; i++) {
				int dfd = openat(dirfd, p->dirs[i],
				                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL))
					rc = kf_err_errno(e, "cannot fsync directory", p->dirs[i]);
				if (dfd >= 0)
					close(dfd);
			}
		}
		for (size_t i = 0; i < p->ndirs; i++)
			free(p->dirs[i]);
		free(p->dirs);
		free(p);
	}
	if (rc && lock_out && *lock_out) {
		kf_lock_free(*lock_out);
		*lock_out = NULL;
	}
	kf_lock_free(lock);
	free(lock_yaml);
	free(sig);
	if (a)
		archive_read_free(a);
	if (fd > STDIN_FILENO)
		close(fd);
	return rc;
}

int kf_archive_verify(const char *path, const kf_archive_read_opts *o,
                      kf_lock **lock_out, char *tc, size_t tc_len, kf_err *e)
{
	if (lock_out)
		*lock_out = NULL;
	return run_pass(path, -1, o, lock_out, tc, tc_len, e);
}

/* ---- unpack --------------------------------------------------------------- */

int kf_archive_unpack(const char *path, const char *dest_arg, int replace,
                      const kf_archive_read_opts *o, kf_lock **lock_out,
                      kf_err *e)
{
	int rc = KF_OK, dirfd = -1, have_staging = 0;
	char staging[PATH_MAX], parent[PATH_MAX], dest[PATH_MAX];
	size_t n;
	struct stat st;
	kf_err ignore;

	if (lock_out)
		*lock_out = NULL;
	if (!dest_arg || !*dest_arg) {
		rc = kf_err_set(e, KF_EUSAGE, "no destination directory given");
		goto out;
	}
	/* "dir/" names dir: without this the staging directory would be
	 * made inside it rather than next to it. */
	n = strlen(dest_arg);
	while (n > 1 && dest_arg[n - 1] == '/')
		n--;
	if (n >= sizeof dest) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", dest_arg);
		goto out;
	}
	memcpy(dest, dest_arg, n);
	dest[n] = '\0';
	if (!strcmp(dest, "/") || !strcmp(dest, ".") || !strcmp(dest, "..") ||
	    (n >= 2 && !strcmp(dest + n - 2, "/.")) ||
	    (n >= 3 && !strcmp(dest + n - 3, "/.."))) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: cannot unpack onto this directory; name a new one",
		                dest_arg);
		goto out;
	}
	if (lstat(dest, &st) == 0 && !replace) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s already exists (use --force to replace it)", dest);
		goto out;
	}
	kf_dirname(dest, parent, sizeof parent);
	if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = kf_err_set(e, KF_EIO, "%s: parent directory %s does not exist",
		                dest, parent);
		goto out;
	}
	if (snprintf(staging, sizeof staging, "%s.kf-staging-XXXXXX", dest) >=
	    (int)sizeof staging) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", dest);
		goto out;
	}
	if (!mkdtemp(staging)) {
		rc = kf_err_errno(e, "cannot create staging directory", staging);
		goto out;
	}
	have_staging = 1;
	if (chmod(staging, 0755) != 0) {
		rc = kf_err_errno(e, "cannot chmod", staging);
		goto out;
	}
	dirfd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0) {
		rc = kf_err_errno(e, "cannot open", staging);
		goto out;
	}
	rc = run_pass(path, dirfd, o, lock_out, NULL, 0, e);
	if (rc)
		goto out;
	if (fsync(dirfd) != 0 && errno != EINVAL) {
		rc = kf_err_errno(e, "cannot fsync", staging);
		goto out;
	}

	/* The only step that touches dest, and it is atomic. */
	if (renameat2(AT_FDCWD, staging, AT_FDCWD, dest, RENAME_NOREPLACE) == 0) {
		have_staging = 0;
	} else if (errno == EEXIST && replace) {
		/* Swap old and new in one step; the old tree, now under the
		 * staging name, is removed afterwards. */
		if (renameat2(AT_FDCWD, staging, AT_FDCWD, dest, RENAME_EXCHANGE) != 0) {
			rc = kf_err_errno(e, "cannot replace", dest);
			goto out;
		}
	} else if (errno == EEXIST) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "%s already exists (use --force to replace it)", dest);
		goto out;
	} else {
		rc = kf_err_errno(e, "cannot rename staging directory to", dest);
		goto out;
	}
	rc = kf_fsync_path(parent, e);
out:
	if (dirfd >= 0)
		close(dirfd);
	/* On failure the staging tree goes; after a swap it holds the old
	 * tree, which goes too. A failure to remove that one is reported,
	 * although the new tree is already in place. */
	if (have_staging && kf_remove_tree(staging, &ignore) != KF_OK &&
	    rc == KF_OK) {
		*e = ignore;
		rc = kf_err_prefix(e, "%s is in place, but the old tree remains at %s",
		                   dest, staging);
	}
	if (rc && lock_out && *lock_out) {
		kf_lock_free(*lock_out);
		*lock_out = NULL;
	}
	return rc;
}

/* ---- inspect -------------------------------------------------------------- */

int kf_archive_read_lock(const char *path, char **lock_yaml, size_t *lock_len,
                         char **sig_text, size_t *sig_len, kf_err *e)
{
	int rc, fd = -1;
	struct archive *a = NULL;
	const char *origin = strcmp(path, "-") ? path : "(stdin)";

	*lock_yaml = NULL;
	*sig_text = NULL;
	rc = kf_ar_open_bundle(path, &a, &fd, e);
	if (rc)
		goto out;
	rc = kf_ar_read_lock_entries(a, origin, lock_yaml, lock_len, sig_text,
	                       sig_len, e);
	if (rc) {
		free(*lock_yaml);
		free(*sig_text);
		*lock_yaml = NULL;
		*sig_text = NULL;
	}
out:
	if (a)
		archive_read_free(a);
	if (fd > STDIN_FILENO)
		close(fd);
	return rc;
}
