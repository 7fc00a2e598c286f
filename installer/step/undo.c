/*
 * Undo (reset): every journal record carried back, newest first, units
 * before files.
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

static int undo_one(kfi_ctx *c, const kfi_rec *r, kf_err *e)
{
	int rc = KF_OK;
	char *full = NULL, *bpath = NULL, *data = NULL;
	size_t len = 0;

	if (!strcmp(r->kind, "unit")) {
		const char *name = r->path + 5; /* "unit:" */
		if (c->live && access("/run/systemd/system", F_OK) == 0) {
			const char *argv[] = {"systemctl", "disable", "--now", name, NULL};
			kf_err ign;
			kfi_run(c, argv, &ign);
		} else if (!c->live) {
			const char *argv[] = {"systemctl", "disable", "--now", name, NULL};
			kfi_run(c, argv, e);
		}
		goto out;
	}
	/* A directory replaced by a link since apply must not make reset
	 * delete or overwrite the file the link leads to. */
	if ((rc = kfi_check_parents(c, r->path, e)) != KF_OK)
		goto out;
	if (!(full = kfi_path(c, r->path))) {
		rc = kfi_oom(e);
		goto out;
	}
	if (!strcmp(r->kind, "dir")) {
		/* Only an empty directory goes: something the operator added
		 * meanwhile stays. */
		if (rmdir(full) == 0)
			printf("%-8s dir %s\n", "removed", r->path);
		else if (errno == ENOTEMPTY || errno == EEXIST)
			printf("%-8s dir %s (not empty)\n", "kept", r->path);
		else if (errno != ENOENT)
			rc = kf_err_errno(e, "cannot remove directory", full);
		goto out;
	}
	if (!r->arg || !strcmp(r->arg, "-")) {
		if (unlink(full) != 0 && errno != ENOENT) {
			rc = kf_err_errno(e, "cannot remove", full);
			goto out;
		}
		printf("%-8s %s %s\n", "removed", r->kind, r->path);
	} else if (!strcmp(r->kind, "link")) {
		char tmp[PATH_MAX];
		if (kf_strf(tmp, sizeof tmp, "%s.kf-tmp", full) != 0) {
			rc = kf_err_set(e, KF_EIO, "path too long: %s", full);
			goto out;
		}
		unlink(tmp);
		if (symlink(r->arg, tmp) != 0 || rename(tmp, full) != 0) {
			rc = kf_err_errno(e, "cannot restore link", full);
			unlink(tmp);
			goto out;
		}
		printf("%-8s link %s\n", "restored", r->path);
	} else {
		unsigned mode = (unsigned)strtoul(r->mode ? r->mode : "644", NULL, 8) & 07777;
		if (!(bpath = kfi_strf("%s/backup/%s", c->journal_dir, r->arg))) {
			rc = kfi_oom(e);
			goto out;
		}
		if ((rc = kf_read_file(bpath, KFI_FILE_MAX, &data, &len, e)) != KF_OK)
			goto out;
		/* An unlink first: the path may now be a link we made. */
		if ((rc = kf_write_file_atomic(full, data, len, mode, 1, e)) != KF_OK)
			goto out;
		printf("%-8s file %s\n", "restored", r->path);
	}
	if ((rc = kf_fsync_parent(full, e)) != KF_OK && errno == ENOENT)
		rc = KF_OK;
out:
	free(full);
	free(bpath);
	free(data);
	return rc;
}

int kfi_journal_records(const kfi_ctx *c, char **buf, kfi_rec **out, size_t *nout, kf_err *e)
{
	int rc = KF_OK;
	char jp[PATH_MAX];
	size_t len = 0, n = 0, cap = 0;
	kfi_rec *recs = NULL;

	*buf = NULL;
	*out = NULL;
	*nout = 0;
	if (kfi_journal_path(c, jp, sizeof jp) != 0)
		return kf_err_set(e, KF_EIO, "path too long: %s", c->journal_dir);
	if (access(jp, F_OK) != 0)
		return KF_OK;
	if ((rc = kf_read_file(jp, 64u << 20, buf, &len, e)) != KF_OK)
		goto out;
	/* A last line without its newline was torn by a crash (power loss)
	 * while being appended: the change it announced never happened. */
	if (len > 0 && (*buf)[len - 1] != '\n') {
		char *nl = strrchr(*buf, '\n');
		printf("%-8s %s: torn last record ignored\n", "warn", jp);
		*(nl ? nl + 1 : *buf) = '\0';
	}
	for (char *line = strtok(*buf, "\n"); line; line = strtok(NULL, "\n")) {
		kfi_rec r;
		/* What a malformed record names is left as it is. */
		if (!kfi_record_parse(line, &r)) {
			printf("%-8s %s: malformed record skipped (%s)\n", "warn", jp,
			       r.path ? r.path : "empty");
			continue;
		}
		if (strcmp(r.kind, "unit") && (r.path[0] != '/' || strstr(r.path, "/../"))) {
			rc = kf_err_set(e, KF_EIO, "%s: unsafe path %s", jp, r.path);
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			kfi_rec *more = realloc(recs, ncap * sizeof *recs);
			if (!more) {
				rc = kfi_oom(e);
				goto out;
			}
			recs = more;
			cap = ncap;
		}
		recs[n++] = r;
	}
out:
	if (rc == KF_OK) {
		*out = recs;
		*nout = n;
	} else {
		free(recs);
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int kfi_journal_undo(kfi_ctx *c, kf_err *e)
{
	int rc;
	char jp[PATH_MAX], *buf = NULL;
	size_t n = 0;
	kfi_rec *recs = NULL;

	if (kfi_journal_path(c, jp, sizeof jp) != 0)
		return kf_err_set(e, KF_EIO, "path too long: %s", c->journal_dir);
	if (access(jp, F_OK) != 0) {
		printf("nothing to undo: no journal at %s\n", jp);
		return KF_OK;
	}
	if ((rc = kfi_journal_records(c, &buf, &recs, &n, e)) != KF_OK)
		goto out;
	/* Units first (stop services before their binaries go), then the
	 * rest newest first, so directories are empty when their turn comes. */
	for (size_t i = n; i-- > 0;)
		if (!strcmp(recs[i].kind, "unit") &&
		    (rc = undo_one(c, &recs[i], e)) != KF_OK)
			goto out;
	for (size_t i = n; i-- > 0;)
		if (strcmp(recs[i].kind, "unit") &&
		    (rc = undo_one(c, &recs[i], e)) != KF_OK)
			goto out;
	if (!c->dry_run)
		rc = kf_remove_tree(c->journal_dir, e);
out:
	free(recs);
	free(buf);
	return rc;
}
