/* base: bounded strings (kf_strf truncation, kf_buf growth and its
 * remembered failure) and the durable-file helpers' refusals. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/kf_base.h"
#include "kf_test.h"

static void t_strf(void)
{
	char small[6];

	CHECK_INT(kf_strf(small, sizeof small, "%s", "hello"), 0);
	CHECK_STR(small, "hello");
	CHECK_INT(kf_strf(small, sizeof small, "%s", "hello!"), -1);
	CHECK_STR(small, "hello");
	CHECK_INT(kf_strf(small, 0, "x"), -1);
}

static void t_buf(void)
{
	kf_buf b;
	char *s;

	kf_buf_init(&b);
	s = kf_buf_take(&b);
	CHECK_STR(s, "");
	free(s);
	for (int i = 0; i < 1000; i++)
		kf_buf_addf(&b, "%03d,", i);
	kf_buf_adds(&b, "end");
	kf_buf_add(&b, "\0x", 1);
	CHECK(kf_buf_ok(&b));
	CHECK_INT(b.len, 4004);
	CHECK(strncmp(b.p, "000,001,", 8) == 0);
	s = kf_buf_take(&b);
	CHECK(s != NULL && strcmp(s + 3996, "999,end") == 0);
	CHECK(b.p == NULL && b.len == 0);
	free(s);

	/* A failed append poisons the buffer: take returns NULL. */
	kf_buf_adds(&b, "abc");
	kf_buf_add(&b, "x", SIZE_MAX / 2);
	CHECK(!kf_buf_ok(&b));
	kf_buf_adds(&b, "more");
	CHECK(kf_buf_take(&b) == NULL);
	kf_buf_free(&b);
}

static void t_atomic_refuses_existing(void)
{
	char dir[] = "/tmp/kf-test-base.XXXXXX", path[64];
	kf_err e = {0};
	char *got = NULL;
	size_t len = 0;
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/f", dir);
	CHECK_INT(kf_write_file_atomic(path, "one", 3, 0600, 0, &e), KF_OK);
	CHECK_INT(kf_write_file_atomic(path, "two", 3, 0600, 0, &e), KF_EUSAGE);
	CHECK_INT(kf_read_file(path, 100, &got, &len, &e), KF_OK);
	CHECK_STR(got, "one");
	free(got);
	CHECK_INT(kf_write_file_atomic(path, "two", 3, 0640, 1, &e), KF_OK);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK_INT(kf_read_file(path, 2, &got, &len, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, path);
	CHECK_INT(kf_remove_tree(dir, &e), KF_OK);
	CHECK(access(dir, F_OK) != 0);
}

KF_TEST_MAIN(t_strf, t_buf, t_atomic_refuses_existing)
