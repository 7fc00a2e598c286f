/* archive: write -> verify -> unpack round trips, reproducibility, and the
 * failure paths that can be reached in-process. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/kf_archive.h"
#include "kf_test.h"

static char dir[512];
static kf_pubkey pub;
static kf_seckey *sec;

static char *path_in(const char *name)
{
	static char buf[4][PATH_MAX];
	static int n;
	char *p = buf[n++ % 4];
	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static void put_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path_in(name), "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK_INT(fwrite(data, 1, len, f), len);
		fclose(f);
	}
}

static int same_file(const char *a, const char *b)
{
	char *x = NULL, *y = NULL;
	size_t lx = 0, ly = 0;
	kf_err e = {0};
	int same = kf_read_file(a, 64u << 20, &x, &lx, &e) == KF_OK &&
	           kf_read_file(b, 64u << 20, &y, &ly, &e) == KF_OK &&
	           lx == ly && memcmp(x, y, lx) == 0;
	free(x);
	free(y);
	return same;
}

/* Count entries of dir whose name starts with prefix. */
static int count_prefix(const char *d, const char *prefix)
{
	int n = 0;
	struct dirent *de;
	DIR *dh = opendir(d);
	if (!dh)
		return -1;
	while ((de = readdir(dh)) != NULL)
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(dh);
	return n;
}

/* A bundle of three sources (one empty, one executable, one 2.5 MiB so
 * that it spans several pipeline buffers). */
#define NSRC 3
static const char *entry_paths[NSRC] = {
	"files/example.org/big.bin", "files/example.org/bin/tool",
	"addons/empty.yaml",
};
static const char *src_names[NSRC] = {"big.bin", "tool", "empty.yaml"};
static kf_lock_entry entries[NSRC];
static kf_lock lock;
static char *lock_yaml, *lock_sig;
static size_t lock_len, sig_len;
static kf_archive_source src[NSRC];

static void setup(void)
{
	kf_err e = {0};
	size_t big = (5u << 20) / 2 + 12345;
	unsigned char *b = malloc(big);

	snprintf(dir, sizeof dir, "%s/kf-test-archive.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < big; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	put_file("big.bin", b, big);
	free(b);
	put_file("tool", "#!/bin/sh\necho tool\n", 20);
	put_file("empty.yaml", "", 0);

	CHECK_INT(kf_keys_generate(path_in("k.key"), path_in("k.pub"), NULL, 0, &e), 0);
	CHECK_INT(kf_keys_load_secret(path_in("k.key"), &sec, &e), 0);
	kf_keys_public_of(sec, &pub);

	lock.format = KF_FORMAT_VERSION;
	lock.name = "unit";
	lock.version = "1.0.0";
	lock.kube_version = "1.33.3";
	lock.archs[0] = "amd64";
	lock.narch = 1;
	lock.created = "2023-11-14T22:13:20Z";
	lock.builder = "kubeferry test";
	lock.install.etcd = "host";
	lock.install.cni = "flannel";
	lock.install.pod_subnet = "10.244.0.0/16";
	lock.install.service_subnet = "10.96.0.0/12";
	for (int i = 0; i < NSRC; i++) {
		entries[i].path = (char *)entry_paths[i];
		CHECK_INT(kf_sha256_file(path_in(src_names[i]), entries[i].sha256,
		                         &entries[i].size, &e), 0);
		entries[i].mode = i == 1 ? 0755 : 0644;
		src[i].entry_path = entry_paths[i];
		src[i].src_path = strdup(path_in(src_names[i]));
	}
	lock.entries = entries;
	lock.nentries = NSRC;
	CHECK_INT(kf_lock_emit(&lock, &lock_yaml, &lock_len, &e), 0);
	if (e.code)
		fprintf(stderr, "emit: %s\n", e.msg);
	CHECK_INT(kf_sig_sign_buf(sec, lock_yaml, lock_len, "unit test",
	                          "unit 1.0.0", &lock_sig, &e), 0);
	sig_len = lock_sig ? strlen(lock_sig) : 0;
}

/* The source the last write_bundle's writer reported as mismatching. */
static const kf_archive_source *last_mismatch;

static int write_bundle(const char *name, int threads, unsigned char *dg,
                        kf_err *e)
{
	kf_archive_write_opts o = {.level = 3, .threads = threads,
	                           .mtime = 1700000000,
	                           .mismatch = &last_mismatch};
	return kf_archive_write(path_in(name), lock_yaml, lock_len, lock_sig,
	                        sig_len, &lock, src, NSRC, &o, dg, e);
}

static void t_roundtrip(void)
{
	kf_err e = {0};
	unsigned char dg[KF_BLAKE2B_LEN], dg2[KF_BLAKE2B_LEN], fd[KF_BLAKE2B_LEN];
	kf_archive_read_opts ro = {.key = &pub};
	kf_lock *got = NULL;
	char tc[256] = "", out[1024], a[PATH_MAX];
	struct stat st;
	kf_digest *d;

	last_mismatch = &src[0];
	CHECK_INT(write_bundle("b1.tar.zst", 1, dg, &e), 0);
	if (e.code)
		fprintf(stderr, "write: %s\n", e.msg);
	CHECK(last_mismatch == NULL);
	/* Same inputs, other thread count: the same bytes. */
	CHECK_INT(write_bundle("b2.tar.zst", 3, dg2, &e), 0);
	CHECK(same_file(path_in("b1.tar.zst"), path_in("b2.tar.zst")));
	CHECK(memcmp(dg, dg2, sizeof dg) == 0);
	/* file_digest is the BLAKE2b-512 of the file as written. */
	{
		char *buf = NULL;
		size_t len = 0;
		CHECK_INT(kf_read_file(path_in("b1.tar.zst"), 64u << 20, &buf, &len, &e), 0);
		d = kf_digest_new(KF_DIGEST_BLAKE2B512);
		kf_digest_update(d, buf, len);
		kf_digest_final(d, fd);
		kf_digest_free(d);
		free(buf);
		CHECK(memcmp(fd, dg, sizeof fd) == 0);
	}
	CHECK_INT(count_prefix(dir, "b1.tar.zst.tmp-"), 0);

	CHECK_INT(kf_archive_verify(path_in("b1.tar.zst"), &ro, &got, tc, sizeof tc, &e), 0);
	if (e.code)
		fprintf(stderr, "verify: %s\n", e.msg);
	CHECK_STR(tc, "unit 1.0.0");
	CHECK(got && got->nentries == NSRC);
	kf_lock_free(got);
	got = NULL;

	snprintf(out, sizeof out, "%s", path_in("out"));
	CHECK_INT(kf_archive_unpack(path_in("b1.tar.zst"), out, 0, &ro, &got, &e), 0);
	if (e.code)
		fprintf(stderr, "unpack: %s\n", e.msg);
	CHECK(got != NULL);
	kf_lock_free(got);
	for (int i = 0; i < NSRC; i++) {
		snprintf(a, sizeof a, "%s/%s", out, entry_paths[i]);
		CHECK(same_file(a, path_in(src_names[i])));
		CHECK_INT(stat(a, &st), 0);
		CHECK_INT(st.st_mode & 07777, i == 1 ? 0755 : 0644);
	}
	CHECK_INT(count_prefix(dir, "out.kf-staging-"), 0);

	/* An existing destination is refused without --force ... */
	CHECK_INT(kf_archive_unpack(path_in("b1.tar.zst"), out, 0, &ro, NULL, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "already exists");
	/* ... and replaced with it, the old tree gone. */
	put_file("out/stale", "x", 1);
	CHECK_INT(kf_archive_unpack(path_in("b1.tar.zst"), out, 1, &ro, NULL, &e), 0);
	CHECK(access(path_in("out/stale"), F_OK) != 0);
	snprintf(a, sizeof a, "%s/%s", out, entry_paths[0]);
	CHECK(same_file(a, path_in(src_names[0])));
	CHECK_INT(count_prefix(dir, "out.kf-staging-"), 0);
}

static void t_wrong_key(void)
{
	kf_err e = {0};
	kf_pubkey other = pub;
	kf_archive_read_opts ro = {.key = &other};

	other.pk[0] ^= 1;
	CHECK_INT(kf_archive_verify(path_in("b1.tar.zst"), &ro, NULL, NULL, 0, &e), KF_EVERIFY);
	CHECK_INT(kf_archive_unpack(path_in("b1.tar.zst"), path_in("wk"), 0, &ro, NULL, &e), KF_EVERIFY);
	CHECK(access(path_in("wk"), F_OK) != 0);
	CHECK_INT(count_prefix(dir, "wk.kf-staging-"), 0);
	ro.key = NULL;
	CHECK_INT(kf_archive_verify(path_in("b1.tar.zst"), &ro, NULL, NULL, 0, &e), KF_EUSAGE);
}

/* A bundle path that cannot be read (here a directory) is an I/O error,
 * exit 3, not "verification failed": the bundle was never seen. */
static void t_unreadable(void)
{
	kf_err e = {0};
	kf_archive_read_opts ro = {.key = &pub};
	char d[PATH_MAX];

	snprintf(d, sizeof d, "%s", path_in("adir"));
	CHECK_INT(mkdir(d, 0755), 0);
	CHECK_INT(kf_archive_verify(d, &ro, NULL, NULL, 0, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "adir: cannot read");
	CHECK_INT(kf_archive_unpack(d, path_in("ud"), 0, &ro, NULL, &e), KF_EIO);
	CHECK(access(path_in("ud"), F_OK) != 0);
	CHECK_INT(count_prefix(dir, "ud.kf-staging-"), 0);
	CHECK_INT(rmdir(d), 0);
}

static void t_write_mismatch(void)
{
	kf_err e = {0};
	unsigned char dg[KF_BLAKE2B_LEN];
	char *save, *t2 = strdup(path_in("tool2"));

	/* A source that changed after the lock was made: same size, other
	 * bytes. The write fails naming it, and leaves nothing. */
	put_file("tool2", "#!/bin/sh\necho TOOL\n", 20);
	save = (char *)src[1].src_path;
	src[1].src_path = t2;
	CHECK_INT(write_bundle("bad.tar.zst", 1, dg, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "files/example.org/bin/tool: sha256 mismatch");
	CHECK(access(path_in("bad.tar.zst"), F_OK) != 0);
	CHECK_INT(count_prefix(dir, "bad.tar.zst"), 0);
	/* The caller learns which source it was (the builder evicts a
	 * cache entry by it). */
	CHECK(last_mismatch == &src[1]);

	/* Other size. */
	put_file("tool2", "short", 5);
	CHECK_INT(write_bundle("bad.tar.zst", 1, dg, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "size mismatch");
	CHECK_INT(count_prefix(dir, "bad.tar.zst"), 0);
	CHECK(last_mismatch == &src[1]);
	src[1].src_path = save;
	free(t2);

	/* A source the lock does not list. */
	src[2].entry_path = "addons/other.yaml";
	CHECK_INT(write_bundle("bad.tar.zst", 1, dg, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "addons/other.yaml: not listed in the lock");
	src[2].entry_path = entry_paths[2];

	/* A lock entry without its source. */
	{
		kf_archive_write_opts o = {.level = 3, .threads = 1};
		CHECK_INT(kf_archive_write(path_in("bad.tar.zst"), lock_yaml, lock_len,
		                           lock_sig, sig_len, &lock, src, NSRC - 1,
		                           &o, dg, &e), KF_EUSAGE);
		CHECK_CONTAINS(e.msg, "no source given");
	}
	CHECK_INT(count_prefix(dir, "bad.tar.zst"), 0);
}

static void t_read_lock(void)
{
	kf_err e = {0};
	char *y = NULL, *s = NULL;
	size_t yl = 0, sl = 0;

	CHECK_INT(kf_archive_read_lock(path_in("b1.tar.zst"), &y, &yl, &s, &sl, &e), 0);
	CHECK_INT(yl, lock_len);
	CHECK(y && memcmp(y, lock_yaml, lock_len) == 0);
	CHECK(s && sl == sig_len && memcmp(s, lock_sig, sl) == 0);
	free(y);
	free(s);
}

static void t_corrupt(void)
{
	kf_err e = {0};
	kf_archive_read_opts ro = {.key = &pub};
	char *buf = NULL;
	size_t len = 0;

	/* Truncated: the first half of a good bundle. */
	CHECK_INT(kf_read_file(path_in("b1.tar.zst"), 64u << 20, &buf, &len, &e), 0);
	put_file("half.tar.zst", buf, len / 2);
	CHECK_INT(kf_archive_verify(path_in("half.tar.zst"), &ro, NULL, NULL, 0, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "truncated or corrupt bundle");
	CHECK_INT(kf_archive_unpack(path_in("half.tar.zst"), path_in("half"), 0, &ro, NULL, &e), KF_EVERIFY);
	CHECK(access(path_in("half"), F_OK) != 0);
	CHECK_INT(count_prefix(dir, "half.kf-staging-"), 0);
	/* Not a bundle at all. */
	put_file("garbage", "this is not zstd at all, not even close", 39);
	CHECK_INT(kf_archive_verify(path_in("garbage"), &ro, NULL, NULL, 0, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "not a kubeferry bundle");
	/* Missing file: an I/O error, not a verification failure. */
	CHECK_INT(kf_archive_verify(path_in("nope"), &ro, NULL, NULL, 0, &e), KF_EIO);
	free(buf);
}

/* Write a bundle of n small files named by fmt (n > the syncer's queue, so
 * the worker waits for fsyncs), or of the given paths; then unpack it. */
static int many_roundtrip(const char **paths, size_t n, const char *out,
                          kf_err *e)
{
	kf_lock l = lock;
	kf_lock_entry *ents = calloc(n, sizeof *ents);
	kf_archive_source *s = calloc(n, sizeof *s);
	kf_archive_write_opts o = {.level = 1, .threads = 1, .mtime = 1};
	kf_archive_read_opts ro = {.key = &pub};
	char *y = NULL, *sig = NULL, name[64];
	size_t yl = 0;
	unsigned char dg[KF_BLAKE2B_LEN];
	int rc;

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof name, "m%zu", i);
		put_file(name, name, strlen(name));
		ents[i].path = (char *)paths[i];
		ents[i].mode = 0644;
		CHECK_INT(kf_sha256_file(path_in(name), ents[i].sha256, &ents[i].size, e), 0);
		s[i].entry_path = paths[i];
		s[i].src_path = strdup(path_in(name));
	}
	l.entries = ents;
	l.nentries = n;
	rc = kf_lock_emit(&l, &y, &yl, e);
	if (rc == KF_OK)
		rc = kf_sig_sign_buf(sec, y, yl, "u", "many", &sig, e);
	/* emit sorted the entries: sources follow their own order. */
	if (rc == KF_OK)
		rc = kf_archive_write(path_in("many.tar.zst"), y, yl, sig,
		                      strlen(sig), &l, s, n, &o, dg, e);
	if (rc == KF_OK)
		rc = kf_archive_unpack(path_in("many.tar.zst"), out, 0, &ro, NULL, e);
	for (size_t i = 0; i < n; i++)
		free((char *)s[i].src_path);
	free(s);
	free(ents);
	free(y);
	free(sig);
	return rc;
}

static void t_many_files(void)
{
	enum { N = 300 };
	static char names[N][48];
	const char *paths[N];
	char out[1024], f[PATH_MAX];
	kf_err e = {0};

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "files/many/d%02d/f%03d", i % 7, i);
		paths[i] = names[i];
	}
	snprintf(out, sizeof out, "%s", path_in("many"));
	CHECK_INT(many_roundtrip(paths, N, out, &e), 0);
	if (e.code)
		fprintf(stderr, "many: %s\n", e.msg);
	snprintf(f, sizeof f, "%s/files/many/d05/f299", out);
	CHECK(access(f, F_OK) == 0);
	CHECK_INT(count_prefix(dir, "many.kf-staging-"), 0);
}

/* The worker fails (a file where a directory must go): the error comes
 * back through the pipeline, and staging is removed. */
static void t_worker_error(void)
{
	const char *paths[2] = {"files/x", "files/x/y"};
	kf_err e = {0};
	char out[1024];
	int rc;

	snprintf(out, sizeof out, "%s", path_in("clash"));
	rc = many_roundtrip(paths, 2, out, &e);

	CHECK(rc != KF_OK);
	CHECK_CONTAINS(e.msg, "files/x/y");
	CHECK(access(path_in("clash"), F_OK) != 0);
	CHECK_INT(count_prefix(dir, "clash.kf-staging-"), 0);
}

/* A path longer than ustar holds goes through a pax header and back. */
static void t_long_path(void)
{
	char longp[400], out[1024], f[PATH_MAX + 512];
	const char *paths[1] = {longp};
	kf_err e = {0};
	size_t n = 0;

	n += (size_t)snprintf(longp + n, sizeof longp - n, "files");
	while (n < 300)
		n += (size_t)snprintf(longp + n, sizeof longp - n, "/segment-%zu", n);
	snprintf(longp + n, sizeof longp - n, "/file");
	snprintf(out, sizeof out, "%s", path_in("long"));
	CHECK_INT(many_roundtrip(paths, 1, out, &e), 0);
	if (e.code)
		fprintf(stderr, "long: %s\n", e.msg);
	snprintf(f, sizeof f, "%s/%s", out, longp);
	CHECK(access(f, F_OK) == 0);
}

static void teardown(void)
{
	kf_err e = {0};
	for (int i = 0; i < NSRC; i++)
		free((char *)src[i].src_path);
	free(lock_yaml);
	free(lock_sig);
	kf_keys_free_secret(sec);
	CHECK_INT(kf_remove_tree(dir, &e), 0);
}

KF_TEST_MAIN(setup, t_roundtrip, t_wrong_key, t_unreadable, t_write_mismatch, t_read_lock,
             t_corrupt, t_many_files, t_worker_error, t_long_path, teardown)
