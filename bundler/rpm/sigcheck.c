/*
 * OpenPGP signatures of downloaded RPMs against the distribution's pinned
 * key, checked by rpm itself: the key goes into a throwaway keyring
 * (`rpmkeys --dbpath TMP --import`), then `rpmkeys --checksig` with
 * _pkgverify_level signature, at which an unsigned package, one signed by
 * another key and an altered one all fail (at rpm's default level an
 * unsigned package passes with "digests OK").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/rpm/rpm_int.h"

/* Files per rpmkeys run: keeps argv far below the kernel's limit. */
#define BATCH 200

/* The verdict line rpmkeys printed for file: "FILE: digests signatures OK". */
static int line_ok(const char *output, const char *file)
{
	size_t fl = strlen(file);
	for (const char *p = output; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > fl + 2 && !strncmp(p, file, fl) && p[fl] == ':' && p[fl + 1] == ' ') {
			static const char ok[] = " signatures OK";
			return ll >= fl + sizeof ok - 1 &&
			       !strncmp(p + ll - (sizeof ok - 1), ok, sizeof ok - 1) &&
			       !memmem(p, ll, "NOT OK", 6);
		}
		p = eol ? eol + 1 : NULL;
	}
	return 0;
}

int kf_rpm_check_signatures(const char *key, char *const *files,
                            char *const *names, size_t n,
                            const char *tmpdir, kf_err *e)
{
	char db[4096];
	char *argv[BATCH + 8], *output = NULL;
	int rc = KF_OK, status = 0;
	kf_buf bad;

	kf_buf_init(&bad);
	if (kf_strf(db, sizeof db, "%s/keyring", tmpdir))
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", tmpdir);
	if ((rc = kf_mkdir_p(db, 0700, e)))
		return rc;
	{
		char *imp[] = {"rpmkeys", "--dbpath", db, "--import", (char *)key, NULL};
		if ((rc = kf_rpm_run(imp, tmpdir, &output, &status, e)))
			goto out;
		if (status != 0) {
			rc = kf_err_set(e, KF_EVERIFY, "rpmkeys cannot import the key %s: %s", key,
			                output);
			goto out;
		}
		free(output);
		output = NULL;
	}
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = 0, m = n - i < BATCH ? n - i : BATCH;
		argv[k++] = "rpmkeys";
		argv[k++] = "--dbpath";
		argv[k++] = db;
		argv[k++] = "--define";
		argv[k++] = "_pkgverify_level signature";
		argv[k++] = "--checksig";
		for (size_t j = 0; j < m; j++)
			argv[k++] = files[i + j];
		argv[k] = NULL;
		if ((rc = kf_rpm_run(argv, tmpdir, &output, &status, e)))
			goto out;
		for (size_t j = 0; j < m; j++)
			if (!line_ok(output, files[i + j]))
				kf_buf_addf(&bad, "%s%s", bad.len ? ", " : "", names[i + j]);
		if (status != 0 && !bad.len)
			kf_buf_addf(&bad, "(rpmkeys exit %d: %s)", status, output);
		free(output);
		output = NULL;
	}
	if (!kf_buf_ok(&bad))
		rc = kf_err_set(e, KF_EIO, "out of memory");
	else if (bad.len)
		rc = kf_err_set(e, KF_EVERIFY, "not signed by the pinned key (unsigned, signed "
		                "by another key, or altered): %s", bad.p);
out:
	free(output);
	kf_buf_free(&bad);
	return rc;
}
