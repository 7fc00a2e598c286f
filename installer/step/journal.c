/*
 * The step engine behind apply and reset: the journal (this file), writes
 * (put.c), commands (run.c), stamps (stamp.c) and undo (undo.c).
 *
 * Why a journal: apply must be re-runnable after a kill at any point, and
 * reset must put back exactly what apply replaced. So before the first
 * change to any path, its previous state (absent, a file saved as a backup
 * copy, or a symlink target) is appended to ROOT/var/lib/kubeferry/state/
 * journal and fsynced; only then is the path changed. A path already in the
 * journal is never backed up again, so the journal always holds the state
 * from before the first apply.
 *
 * Journal lines (tab-separated, one record per line):
 *   file <abs path> <backup name | -> <mode octal>
 *   link <abs path> <old target | ->
 *   dir  <abs path>                 (created by apply)
 *   unit <unit name>                (enabled by apply)
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

int kfi_journaled(const kfi_ctx *c, const char *abs)
{
	for (size_t i = 0; i < c->njpaths; i++)
		if (!strcmp(c->jpaths[i], abs))
			return 1;
	return 0;
}

int kfi_remember(kfi_ctx *c, const char *abs, kf_err *e)
{
	char *p;

	if (c->njpaths == c->capj) {
		size_t cap = c->capj ? c->capj * 2 : 64;
		char **more = realloc(c->jpaths, cap * sizeof *c->jpaths);
		if (!more)
			return kfi_oom(e);
		c->jpaths = more;
		c->capj = cap;
	}
	if (!(p = strdup(abs)))
		return kfi_oom(e);
	c->jpaths[c->njpaths++] = p;
	return KF_OK;
}

int kfi_journal_path(const kfi_ctx *c, char *out, size_t n)
{
	return snprintf(out, n, "%s/journal", c->journal_dir) < (int)n ? 0 : -1;
}

/* Split one journal line (no newline) into r, in place; 0 when the record
 * lacks a field its kind needs. A file record without its backup name must
 * never read as "absent before" (reset would delete a file apply never
 * created): such a record, cut short by a crash, is not used at all. */
int kfi_record_parse(char *line, kfi_rec *r)
{
	char *save = NULL;

	memset(r, 0, sizeof *r);
	r->kind = strtok_r(line, "\t", &save);
	r->path = strtok_r(NULL, "\t", &save);
	r->arg = strtok_r(NULL, "\t", &save);
	r->mode = strtok_r(NULL, "\t", &save);
	if (!r->kind || !r->path || r->path[0] == '\0')
		return 0;
	if (!strcmp(r->kind, "file"))
		return r->arg && r->mode &&
		       (!strcmp(r->arg, "-") ||
		        (strlen(r->arg) == 64 && strspn(r->arg, "0123456789abcdef") == 64));
	if (!strcmp(r->kind, "link"))
		return r->arg != NULL;
	return !strcmp(r->kind, "dir") || !strcmp(r->kind, "unit");
}

/* Load the journal's paths so that a re-run after a kill does not back up
 * a half-applied state over the original one. */
int kfi_journal_load(kfi_ctx *c, kf_err *e)
{
	int rc = KF_OK;
	char jp[PATH_MAX], line[PATH_MAX * 2 + 64];
	FILE *f = NULL;

	if (kfi_journal_path(c, jp, sizeof jp) != 0)
		return kf_err_set(e, KF_EIO, "path too long: %s", c->journal_dir);
	f = fopen(jp, "re");
	if (!f) {
		if (errno != ENOENT)
			rc = kf_err_errno(e, "cannot open", jp);
		goto out;
	}
	while (fgets(line, sizeof line, f)) {
		char *nl = strchr(line, '\n');
		kfi_rec r;
		/* A line without its newline is a torn (or overlong) record. */
		if (!nl)
			continue;
		*nl = '\0';
		if (kfi_record_parse(line, &r) && (rc = kfi_remember(c, r.path, e)) != KF_OK)
			goto out;
	}
out:
	if (f)
		fclose(f);
	return rc;
}

int kfi_ctx_init(kfi_ctx *c, const char *root, int dry_run, kf_err *e)
{
	size_t n;

	memset(c, 0, sizeof *c);
	if (!(c->root = strdup(root ? root : "")))
		return kfi_oom(e);
	/* "/" and "dir/" both mean the same root without the trailing slash. */
	n = strlen(c->root);
	while (n > 0 && c->root[n - 1] == '/')
		c->root[--n] = '\0';
	c->dry_run = dry_run;
	c->live = c->root[0] == '\0' && !dry_run;
	if (!(c->state_dir = kfi_path(c, KFI_STATE_DIR)) || !(c->journal_dir = strdup(c->state_dir)))
		return kfi_oom(e);
	/* The journal, backups, stamps and unpacked bundles are written with
	 * plain paths: under --root, none of their directories may be a link
	 * leading out of ROOT. */
	if (c->root[0]) {
		static const char *const own[] = {KFI_STATE_DIR "/journal",
		                                  KFI_BUNDLES_DIR "/", NULL};
		for (size_t i = 0; own[i]; i++) {
			int rc = kfi_check_parents(c, own[i], e);
			if (rc != KF_OK)
				return rc;
		}
	}
	return kfi_journal_load(c, e);
}

void kfi_ctx_free(kfi_ctx *c)
{
	for (size_t i = 0; i < c->njpaths; i++)
		free(c->jpaths[i]);
	free(c->jpaths);
	free(c->state_dir);
	free(c->journal_dir);
	free(c->root);
	memset(c, 0, sizeof *c);
}

int kfi_journal_append(kfi_ctx *c, const char *line, kf_err *e)
{
	int rc = KF_OK, fd = -1;
	char jp[PATH_MAX];
	size_t len = strlen(line);

	if ((rc = kf_mkdir_p(c->journal_dir, 0700, e)) != KF_OK)
		goto out;
	if (kfi_journal_path(c, jp, sizeof jp) != 0) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", c->journal_dir);
		goto out;
	}
	fd = open(jp, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = kf_err_errno(e, "cannot open", jp);
		goto out;
	}
	{
		/* After a torn last record (crash while appending), start on a
		 * fresh line, so the torn one stays on its own and is ignored. */
		struct stat st;
		char last = '\n';
		if (fstat(fd, &st) == 0 && st.st_size > 0 &&
		    pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
		    write(fd, "\n", 1) != 1) {
			rc = kf_err_errno(e, "cannot write", jp);
			goto out;
		}
	}
	if (write(fd, line, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = kf_err_errno(e, "cannot write", jp);
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Create the missing directories above abs, journaling each one first so
 * that reset removes exactly the directories apply made. */
int kfi_ensure_parents(kfi_ctx *c, const char *abs, kf_err *e)
{
	int rc = KF_OK;
	char buf[PATH_MAX], line[PATH_MAX + 16];
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
		if (lstat(full, &st) != 0) {
			if (c->dry_run) {
				*p = '/';
				break;
			}
			if (!kfi_journaled(c, buf)) {
				if (kf_strf(line, sizeof line, "dir\t%s\n", buf) != 0) {
					rc = kf_err_set(e, KF_EIO, "path too long: %s", buf);
					goto out;
				}
				if ((rc = kfi_journal_append(c, line, e)) != KF_OK ||
				    (rc = kfi_remember(c, buf, e)) != KF_OK)
					goto out;
			}
			if (mkdir(full, 0755) != 0 && errno != EEXIST) {
				rc = kf_err_errno(e, "cannot create directory", full);
				goto out;
			}
		} else if (!S_ISDIR(st.st_mode)) {
			rc = kf_err_set(e, KF_EIO, "%s is not a directory", full);
			goto out;
		}
		*p = '/';
	}
out:
	free(full);
	return rc;
}

/* Save what is at abs now (once) before it is replaced. */
int kfi_journal_before(kfi_ctx *c, const char *abs, const char *kind,
                          kf_err *e)
{
	int rc = KF_OK;
	char line[PATH_MAX * 2 + 64], hex[KF_SHA256_HEX], target[PATH_MAX];
	char *full = kfi_path(c, abs), *data = NULL, *bpath = NULL, *bdir = NULL;
	size_t len = 0;
	struct stat st;
	int fit = 0;

	if (!full) {
		rc = kfi_oom(e);
		goto out;
	}
	if (kfi_journaled(c, abs))
		goto out;
	if (lstat(full, &st) != 0) {
		fit = kf_strf(line, sizeof line, "%s\t%s\t-\t0\n", kind, abs);
	} else if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(full, target, sizeof target - 1);
		if (n < 0) {
			rc = kf_err_errno(e, "cannot read link", full);
			goto out;
		}
		target[n] = '\0';
		/* The journal is line- and tab-separated: such a target would
		 * smuggle in records that reset then carries out. */
		if (strpbrk(target, "\t\n") || !target[0]) {
			rc = kf_err_set(e, KF_EIO, "%s is a link whose target holds a tab or newline; refusing to replace it",
			                full);
			goto out;
		}
		fit = kf_strf(line, sizeof line, "link\t%s\t%s\n", abs, target);
	} else if (S_ISREG(st.st_mode)) {
		/* The backup is named by the path's digest: unique and flat. */
		kf_sha256_buf(abs, strlen(abs), hex);
		if (!(bdir = kfi_strf("%s/backup", c->journal_dir)) ||
		    !(bpath = kfi_strf("%s/%s", bdir, hex))) {
			rc = kfi_oom(e);
			goto out;
		}
		if ((rc = kf_mkdir_p(bdir, 0700, e)) != KF_OK)
			goto out;
		if ((rc = kf_read_file(full, KFI_FILE_MAX, &data, &len, e)) != KF_OK)
			goto out;
		if ((rc = kf_write_file_atomic(bpath, data, len, st.st_mode & 07777,
		                               1, e)) != KF_OK)
			goto out;
		fit = kf_strf(line, sizeof line, "file\t%s\t%s\t%o\n", abs, hex,
		              (unsigned)(st.st_mode & 07777));
	} else {
		rc = kf_err_set(e, KF_EIO, "%s exists and is neither a file nor a link; refusing to replace it", full);
		goto out;
	}
	/* A record cut short would be read back as a different one. */
	if (fit != 0) {
		rc = kf_err_set(e, KF_EIO, "path too long for the journal: %s", abs);
		goto out;
	}
	if ((rc = kfi_journal_append(c, line, e)) != KF_OK ||
	    (rc = kfi_remember(c, abs, e)) != KF_OK)
		goto out;
out:
	free(full);
	free(data);
	free(bpath);
	free(bdir);
	return rc;
}

int kfi_journal_unit(kfi_ctx *c, const char *unit, kf_err *e)
{
	char key[256], line[300];
	int rc;

	if (c->dry_run)
		return KF_OK;
	if (kf_strf(key, sizeof key, "unit:%s", unit) != 0 ||
	    kf_strf(line, sizeof line, "unit\t%s\n", key) != 0)
		return kf_err_set(e, KF_EUSAGE, "unit name too long: %s", unit);
	if (kfi_journaled(c, key))
		return KF_OK;
	if ((rc = kfi_remember(c, key, e)) != KF_OK)
		return rc;
	return kfi_journal_append(c, line, e);
}
