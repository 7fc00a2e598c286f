/*
 * etcd snapshot: `etcdctl snapshot save` from this member with its own
 * certificates, then `snapshot status` of the file (etcdutl from 3.5 on),
 * stored as DIR/etcd-<member>-<UTC time>.db (0600 in a 0700 directory: a
 * snapshot holds every Secret of the cluster) with a sha256sum-format
 * DIR/<file>.sha256 beside it, and only the newest N complete pairs kept.
 *
 * A snapshot exists only once both files are in place: etcdctl writes a
 * hidden temporary name, which is checked, fsynced and renamed; restore
 * and pruning ignore a .db without its .sha256.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "installer/kf_installer.h"

/* "-YYYYmmddTHHMMSS.mmmZ.db": the time sorts as text. */
#define STAMP_LEN 20
#define SUFFIX ".db"

static int stamp_now(char out[STAMP_LEN + 1])
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm) ||
	    strftime(sec, sizeof sec, "%Y%m%dT%H%M%S", &tm) != 15)
		return -1;
	return kf_strf(out, STAMP_LEN + 1, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}

/* The time part of a snapshot's name, or NULL when name is not one. */
static const char *snapshot_stamp(const char *name)
{
	size_t n = strlen(name), sl = strlen(SUFFIX);

	if (strncmp(name, "etcd-", 5) || n < 5 + 1 + STAMP_LEN + sl ||
	    strcmp(name + n - sl, SUFFIX) || name[n - sl - STAMP_LEN - 1] != '-')
		return NULL;
	return name + n - sl - STAMP_LEN;
}

static int newest_first(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	return strcmp(snapshot_stamp(y), snapshot_stamp(x));
}

static int is_snapshot(const char *name)
{
	return snapshot_stamp(name) != NULL;
}

/* Remove all but the newest keep complete snapshots (a .db with its
 * .sha256) in dir. */
static int prune(const char *dir, long keep, kf_err *e)
{
	char **names = NULL, path[1200];
	size_t n = 0, m = 0, removed = 0;
	int rc = kfi_dir_names(dir, is_snapshot, &names, &n, e);

	/* Complete ones first in the array, newest first. */
	for (size_t i = 0; rc == KF_OK && i < n; i++) {
		struct stat st;
		if (kf_strf(path, sizeof path, "%s/%s.sha256", dir, names[i]) == 0 &&
		    lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			char *t = names[m];
			names[m++] = names[i];
			names[i] = t;
		}
	}
	if (m)
		qsort(names, m, sizeof *names, newest_first);
	for (size_t i = (size_t)keep; rc == KF_OK && i < m; i++) {
		/* The .db first: a lone .sha256 is never taken for a snapshot. */
		if (kf_strf(path, sizeof path, "%s/%s", dir, names[i]) != 0 ||
		    (unlink(path) != 0 && errno != ENOENT)) {
			rc = kf_err_errno(e, "cannot remove", path);
			break;
		}
		if (kf_strf(path, sizeof path, "%s/%s.sha256", dir, names[i]) != 0 ||
		    (unlink(path) != 0 && errno != ENOENT)) {
			rc = kf_err_errno(e, "cannot remove", path);
			break;
		}
		removed++;
		printf("removed  %s/%s (keeping the newest %ld)\n", dir, names[i], keep);
	}
	if (rc == KF_OK && removed)
		rc = kf_fsync_path(dir, e);
	kfi_names_free(names, n);
	return rc;
}

/* `snapshot status -w json`: {"hash":..,"revision":..,"totalKey":..,"totalSize":..}. */
static int check_status(const char *file, kf_err *e)
{
	char tool[256], *out = NULL;
	json_t *j = NULL;
	json_error_t je;
	int rc;

	if (kfi_etcd_tool("etcdutl", tool, sizeof tool) != 0 &&
	    kfi_etcd_tool("etcdctl", tool, sizeof tool) != 0)
		return kf_err_set(e, KF_EIO, "neither etcdutl nor etcdctl found in /usr/local/bin or /usr/bin");
	{
		const char *argv[] = {tool, "snapshot", "status", file, "-w", "json", NULL};
		if ((rc = kfi_etcd_exec(argv, &out, e)) != KF_OK)
			goto out;
	}
	j = json_loads(out, 0, &je);
	if (!j || !json_is_integer(json_object_get(j, "revision")) ||
	    !json_is_integer(json_object_get(j, "totalKey")) ||
	    !json_is_integer(json_object_get(j, "totalSize"))) {
		rc = kf_err_set(e, KF_EVERIFY, "snapshot %s: %s snapshot status gave no revision, "
		                "key count and size", file, tool);
		goto out;
	}
	printf("status   revision %lld, %lld keys, %lld bytes (%s snapshot status)\n",
	       (long long)json_integer_value(json_object_get(j, "revision")),
	       (long long)json_integer_value(json_object_get(j, "totalKey")),
	       (long long)json_integer_value(json_object_get(j, "totalSize")), tool);
out:
	json_decref(j);
	free(out);
	return rc;
}

int kfi_etcd_snapshot(kfi_ctx *c, const kfi_snapshot_opts *o, kf_err *e)
{
	kfi_etcd_env env = {0};
	kfi_etcd_conn conn;
	char stamp[STAMP_LEN + 1], name[160], tmp[1200], part[1300], final[1200], sumf[1300];
	char tool[256], hex[KF_SHA256_HEX], line[300];
	char *dir = NULL, *envp = NULL;
	const char *dir_abs = o->dir ? o->dir : KFI_SNAPSHOT_DIR;
	int rc, made = 0;

	envp = kfi_path(c, o->env_path ? o->env_path : "/etc/etcd.env");
	if ((rc = kfi_etcd_env_load(envp, &env, e)) != KF_OK ||
	    (rc = kfi_etcd_client(c, &env, &conn, e)) != KF_OK)
		goto out;
	if (dir_abs[0] != '/') {
		rc = kf_err_set(e, KF_EUSAGE, "--dir %s: want an absolute path", dir_abs);
		goto out;
	}
	if ((rc = kfi_check_parents(c, dir_abs, e)) != KF_OK)
		goto out;
	dir = kfi_path(c, dir_abs);
	if (stamp_now(stamp) != 0 ||
	    kf_strf(name, sizeof name, "etcd-%s-%s%s", env.name, stamp, SUFFIX) != 0 ||
	    kf_strf(tmp, sizeof tmp, "%s/.kf-tmp-%s", dir, name) != 0 ||
	    kf_strf(part, sizeof part, "%s.part", tmp) != 0 ||
	    kf_strf(final, sizeof final, "%s/%s", dir, name) != 0 ||
	    kf_strf(sumf, sizeof sumf, "%s.sha256", final) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "snapshot directory name too long: %s", dir);
		goto out;
	}
	if (kfi_etcd_tool("etcdctl", tool, sizeof tool) != 0) {
		rc = kf_err_set(e, KF_EIO, "etcdctl not found in /usr/local/bin or /usr/bin");
		goto out;
	}
	if (c->dry_run) {
		printf("plan     run %s snapshot save %s --endpoints %s --cacert %s --cert %s --key %s\n",
		       tool, final, conn.endpoint, conn.ca, conn.cert, conn.key);
		printf("plan     check it (snapshot status), write %s, keep the newest %ld\n", sumf,
		       o->keep);
		goto out;
	}
	/* etcdctl would wait out its command timeout for a member that is
	 * down: ask it first, with the same certificate. */
	if ((rc = kfi_etcd_health(conn.host, conn.port, conn.ca, conn.cert, conn.key, e)) != KF_OK) {
		kf_err_prefix(e, "snapshot of %s", conn.endpoint);
		goto out;
	}
	if ((rc = kf_mkdir_p(dir, 0700, e)) != KF_OK)
		goto out;
	{
		const char *argv[] = {tool, "snapshot", "save", tmp, "--endpoints", conn.endpoint,
		                      "--cacert", conn.ca, "--cert", conn.cert, "--key", conn.key,
		                      /* the default 5 s would cut off a large database */
		                      "--command-timeout=15m", NULL};
		made = 1;
		if ((rc = kfi_etcd_exec(argv, NULL, e)) != KF_OK) {
			kf_err_prefix(e, "snapshot of %s", conn.endpoint);
			goto out;
		}
	}
	if (chmod(tmp, 0600) != 0) {
		rc = kf_err_errno(e, "cannot chmod", tmp);
		goto out;
	}
	if ((rc = kf_fsync_path(tmp, e)) != KF_OK || (rc = check_status(tmp, e)) != KF_OK)
		goto out;
	if ((rc = kf_sha256_file(tmp, hex, NULL, e)) != KF_OK)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
		rc = kf_err_errno(e, "cannot rename the snapshot to", final);
		goto out;
	}
	made = 0;
	/* sha256sum's format: `sha256sum -c` checks it by hand. */
	if (kf_strf(line, sizeof line, "%s  %s\n", hex, name) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "snapshot name too long: %s", name);
		goto out;
	}
	if ((rc = kf_write_file_atomic(sumf, line, strlen(line), 0600, 0, e)) != KF_OK)
		goto out;
	printf("snapshot %s\nsha256   %s\n", final, hex);
	if (o->keep > 0)
		rc = prune(dir, o->keep, e);
out:
	if (made) {
		unlink(tmp);
		unlink(part);
	}
	kfi_etcd_env_free(&env);
	free(dir);
	free(envp);
	return rc;
}
