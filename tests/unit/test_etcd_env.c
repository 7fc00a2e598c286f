/* What etcd snapshot and restore read from a member's etcd.env: the
 * fields, quotes and comments, the refusals (missing keys, a member name
 * that is not a plain name, a relative data directory), and the client
 * connection built from it (endpoint split, admin certificate or the
 * member's own). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/kf_installer.h"
#include "kf_test.h"

static char dir[] = "/tmp/kf-test-etcd-env.XXXXXX";

static int load(const char *text, kfi_etcd_env *env, kf_err *e)
{
	char path[256];
	snprintf(path, sizeof path, "%s/etcd.env", dir);
	kf_write_file_atomic(path, text, strlen(text), 0600, 1, e);
	return kfi_etcd_env_load(path, env, e);
}

#define BASE "ETCD_DATA_DIR=/var/lib/etcd\n" \
	"ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.5:2379,https://127.0.0.1:2379\n" \
	"ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem\n" \
	"ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-n1.pem\n" \
	"ETCD_KEY_FILE=/etc/ssl/etcd/ssl/member-n1-key.pem\n"

static void t_fields(void)
{
	kfi_etcd_env env;
	kf_err e = {0};

	CHECK_INT(load("# comment\n  \nETCD_NAME=\"n1\"\n" BASE
	               "ETCD_INITIAL_CLUSTER=n1=https://10.0.0.5:2380,n2=https://10.0.0.6:2380\n"
	               "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.5:2380\n"
	               "ETCD_UNKNOWN=kept out\n", &env, &e), KF_OK);
	CHECK_STR(env.name, "n1");
	CHECK_STR(env.data_dir, "/var/lib/etcd");
	CHECK_STR(env.initial_cluster, "n1=https://10.0.0.5:2380,n2=https://10.0.0.6:2380");
	CHECK_STR(env.peer_urls, "https://10.0.0.5:2380");
	/* etcd's own default when the file names none */
	CHECK_STR(env.cluster_token, "etcd-cluster");
	kfi_etcd_env_free(&env);
}

static void t_refusals(void)
{
	kfi_etcd_env env;
	kf_err e = {0};

	CHECK_INT(load(BASE, &env, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "ETCD_NAME, ETCD_DATA_DIR");
	CHECK_INT(load("ETCD_NAME=../n1\n" BASE, &env, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "is not a plain name");
	CHECK_INT(load("ETCD_NAME=n1\n" BASE "ETCD_DATA_DIR=var/lib/etcd\n", &env, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "ETCD_DATA_DIR must be an absolute path");
	CHECK_INT(load("ETCD_NAME=n1\nno equals sign\n" BASE, &env, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "a line without '='");
}

static void t_client(void)
{
	kfi_etcd_env env;
	kfi_etcd_conn conn;
	kfi_ctx c;
	kf_err e = {0};
	char root[300], path[400];

	snprintf(root, sizeof root, "%s/root", dir);
	CHECK_INT(kfi_ctx_init(&c, root, 1, &e), KF_OK);
	CHECK_INT(load("ETCD_NAME=n1\n" BASE, &env, &e), KF_OK);
	/* no admin certificate: the member's own */
	CHECK_INT(kfi_etcd_client(&c, &env, &conn, &e), KF_OK);
	CHECK_STR(conn.endpoint, "https://10.0.0.5:2379");
	CHECK_STR(conn.host, "10.0.0.5");
	CHECK_INT(conn.port, 2379);
	snprintf(path, sizeof path, "%s/etc/ssl/etcd/ssl/member-n1.pem", root);
	CHECK_STR(conn.cert, path);
	/* with admin-n1.pem beside the CA, that one */
	snprintf(path, sizeof path, "%s/etc/ssl/etcd/ssl", root);
	CHECK_INT(kf_mkdir_p(path, 0700, &e), KF_OK);
	snprintf(path, sizeof path, "%s/etc/ssl/etcd/ssl/admin-n1.pem", root);
	CHECK_INT(kf_write_file_atomic(path, "x", 1, 0600, 1, &e), KF_OK);
	CHECK_INT(kfi_etcd_client(&c, &env, &conn, &e), KF_OK);
	CHECK_STR(conn.cert, path);
	snprintf(path, sizeof path, "%s/etc/ssl/etcd/ssl/admin-n1-key.pem", root);
	CHECK_STR(conn.key, path);
	kfi_etcd_env_free(&env);
	/* an IPv6 endpoint and a plain-HTTP one */
	CHECK_INT(load("ETCD_NAME=n1\n" BASE "ETCD_ADVERTISE_CLIENT_URLS=https://[fd00::5]:2379\n",
	               &env, &e), KF_OK);
	CHECK_INT(kfi_etcd_client(&c, &env, &conn, &e), KF_OK);
	CHECK_STR(conn.host, "fd00::5");
	kfi_etcd_env_free(&env);
	CHECK_INT(load("ETCD_NAME=n1\n" BASE "ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.5:2379\n",
	               &env, &e), KF_OK);
	CHECK_INT(kfi_etcd_client(&c, &env, &conn, &e), KF_EUSAGE);
	kfi_etcd_env_free(&env);
	kfi_ctx_free(&c);
}

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
}

static void teardown(void)
{
	kf_err e;
	kf_remove_tree(dir, &e);
}

KF_TEST_MAIN(setup, t_fields, t_refusals, t_client, teardown)
