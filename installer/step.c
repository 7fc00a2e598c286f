/*
 * The step engine behind apply and reset.
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

#include "installer/kf_installer.h"

#define FILE_MAX ((size_t)1 << 30)

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

char *kfi_path(const kfi_ctx *c, const char *abs)
{
	size_t n = strlen(c->root) + strlen(abs) + 1;
	char *p = malloc(n);
	if (!p)
		abort();
	snprintf(p, n, "%s%s", c->root, abs);
	return p;
}

static int journaled(const kfi_ctx *c, const char *abs)
{
	for (size_t i = 0; i < c->njpaths; i++)
		if (!strcmp(c->jpaths[i], abs))
			return 1;
	return 0;
}

static void remember(kfi_ctx *c, const char *abs)
{
	if (c->njpaths == c->capj) {
		c->capj = c->capj ? c->capj * 2 : 64;
		c->jpaths = realloc(c->jpaths, c->capj * sizeof *c->jpaths);
		if (!c->jpaths)
			abort();
	}
	c->jpaths[c->njpaths++] = xstrdup(abs);
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
		full = kfi_path(c, buf);
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

static int journal_path(const kfi_ctx *c, char *out, size_t n)
{
	return snprintf(out, n, "%s/journal", c->state_dir) < (int)n ? 0 : -1;
}

typedef struct rec {
	char *kind, *path, *arg, *mode;
} rec;

/* Split one journal line (no newline) into r, in place; 0 when the record
 * lacks a field its kind needs. A file record without its backup name must
 * never read as "absent before" (reset would delete a file apply never
 * created): such a record, cut short by a crash, is not used at all. */
static int record_parse(char *line, rec *r)
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
static int journal_load(kfi_ctx *c, kf_err *e)
{
	int rc = KF_OK;
	char jp[PATH_MAX], line[PATH_MAX * 2 + 64];
	FILE *f = NULL;

	if (journal_path(c, jp, sizeof jp) != 0)
		return kf_err_set(e, KF_EIO, "path too long: %s", c->state_dir);
	f = fopen(jp, "re");
	if (!f) {
		if (errno != ENOENT)
			rc = kf_err_errno(e, "cannot open", jp);
		goto out;
	}
	while (fgets(line, sizeof line, f)) {
		char *nl = strchr(line, '\n');
		rec r;
		/* A line without its newline is a torn (or overlong) record. */
		if (!nl)
			continue;
		*nl = '\0';
		if (record_parse(line, &r))
			remember(c, r.path);
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
	c->root = xstrdup(root ? root : "");
	/* "/" and "dir/" both mean the same root without the trailing slash. */
	n = strlen(c->root);
	while (n > 0 && c->root[n - 1] == '/')
		c->root[--n] = '\0';
	c->dry_run = dry_run;
	c->live = c->root[0] == '\0' && !dry_run;
	c->state_dir = kfi_path(c, KFI_STATE_DIR);
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
	return journal_load(c, e);
}

void kfi_ctx_free(kfi_ctx *c)
{
	for (size_t i = 0; i < c->njpaths; i++)
		free(c->jpaths[i]);
	free(c->jpaths);
	free(c->state_dir);
	free(c->root);
	memset(c, 0, sizeof *c);
}

static int journal_append(kfi_ctx *c, const char *line, kf_err *e)
{
	int rc = KF_OK, fd = -1;
	char jp[PATH_MAX];
	size_t len = strlen(line);

	if ((rc = kf_mkdir_p(c->state_dir, 0700, e)) != KF_OK)
		goto out;
	if (journal_path(c, jp, sizeof jp) != 0) {
		rc = kf_err_set(e, KF_EIO, "path too long: %s", c->state_dir);
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

/* Tests simulate a kill at the worst moment (journal written, file not
 * yet) with KUBEFERRY_TEST_CRASH_AFTER=N: SIGKILL before the Nth write. */
static void crash_point(void)
{
	static long n;
	const char *v = getenv("KUBEFERRY_TEST_CRASH_AFTER");

	if (v && ++n >= atol(v))
		kill(getpid(), SIGKILL);
}

static void report(kfi_ctx *c, int changed, const char *what, const char *abs)
{
	if (changed)
		c->changed++;
	else
		c->ok++;
	printf("%-8s %s %s%s\n", changed ? "changed" : "ok", what, abs,
	       changed && c->dry_run ? " (dry run)" : "");
	fflush(stdout);
}

/* Create the missing directories above abs, journaling each one first so
 * that reset removes exactly the directories apply made. */
static int ensure_parents(kfi_ctx *c, const char *abs, kf_err *e)
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
		full = kfi_path(c, buf);
		if (lstat(full, &st) != 0) {
			if (c->dry_run) {
				*p = '/';
				break;
			}
			if (!journaled(c, buf)) {
				snprintf(line, sizeof line, "dir\t%s\n", buf);
				if ((rc = journal_append(c, line, e)) != KF_OK)
					goto out;
				remember(c, buf);
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
static int journal_before(kfi_ctx *c, const char *abs, const char *kind,
                          kf_err *e)
{
	int rc = KF_OK;
	char line[PATH_MAX * 2 + 64], hex[KF_SHA256_HEX], target[PATH_MAX];
	char *full = kfi_path(c, abs), *data = NULL, *bpath = NULL;
	size_t len = 0;
	struct stat st;

	if (journaled(c, abs))
		goto out;
	if (lstat(full, &st) != 0) {
		snprintf(line, sizeof line, "%s\t%s\t-\t0\n", kind, abs);
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
		snprintf(line, sizeof line, "link\t%s\t%s\n", abs, target);
	} else if (S_ISREG(st.st_mode)) {
		/* The backup is named by the path's digest: unique and flat. */
		kf_sha256_buf(abs, strlen(abs), hex);
		bpath = malloc(strlen(c->state_dir) + 80);
		if (!bpath)
			abort();
		sprintf(bpath, "%s/backup", c->state_dir);
		if ((rc = kf_mkdir_p(bpath, 0700, e)) != KF_OK)
			goto out;
		sprintf(bpath, "%s/backup/%s", c->state_dir, hex);
		if ((rc = kf_read_file(full, FILE_MAX, &data, &len, e)) != KF_OK)
			goto out;
		if ((rc = kf_write_file_atomic(bpath, data, len, st.st_mode & 07777,
		                               1, e)) != KF_OK)
			goto out;
		snprintf(line, sizeof line, "file\t%s\t%s\t%o\n", abs, hex,
		         (unsigned)(st.st_mode & 07777));
	} else {
		rc = kf_err_set(e, KF_EIO, "%s exists and is neither a file nor a link; refusing to replace it", full);
		goto out;
	}
	if ((rc = journal_append(c, line, e)) != KF_OK)
		goto out;
	remember(c, abs);
out:
	free(full);
	free(data);
	free(bpath);
	return rc;
}

int kfi_put_file(kfi_ctx *c, const char *abs, const void *data, size_t len,
                 unsigned mode, int *changed, kf_err *e)
{
	int rc = KF_OK, differs = 1;
	char *full = kfi_path(c, abs), *cur = NULL;
	size_t curlen = 0;
	struct stat st;

	if ((rc = kfi_check_parents(c, abs, e)) != KF_OK)
		goto out;
	/* The owner counts too: a binary root runs that is owned by another
	 * user (who could rewrite it later) is replaced by one of ours. */
	if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size == len && (st.st_mode & 07777) == mode &&
	    st.st_uid == geteuid() && st.st_gid == getegid()) {
		kf_err tmp;
		if (kf_read_file(full, FILE_MAX, &cur, &curlen, &tmp) == KF_OK &&
		    curlen == len && memcmp(cur, data, len) == 0)
			differs = 0;
	}
	if (differs && !c->dry_run) {
		if ((rc = ensure_parents(c, abs, e)) != KF_OK)
			goto out;
		if ((rc = journal_before(c, abs, "file", e)) != KF_OK)
			goto out;
		crash_point();
		if ((rc = kf_write_file_atomic(full, data, len, mode, 1, e)) != KF_OK)
			goto out;
	}
	report(c, differs, "file", abs);
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

	if ((rc = kf_read_file(src, FILE_MAX, &data, &len, e)) == KF_OK)
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
		if ((rc = ensure_parents(c, abs, e)) != KF_OK)
			goto out;
		if ((rc = journal_before(c, abs, "link", e)) != KF_OK)
			goto out;
		/* A new link under a temporary name, renamed over: atomic. */
		snprintf(tmp, sizeof tmp, "%s.kf-tmp", full);
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
	report(c, differs, "link", abs);
	if (changed)
		*changed = differs;
out:
	free(full);
	return rc;
}

int kfi_journal_unit(kfi_ctx *c, const char *unit, kf_err *e)
{
	char key[256], line[300];

	if (c->dry_run)
		return KF_OK;
	snprintf(key, sizeof key, "unit:%s", unit);
	if (journaled(c, key))
		return KF_OK;
	snprintf(line, sizeof line, "unit\t%s\n", key);
	remember(c, key);
	return journal_append(c, line, e);
}

static void print_argv(const char *tag, const char *const argv[])
{
	printf("%-8s run", tag);
	for (size_t i = 0; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
}

/* fork + execvp with an argument vector: nothing is ever parsed by a
 * shell. quiet sends the child's output to /dev/null. */
static int spawn(const char *const argv[], int quiet)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_RDWR);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
	return -1;
}

int kfi_run(kfi_ctx *c, const char *const argv[], kf_err *e)
{
	int st, rc = KF_OK;

	if (!c->live) {
		print_argv("plan", argv);
		goto out;
	}
	st = spawn(argv, 0);
	if (st != 0) {
		rc = kf_err_set(e, KF_EIO, "command %s failed (%s %d)", argv[0],
		                st < 0 ? "could not run," : "exit status", st);
		goto out;
	}
	c->changed++;
	print_argv("changed", argv);
out:
	return rc;
}

int kfi_run_soft(kfi_ctx *c, const char *const argv[], const char *hint)
{
	kf_err e = {0};

	if (kfi_run(c, argv, &e) != KF_OK) {
		printf("%-8s %s (%s)\n", "warn", e.msg, hint);
		fflush(stdout);
	}
	return KF_OK;
}

int kfi_probe(const char *const argv[])
{
	return spawn(argv, 1);
}

/* ---- stamps ------------------------------------------------------------ */

static char *stamp_path(const kfi_ctx *c, const char *key)
{
	char hex[KF_SHA256_HEX], *p;

	kf_sha256_buf(key, strlen(key), hex);
	p = malloc(strlen(c->state_dir) + 100);
	if (!p)
		abort();
	sprintf(p, "%s/stamps/%s", c->state_dir, hex);
	return p;
}

int kfi_stamp_match(kfi_ctx *c, const char *key)
{
	char *p = stamp_path(c, key), *buf = NULL, *save = NULL;
	size_t len, n = 0;
	int ok = 0;
	kf_err ign;

	if (kf_read_file(p, 1 << 20, &buf, &len, &ign) != KF_OK)
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
		if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode) ||
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
	kf_read_file(p, 1 << 20, &buf, &len, &ign);
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\t")] = '\0';
		report(c, 0, "file", l);
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

	if (c->dry_run || n == 0)
		return;
	p = stamp_path(c, key);
	m = open_memstream(&text, &len);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		char *full = kfi_path(c, abs[i]);
		if (lstat(full, &st) == 0)
			fprintf(m, "%s\t%llu\t%llu\t%llu\t%llu\t%o\n", abs[i],
			        (unsigned long long)st.st_size, (unsigned long long)st.st_ino,
			        (unsigned long long)st.st_ctim.tv_sec,
			        (unsigned long long)st.st_ctim.tv_nsec, (unsigned)(st.st_mode & 07777));
		free(full);
	}
	fclose(m);
	kf_dirname(p, dir, sizeof dir);
	/* A stamp is only an accelerator: failing to write one is harmless. */
	if (kf_mkdir_p(dir, 0700, &ign) == KF_OK)
		kf_write_file_atomic(p, text, len, 0600, 1, &ign);
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
		if ((rc = kf_read_file(src, FILE_MAX, &data, &len, e)) == KF_OK &&
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

/* ---- undo -------------------------------------------------------------- */


static int undo_one(kfi_ctx *c, const rec *r, kf_err *e)
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
	full = kfi_path(c, r->path);
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
		snprintf(tmp, sizeof tmp, "%s.kf-tmp", full);
		unlink(tmp);
		if (symlink(r->arg, tmp) != 0 || rename(tmp, full) != 0) {
			rc = kf_err_errno(e, "cannot restore link", full);
			unlink(tmp);
			goto out;
		}
		printf("%-8s link %s\n", "restored", r->path);
	} else {
		unsigned mode = (unsigned)strtoul(r->mode ? r->mode : "644", NULL, 8);
		bpath = malloc(strlen(c->state_dir) + strlen(r->arg) + 16);
		if (!bpath)
			abort();
		sprintf(bpath, "%s/backup/%s", c->state_dir, r->arg);
		if ((rc = kf_read_file(bpath, FILE_MAX, &data, &len, e)) != KF_OK)
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

int kfi_journal_undo(kfi_ctx *c, kf_err *e)
{
	int rc = KF_OK;
	char jp[PATH_MAX];
	char *buf = NULL;
	size_t len = 0, n = 0, cap = 0;
	rec *recs = NULL;

	if (journal_path(c, jp, sizeof jp) != 0)
		return kf_err_set(e, KF_EIO, "path too long: %s", c->state_dir);
	if (access(jp, F_OK) != 0) {
		printf("nothing to undo: no journal at %s\n", jp);
		goto out;
	}
	if ((rc = kf_read_file(jp, 64u << 20, &buf, &len, e)) != KF_OK)
		goto out;
	/* A last line without its newline was torn by a crash (power loss)
	 * while being appended: the change it announced never happened. */
	if (len > 0 && buf[len - 1] != '\n') {
		char *nl = strrchr(buf, '\n');
		printf("%-8s %s: torn last record ignored\n", "warn", jp);
		*(nl ? nl + 1 : buf) = '\0';
	}
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		rec r;
		/* What a malformed record names is left as it is. */
		if (!record_parse(line, &r)) {
			printf("%-8s %s: malformed record skipped (%s)\n", "warn", jp,
			       r.path ? r.path : "empty");
			continue;
		}
		if (strcmp(r.kind, "unit") && (r.path[0] != '/' || strstr(r.path, "/../"))) {
			rc = kf_err_set(e, KF_EIO, "%s: unsafe path %s", jp, r.path);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			recs = realloc(recs, cap * sizeof *recs);
			if (!recs)
				abort();
		}
		recs[n++] = r;
	}
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
		rc = kf_remove_tree(c->state_dir, e);
out:
	free(recs);
	free(buf);
	return rc;
}

char *kfi_strf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	/* Paths and small texts only: failing to allocate a few hundred
	 * bytes leaves nothing sensible to report, and the journal makes a
	 * re-run after the crash safe. */
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}
