/* The deploy engine: generated configs, fingerprints, the journaled step
 * engine and its undo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../installer/kf_installer.h"
#include "kf_test.h"

static void t_containerd_v2(void)
{
	char *s = kfi_render_containerd("1.7.27", "registry.k8s.io/pause:3.10");
	CHECK(s && !strncmp(strstr(s, "version = "), "version = 2\n", 12));
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.10\"\n");
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
	                  "        BinaryName = \"/usr/local/sbin/runc\"\n        SystemdCgroup = true\n");
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/containerd/certs.d\"\n");
	CHECK(!strstr(s, "cri.v1"));
	free(s);
}

static void t_containerd_v3(void)
{
	char *s = kfi_render_containerd("v2.1.3", "registry.k8s.io/pause:3.10");
	CHECK(s && !strncmp(strstr(s, "version = "), "version = 3\n", 12));
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.cri.v1.images\".pinned_images]\n    sandbox = \"registry.k8s.io/pause:3.10\"\n");
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.cri.v1.images\".registry]\n    config_path = \"/etc/containerd/certs.d\"\n");
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\n"
	                  "        BinaryName = \"/usr/local/sbin/runc\"\n        SystemdCgroup = true\n");
	CHECK(!strstr(s, "grpc.v1.cri"));
	free(s);
}

static void t_etcd_env(void)
{
	char *s = kfi_render_etcd_env("cp1", "10.1.2.3");
	CHECK_CONTAINS(s, "ETCD_NAME=cp1\n");
	CHECK_CONTAINS(s, "ETCD_LISTEN_CLIENT_URLS=https://10.1.2.3:2379,https://127.0.0.1:2379\n");
	CHECK_CONTAINS(s, "ETCD_INITIAL_CLUSTER=cp1=https://10.1.2.3:2380\n");
	CHECK_CONTAINS(s, "ETCD_PEER_KEY_FILE=/etc/ssl/etcd/ssl/member-cp1-key.pem\n");
	CHECK_CONTAINS(s, "ETCD_CLIENT_CERT_AUTH=true\n");
	free(s);
	s = kfi_render_etcd_env("cp1", "127.0.0.1");
	CHECK_CONTAINS(s, "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:2379\n");
	free(s);
}

static void t_fingerprint(void)
{
	static const struct { const char *in; int ok; } cases[] = {
		{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1},
		{"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 1},
		{"01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF", 1},
		{"sha256:0123", 0},
		{"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", 0},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00", 0},
		{"", 0},
	};
	char out[KF_SHA256_HEX];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int r = kfi_fingerprint_norm(cases[i].in, out);
		CHECK_INT(r == 0, cases[i].ok);
		if (cases[i].ok)
			CHECK_STR(out, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	}
}

static int read_eq(const char *path, const char *want)
{
	char buf[256] = {0};
	FILE *f = fopen(path, "r");
	size_t n;
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return !strcmp(buf, want);
}

static void t_engine(void)
{
	char tmpl[] = "/tmp/kf-unit-deploy.XXXXXX", p[512];
	char *root = mkdtemp(tmpl);
	kfi_ctx c;
	kf_err e = {0};
	int ch = -1;
	struct stat st;

	CHECK(root != NULL);
	if (!root)
		return;
	snprintf(p, sizeof p, "%s/etc", root);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/etc/old.conf", root);
	FILE *f = fopen(p, "w");
	fputs("original\n", f);
	fclose(f);
	chmod(p, 0640);

	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_OK);
	CHECK_INT(c.live, 0);
	/* New file in new directories. */
	CHECK_INT(kfi_put_file(&c, "/opt/x/new.conf", "new\n", 4, 0644, &ch, &e), KF_OK);
	CHECK_INT(ch, 1);
	snprintf(p, sizeof p, "%s/opt/x/new.conf", root);
	CHECK(read_eq(p, "new\n"));
	/* Same content: ok, not changed. */
	CHECK_INT(kfi_put_file(&c, "/opt/x/new.conf", "new\n", 4, 0644, &ch, &e), KF_OK);
	CHECK_INT(ch, 0);
	/* Same content, other mode: changed. */
	CHECK_INT(kfi_put_file(&c, "/opt/x/new.conf", "new\n", 4, 0600, &ch, &e), KF_OK);
	CHECK_INT(ch, 1);
	/* Replace an existing file twice: the backup keeps the original. */
	CHECK_INT(kfi_put_file(&c, "/etc/old.conf", "one\n", 4, 0644, &ch, &e), KF_OK);
	CHECK_INT(kfi_put_file(&c, "/etc/old.conf", "two\n", 4, 0644, &ch, &e), KF_OK);
	CHECK_INT(kfi_put_link(&c, "/etc/mask.target", "/dev/null", &ch, &e), KF_OK);
	CHECK_INT(ch, 1);
	CHECK_INT(kfi_put_link(&c, "/etc/mask.target", "/dev/null", &ch, &e), KF_OK);
	CHECK_INT(ch, 0);
	CHECK_INT(c.changed, 5);
	CHECK_INT(c.ok, 2);
	kfi_ctx_free(&c);

	/* A new context (a re-run) must not back up the changed state. */
	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_OK);
	CHECK_INT(kfi_put_file(&c, "/etc/old.conf", "three\n", 6, 0644, &ch, &e), KF_OK);
	CHECK_INT(kfi_journal_undo(&c, &e), KF_OK);
	kfi_ctx_free(&c);

	snprintf(p, sizeof p, "%s/etc/old.conf", root);
	CHECK(read_eq(p, "original\n"));
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640);
	snprintf(p, sizeof p, "%s/opt", root);
	CHECK(access(p, F_OK) != 0);
	snprintf(p, sizeof p, "%s/etc/mask.target", root);
	CHECK(lstat(p, &st) != 0);
	snprintf(p, sizeof p, "%s/var/lib/kubeferry/state", root);
	CHECK(access(p, F_OK) != 0);

	/* Dry run writes nothing, not even the journal. */
	CHECK_INT(kfi_ctx_init(&c, root, 1, &e), KF_OK);
	CHECK_INT(kfi_put_file(&c, "/opt/y/z.conf", "z", 1, 0644, &ch, &e), KF_OK);
	CHECK_INT(ch, 1);
	kfi_ctx_free(&c);
	snprintf(p, sizeof p, "%s/opt", root);
	CHECK(access(p, F_OK) != 0);
	snprintf(p, sizeof p, "%s/var/lib/kubeferry/state", root);
	CHECK(access(p, F_OK) != 0);

	kf_remove_tree(root, &e);
}

static void t_plan_not_run(void)
{
	kfi_ctx c;
	kf_err e = {0};
	const char *argv[] = {"/bin/false", NULL};

	/* Under --root, a command is only printed, never run. */
	CHECK_INT(kfi_ctx_init(&c, "/nonexistent-root", 0, &e), KF_OK);
	CHECK_INT(kfi_run(&c, argv, &e), KF_OK);
	CHECK_INT(c.changed, 0);
	kfi_ctx_free(&c);
	CHECK_INT(kfi_probe(argv), 1);
}

KF_TEST_MAIN(t_containerd_v2, t_containerd_v3, t_etcd_env, t_fingerprint, t_engine,
             t_plan_not_run)
