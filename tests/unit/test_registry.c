/* Registry client pieces that need no network: references, endpoints and
 * --rewrite, credentials files, Www-Authenticate, tokens, media types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundler/kf_bundler.h"
#include "mirror/kf_mirror.h"
#include "kf_test.h"

static void t_endpoint(void)
{
	kf_rewrite rw[] = {
		{"registry.k8s.io", "127.0.0.1:5000"},
		{"docker.io", "proxy.example/dockerhub/"},
		{"quay.io/coreos", "http://10.0.0.1:8080/core"},
	};
	static const struct {
		const char *reg, *repo, *base, *path;
	} cases[] = {
		{"registry.k8s.io", "pause", "https://127.0.0.1:5000", "pause"},
		{"registry.k8s.io", "coredns/coredns", "https://127.0.0.1:5000", "coredns/coredns"},
		{"docker.io", "library/nginx", "https://proxy.example", "dockerhub/library/nginx"},
		{"quay.io", "coreos/etcd", "http://10.0.0.1:8080", "core/etcd"},
		{"quay.io", "other/x", "https://quay.io", "other/x"},
		/* a prefix matches only at a path boundary */
		{"registry.k8s.io.evil.example", "pause", "https://registry.k8s.io.evil.example", "pause"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *base = NULL, *path = NULL;
		kf_err e = {0};
		CHECK_INT(kf_registry_endpoint(cases[i].reg, cases[i].repo, rw, 3, &base,
		                               &path, &e), KF_OK);
		CHECK_STR(base, cases[i].base);
		CHECK_STR(path, cases[i].path);
		free(base);
		free(path);
	}
	/* docker.io without a rewrite goes to its API host */
	{
		char *base = NULL, *path = NULL;
		kf_err e = {0};
		CHECK_INT(kf_registry_endpoint("docker.io", "library/nginx", NULL, 0,
		                               &base, &path, &e), KF_OK);
		CHECK_STR(base, "https://registry-1.docker.io");
		CHECK_STR(path, "library/nginx");
		free(base);
		free(path);
	}
	/* a rewrite that leaves no host/repository is refused */
	{
		kf_rewrite r2 = {"registry.k8s.io/pause", "127.0.0.1:5000"};
		char *base = NULL, *path = NULL;
		kf_err e = {0};
		CHECK_INT(kf_registry_endpoint("registry.k8s.io", "pause", &r2, 1, &base,
		                               &path, &e), KF_EUSAGE);
		CHECK(base == NULL && path == NULL);
	}
}

static void t_challenge(void)
{
	kf_auth_challenge c;
	kf_err e = {0};
	char *url;

	CHECK_INT(kf_auth_parse_challenge(
	                  "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/nginx:pull\"",
	                  &c, &e), KF_OK);
	CHECK_STR(c.scheme, "bearer");
	CHECK_STR(c.realm, "https://auth.docker.io/token");
	CHECK_STR(c.service, "registry.docker.io");
	CHECK_STR(c.scope, "repository:library/nginx:pull");
	url = kf_auth_token_url(&c, "ignored");
	CHECK_STR(url, "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fnginx%3Apull");
	free(url);
	kf_auth_challenge_clear(&c);

	/* no scope in the challenge: the fallback; realm with a query */
	CHECK_INT(kf_auth_parse_challenge("bearer realm=\"https://h/t?x=1\"", &c, &e), KF_OK);
	url = kf_auth_token_url(&c, "repository:a/b:pull,push");
	CHECK_STR(url, "https://h/t?x=1&scope=repository%3Aa%2Fb%3Apull%2Cpush");
	free(url);
	kf_auth_challenge_clear(&c);

	/* two scopes, escaped quote in a value, unquoted token value */
	CHECK_INT(kf_auth_parse_challenge("Bearer realm=https://h/t, service=\"s\\\"q\", scope=\"a:b:pull c:d:pull\"",
	                                  &c, &e), KF_OK);
	CHECK_STR(c.realm, "https://h/t");
	CHECK_STR(c.service, "s\"q");
	url = kf_auth_token_url(&c, NULL);
	CHECK_STR(url, "https://h/t?service=s%22q&scope=a%3Ab%3Apull&scope=c%3Ad%3Apull");
	free(url);
	kf_auth_challenge_clear(&c);

	CHECK_INT(kf_auth_parse_challenge("Basic realm=\"Registry\"", &c, &e), KF_OK);
	CHECK_STR(c.scheme, "basic");
	kf_auth_challenge_clear(&c);

	/* a Bearer challenge must name an http(s) realm */
	CHECK_INT(kf_auth_parse_challenge("Bearer service=\"x\"", &c, &e), KF_EIO);
	CHECK_INT(kf_auth_parse_challenge("Bearer realm=\"file:///etc/passwd\"", &c, &e), KF_EIO);
	CHECK_INT(kf_auth_parse_challenge("Bearer realm=\"https://h", &c, &e), KF_EIO);
	CHECK_INT(kf_auth_parse_challenge("", &c, &e), KF_EIO);
}

/* A string literal and its length. */
#define S(lit) (lit), (sizeof(lit) - 1)

static void t_token(void)
{
	char *t = NULL;
	kf_err e = {0};

	CHECK_INT(kf_auth_parse_token(S("{\"token\":\"abc.def\",\"expires_in\":300}"), "r", &t, &e), KF_OK);
	CHECK_STR(t, "abc.def");
	free(t);
	CHECK_INT(kf_auth_parse_token(S("{\"access_token\":\"xyz\"}"), "r", &t, &e), KF_OK);
	CHECK_STR(t, "xyz");
	free(t);
	CHECK_INT(kf_auth_parse_token(S("{\"token\":\"\",\"access_token\":\"z\"}"), "r", &t, &e), KF_OK);
	CHECK_STR(t, "z");
	free(t);
	CHECK_INT(kf_auth_parse_token(S("{}"), "https://realm", &t, &e), KF_EIO);
	CHECK_CONTAINS(e.msg, "https://realm");
	CHECK_INT(kf_auth_parse_token(S("not json"), "r", &t, &e), KF_EIO);
	/* a token that would split the header line */
	CHECK_INT(kf_auth_parse_token(S("{\"token\":\"a\\r\\nX-Evil: 1\"}"), "r", &t, &e), KF_EIO);
	CHECK(t == NULL);
}

/* Token lifetimes and the early renewal they drive. */
static void t_token_lifetime(void)
{
	kf_registry r;
	kf_fetch_opts o;
	kf_err e = {0};

	CHECK_INT(kf_auth_token_lifetime(S("{\"token\":\"a\",\"expires_in\":300}")), 300);
	/* the distribution spec's default when absent or nonsense */
	CHECK_INT(kf_auth_token_lifetime(S("{\"token\":\"a\"}")), 60);
	CHECK_INT(kf_auth_token_lifetime(S("{\"expires_in\":-5}")), 60);
	CHECK_INT(kf_auth_token_lifetime(S("{\"expires_in\":\"300\"}")), 60);
	CHECK_INT(kf_auth_token_lifetime(S("garbage")), 60);

	kf_fetch_opts_default(&o);
	CHECK_INT(kf_registry_open(&r, "https://h.example", &(kf_creds){0}, &o, &e), KF_OK);
	/* no token, no expiry: never stale; nothing to renew */
	CHECK(!kf_registry_auth_stale(&r, 30));
	CHECK_INT(kf_registry_reauth(&r, "x", &e), KF_OK);
	CHECK(r.auth == NULL);
	/* a token that expires in 10 s is stale with a 30 s margin, not 5 s */
	{
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r.auth_expires_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 10000;
	}
	CHECK(kf_registry_auth_stale(&r, 30));
	CHECK(!kf_registry_auth_stale(&r, 5));
	kf_registry_close(&r);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void t_creds(void)
{
	char dir[] = "/tmp/kf-test-creds.XXXXXX", path[512], path2[512], home[600];
	kf_creds c;
	kf_err e = {0};
	char *hdr;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/auth.json", dir);
	snprintf(path2, sizeof path2, "%s/.docker", dir);
	snprintf(home, sizeof home, "%s/.docker/config.json", dir);
	CHECK(mkdir(path2, 0700) == 0);
	/* dXNlcjpwYTpzcw== is user:pa:ss (a colon in a password is fine) */
	write_text(path, "{\"auths\":{\"https://reg.example:5000/v1/\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}");
	write_text(home, "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"ZDpocA==\"},"
	                 "\"other.example\":{\"auth\":\"bzpw\"}}}");
	setenv("REGISTRY_AUTH_FILE", path, 1);
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("DOCKER_CONFIG");
	setenv("HOME", dir, 1);

	CHECK_INT(kf_creds_lookup("reg.example:5000", &c, &e), KF_OK);
	CHECK_STR(c.user, "user");
	CHECK_STR(c.pass, "pa:ss");
	hdr = kf_auth_basic_header(&c);
	CHECK_STR(hdr, "Authorization: Basic dXNlcjpwYTpzcw==");
	free(hdr);
	kf_creds_clear(&c);
	/* a longer port is another registry */
	CHECK_INT(kf_creds_lookup("reg.example:50001", &c, &e), KF_OK);
	CHECK(c.user == NULL);
	/* docker.io's API host finds docker login's key */
	CHECK_INT(kf_creds_lookup("registry-1.docker.io", &c, &e), KF_OK);
	CHECK_STR(c.user, "d");
	CHECK_STR(c.pass, "hp");
	kf_creds_clear(&c);
	CHECK_INT(kf_creds_lookup("other.example", &c, &e), KF_OK);
	CHECK_STR(c.user, "o");
	kf_creds_clear(&c);
	CHECK_INT(kf_creds_lookup("none.example", &c, &e), KF_OK);
	CHECK(c.user == NULL);

	/* a broken file is an error naming it */
	write_text(path, "{\"auths\": [");
	CHECK_INT(kf_creds_lookup("reg.example:5000", &c, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, path);
	write_text(path, "{\"auths\":{\"reg.example:5000\":{\"auth\":\"!!!!\"}}}");
	CHECK_INT(kf_creds_lookup("reg.example:5000", &c, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "reg.example:5000");

	CHECK_INT(kf_creds_parse("a:b", &c, &e), KF_OK);
	CHECK_STR(c.user, "a");
	CHECK_STR(c.pass, "b");
	kf_creds_clear(&c);
	CHECK_INT(kf_creds_parse("nocolon", &c, &e), KF_EUSAGE);
	CHECK_INT(kf_creds_parse(":x", &c, &e), KF_EUSAGE);

	unlink(path);
	unlink(home);
	rmdir(path2);
	rmdir(dir);
	unsetenv("REGISTRY_AUTH_FILE");
}

static void t_media_type(void)
{
	static const char oci_m[] = "{\"schemaVersion\":2,\"mediaType\":\"" KF_MT_OCI_MANIFEST "\",\"config\":{},\"layers\":[]}";
	static const char oci_bare[] = "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}";
	static const char oci_i[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	static const char d_list[] = "{\"schemaVersion\":2,\"mediaType\":\"" KF_MT_DOCKER_LIST "\",\"manifests\":[]}";
	static const char schema1[] = "{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"1\",\"fsLayers\":[],\"signatures\":[]}";
	static const char weird[] = "{\"schemaVersion\":2,\"mediaType\":\"application/x-other\"}";

	CHECK_STR(kf_manifest_media_type(oci_m, sizeof oci_m - 1, NULL), KF_MT_OCI_MANIFEST);
	CHECK_STR(kf_manifest_media_type(oci_bare, sizeof oci_bare - 1, NULL), KF_MT_OCI_MANIFEST);
	CHECK_STR(kf_manifest_media_type(oci_bare, sizeof oci_bare - 1,
	                                 KF_MT_DOCKER_MANIFEST "; charset=utf-8"), KF_MT_DOCKER_MANIFEST);
	CHECK_STR(kf_manifest_media_type(oci_i, sizeof oci_i - 1, NULL), KF_MT_OCI_INDEX);
	CHECK_STR(kf_manifest_media_type(d_list, sizeof d_list - 1, KF_MT_OCI_INDEX), KF_MT_DOCKER_LIST);
	/* schema 1 is refused whatever the Content-Type says */
	CHECK(kf_manifest_media_type(schema1, sizeof schema1 - 1,
	                             "application/vnd.docker.distribution.manifest.v1+prettyjws") == NULL);
	CHECK(kf_manifest_media_type(schema1, sizeof schema1 - 1, KF_MT_DOCKER_MANIFEST) == NULL);
	CHECK(kf_manifest_media_type(weird, sizeof weird - 1, NULL) == NULL);
	CHECK(kf_manifest_media_type("[]", 2, KF_MT_OCI_MANIFEST) == NULL);
}

KF_TEST_MAIN(t_endpoint, t_challenge, t_token, t_token_lifetime,
             t_creds, t_media_type)
