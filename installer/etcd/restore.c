/*
 * etcd restore: the snapshot's sha256 file is checked first (a snapshot
 * carried between nodes is verified like a bundle), etcd is stopped, and
 * the snapshot is restored (etcdutl from 3.5 on, else etcdctl) into a fresh
 * directory beside ETCD_DATA_DIR with this member's name, peer URLs,
 * initial cluster and token from its etcd.env (the node's, or its share
 * of a cluster plan). The fresh directory and the old one then trade
 * places in one renameat2(RENAME_EXCHANGE), so ETCD_DATA_DIR is always
 * either the old or the new data, and the old one is kept as
 * DATA.before-restore-<time>: never deleted. Then etcd starts and its
 * health is checked.
 *
 * etcd must be down: the bbolt database is flock()ed by a running etcd,
 * and a lock we cannot take refuses the restore before anything moves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define SUM_MAX 4096

/* SNAPSHOT.sha256 (sha256sum format) names and matches SNAPSHOT. */
static int check_sum(const char *snap, kf_err *e)
{
	char sumf[1100], hex[KF_SHA256_HEX], *text = NULL;
	size_t len = 0;
	int rc;

	if (kf_strf(sumf, sizeof sumf, "%s.sha256", snap) != 0)
		return kf_err_set(e, KF_EUSAGE, "snapshot name too long: %s", snap);
	if (access(sumf, F_OK) != 0) {
		rc = kf_err_set(e, KF_EVERIFY, "snapshot %s has no checksum file %s", snap, sumf);
		goto out;
	}
	if ((rc = kf_read_file(sumf, SUM_MAX, &text, &len, e)) != KF_OK)
		goto out;
	if (len < 64 || (text[64] != ' ' && text[64] != '\0' && text[64] != '\n')) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: not a sha256sum line", sumf);
		goto out;
	}
	text[64] = '\0';
	if ((rc = kf_sha256_file(snap, hex, NULL, e)) != KF_OK)
		goto out;
	if (strcmp(hex, text)) {
		rc = kf_err_set(e, KF_EVERIFY, "snapshot %s: sha256 %s, but %s says %s", snap, hex,
		                sumf, text);
		goto out;
	}
	printf("ok       %s sha256 %s\n", snap, hex);
out:
	free(text);
	return rc;
}

/* KF_OK when no etcd holds DATA/member/snap/db (or there is none). */
static int check_stopped(const char *data, kf_err *e)
{
	char db[1100];
	int fd, rc = KF_OK;

	if (kf_strf(db, sizeof db, "%s/member/snap/db", data) != 0)
		return kf_err_set(e, KF_EUSAGE, "data directory name too long: %s", data);
	if ((fd = open(db, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? KF_OK : kf_err_errno(e, "cannot open", db);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		rc = errno == EWOULDBLOCK
			? kf_err_set(e, KF_EIO, "etcd is still running: %s is locked; stop etcd first", db)
			: kf_err_errno(e, "cannot lock", db);
	close(fd);
	return rc;
}

static int systemctl(kfi_ctx *c, const char *verb, kf_err *e)
{
	const char *argv[] = {"systemctl", verb, "etcd.service", NULL};

	if (c->live && !kfi_systemd_running(c)) {
		printf("%-8s systemctl %s etcd.service skipped: systemd is not running\n", "warn", verb);
		return KF_OK;
	}
	return kfi_run(c, argv, e);
}

/* After start: GET /health with the member's client certificate. etcd is
 * Type=notify, so it answers once systemctl returns; a few tries cover a
 * member that waits for its peers. */
static int check_health(const kfi_etcd_conn *conn, kf_err *e)
{
	int rc = KF_OK;

	for (int i = 0; i < 30; i++) {
		if ((rc = kfi_etcd_health(conn->host, conn->port, conn->ca, conn->cert, conn->key, e)) == KF_OK)
			break;
		sleep(1);
	}
	if (rc == KF_OK)
		printf("ok       etcd %s healthy\n", conn->endpoint);
	return rc;
}

int kfi_etcd_restore(kfi_ctx *c, const kfi_restore_opts *o, kf_err *e)
{
	kfi_etcd_env env = {0};
	kfi_etcd_conn conn;
	char tool[256], stamp[32], fresh[1100], aside[1100];
	char *data = NULL, *envp = NULL;
	struct stat st;
	struct tm tm;
	time_t now = time(NULL);
	int rc, have_old;

	envp = o->env_file ? strdup(o->env_file) : kfi_path(c, "/etc/etcd.env");
	if (!envp) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = kfi_etcd_env_load(envp, &env, e)) != KF_OK ||
	    (rc = kfi_etcd_client(c, &env, &conn, e)) != KF_OK)
		goto out;
	if (!env.initial_cluster || !env.peer_urls) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: ETCD_INITIAL_CLUSTER and "
		                "ETCD_INITIAL_ADVERTISE_PEER_URLS are needed for a restore", envp);
		goto out;
	}
	if ((rc = check_sum(o->snapshot, e)) != KF_OK)
		goto out;
	if ((rc = kfi_check_parents(c, env.data_dir, e)) != KF_OK)
		goto out;
	data = kfi_path(c, env.data_dir);
	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0 ||
	    kf_strf(fresh, sizeof fresh, "%s.kf-restore-%s", data, stamp) != 0 ||
	    kf_strf(aside, sizeof aside, "%s.before-restore-%s", data, stamp) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "data directory name too long: %s", data);
		goto out;
	}
	if (kfi_etcd_tool("etcdutl", tool, sizeof tool) != 0 &&
	    kfi_etcd_tool("etcdctl", tool, sizeof tool) != 0) {
		rc = kf_err_set(e, KF_EIO, "neither etcdutl nor etcdctl found in /usr/local/bin or /usr/bin");
		goto out;
	}
	if (c->dry_run) {
		printf("plan     run systemctl stop etcd.service\n"
		       "plan     run %s snapshot restore %s --name %s --initial-cluster %s "
		       "--initial-advertise-peer-urls %s --data-dir %s\n"
		       "plan     %s becomes %s, the restored data takes its place\n",
		       tool, o->snapshot, env.name, env.initial_cluster, env.peer_urls, fresh, data,
		       aside);
		if (!o->no_start)
			printf("plan     run systemctl start etcd.service, then check %s\n", conn.endpoint);
		goto out;
	}
	if ((rc = systemctl(c, "stop", e)) != KF_OK || (rc = check_stopped(data, e)) != KF_OK)
		goto out;
	if (lstat(fresh, &st) == 0 || lstat(aside, &st) == 0) {
		rc = kf_err_set(e, KF_EIO, "%s or %s exists: one restore a second", fresh, aside);
		goto out;
	}
	{
		const char *argv[] = {tool, "snapshot", "restore", o->snapshot, "--name", env.name,
		                      "--initial-cluster", env.initial_cluster,
		                      "--initial-cluster-token", env.cluster_token,
		                      "--initial-advertise-peer-urls", env.peer_urls,
		                      "--data-dir", fresh, NULL};
		if ((rc = kfi_etcd_exec(argv, NULL, e)) != KF_OK) {
			kf_err_prefix(e, "restore of %s", o->snapshot);
			kf_remove_tree(fresh, NULL);
			goto out;
		}
	}
	/* etcd refuses a data directory others can read. */
	if (chmod(fresh, 0700) != 0) {
		rc = kf_err_errno(e, "cannot chmod", fresh);
		goto out;
	}
	have_old = lstat(data, &st) == 0;
	if (have_old && !S_ISDIR(st.st_mode)) {
		rc = kf_err_set(e, KF_EIO, "%s is not a directory", data);
		goto out;
	}
	if (have_old ? renameat2(AT_FDCWD, fresh, AT_FDCWD, data, RENAME_EXCHANGE) != 0
	             : rename(fresh, data) != 0) {
		rc = kf_err_errno(e, "cannot move the restored data to", data);
		goto out;
	}
	/* After the exchange the fresh name holds the old data. */
	if (have_old && rename(fresh, aside) != 0) {
		rc = kf_err_errno(e, "cannot rename the previous data to", aside);
		goto out;
	}
	if ((rc = kf_fsync_parent(data, e)) != KF_OK)
		goto out;
	printf("changed  %s restored into %s (member %s, cluster %s)\n", o->snapshot, data, env.name,
	       env.initial_cluster);
	if (have_old)
		printf("kept     previous data in %s\n", aside);
	c->changed++;
	if (o->no_start) {
		printf("%-8s etcd not started (--no-start): start every member, then check health\n",
		       "note");
		goto out;
	}
	if ((rc = systemctl(c, "start", e)) != KF_OK)
		goto out;
	if (kfi_systemd_running(c))
		rc = check_health(&conn, e);
	else
		printf("%-8s etcd health not checked: etcd is not started here (--root or no systemd)\n",
		       "note");
out:
	kfi_etcd_env_free(&env);
	free(data);
	free(envp);
	return rc;
}
