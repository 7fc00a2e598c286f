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

/* ---- the queue ---------------------------------------------------------- */

/* Take a free buffer; NULL when the worker failed meanwhile. */
static unsigned char *get_buf(struct kf_ar_pass *p)
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

static void put_buf_locked(struct kf_ar_pass *p, unsigned char *b)
{
	p->free_bufs[p->nfree++] = b;
	pthread_cond_broadcast(&p->cv_space);
}

static void put_buf(struct kf_ar_pass *p, unsigned char *b)
{
	pthread_mutex_lock(&p->mu);
	put_buf_locked(p, b);
	pthread_mutex_unlock(&p->mu);
}

/* Queue a message for the worker. -1 when the worker has failed (the
 * buffer, if any, goes back to the pool). M_STOP is always delivered. */
static int post(struct kf_ar_pass *p, enum msg_kind kind, size_t idx,
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
		struct kf_ar_msg *m = &p->q[(p->qhead + p->qlen) % QCAP];
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
static void reader_failed(struct kf_ar_pass *p)
{
	pthread_mutex_lock(&p->mu);
	p->failed = 1;
	pthread_cond_broadcast(&p->cv_space);
	pthread_cond_broadcast(&p->cv_msg);
	pthread_mutex_unlock(&p->mu);
}

/* ---- the worker: hash and write ------------------------------------------ */

/* Handle one message; non-zero when the worker must fail. */
static int work(struct kf_ar_pass *p, const struct kf_ar_msg *m)
{
	const kf_lock_entry *le = &p->lock->entries[m->idx];
	char hex[KF_SHA256_HEX];

	switch (m->kind) {
	case M_BEGIN:
		p->count = 0;
		p->kicked = 0;
		if (p->dirfd >= 0) {
			p->fd = kf_ar_stage_open(p, le->path, le->mode);
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
		if (p->fd >= 0 && kf_ar_stage_write(p, le, m->buf, m->len) != 0)
			return -1;
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
		if (p->fd >= 0)
			kf_ar_stage_seal(p, m->idx);
		return 0;
	case M_STOP:
		break;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct kf_ar_pass *p = arg;
	int stop = 0;

	while (!stop) {
		struct kf_ar_msg m;
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
	struct kf_ar_pass *p = arg;

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

static void stop_syncer(struct kf_ar_pass *p, pthread_t th)
{
	pthread_mutex_lock(&p->mu);
	p->sq_stop = 1;
	pthread_cond_signal(&p->cv_sq);
	pthread_mutex_unlock(&p->mu);
	pthread_join(th, NULL);
}

/* ---- the reader ---------------------------------------------------------- */

static int read_entries(struct kf_ar_pass *p, struct archive *a, kf_err *e)
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
	struct kf_ar_pass *p = NULL;
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
		if (dirfd >= 0 && rc == KF_OK)
			rc = kf_ar_stage_sync_dirs(p, e);
		kf_ar_stage_free(p);
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
