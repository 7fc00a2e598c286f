/*
 * Stamps: what apply installed from a source with a known digest, with
 * each file's size, inode, mode and ctime, so a re-run can report "ok"
 * without reading or decompressing anything.
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

static char *stamp_path(const kfi_ctx *c, const char *key)
{
	char hex[KF_SHA256_HEX];

	kf_sha256_buf(key, strlen(key), hex);
	return kfi_strf("%s/stamps/%s", c->state_dir, hex);
}

int kfi_stamp_match(kfi_ctx *c, const char *key)
{
	char *p = stamp_path(c, key), *buf = NULL, *save = NULL;
	size_t len, n = 0;
	int ok = 0;
	kf_err ign;

	if (!p || kf_read_file(p, 1 << 20, &buf, &len, &ign) != KF_OK)
		goto out;
	/* First pass: everything must match before anything is reported. */
	ok = 1;
	for (char *l = strtok_r(buf, "\n", &save); l && ok; l = strtok_r(NULL, "\n", &save)) {
		char abs[PATH_MAX];
		unsigned long long size, ino, cs, cns;
		unsigned mode;
		struct stat st;
		char *full;
		if (sscanf(l, "%4095[^\t]\t%llu\t%llu\t%llu\t%llu\t%o", abs, &size, &ino, &cs,
		           &cns, &mode) != 6) {
			ok = 0;
			break;
		}
		full = kfi_path(c, abs);
		if (!full || lstat(full, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (unsigned long long)st.st_size != size || (unsigned long long)st.st_ino != ino ||
		    (unsigned long long)st.st_ctim.tv_sec != cs ||
		    (unsigned long long)st.st_ctim.tv_nsec != cns || (st.st_mode & 07777) != mode)
			ok = 0;
		free(full);
		n++;
	}
	if (!ok || n == 0) {
		ok = 0;
		goto out;
	}
	free(buf);
	buf = NULL;
	save = NULL;
	if (kf_read_file(p, 1 << 20, &buf, &len, &ign) != KF_OK) {
		ok = 0;
		goto out;
	}
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\t")] = '\0';
		kfi_report(c, 0, "file", l);
	}
out:
	free(p);
	free(buf);
	return ok;
}

void kfi_stamp_write(kfi_ctx *c, const char *key, char *const *abs, size_t n)
{
	char *p, *text = NULL, dir[PATH_MAX];
	size_t len = 0;
	FILE *m;
	kf_err ign;

	/* A stamp is only an accelerator: failing to write one (even for
	 * want of memory) is harmless. */
	if (c->dry_run || n == 0 || !(p = stamp_path(c, key)))
		return;
	if (!(m = open_memstream(&text, &len))) {
		free(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char *full = kfi_path(c, abs[i]);
		if (full && lstat(full, &st) == 0)
			fprintf(m, "%s\t%llu\t%llu\t%llu\t%llu\t%o\n", abs[i],
			        (unsigned long long)st.st_size, (unsigned long long)st.st_ino,
			        (unsigned long long)st.st_ctim.tv_sec,
			        (unsigned long long)st.st_ctim.tv_nsec, (unsigned)(st.st_mode & 07777));
		free(full);
	}
	if (fclose(m) == 0 && text) {
		kf_dirname(p, dir, sizeof dir);
		if (kf_mkdir_p(dir, 0700, &ign) == KF_OK)
			kf_write_file_atomic(p, text, len, 0600, 1, &ign);
	}
	free(text);
	free(p);
}

int kfi_check_sha256(const char *what, const void *data, size_t len,
                     const char *sha256, kf_err *e)
{
	char hex[KF_SHA256_HEX];
	int rc;

	if (!strncmp(sha256, "sha256:", 7))
		sha256 += 7;
	if (data)
		kf_sha256_buf(data, len, hex);
	else if ((rc = kf_sha256_file(what, hex, NULL, e)) != KF_OK)
		return rc;
	if (strcmp(hex, sha256) != 0)
		return kf_err_set(e, KF_EVERIFY, "%s: sha256 %s, but the bundle's lock says %s",
		                  what, hex, sha256);
	return KF_OK;
}

int kfi_put_file_from_sum(kfi_ctx *c, const char *abs, const char *src,
                          const char *sha256, unsigned mode, int *changed,
                          kf_err *e)
{
	char key[PATH_MAX + 100];
	char *one[1];
	int rc;

	snprintf(key, sizeof key, "file|%s|%s|%o", sha256 ? sha256 : "-", abs, mode);
	if (sha256 && kfi_stamp_match(c, key)) {
		if (changed)
			*changed = 0;
		return KF_OK;
	}
	if (sha256) {
		/* The unpacked bundle was verified once, but a re-run trusts the
		 * tree on disk: what is installed must still be what the signed
		 * lock names. */
		char *data = NULL;
		size_t len = 0;
		if ((rc = kf_read_file(src, KFI_FILE_MAX, &data, &len, e)) == KF_OK &&
		    (rc = kfi_check_sha256(src, data, len, sha256, e)) == KF_OK)
			rc = kfi_put_file(c, abs, data, len, mode, changed, e);
		free(data);
	} else {
		rc = kfi_put_file_from(c, abs, src, mode, changed, e);
	}
	if (rc == KF_OK && sha256) {
		one[0] = (char *)abs;
		kfi_stamp_write(c, key, one, 1);
	}
	return rc;
}
