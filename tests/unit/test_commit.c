/* archive commit: outputs renamed together, durably, and nothing left
 * behind on failure (archive/commit.c). */
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

static char dir[PATH_MAX];

static char *at(const char *name)
{
	static char buf[4][PATH_MAX + 64];
	static int n;
	char *p = buf[n++ % 4];
	snprintf(p, PATH_MAX + 64, "%s/%s", dir, name);
	return p;
}

/* Entries of dir whose name contains part. */
static int count_with(const char *part)
{
	int n = 0;
	struct dirent *de;
	DIR *dh = opendir(dir);
	if (!dh)
		return -1;
	while ((de = readdir(dh)) != NULL)
		if (strstr(de->d_name, part))
			n++;
	closedir(dh);
	return n;
}

static int holds(const char *path, const char *text)
{
	char *got = NULL;
	size_t len = 0;
	kf_err e = {0};
	int same = kf_read_file(path, 4096, &got, &len, &e) == KF_OK &&
	           len == strlen(text) && memcmp(got, text, len) == 0;
	free(got);
	return same;
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/kf-test-commit-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

/* A bundle and its signature: both appear, with mode 0644, temps gone. */
static void t_files_together(void)
{
	kf_commit c;
	kf_err e = {0};
	struct stat st;

	kf_commit_init(&c);
	CHECK_INT(kf_commit_add_data(&c, at("b.tar.zst"), 0644, "bundle", 6, &e), 0);
	CHECK_INT(kf_commit_add_data(&c, at("b.tar.zst.minisig"), 0644, "sig", 3, &e), 0);
	CHECK(access(at("b.tar.zst"), F_OK) != 0);
	CHECK_INT(kf_commit_finish(&c, 1, &e), 0);
	kf_commit_clear(&c);
	CHECK(holds(at("b.tar.zst"), "bundle"));
	CHECK(holds(at("b.tar.zst.minisig"), "sig"));
	CHECK(stat(at("b.tar.zst"), &st) == 0 && (st.st_mode & 07777) == 0644);
	CHECK_INT(count_with(".tmp-"), 0);
}

/* Cleared before finishing: the old files stay, the temps go. */
static void t_clear_keeps_old(void)
{
	kf_commit c;
	kf_err e = {0};

	kf_commit_init(&c);
	CHECK_INT(kf_commit_add_data(&c, at("b.tar.zst"), 0644, "new", 3, &e), 0);
	kf_commit_clear(&c);
	CHECK(holds(at("b.tar.zst"), "bundle"));
	CHECK_INT(count_with(".tmp-"), 0);
}

/* The second rename fails: the first output is taken back. */
static void t_rollback(void)
{
	kf_commit c;
	kf_err e = {0};

	CHECK_INT(mkdir(at("x.minisig"), 0755), 0);
	CHECK_INT(mkdir(at("x.minisig/busy"), 0755), 0);
	kf_commit_init(&c);
	CHECK_INT(kf_commit_add_data(&c, at("x"), 0644, "x", 1, &e), 0);
	CHECK_INT(kf_commit_add_data(&c, at("x.minisig"), 0644, "s", 1, &e), 0);
	CHECK_INT(kf_commit_finish(&c, 1, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "x.minisig");
	kf_commit_clear(&c);
	CHECK(access(at("x"), F_OK) != 0);
	CHECK_INT(count_with(".tmp-"), 0);
}

/* Write one file into a staging directory and commit it as final. */
static int commit_tree(const char *final, const char *text, int replace,
                       kf_err *e)
{
	kf_commit c;
	int dfd = -1, fd, rc;

	kf_commit_init(&c);
	rc = kf_commit_add_dir(&c, final, &dfd, e);
	if (rc == KF_OK) {
		fd = openat(dfd, "f", O_WRONLY | O_CREAT | O_EXCL, 0644);
		CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
		if (fd >= 0)
			close(fd);
		rc = kf_commit_finish(&c, replace, e);
	}
	kf_commit_clear(&c);
	return rc;
}

static void t_dirs(void)
{
	kf_err e = {0};

	CHECK_INT(commit_tree(at("tree"), "one", 0, &e), 0);
	CHECK(holds(at("tree/f"), "one"));
	/* Without replace an existing tree is refused and left alone. */
	CHECK_INT(commit_tree(at("tree"), "two", 0, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "already exists");
	CHECK(holds(at("tree/f"), "one"));
	/* With it, swapped in one step and the old tree removed. */
	CHECK_INT(commit_tree(at("tree"), "three", 1, &e), 0);
	CHECK(holds(at("tree/f"), "three"));
	CHECK_INT(count_with("kf-staging"), 0);
}

static void teardown(void)
{
	kf_err e = {0};
	CHECK_INT(kf_remove_tree(dir, &e), 0);
}

KF_TEST_MAIN(setup, t_files_together, t_clear_keeps_old, t_rollback, t_dirs,
             teardown)
