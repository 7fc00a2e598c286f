/* The deploy engine: generated configs, fingerprints, the journaled step
 * engine and its undo. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundler/kf_bundler.h" /* the flannel manifest bundles carry */
#include "installer/kf_installer.h"
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
	/* 2.1 and later: the list (bin_dir is deprecated, containerd#11311). */
	CHECK_CONTAINS(s, "[plugins.\"io.containerd.cri.v1.runtime\".cni]\n    bin_dirs = [\"/opt/cni/bin\"]\n");
	CHECK(!strstr(s, "bin_dir ="));
	free(s);
	/* 2.0 still reads bin_dir; 3.x has the list. */
	s = kfi_render_containerd("2.0.5", "registry.k8s.io/pause:3.10");
	CHECK_CONTAINS(s, "    bin_dir = \"/opt/cni/bin\"\n");
	CHECK(!strstr(s, "bin_dirs"));
	free(s);
	s = kfi_render_containerd("3.0.0", "registry.k8s.io/pause:3.10");
	CHECK_CONTAINS(s, "    bin_dirs = [\"/opt/cni/bin\"]\n");
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
	/* Kubespray v2.29.1's etcd.env and etcd's own snapshot default. */
	CHECK_CONTAINS(s, "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true\n");
	CHECK_CONTAINS(s, "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s\n");
	CHECK_CONTAINS(s, "ETCD_SNAPSHOT_COUNT=100000\n");
	CHECK(!strstr(s, "ETCD_SNAPSHOT_COUNT=10000\n"));
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

/* Writes a .tar.gz holding the given members (type 'f' file, 'h' hard
 * link to target, 'l' symlink to target) with mode. */
struct member {
	const char *path, *body, *target;
	char type;
	unsigned mode;
};
static void write_tgz(const char *out, const struct member *m, size_t n)
{
	struct archive *w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	archive_write_add_filter_gzip(w);
	CHECK(archive_write_open_filename(w, out) == ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *en = archive_entry_new();
		archive_entry_set_pathname(en, m[i].path);
		archive_entry_set_perm(en, m[i].mode);
		if (m[i].type == 'l') {
			archive_entry_set_filetype(en, AE_IFLNK);
			archive_entry_set_symlink(en, m[i].target);
		} else {
			archive_entry_set_filetype(en, AE_IFREG);
			if (m[i].type == 'h')
				archive_entry_set_hardlink(en, m[i].target);
			else
				archive_entry_set_size(en, (la_int64_t)strlen(m[i].body));
		}
		CHECK(archive_write_header(w, en) == ARCHIVE_OK);
		if (m[i].type == 'f')
			archive_write_data(w, m[i].body, strlen(m[i].body));
		archive_entry_free(en);
	}
	archive_write_close(w);
	archive_write_free(w);
}

static void t_tar_hostile(void)
{
	char root[] = "/tmp/kf-tar-XXXXXX", tgz[128], p[256], hex[KF_SHA256_HEX];
	const struct member good[] = {
		{"d/tool", "#!tool\n", NULL, 'f', 04755},
		{"d/LICENSE", "license\n", NULL, 'f', 0644},
		{"/etc/passwd", "root::0:0\n", NULL, 'f', 0644},
		{"d/../../escape", "x", NULL, 'f', 0644},
		{"d/link", NULL, "/etc/shadow", 'l', 0777},
	};
	const struct member hard[] = {
		{"d/tool", "#!tool\n", NULL, 'f', 0755},
		{"d/alias", NULL, "d/tool", 'h', 0755},
	};
	const char *const alias[] = {"alias", NULL};
	kfi_ctx c;
	kf_err e = {0};
	struct stat st;
	int n = 0;

	CHECK(mkdtemp(root) != NULL);
	snprintf(tgz, sizeof tgz, "%s/good.tar.gz", root);
	write_tgz(tgz, good, 5);
	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_OK);
	/* Only the plain member is installed, with the mode asked for (no
	 * setuid); traversal, absolute and link members are ignored. */
	CHECK_INT(kfi_tar_install(&c, tgz, NULL, 1, NULL, "/bin", 0755, &n, &e), KF_OK);
	CHECK_INT(n, 1);
	snprintf(p, sizeof p, "%s/bin/tool", root);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
	snprintf(p, sizeof p, "%s/bin/link", root);
	CHECK(lstat(p, &st) != 0);
	/* Without a list of names only programs: no LICENSE (point 12). */
	snprintf(p, sizeof p, "%s/bin/LICENSE", root);
	CHECK(lstat(p, &st) != 0);
	snprintf(p, sizeof p, "%s/escape", root);
	CHECK(lstat(p, &st) != 0);
	/* The archive must have the digest the lock names. */
	e.code = 0;
	CHECK_INT(kfi_tar_install(&c, tgz, "0000000000000000000000000000000000000000000000000000000000000000",
	                          1, NULL, "/sbin", 0755, &n, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "good.tar.gz: sha256 ");
	snprintf(p, sizeof p, "%s/sbin", root);
	CHECK(lstat(p, &st) != 0);
	CHECK_INT(kf_sha256_file(tgz, hex, NULL, &e), KF_OK);
	CHECK_INT(kfi_tar_install(&c, tgz, hex, 1, NULL, "/sbin", 0755, &n, &e), KF_OK);
	/* A hard link member is never installed (as an empty file). */
	snprintf(tgz, sizeof tgz, "%s/hard.tar.gz", root);
	write_tgz(tgz, hard, 2);
	CHECK(kfi_tar_install(&c, tgz, NULL, 1, alias, "/bin", 0755, &n, &e) != KF_OK);
	CHECK_INT(n, 0);
	snprintf(p, sizeof p, "%s/bin/alias", root);
	CHECK(lstat(p, &st) != 0);
	kfi_ctx_free(&c);
	kf_remove_tree(root, &e);
}

/* No directory between ROOT and the target may be a symbolic link. */
static void t_root_links(void)
{
	char root[] = "/tmp/kf-links-XXXXXX", out[] = "/tmp/kf-out-XXXXXX", p[256], q[256];
	kfi_ctx c;
	kf_err e = {0};
	struct stat st;
	int ch = 0;

	CHECK(mkdtemp(root) != NULL);
	CHECK(mkdtemp(out) != NULL);
	snprintf(p, sizeof p, "%s/etc", root);
	CHECK(symlink(out, p) == 0);
	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_OK);
	CHECK_INT(kfi_put_file(&c, "/etc/x/a.conf", "a", 1, 0644, &ch, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "/etc is a symbolic link");
	CHECK_INT(kfi_put_link(&c, "/etc/b.target", "/dev/null", &ch, &e), KF_EIO);
	snprintf(q, sizeof q, "%s/x", out);
	CHECK(lstat(q, &st) != 0);
	snprintf(q, sizeof q, "%s/b.target", out);
	CHECK(lstat(q, &st) != 0);
	kfi_ctx_free(&c);
	/* The state directory too: the journal would land outside. */
	unlink(p);
	snprintf(p, sizeof p, "%s/var", root);
	CHECK(symlink(out, p) == 0);
	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "/var is a symbolic link");
	kfi_ctx_free(&c);
	kf_remove_tree(root, &e);
	kf_remove_tree(out, &e);
}

static void put(const char *root, const char *rel, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof p, "%s%s", root, rel);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Records cut short by a crash, or smuggled in through a link target,
 * never make reset delete a file apply did not create. */
static void t_journal_torn(void)
{
	char root[] = "/tmp/kf-torn-XXXXXX", p[512];
	kfi_ctx c;
	kf_err e = {0};
	struct stat st;
	int ch = 0;

	CHECK(mkdtemp(root) != NULL);
	snprintf(p, sizeof p, "%s/etc", root);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/var/lib/kubeferry/state", root);
	CHECK_INT(kf_mkdir_p(p, 0700, &e), KF_OK);
	put(root, "/etc/keep1.conf", "operator's\n");
	put(root, "/etc/keep2.conf", "operator's\n");
	put(root, "/etc/keep3.conf", "operator's\n");
	/* A record without its backup name, then one torn mid-line. */
	put(root, "/var/lib/kubeferry/state/journal",
	    "file\t/etc/keep1.conf\nfile\t/etc/keep2.conf\t0123");
	CHECK_INT(kfi_ctx_init(&c, root, 0, &e), KF_OK);
	CHECK_INT((int)c.njpaths, 0);
	/* Appending after the torn record starts a new line. */
	CHECK_INT(kfi_put_file(&c, "/etc/new.conf", "new\n", 4, 0644, &ch, &e), KF_OK);
	/* A link whose target holds a newline is not journaled (it would add
	 * a record "file /etc/keep3.conf absent"). */
	snprintf(p, sizeof p, "%s/etc/evil", root);
	CHECK(symlink("x\nfile\t/etc/keep3.conf\t-\t0", p) == 0);
	CHECK_INT(kfi_put_file(&c, "/etc/evil", "e", 1, 0644, &ch, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "tab or newline");
	CHECK_INT(kfi_journal_undo(&c, &e), KF_OK);
	kfi_ctx_free(&c);
	snprintf(p, sizeof p, "%s/etc/new.conf", root);
	CHECK(lstat(p, &st) != 0);
	snprintf(p, sizeof p, "%s/etc/keep1.conf", root);
	CHECK(read_eq(p, "operator's\n"));
	snprintf(p, sizeof p, "%s/etc/keep2.conf", root);
	CHECK(read_eq(p, "operator's\n"));
	snprintf(p, sizeof p, "%s/etc/keep3.conf", root);
	CHECK(read_eq(p, "operator's\n"));
	kf_remove_tree(root, &e);
}

/* EL10 (point 2): flannel's net-conf.json gets "EnableNFTables": true; the
 * manifest is the one the bundler renders into addons/flannel.yaml. */
static void t_flannel_nft(void)
{
	char *y = NULL, *out = NULL;
	size_t len;
	kf_err e = {0};

	CHECK_INT(kf_addons_flannel_yaml("docker.io/flannel/flannel:v0.27.0",
	                                 "docker.io/flannel/flannel-cni-plugin:v1.7.1-flannel1",
	                                 "10.244.0.0/16", &y, &len, &e), KF_OK);
	CHECK_INT(kfi_flannel_nft(y, &out), 1);
	CHECK_CONTAINS(out, "  net-conf.json: |\n    {\n      \"Network\": \"10.244.0.0/16\",\n"
	                    "      \"EnableNFTables\": true,\n      \"Backend\": {\n");
	CHECK_INT((int)strlen(out), (int)(len + strlen("      \"EnableNFTables\": true,\n")));
	/* Once is enough; anything else is no flannel manifest. */
	{
		char *again = NULL;
		CHECK_INT(kfi_flannel_nft(out, &again), 0);
		CHECK(again == NULL);
		CHECK_INT(kfi_flannel_nft("apiVersion: v1\nkind: ConfigMap\n", &again), 0);
	}
	free(out);
	free(y);
}

/* Point 3: commands find what apply installed whatever the caller's PATH.
 * The stand-in kubeadm (tests/node/mock-kubeadm) fails unless kubelet is
 * on PATH, as kubeadm's preflight does; the installer runs it with sudo's
 * secure_path, which lacks /usr/local/bin. The installer's directory is
 * pointed at the stand-ins' here (kfi_set_bin_path). */
static void t_path_sudo(void)
{
	char dir[] = "/tmp/kf-path-XXXXXX", bin[64], kubeadm[96], kubelet[96], log[96];
	char *mock = NULL, *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	size_t len;
	kfi_ctx c;
	kf_err e = {0};

	CHECK(mkdtemp(dir) != NULL);
	snprintf(bin, sizeof bin, "%s/bin", dir);
	snprintf(kubeadm, sizeof kubeadm, "%s/kubeadm", bin);
	snprintf(kubelet, sizeof kubelet, "%s/kubelet", bin);
	snprintf(log, sizeof log, "%s/mock.log", dir);
	CHECK(mkdir(bin, 0755) == 0);
	CHECK_INT(kf_read_file("tests/node/mock-kubeadm", 1 << 16, &mock, &len, &e), KF_OK);
	CHECK_INT(kf_write_file_atomic(kubeadm, mock, len, 0755, 1, &e), KF_OK);
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1); /* sudo's secure_path on EL */
	setenv("KF_MOCK_LOG", log, 1);
	CHECK_INT(kfi_ctx_init(&c, "", 0, &e), KF_OK);
	c.live = 1;
	{
		const char *abs[] = {kubeadm, "init", NULL};
		const char *bare[] = {"kubeadm", "join", NULL};
		kfi_set_bin_path(bin);
		/* No kubelet yet: the stand-in really checks. */
		CHECK_INT(kfi_run(&c, abs, &e), KF_EIO);
		CHECK_INT(kf_write_file_atomic(kubelet, mock, len, 0755, 1, &e), KF_OK);
		e.code = 0;
		CHECK_INT(kfi_run(&c, abs, &e), KF_OK);
		/* A bare name is found there too. */
		CHECK_INT(kfi_run(&c, bare, &e), KF_OK);
		CHECK_INT(kfi_probe(bare), 0);
	}
	kfi_set_bin_path(NULL);
	kfi_ctx_free(&c);
	if (old)
		setenv("PATH", old, 1);
	unsetenv("KF_MOCK_LOG");
	{
		kf_err ign;
		kf_remove_tree(dir, &ign);
	}
	free(old);
	free(mock);
}

KF_TEST_MAIN(t_path_sudo, t_flannel_nft, t_containerd_v2, t_containerd_v3, t_etcd_env, t_fingerprint, t_engine,
             t_plan_not_run, t_tar_hostile, t_root_links, t_journal_torn)
