/* The OCI model (manifests/oci.c): one grammar for references, names, tags
 * and digests, and the descriptor walk. The "was" comments name the old
 * copy that answered differently before the three grammars became one. */
#include <stdlib.h>
#include <string.h>

#include "manifests/kf_manifests.h"
#include "kf_test.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void t_digest(void)
{
	static const struct { const char *d; int ok; } cases[] = {
		{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 1},
		{"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", 0},
		{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", 0},
		{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", 0},
		{"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0},
		{"sha256:../../../../etc/passwd", 0},
		{"", 0},
		{NULL, 0},
		{"sha256:", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK_INT(kf_oci_digest_valid(cases[i].d), cases[i].ok);
}

static void t_name(void)
{
	static const struct { const char *n; int ok; } cases[] = {
		{"pause", 1}, {"library/nginx", 1}, {"a/b/c", 1}, {"coredns/coredns", 1},
		{"a.b", 1}, {"a_b", 1}, {"a__b", 1}, {"a-b", 1}, {"a---b", 1},
		{"registry.k8s.io", 1}, {"0", 1},
		/* was accepted by the registry client and the mirror server */
		{"a..b", 0}, {"a___b", 0}, {"a._b", 0},
		/* was accepted by the spec/lock check and the mirror server */
		{"a_-b", 0}, {"a-.b", 0}, {"a-_b", 0},
		/* was accepted by the mirror server */
		{"a-", 0}, {"-a", 0}, {"_a", 0}, {"a.", 0}, {".a", 0},
		{"", 0}, {"a//b", 0}, {"a/", 0}, {"/a", 0}, {"A", 0}, {"a b", 0},
		{"h:5000/a", 0}, {"a/../b", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK_INT(kf_oci_name_valid(cases[i].n), cases[i].ok);
		if (kf_oci_name_valid(cases[i].n) != cases[i].ok)
			fprintf(stderr, "  name \"%s\"\n", cases[i].n);
	}
	char longname[300];
	memset(longname, 'a', 255);
	longname[255] = '\0';
	CHECK_INT(kf_oci_name_valid(longname), 1);
	memset(longname, 'a', 256);
	longname[256] = '\0';
	CHECK_INT(kf_oci_name_valid(longname), 0);
}

static void t_tag_domain(void)
{
	static const struct { const char *t; int ok; } tags[] = {
		{"3.10", 1}, {"v1.33.3", 1}, {"_x", 1}, {"Latest", 1}, {"a-b_c.d", 1},
		{"", 0}, {"-x", 0}, {".x", 0}, {"a:b", 0}, {"a/b", 0}, {"a b", 0},
		{NULL, 0},
	};
	static const struct { const char *d; int ok; } hosts[] = {
		{"registry.k8s.io", 1}, {"localhost", 1}, {"127.0.0.1:5000", 1},
		{"h-1.example:443", 1}, {"[::1]:5000", 1}, {"[fe80::1]", 1}, {"Quay.IO", 1},
		/* was accepted by the registry client */
		{"..", 0}, {".reg.io", 0}, {"reg.io.", 0}, {"reg.io.:5000", 0},
		{"-a.io", 0}, {"a-.io", 0}, {"a..io", 0}, {"a:b:c", 0}, {"a:", 0},
		{"a:50x", 0}, {"[]", 0}, {"[::1", 0}, {"a_b.io", 0}, {"", 0},
	};
	for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
		CHECK_INT(kf_oci_tag_valid(tags[i].t), tags[i].ok);
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		CHECK_INT(kf_oci_domain_valid(hosts[i].d, strlen(hosts[i].d)), hosts[i].ok);
		if (kf_oci_domain_valid(hosts[i].d, strlen(hosts[i].d)) != hosts[i].ok)
			fprintf(stderr, "  host \"%s\"\n", hosts[i].d);
	}
	CHECK_INT(kf_oci_domain_len("registry.k8s.io/pause"), 15);
	CHECK_INT(kf_oci_domain_len("h:5000/x"), 6);
	CHECK_INT(kf_oci_domain_len("localhost/x"), 9);
	CHECK_INT(kf_oci_domain_len("Foo/x"), 3);
	CHECK_INT(kf_oci_domain_len("library/nginx"), 0);
	CHECK_INT(kf_oci_domain_len("nginx"), 0);
	CHECK_INT(kf_oci_domain_len("a.io"), 0);
}

static void t_ref_parse(void)
{
	static const struct {
		const char *in, *registry, *repo, *tag, *digest, *name;
	} ok[] = {
		{"registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10", NULL,
		 "registry.k8s.io/pause:3.10"},
		{"nginx:1.28.0-alpine", "docker.io", "library/nginx", "1.28.0-alpine", NULL,
		 "docker.io/library/nginx:1.28.0-alpine"},
		{"docker.io/nginx", "docker.io", "library/nginx", "latest", NULL,
		 "docker.io/library/nginx:latest"},
		{"index.docker.io/flannel/flannel:v0.26.7", "docker.io", "flannel/flannel",
		 "v0.26.7", NULL, "docker.io/flannel/flannel:v0.26.7"},
		{"127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", NULL,
		 "127.0.0.1:5000/a/b/c:t"},
		{"localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest"},
		{"quay.io/coreos/etcd@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		 "quay.io", "coreos/etcd", NULL,
		 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		 "quay.io/coreos/etcd@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"registry-1.docker.io/nginx:1", "docker.io", "library/nginx", "1", NULL,
		 "docker.io/library/nginx:1"},
		{"[::1]:5000/a:t", "[::1]:5000", "a", "t", NULL, "[::1]:5000/a:t"},
		{"r.io/a:t@sha256:" H64, "r.io", "a", "t", "sha256:" H64, "r.io/a:t@sha256:" H64},
	};
	static const char *const bad[] = {
		"", "registry.k8s.io/", "registry.k8s.io/Pause:1", "r.io/a/../b:1",
		"r.io/a:", "r.io/a:-x", "r.io/a@sha256:abc", "r.io/a@md5:00",
		"r.io/a b:1", "r.io//a:1", "r.io/a.:1",
		/* was accepted by the registry client */
		"r.io/a..b:1", "r.io/a___b:1", "reg.io.:5000/a:1", ".r.io/a:1", "a:b:c/x:1",
		/* was accepted by the spec and lock check */
		"r.io/a_-b:1",
		"r.io/a:1@sha256:abc", "r.io/a:1:2", "r.io/:1",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		kf_oci_ref r;
		kf_err e = {0};
		CHECK_INT(kf_oci_ref_parse(ok[i].in, &r, &e), KF_OK);
		CHECK_STR(r.registry, ok[i].registry);
		CHECK_STR(r.repository, ok[i].repo);
		if (ok[i].tag)
			CHECK_STR(r.tag, ok[i].tag);
		else
			CHECK(r.tag == NULL);
		if (ok[i].digest)
			CHECK_STR(r.digest, ok[i].digest);
		else
			CHECK(r.digest == NULL);
		CHECK_STR(r.name, ok[i].name);
		kf_oci_ref_clear(&r);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		kf_oci_ref r;
		kf_err e = {0};
		CHECK_INT(kf_oci_ref_parse(bad[i], &r, &e), KF_EUSAGE);
		CHECK(r.name == NULL);
		if (bad[i][0])
			CHECK_CONTAINS(e.msg, bad[i]);
	}
}

/* The spec and lock rule: registry host, repository, tag; no digest. */
static void t_ref_valid(void)
{
	static const struct { const char *ref, *why; } cases[] = {
		{"registry.k8s.io/pause:3.10", NULL},
		{"docker.io/library/nginx:1.28", NULL},
		{"localhost:5000/a/b:t", NULL},
		{"pause:3.10", "no registry host"},
		{"library/nginx:1", "no registry host"},
		{"registry.k8s.io/pause", "no tag"},
		{"registry.k8s.io/pause@sha256:" H64, "put the digest"},
		{"registry.k8s.io/Pause:1", "bad repository name"},
		{"../pause:3.10", "bad registry host"},
		{".reg.io/pause:3.10", "bad registry host"},
		{"reg.io.:5000/pause:3.10", "bad registry host"},
		{"reg.io/pause:-1", "bad tag"},
		/* was accepted by the spec and lock check */
		{"reg.io/a_-b:1", "bad repository name"},
		{"reg.io/a-.b:1", "bad repository name"},
		{"a-.io/x:1", "bad registry host"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *why = NULL;
		int okv = kf_oci_ref_valid(cases[i].ref, &why);
		CHECK_INT(okv, cases[i].why == NULL);
		if (cases[i].why && !okv)
			CHECK_CONTAINS(why, cases[i].why);
		if (okv != (cases[i].why == NULL))
			fprintf(stderr, "  ref \"%s\"\n", cases[i].ref);
	}
}

struct seen {
	char log[1024];
	size_t n, stop_at;
};

static int record(const kf_oci_desc *d, void *arg, kf_err *e)
{
	struct seen *s = arg;
	size_t l = strlen(s->log);
	static const char *const roles[] = {"M", "C", "L"};

	snprintf(s->log + l, sizeof s->log - l, "%s%zu:%s:%lld:%s:%s:%s:%s;", roles[d->role],
	         d->index, d->digest ? d->digest : "-", (long long)d->size,
	         d->media_type ? d->media_type : "-", d->os ? d->os : "-",
	         d->arch ? d->arch : "-", d->ref_name ? d->ref_name : "-");
	if (++s->n == s->stop_at)
		return kf_err_set(e, KF_EUSAGE, "stop");
	return KF_OK;
}

static void t_children(void)
{
	static const char index[] =
		"{\"schemaVersion\":2,\"mediaType\":\"" KF_MT_OCI_INDEX "\",\"manifests\":["
		"{\"mediaType\":\"m1\",\"digest\":\"d1\",\"size\":10,"
		"\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"},"
		"\"annotations\":{\"org.opencontainers.image.ref.name\":\"oci\","
		"\"io.containerd.image.name\":\"ctr\"}},"
		"{\"digest\":\"d2\",\"size\":-4,"
		"\"annotations\":{\"org.opencontainers.image.ref.name\":\"oci\"}},"
		"7]}";
	static const char manifest[] =
		"{\"schemaVersion\":2,\"config\":{\"digest\":\"c\",\"size\":3},"
		"\"layers\":[{\"digest\":\"l0\",\"size\":1},{\"digest\":\"l1\",\"size\":\"2\"}]}";
	struct seen s = {0};
	kf_oci_shape sh;
	kf_err e = {0};

	CHECK_INT(kf_oci_children(index, sizeof index - 1, record, &s, &sh, &e), KF_OK);
	CHECK_STR(s.log, "M0:d1:10:m1:linux:amd64:ctr;M1:d2:-1:-:-:-:oci;M2:-:-1:-:-:-:-;");
	CHECK_INT(sh.index, 1);
	CHECK_INT(sh.config, 0);
	CHECK_INT(sh.layers, 0);
	CHECK_STR(sh.media_type, KF_MT_OCI_INDEX);

	memset(&s, 0, sizeof s);
	CHECK_INT(kf_oci_children(manifest, sizeof manifest - 1, record, &s, &sh, &e), KF_OK);
	CHECK_STR(s.log, "C0:c:3:-:-:-:-;L0:l0:1:-:-:-:-;L1:l1:-1:-:-:-:-;");
	CHECK_INT(sh.index, 0);
	CHECK_INT(sh.config, 1);
	CHECK_INT(sh.layers, 1);
	CHECK_STR(sh.media_type, "");

	/* the callback's error stops the walk and comes back */
	memset(&s, 0, sizeof s);
	s.stop_at = 2;
	CHECK_INT(kf_oci_children(manifest, sizeof manifest - 1, record, &s, NULL, &e), KF_EUSAGE);
	CHECK_INT(s.n, 2);
	CHECK_STR(e.msg, "stop");

	CHECK_INT(kf_oci_children("[]", 2, record, NULL, &sh, &e), KF_EVERIFY);
	CHECK_INT(kf_oci_children("{", 1, record, NULL, NULL, &e), KF_EVERIFY);
	CHECK_INT(kf_oci_children(NULL, 0, NULL, NULL, NULL, &e), KF_EVERIFY);
	memset(&s, 0, sizeof s);
	CHECK_INT(kf_oci_children("{}", 2, record, &s, &sh, &e), KF_OK);
	CHECK_INT(s.n, 0);
	CHECK_INT(sh.index + sh.config + sh.layers, 0);
}

KF_TEST_MAIN(t_digest, t_name, t_tag_domain, t_ref_parse, t_ref_valid, t_children)
