/*
 * Writes through the step engine: a file or a link at an absolute path
 * under the root, compared first ("ok" when equal), its previous state
 * journaled, then replaced via a temporary name, fsync and rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "installer/step/step.h"

char *kfi_path(const kfi_ctx *c, const char *abs)
{
	size_t n = strlen(c->root) + strlen(abs) + 1;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s", c->root, abs);
	return p;
}

int kfi_oom(kf_err *e)
{
	return kf_err_set(e, KF_EIO, "out of memory");
}

/* Every existing directory between ROOT and abs must be a real directory:
 * a symbolic link there (ROOT/etc -> /etc, made by mistake or by whoever
 * prepared the root) would carry reads and writes out of ROOT, onto the
 * host that runs the installer. Missing components are fine (they will be
 * created as directories). The last component is not checked: writes
 * replace it by rename and never follow it. */
int kfi_check_parents(const kfi_ctx *c, const char *abs, kf_err *e)
{
	int rc = KF_OK;
	char buf[PATH_MAX];
	char *full = NULL;
	struct stat st;

	if (snprintf(buf, sizeof buf, "%s", abs) >= (int)sizeof buf)
		return kf_err_set(e, KF_EIO, "path too long: %s", abs);
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		free(full);
		if (!(full = kfi_path(c, buf))) {
			rc = kfi_oom(e);
			goto out;
		}
		if (lstat(full, &st) != 0)
			break;
		if (S_ISLNK(st.st_mode)) {
			rc = kf_err_set(e, KF_EIO, "%s is a symbolic link; refusing to follow it (writing %s%s)",
			                full, c->root, abs);
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			rc = kf_err_set(e, KF_EIO, "%s is not a directory", full);
			goto out;
		}
		*p = '/';
	}
out:
	free(full);
	return rc;
}

/* Tests simulate a kill at the worst moment (journal written, file not
 * yet) with KUBEFERRY_TEST_CRASH_AFTER=N: SIGKILL before the Nth write. */
void kfi_crash_point(void)
{
	static long n;
	const char *v = getenv("KUBEFERRY_TEST_CRASH_AFTER");
	char *end = NULL;
	long at = v ? strtol(v, &end, 10) : 0;

	if (v && end != v && !*end && ++n >= at)
		kill(getpid(), SIGKILL);
}

void kfi_report(kfi_ctx *c, int changed, const char *what, const char *abs)
{
	if (changed)
		c->changed++;
	else
		c->ok++;
	printf("%-8s %s %s%s\n", changed ? "changed" : "ok", what, abs,
	       changed && c->dry_run ? " (dry run)" : "");
	fflush(stdout);
}

int kfi_put_file(kfi_ctx *c, const char *abs, const void *data, size_t len,
                 unsigned mode, int *changed, kf_err *e)
{
	int rc = KF_OK, differs = 1;
	char *full = kfi_path(c, abs), *cur = NULL;
	size_t curlen = 0;
	struct stat st;

	if (!full) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_check_parents(c, abs, e)) != KF_OK)
		goto out;
	/* The owner counts too: a binary root runs that is owned by another
	 * user (who could rewrite it later) is replaced by one of ours. */
	if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size == len && (st.st_mode & 07777) == mode &&
	    st.st_uid == geteuid() && st.st_gid == getegid()) {
		kf_err tmp;
		if (kf_read_file(full, KFI_FILE_MAX, &cur, &curlen, &tmp) == KF_OK &&
		    curlen == len && memcmp(cur, data, len) == 0)
			differs = 0;
	}
	if (differs && !c->dry_run) {
		if ((rc = kfi_ensure_parents(c, abs, e)) != KF_OK)
			goto out;
		if ((rc = kfi_journal_before(c, abs, "file", e)) != KF_OK)
			goto out;
		kfi_crash_point();
		if ((rc = kf_write_file_atomic(full, data, len, mode, 1, e)) != KF_OK)
			goto out;
	}
	kfi_report(c, differs, "file", abs);
	if (changed)
		*changed = differs;
out:
	free(full);
	free(cur);
	return rc;
}

int kfi_put_file_from(kfi_ctx *c, const char *abs, const char *src,
                      unsigned mode, int *changed, kf_err *e)
{
	int rc;
	char *data = NULL;
	size_t len = 0;

	if ((rc = kf_read_file(src, KFI_FILE_MAX, &data, &len, e)) == KF_OK)
		rc = kfi_put_file(c, abs, data, len, mode, changed, e);
	free(data);
	return rc;
}

int kfi_put_link(kfi_ctx *c, const char *abs, const char *target,
                 int *changed, kf_err *e)
{
	int rc = KF_OK, differs = 1;
	char *full = kfi_path(c, abs), cur[PATH_MAX], tmp[PATH_MAX];
	struct stat st;

	if (!full) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_check_parents(c, abs, e)) != KF_OK)
		goto out;
	if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(full, cur, sizeof cur - 1);
		if (n >= 0) {
			cur[n] = '\0';
			differs = strcmp(cur, target) != 0;
		}
	}
	if (differs && !c->dry_run) {
		if ((rc = kfi_ensure_parents(c, abs, e)) != KF_OK)
			goto out;
		if ((rc = kfi_journal_before(c, abs, "link", e)) != KF_OK)
			goto out;
		/* A new link under a temporary name, renamed over: atomic. */
		if (kf_strf(tmp, sizeof tmp, "%s.kf-tmp", full) != 0) {
			rc = kf_err_set(e, KF_EIO, "path too long: %s", full);
			goto out;
		}
		unlink(tmp);
		if (symlink(target, tmp) != 0) {
			rc = kf_err_errno(e, "cannot create link", tmp);
			goto out;
		}
		if (rename(tmp, full) != 0) {
			rc = kf_err_errno(e, "cannot rename into", full);
			unlink(tmp);
			goto out;
		}
		if ((rc = kf_fsync_parent(full, e)) != KF_OK)
			goto out;
	}
	kfi_report(c, differs, "link", abs);
	if (changed)
		*changed = differs;
out:
	free(full);
	return rc;
}

char *kfi_strf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}
