/* Spec parser, URL-to-entry mapping and path rules: table-driven. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifests/kf_manifests.h"
#include "kf_test.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char dir[] = "/tmp/kf-test-spec.XXXXXX";

/* Writes text to DIR/spec.yaml and loads it. */
static int load(const char *text, kf_spec **s, kf_err *e, char *path, size_t n)
{
	FILE *f;
	snprintf(path, n, "%s/spec.yaml", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return kf_spec_load(path, s, e);
}

static const char *head =
	"apiVersion: kubeferry.io/v1\n"
	"kind: Bundle\n"
	"metadata: {name: k8s, version: \"1.33.3\"}\n"
	"spec:\n"
	"  architectures: [amd64, arm64]\n";

static void t_valid(void)
{
	char text[4096], path[256];
	kf_spec *s = NULL;
	kf_err e = {0};
	snprintf(text, sizeof text, "%s"
	         "  components:\n"
	         "    - name: kubeadm\n"
	         "      version: \"1.33.3\"\n"
	         "      url: https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubeadm\n"
	         "      sha256: {amd64: " H ", arm64: " H2 "}\n"
	         "    - name: tool\n"
	         "      version: \"1\"\n"
	         "      url: src/tool-{version}\n"
	         "      sha256: {amd64: " H ", arm64: " H "}\n"
	         "  images:\n"
	         "    - ref: registry.k8s.io/pause:3.10\n"
	         "    - ref: docker.io/library/nginx:1.28\n"
	         "      digest: sha256:" H "\n"
	         "    - ref: registry.k8s.io/etcd:3.5.21-0\n"
	         "  install: {etcd: kubeadm, mirror: \"https://10.0.0.1:5000\"}\n", head);
	CHECK_INT(load(text, &s, &e, path, sizeof path), KF_OK);
	if (!s) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	CHECK_STR(s->name, "k8s");
	CHECK_STR(s->version, "1.33.3");
	CHECK_STR(s->kube_version, "1.33.3"); /* defaults to metadata.version */
	CHECK_STR(s->dir, dir);
	CHECK_INT(s->narch, 2);
	CHECK_STR(s->archs[1], "arm64");
	CHECK_INT(s->ncomp, 2);
	CHECK_STR(s->components[0].sha256[1], H2);
	CHECK_INT(s->components[0].line, 7);
	CHECK_INT(s->components[0].col, 7);
	{
		char *u = kf_spec_source_url(&s->components[0], "arm64");
		CHECK_STR(u, "https://dl.k8s.io/release/v1.33.3/bin/linux/arm64/kubeadm");
		free(u);
		u = kf_spec_source_url(&s->components[1], "amd64");
		CHECK_STR(u, "src/tool-1");
		free(u);
	}
	CHECK_INT(s->nimg, 3);
	CHECK(s->images[0].digest == NULL);
	CHECK_STR(s->images[1].digest, "sha256:" H);
	CHECK_STR(s->install.etcd, "kubeadm");
	CHECK_STR(s->install.cni, "flannel");
	CHECK_STR(s->install.pod_subnet, "10.244.0.0/16");
	CHECK_STR(s->install.service_subnet, "10.96.0.0/12");
	CHECK_STR(s->install.mirror, "https://10.0.0.1:5000");
	kf_spec_free(s);
}

struct bad_case {
	const char *body;   /* appended after head */
	const char *where;  /* expected ":LINE:COL: " right after the path */
	const char *msg;    /* expected substring */
};

#define COMP(url, sums) \
	"  components:\n" \
	"    - name: kubeadm\n" \
	"      version: \"1.33.3\"\n" \
	"      url: " url "\n" \
	"      sha256: " sums "\n"
#define GOOD_URL "https://dl.k8s.io/v{version}/{arch}/kubeadm"
#define GOOD_SUMS "{amd64: " H ", arm64: " H "}"

static const struct bad_case bad[] = {
	{"  foo: 1\n" COMP(GOOD_URL, GOOD_SUMS), ":6:3: ", "unknown key \"foo\" in spec"},
	{"  components: {}\n", ":6:15: ", "spec.components must be a sequence, not a mapping"},
	{"  components: []\n  images: [{ref: registry.k8s.io/x:1}]\n  images: []\n",
	 ":8:3: ", "duplicate key \"images\""},
	{"  images: []\n", ":5:3: ", "missing required key \"components\" in spec"},
	{COMP(GOOD_URL, GOOD_SUMS)
	 "    - name: kubeadm\n      version: \"1\"\n      url: " GOOD_URL "\n      sha256: " GOOD_SUMS "\n",
	 ":11:13: ", "duplicate component \"kubeadm\" (first at line 7)"},
	{COMP("https://dl.k8s.io/v{version}/{os}/kubeadm", GOOD_SUMS), ":9:12: ",
	 "bad placeholder \"{os}\""},
	{COMP("https://dl.k8s.io/v{version}/arch}/kubeadm", GOOD_SUMS), ":9:12: ",
	 "unmatched '}'"},
	{COMP(GOOD_URL, "{amd64: " H ", arm64: 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef}"),
	 ":10:96: ", "uppercase hex"},
	{COMP(GOOD_URL, "{amd64: " H ", arm64: abc}"), ":10:96: ", "not 64 lowercase hex"},
	{COMP(GOOD_URL, "{amd64: " H "}"), ":10:15: ", "missing sha256 for architecture arm64"},
	{COMP(GOOD_URL, "{amd64: " H ", arm64: " H ", s390x: " H "}"), ":10:162: ",
	 "not in spec.architectures"},
	{COMP(GOOD_URL, "{amd64: " H ", arm64: " H ", sparc: " H "}"), ":10:162: ",
	 "unknown architecture \"sparc\""},
	{COMP(GOOD_URL, "[" H "]"), ":10:15: ", "sha256 must be a mapping, not a sequence"},
	{COMP("https://dl.k8s.io/../{arch}/kubeadm", GOOD_SUMS), ":9:12: ", "unsafe path"},
	{COMP("https://dl.k8s.io/x?{arch}", GOOD_SUMS), ":9:12: ", "'?' is not allowed"},
	{COMP("ftp://dl.k8s.io/{arch}", GOOD_SUMS), ":9:12: ", "unsupported source"},
	{COMP("../outside/{arch}", GOOD_SUMS), ":9:12: ", "unsafe path"},
	{COMP("https://dl.k8s.io/kubeadm", GOOD_SUMS "\n  images: []"), NULL, NULL}, /* same bytes: fine */
	{COMP("https://dl.k8s.io/kubeadm", "{amd64: " H ", arm64: " H2 "}"), ":7:7: ",
	 "same source path"},
	{"  components: []\n  images:\n    - ref: pause:3.10\n", ":8:12: ", "no registry host"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/pause\n", ":8:12: ", "no tag"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/Pause:1\n", ":8:12: ",
	 "bad repository name"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/pause:3.10\n      digest: sha256:abc\n",
	 ":9:15: ", "bad digest"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/pause:3.10\n    - ref: registry.k8s.io/pause:3.10\n",
	 ":9:12: ", "duplicate image"},
	{"  components: []\n  install: {etcd: external}\n", ":7:19: ", "install.etcd must be"},
	{"  components: []\n  install: {podSubnet: 10.0.0.0/40}\n", ":7:24: ", "not a CIDR"},
	{"  components: []\n  install: {mirror: \"http://x\"}\n", ":7:21: ", "not an https:// URL"},
	{"  components: []\n  architectures: [amd64]\n", ":7:3: ", "duplicate key \"architectures\""},
	{"  components: [\n", ":7:1: ", "not valid YAML"},
	{"  components: []\n  kubernetesVersion: [1]\n", ":7:22: ", "must be a scalar"},
	{"  components: *x\n", ":6:15: ", "aliases are not allowed"},
	/* install.etcd: kubeadm needs the etcd image kubeadm runs (1.33.3 here). */
	{"  components: []\n  images:\n    - ref: registry.k8s.io/pause:3.10\n  install: {etcd: kubeadm}\n",
	 ":9:19: ", "runs etcd from registry.k8s.io/etcd:3.5.21-0 (kubeadm's image for Kubernetes 1.33.3)"},
	{"  components: []\n  install: {etcd: kubeadm}\n", ":7:19: ", "not in spec.images"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/etcd:3.5.16-0\n  install: {etcd: kubeadm}\n",
	 ":9:19: ", "add \"- ref: registry.k8s.io/etcd:3.5.21-0\""},
	{"  components: []\n  images:\n    - ref: quay.io/coreos/etcd:v3.5.21\n  install: {etcd: kubeadm}\n",
	 ":9:19: ", "not in spec.images"},
	{"  components: []\n  images:\n    - ref: registry.k8s.io/etcd:3.5.21-0\n  install: {etcd: kubeadm}\n",
	 NULL, NULL},
	{"  components: []\n  install: {etcd: host}\n", NULL, NULL},
	/* A release the table does not know: any registry.k8s.io/etcd image. */
	{"  kubernetesVersion: \"1.31.2\"\n  components: []\n  install: {etcd: kubeadm}\n",
	 ":8:19: ", "spec.images has no registry.k8s.io/etcd image"},
	{"  kubernetesVersion: \"1.31.2\"\n  components: []\n  images:\n"
	 "    - ref: registry.k8s.io/etcd:3.5.15-0\n  install: {etcd: kubeadm}\n", NULL, NULL},
};

/* kubeadm's SupportedEtcdVersion per release (kubeadm_etcd.c's table). */
static void t_kubeadm_etcd_tag(void)
{
	static const struct { const char *v, *tag; } t[] = {
		{"1.33.3", "3.5.21-0"}, {"v1.33.0", "3.5.21-0"}, {"1.33.5", "3.5.21-0"},
		{"1.33.6", "3.5.24-0"}, {"1.32.10", "3.5.24-0"}, {"1.33.3-rc.1", "3.5.21-0"},
		{"1.32.9", NULL}, {"1.33.7", NULL}, {"1.34.1", NULL}, {"2.33.3", NULL},
		{"1.33", NULL}, {"1.33.x", NULL}, {"1.33.3x", NULL}, {"", NULL}, {NULL, NULL},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const char *got = kf_kubeadm_etcd_tag(t[i].v);
		if (t[i].tag)
			CHECK_STR(got, t[i].tag);
		else
			CHECK(got == NULL);
	}
}

static void t_bad(void)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[8192], path[256], want[400];
		kf_spec *s = NULL;
		kf_err e = {0};
		int rc;
		snprintf(text, sizeof text, "%s%s", head, bad[i].body);
		rc = load(text, &s, &e, path, sizeof path);
		if (!bad[i].where) {
			CHECK_INT(rc, KF_OK);
			if (rc)
				fprintf(stderr, "case %zu: %s\n", i, e.msg);
			kf_spec_free(s);
			continue;
		}
		CHECK_INT(rc, KF_EUSAGE);
		CHECK(s == NULL);
		snprintf(want, sizeof want, "%s%s", path, bad[i].where);
		if (strncmp(e.msg, want, strlen(want)) || !strstr(e.msg, bad[i].msg)) {
			fprintf(stderr, "case %zu: got \"%s\", want \"%s...%s\"\n", i, e.msg, want,
			        bad[i].msg);
			CHECK(0);
		}
		kf_spec_free(s);
	}
}

static void t_whole_file_errors(void)
{
	char path[256];
	kf_spec *s = NULL;
	kf_err e = {0};
	static const char tarish[] = "ustar\0\0\0\x01\x02";
	FILE *f;

	CHECK_INT(load("just words\n", &s, &e, path, sizeof path), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, ":1:1: a spec must be a mapping, not a scalar");
	CHECK_INT(load("", &s, &e, path, sizeof path), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, ":1:1: empty document");
	CHECK_INT(load("apiVersion: kubeferry.io/v2\n", &s, &e, path, sizeof path), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, ":1:13: apiVersion must be");
	CHECK_INT(load("a: 1\n---\nb: 2\n", &s, &e, path, sizeof path), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "more than one YAML document");
	f = fopen(path, "wb");
	fwrite(tarish, 1, sizeof tarish, f);
	fclose(f);
	CHECK_INT(kf_spec_load(path, &s, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "not valid YAML");
	CHECK_INT(kf_spec_load("/nonexistent/spec.yaml", &s, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "/nonexistent/spec.yaml");
	CHECK(s == NULL);
}

static const struct { const char *url, *path; } maps[] = {
	{"https://dl.k8s.io/release/v1/x", "files/dl.k8s.io/release/v1/x"},
	{"http://Example.COM:8080/a/b", "files/example.com:8080/a/b"},
	{"file:///abs/p", "files/local/abs/p"},
	{"a/b", "files/local/a/b"},
	{"x", "files/local/x"},
	{"https://dl.k8s.io/a/../b", NULL},
	{"https://dl.k8s.io/a/./b", NULL},
	{"https://dl.k8s.io/a//b", NULL},
	{"https://dl.k8s.io/a/", NULL},
	{"https://dl.k8s.io/", NULL},
	{"https://dl.k8s.io", NULL},
	{"https:///x", NULL},
	{"https://user:pw@host/x", NULL},
	{"https://dl.k8s.io/x?y=1", NULL},
	{"https://dl.k8s.io/x#frag", NULL},
	{"https://dl.k8s.io/a\\b", NULL},
	{"https://dl.k8s.io/a\tb", NULL},
	{"https://dl.k8s.io/a\x7f", NULL},
	{"file://host/p", NULL},
	{"file:///../etc/passwd", NULL},
	{"/abs/p", NULL},
	{"../a", NULL},
	{"./a", NULL},
	{"a/..", NULL},
	{"ftp://h/x", NULL},
	{"", NULL},
};

static void t_entry_path(void)
{
	for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
		kf_err e = {0};
		char *p = kf_entry_path_for_url(maps[i].url, &e);
		if (maps[i].path) {
			CHECK_STR(p, maps[i].path);
		} else {
			if (p)
				fprintf(stderr, "case %zu: %s accepted as %s\n", i, maps[i].url, p);
			CHECK(p == NULL);
			CHECK_INT(e.code, KF_EUSAGE);
		}
		free(p);
	}
}

static void t_path_safe(void)
{
	static const struct { const char *p; int ok; } t[] = {
		{"files/a/b", 1}, {"a", 1}, {"images/blobs/sha256/ab", 1}, {"a.b/..c/d..", 1},
		{"", 0}, {"/a", 0}, {"a/../b", 0}, {"..", 0}, {".", 0}, {"a/.", 0}, {"./a", 0},
		{"a//b", 0}, {"a/", 0}, {"a\\b", 0}, {"a\nb", 0}, {"a\x01", 0}, {"a\x7f", 0},
		{"caf\xc3\xa9", 0}, {NULL, 0},
	};
	char longp[1100];
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (kf_path_safe(t[i].p) != t[i].ok)
			fprintf(stderr, "path case %zu\n", i);
		CHECK_INT(kf_path_safe(t[i].p), t[i].ok);
	}
	memset(longp, 'a', sizeof longp);
	longp[1024] = '\0';
	CHECK_INT(kf_path_safe(longp), 1);
	longp[1024] = 'a';
	longp[1025] = '\0';
	CHECK_INT(kf_path_safe(longp), 0);
}

static void t_archs(void)
{
	CHECK(kf_arch_known("amd64") && kf_arch_known("arm64") && kf_arch_known("arm") &&
	      kf_arch_known("ppc64le") && kf_arch_known("s390x") && kf_arch_known("riscv64"));
	CHECK(!kf_arch_known("x86_64") && !kf_arch_known("AMD64") && !kf_arch_known("") &&
	      !kf_arch_known(NULL));
}

static void t_setup(void)
{
	CHECK(mkdtemp(dir) != NULL);
}

static void t_teardown(void)
{
	char path[256];
	snprintf(path, sizeof path, "%s/spec.yaml", dir);
	unlink(path);
	rmdir(dir);
}

KF_TEST_MAIN(t_setup, t_valid, t_bad, t_kubeadm_etcd_tag, t_whole_file_errors, t_entry_path,
             t_path_safe, t_archs, t_teardown)
