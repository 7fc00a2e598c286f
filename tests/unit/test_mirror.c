/* Unit tests for mirror/: the OCI layout store and hosts.toml writer. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirror/kf_mirror.h"
#include "kf_test.h"

static char tmpdir[256];

static void mktmp(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/kf-unit-mirror.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		abort();
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t n;
	kf_err e = {0};
	if (kf_read_file(path, 1 << 20, &buf, &n, &e))
		return NULL;
	return buf;
}

static void digest_of(const char *s, char out[72])
{
	char hex[KF_SHA256_HEX];
	kf_sha256_buf(s, strlen(s), hex);
	snprintf(out, 72, "sha256:%s", hex);
}

/* Digest grammar: tests/unit/test_oci.c. */
static void t_digest_valid(void)
{
	CHECK(kf_layout_blob_path("/x", "sha256:../etc") == NULL);
	char *p = kf_layout_blob_path("/x", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_STR(p, "/x/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(p);
}

static void t_layout_blobs(void)
{
	kf_err e = {0};
	char dir[1024], src[PATH_MAX], dg[72], *p, *text;
	const char *body = "hello blob\n";
	struct stat st, st2;

	mktmp();
	snprintf(dir, sizeof dir, "%s/layout", tmpdir);
	CHECK_INT(kf_layout_init(dir, &e), 0);
	CHECK_INT(kf_layout_init(dir, &e), 0);
	snprintf(src, sizeof src, "%s/oci-layout", dir);
	text = slurp(src);
	CHECK_CONTAINS(text, "\"imageLayoutVersion\":\"1.0.0\"");
	free(text);

	digest_of(body, dg);
	CHECK(!kf_layout_has_blob(dir, dg));
	CHECK_INT(kf_layout_add_blob_buf(dir, dg, body, strlen(body), &e), 0);
	CHECK(kf_layout_has_blob(dir, dg));
	/* Present: a no-op. */
	CHECK_INT(kf_layout_add_blob_buf(dir, dg, body, strlen(body), &e), 0);
	/* Bytes that do not hash to the digest are refused and not stored. */
	char other[72];
	digest_of("other", other);
	CHECK_INT(kf_layout_add_blob_buf(dir, other, "tampered", 8, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, other);
	CHECK(!kf_layout_has_blob(dir, other));
	CHECK_INT(kf_layout_add_blob_buf(dir, "sha256:zz", "x", 1, &e), KF_EUSAGE);

	/* From a file on the same filesystem: hard-linked. */
	snprintf(src, sizeof src, "%s/cached", tmpdir);
	CHECK_INT(kf_write_file_atomic(src, "other", 5, 0644, 1, &e), 0);
	CHECK_INT(kf_layout_add_blob_file(dir, other, src, &e), 0);
	p = kf_layout_blob_path(dir, other);
	CHECK(stat(p, &st) == 0 && stat(src, &st2) == 0 && st.st_ino == st2.st_ino);
	text = slurp(p);
	CHECK_STR(text, "other");
	free(text);
	free(p);

	/* A corrupt source file never enters the store. */
	char third[72];
	digest_of("third", third);
	CHECK_INT(kf_write_file_atomic(src, "not third", 9, 0644, 1, &e), 0);
	CHECK_INT(kf_layout_add_blob_file(dir, third, src, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, src);
	CHECK(!kf_layout_has_blob(dir, third));
	CHECK_INT(kf_layout_add_blob_file(dir, third, "/nonexistent/file", &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "/nonexistent/file");
	CHECK_INT(kf_remove_tree(tmpdir, &e), 0);
}

static void t_layout_index(void)
{
	kf_err e = {0};
	char dir[1024], path[PATH_MAX], *a, *b;
	const char *d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	const char *d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	kf_layout_ref refs[] = {
		{"registry.k8s.io/pause:3.10", d1, KF_MT_OCI_INDEX, 100},
		{"docker.io/library/busybox:1.0", d2, KF_MT_DOCKER_LIST, 200},
	};
	kf_layout_ref swapped[] = {refs[1], refs[0]};

	mktmp();
	snprintf(dir, sizeof dir, "%s/layout", tmpdir);
	snprintf(path, sizeof path, "%s/index.json", dir);
	CHECK_INT(kf_layout_init(dir, &e), 0);
	CHECK_INT(kf_layout_write_index(dir, refs, 2, &e), 0);
	a = slurp(path);
	CHECK_CONTAINS(a, "\"org.opencontainers.image.ref.name\": \"registry.k8s.io/pause:3.10\"");
	CHECK_CONTAINS(a, "\"io.containerd.image.name\": \"docker.io/library/busybox:1.0\"");
	CHECK_CONTAINS(a, "\"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\"");
	CHECK_CONTAINS(a, "\"schemaVersion\": 2");
	/* Sorted by name: busybox first whatever the input order. */
	CHECK(a && strstr(a, "busybox") < strstr(a, "pause"));
	CHECK_INT(kf_layout_write_index(dir, swapped, 2, &e), 0);
	b = slurp(path);
	CHECK_STR(a, b);
	free(a);
	free(b);

	kf_layout_ref dup[] = {refs[0], refs[0]};
	CHECK_INT(kf_layout_write_index(dir, dup, 2, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "named twice");
	kf_layout_ref bad[] = {{"x:1", "sha256:nothex", KF_MT_OCI_INDEX, 1}};
	CHECK_INT(kf_layout_write_index(dir, bad, 1, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "x:1");
	CHECK_INT(kf_layout_write_index(dir, NULL, 0, &e), 0);
	a = slurp(path);
	CHECK_CONTAINS(a, "\"manifests\": []");
	free(a);
	CHECK_INT(kf_remove_tree(tmpdir, &e), 0);
}

static void t_hosts_toml(void)
{
	kf_err e = {0};
	char path[PATH_MAX], *t;

	t = kf_hosts_toml_render("registry.k8s.io", "https://10.0.0.5:5443",
	                         "/etc/kubeferry/mirror-ca.crt");
	CHECK_CONTAINS(t, "server = \"https://10.0.0.5:5443\"\n");
	CHECK_CONTAINS(t, "[host.\"https://10.0.0.5:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/etc/kubeferry/mirror-ca.crt\"\n");
	/* Top-level keys must precede the first table in TOML. */
	CHECK(t && strstr(t, "server =") < strstr(t, "[host."));
	CHECK(t && !strstr(t, "push"));
	free(t);
	t = kf_hosts_toml_render("docker.io", "http://127.0.0.1:5000", "/ca.crt");
	CHECK(t && !strstr(t, "ca ="));
	free(t);
	/* Injection and bad names are refused, not escaped. */
	CHECK(kf_hosts_toml_render("docker.io", "https://x\"\n[host.\"https://evil\"]", NULL) == NULL);
	CHECK(kf_hosts_toml_render("../etc", "https://x:1", NULL) == NULL);
	CHECK(kf_hosts_toml_render("a/b", "https://x:1", NULL) == NULL);
	CHECK(kf_hosts_toml_render("docker.io", "ftp://x:1", NULL) == NULL);
	CHECK(kf_hosts_toml_render("docker.io", "https://x:1", "/a\"b") == NULL);

	{
		/* A cluster's mirror hosts, each with the pinned CA, in order. */
		const char *m[] = {"https://10.0.0.11:5443", "https://10.0.0.12:5443", "https://10.0.0.13:5443"};
		const char *bad[] = {"https://10.0.0.11:5443", "https://x\"\n"};
		char *a, *b2, *c3;
		t = kf_hosts_toml_render_list("registry.k8s.io", m, 3, "/etc/kubeferry/mirror-ca.crt");
		CHECK_CONTAINS(t, "server = \"https://10.0.0.11:5443\"\n");
		a = t ? strstr(t, "[host.\"https://10.0.0.11:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
		                    "  ca = \"/etc/kubeferry/mirror-ca.crt\"\n") : NULL;
		b2 = t ? strstr(t, "[host.\"https://10.0.0.12:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
		                     "  ca = \"/etc/kubeferry/mirror-ca.crt\"\n") : NULL;
		c3 = t ? strstr(t, "[host.\"https://10.0.0.13:5443\"]") : NULL;
		CHECK(a && b2 && c3 && a < b2 && b2 < c3);
		free(t);
		CHECK(kf_hosts_toml_render_list("docker.io", bad, 2, NULL) == NULL);
		CHECK(kf_hosts_toml_render_list("docker.io", m, 0, NULL) == NULL);
	}

	mktmp();
	snprintf(path, sizeof path, "%s/certs.d", tmpdir);
	CHECK_INT(kf_hosts_toml_write(path, "localhost:5000", "https://127.0.0.1:5443", NULL, &e), 0);
	snprintf(path, sizeof path, "%s/certs.d/localhost:5000/hosts.toml", tmpdir);
	t = slurp(path);
	CHECK_CONTAINS(t, "[host.\"https://127.0.0.1:5443\"]");
	free(t);
	snprintf(path, sizeof path, "%s/certs.d", tmpdir);
	CHECK_INT(kf_hosts_toml_write(path, "..", "https://127.0.0.1:5443", NULL, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "'..'");
	CHECK_INT(kf_hosts_toml_write(path, "docker.io", "127.0.0.1:5443", NULL, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "127.0.0.1:5443");
	snprintf(path, sizeof path, "%s/certs.d/docker.io", tmpdir);
	CHECK(access(path, F_OK) != 0);
	CHECK_INT(kf_remove_tree(tmpdir, &e), 0);
}

/* 1 when path holds exactly leaf then ca, as one PEM chain. */
static int chain_is(const char *path, const char *leaf, const char *ca)
{
	char *got = slurp(path);
	size_t ll = leaf ? strlen(leaf) : 0;
	int ok = got && leaf && ca && strlen(got) == ll + strlen(ca) &&
	         !strncmp(got, leaf, ll) && !strcmp(got + ll, ca);
	free(got);
	return ok;
}

static void t_tls_ensure(void)
{
	kf_err e = {0};
	char state[1024], ca[PATH_MAX], srv[PATH_MAX], key[PATH_MAX], chain[PATH_MAX];
	struct stat st1;
	char fp1[KF_MIRROR_FP_LEN], fp2[KF_MIRROR_FP_LEN], *c1, *c2, *s1, *s2;
	const char *sans[] = {"10.1.2.3", "mirror.example", "::1"};
	const char *reordered[] = {"mirror.example", "::1", "10.1.2.3", "10.1.2.3"};
	const char *other[] = {"10.9.9.9"};
	const char *evil[] = {"a,DNS:evil.example"};
	struct stat st;

	mktmp();
	snprintf(state, sizeof state, "%s/tls", tmpdir);
	snprintf(ca, sizeof ca, "%s/ca.crt", state);
	snprintf(srv, sizeof srv, "%s/server.crt", state);
	snprintf(key, sizeof key, "%s/server.key", state);
	snprintf(chain, sizeof chain, "%s/" KF_MIRROR_CHAIN_FILE, state);
	CHECK_INT(kf_mirror_tls_ensure(state, evil, 1, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "a,DNS:evil.example");
	CHECK(access(ca, F_OK) != 0);
	CHECK_INT(kf_mirror_tls_ensure(state, sans, 0, &e), KF_EUSAGE);

	CHECK_INT(kf_mirror_tls_ensure(state, sans, 3, &e), 0);
	CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(key, sizeof key, "%s/ca.key", state);
	CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(stat(state, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK_INT(kf_mirror_cert_fingerprint(ca, fp1, &e), 0);
	CHECK_INT((int)strlen(fp1), 95);
	c1 = slurp(ca);
	s1 = slurp(srv);
	/* The chain served: server certificate, then the CA. */
	CHECK(chain_is(chain, s1, c1));
	CHECK(stat(chain, &st1) == 0);
	/* Same SANs in another order, with a duplicate: nothing changes,
	 * not even the chain file's inode. */
	CHECK_INT(kf_mirror_tls_ensure(state, reordered, 4, &e), 0);
	c2 = slurp(ca);
	s2 = slurp(srv);
	CHECK_STR(c1, c2);
	CHECK_STR(s1, s2);
	CHECK(stat(chain, &st) == 0 && st.st_ino == st1.st_ino);
	free(s2);
	/* A chain lost, or holding only the leaf (state from an older
	 * version), is written again around the reused certificate. */
	CHECK(unlink(chain) == 0);
	CHECK_INT(kf_mirror_tls_ensure(state, sans, 3, &e), 0);
	CHECK(chain_is(chain, s1, c1));
	CHECK_INT(kf_write_file_atomic(chain, s1, strlen(s1), 0644, 1, &e), 0);
	CHECK_INT(kf_mirror_tls_ensure(state, sans, 3, &e), 0);
	CHECK(chain_is(chain, s1, c1));
	s2 = slurp(srv);
	CHECK_STR(s1, s2);
	free(s2);
	/* Other SANs: a new server certificate from the same CA. */
	CHECK_INT(kf_mirror_tls_ensure(state, other, 1, &e), 0);
	free(c2);
	c2 = slurp(ca);
	s2 = slurp(srv);
	CHECK_STR(c1, c2);
	CHECK(s1 && s2 && strcmp(s1, s2) != 0);
	CHECK(chain_is(chain, s2, c2));
	CHECK_INT(kf_mirror_cert_fingerprint(ca, fp2, &e), 0);
	CHECK_STR(fp1, fp2);
	free(c1); free(c2); free(s1); free(s2);
	/* A long DNS name (the certificate's SANs were once read back into a
	 * 54-byte buffer): the certificate is reused, not issued anew at
	 * every start. */
	{
		static const char *const longname[] = {
			"mirror-0123456789-0123456789.cluster.example.internal"};
		CHECK_INT(kf_mirror_tls_ensure(state, longname, 1, &e), 0);
		s1 = slurp(srv);
		CHECK_INT(kf_mirror_tls_ensure(state, longname, 1, &e), 0);
		s2 = slurp(srv);
		CHECK_STR(s1, s2);
		free(s1); free(s2);
	}
	/* A CA whose key is gone is an error, never silently replaced. */
	CHECK(unlink(key) == 0);
	CHECK_INT(kf_mirror_tls_ensure(state, sans, 3, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, state);
	CHECK_INT(kf_mirror_cert_fingerprint(ca, fp2, &e), 0);
	CHECK_STR(fp1, fp2);
	CHECK_INT(kf_mirror_cert_fingerprint("/nonexistent.pem", fp2, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "/nonexistent.pem");
	CHECK_INT(kf_remove_tree(tmpdir, &e), 0);
}

KF_TEST_MAIN(t_digest_valid, t_layout_blobs, t_layout_index, t_hosts_toml, t_tls_ensure)
