/*
 * The repository a bundle carries for one set and architecture:
 * rpms/<set>/<arch>/Packages/ with exactly the resolved packages, and
 * repodata/ written by createrepo_c for exactly that set. Reproducible:
 * the packages' mtimes (which primary records) and repomd's timestamps
 * are the build time, one worker keeps the order fixed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundler/rpm/rpm_int.h"

int kf_rpm_parse_names(const char *text, const char *origin, char ***names,
                       size_t *n, kf_err *e)
{
	size_t cap = 0, count = 0;
	char **v = NULL;
	int rc = KF_OK, lineno = 0;

	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n'), *s = p, *end;
		end = eol ? eol : p + strlen(p);
		lineno++;
		p = eol ? eol + 1 : end;
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		if (s == end || *s == '#')
			continue;
		for (const char *q = s; q < end; q++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", *q)) {
				rc = kf_err_set(e, KF_EUSAGE, "%s:%d: \"%.*s\" is not a package name",
				                origin, lineno, (int)(end - s), s);
				goto out;
			}
		if (count == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[count] = strndup(s, (size_t)(end - s))))
			goto oom;
		count++;
	}
	goto out;
oom:
	rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	if (rc) {
		for (size_t i = 0; i < count; i++)
			free(v[i]);
		free(v);
		v = NULL;
		count = 0;
	}
	*names = v;
	*n = count;
	return rc;
}

/* Hard link when the cache shares the file system, else a copy. */
static int place(const char *src, const char *dst, kf_err *e)
{
	char buf[65536];
	int in = -1, out = -1, rc = KF_OK;
	ssize_t r;

	if (link(src, dst) == 0)
		return KF_OK;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return kf_err_errno(e, "cannot open", src);
	if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = kf_err_errno(e, "cannot create", dst);
		goto out;
	}
	while ((r = read(in, buf, sizeof buf)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || write(out, buf, (size_t)r) != r) {
			rc = kf_err_errno(e, "cannot copy into", dst);
			goto out;
		}
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && !rc)
		rc = kf_err_errno(e, "cannot write", dst);
	return rc;
}

int kf_rpm_write_repo(const char *dir, char *const *src, char *const *files,
                      size_t n, time_t when, kf_err *e)
{
	char path[4096], rev[32], *out = NULL;
	struct timespec ts[2] = {{.tv_sec = when}, {.tv_sec = when}};
	int rc, status = 0;

	if (kf_strf(path, sizeof path, "%s/Packages", dir))
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", dir);
	if ((rc = kf_mkdir_p(path, 0755, e)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (kf_strf(path, sizeof path, "%s/Packages/%s", dir, files[i]))
			return kf_err_set(e, KF_EUSAGE, "path too long: %s", dir);
		if ((rc = place(src[i], path, e)))
			return rc;
		/* primary records each file's mtime. */
		if (utimensat(AT_FDCWD, path, ts, 0) != 0)
			return kf_err_errno(e, "cannot set the time of", path);
	}
	snprintf(rev, sizeof rev, "%lld", (long long)when);
	{
		char *argv[] = {"createrepo_c", "--quiet", "--no-database", "--workers", "1",
		                "--revision", rev, "--set-timestamp-to-revision", (char *)dir,
		                NULL};
		if ((rc = kf_rpm_run(argv, "/nonexistent", &out, &status, e)))
			goto out;
	}
	if (status != 0)
		rc = kf_err_set(e, KF_EIO, "createrepo_c %s failed (exit %d): %s", dir, status, out);
out:
	free(out);
	return rc;
}

int kf_rpm_run(char *const *argv, const char *home, char **output,
               int *status, kf_err *e)
{
	char envhome[4096];
	char *envp[] = {"PATH=/usr/bin:/bin:/usr/sbin:/sbin", envhome, "LC_ALL=C", NULL};

	if (kf_strf(envhome, sizeof envhome, "HOME=%s", home))
		return kf_err_set(e, KF_EUSAGE, "home directory path too long: %s", home);
	return kf_run_capture(argv, envp, output, status, e);
}
