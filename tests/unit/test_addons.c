/* The flannel addon: rendering (values, determinism, hostile values, valid
 * YAML) and the build's rule for when a bundle gets addons/flannel.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "bundler/kf_bundler.h"
#include "kf_test.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FL "docker.io/flannel/flannel:v0.27.3"
#define CP "docker.io/flannel/flannel-cni-plugin:v1.7.1-flannel1"

static char dir[] = "/tmp/kf-test-addons.XXXXXX";

/* Number of YAML documents in buf, or -1 when libyaml rejects it. */
static int yaml_docs(const char *buf, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0, done = 0;

	if (!yaml_parser_initialize(&p))
		return -1;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			docs = -1;
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			docs++;
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return docs;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void t_render(void)
{
	char *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	kf_err e = {0};

	CHECK_INT(kf_addons_flannel_yaml(FL, CP, "10.42.0.0/16", &a, &al, &e), KF_OK);
	CHECK_INT(kf_addons_flannel_yaml(FL, CP, "10.42.0.0/16", &b, &bl, &e), KF_OK);
	if (!a || !b)
		goto out;
	/* Deterministic: bundles are reproducible. */
	CHECK_INT(al, bl);
	CHECK(!memcmp(a, b, al));
	CHECK_INT(strlen(a), al);
	CHECK(!strstr(a, "@FLANNEL@"));
	CHECK(!strstr(a, "@CNI_PLUGIN@"));
	CHECK(!strstr(a, "@NETWORK@"));
	CHECK_INT(count(a, "image: \"" FL "\"\n"), 2);
	CHECK_INT(count(a, "image: \"" CP "\"\n"), 1);
	CHECK_CONTAINS(a, "\"Network\": \"10.42.0.0/16\",");
	CHECK_CONTAINS(a, "\"Type\": \"vxlan\"");
	CHECK_CONTAINS(a, "command: [/opt/bin/flanneld]");
	CHECK_CONTAINS(a, "args: [--ip-masq, --kube-subnet-mgr]");
	CHECK_CONTAINS(a, "/etc/cni/net.d/10-flannel.conflist");
	CHECK_CONTAINS(a, "priorityClassName: system-node-critical");
	CHECK_CONTAINS(a, "type: FileOrCreate");
	CHECK_INT(count(a, "\nkind: "), 6);
	/* Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding,
	 * ConfigMap, DaemonSet. */
	CHECK_INT(yaml_docs(a, al), 6);
out:
	free(a);
	free(b);
}

/* A value that could close the quoted scalar or start a new key is refused
 * rather than written into a manifest the cluster applies. */
static void t_render_hostile(void)
{
	static const char *const bad[] = {
		"docker.io/flannel/flannel:v1\"\nkind: Secret",
		"docker.io/flannel/flannel:v1 #",
		"",
		"a\\b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *out = (char *)1;
		size_t len = 7;
		kf_err e = {0};
		CHECK_INT(kf_addons_flannel_yaml(bad[i], CP, "10.244.0.0/16", &out, &len, &e),
		          KF_EUSAGE);
		CHECK(out == NULL);
		CHECK_CONTAINS(e.msg, "flannel image");
	}
	{
		char *out = NULL;
		size_t len = 0;
		kf_err e = {0};
		CHECK_INT(kf_addons_flannel_yaml(FL, CP, "10.0.0.0/8\"}", &out, &len, &e),
		          KF_EUSAGE);
		CHECK_CONTAINS(e.msg, "pod subnet");
	}
}

/* Writes a spec with the given images and install lines to DIR/N/spec.yaml,
 * loads it and renders into DIR/N/work. */
static int build_case(int n, const char *images, const char *install,
                      kf_build_set *set, char *work, size_t wn, kf_err *e)
{
	char sub[256], path[300];
	kf_spec *s = NULL;
	FILE *f;
	int rc;

	snprintf(sub, sizeof sub, "%s/%d", dir, n);
	snprintf(work, wn, "%s/work", sub);
	snprintf(path, sizeof path, "%s/spec.yaml", sub);
	if (mkdir(sub, 0755) || mkdir(work, 0755) || !(f = fopen(path, "w")))
		return -1;
	fprintf(f, "apiVersion: kubeferry.io/v1\nkind: Bundle\n"
	        "metadata: {name: k8s, version: \"1.33.3\"}\n"
	        "spec:\n  architectures: [amd64]\n"
	        "  components:\n    - name: tool\n      version: \"1\"\n"
	        "      url: src/tool\n      sha256: {amd64: " H "}\n%s%s",
	        images, install);
	fclose(f);
	rc = kf_spec_load(path, &s, e);
	if (rc == KF_OK)
		rc = kf_addons_render(s, work, set, e);
	kf_spec_free(s);
	return rc;
}

static void t_build_rule(void)
{
	char work[300], path[400];
	kf_build_set set = {0};
	kf_err e = {0};
	struct stat st;
	char sha[KF_SHA256_HEX];
	uint64_t size = 0;

	/* Default cni (flannel) with both images: the addon, listed. */
	CHECK_INT(build_case(1, "  images:\n    - ref: registry.k8s.io/pause:3.10\n"
	                     "    - ref: " CP "\n    - ref: " FL "\n",
	                     "  install: {podSubnet: 10.42.0.0/16}\n", &set, work,
	                     sizeof work, &e), KF_OK);
	CHECK_INT(set.n, 1);
	if (set.n == 1) {
		snprintf(path, sizeof path, "%s/addons/flannel.yaml", work);
		CHECK_STR(set.entries[0].path, "addons/flannel.yaml");
		CHECK_INT(set.entries[0].mode, 0644);
		CHECK_INT(stat(path, &st), 0);
		CHECK_INT(st.st_mode & 07777, 0644);
		CHECK_INT(kf_sha256_file(path, sha, &size, &e), KF_OK);
		CHECK_STR(set.entries[0].sha256, sha);
		CHECK_INT(set.entries[0].size, size);
		{
			char *want = NULL, *got = NULL;
			size_t wl = 0, gl = 0;
			CHECK_INT(kf_addons_flannel_yaml(FL, CP, "10.42.0.0/16", &want, &wl, &e), KF_OK);
			CHECK_INT(kf_read_file(path, 1 << 20, &got, &gl, &e), KF_OK);
			CHECK(want && got && wl == gl && !memcmp(want, got, wl));
			free(want);
			free(got);
		}
	}
	kf_build_set_clear(&set);

	/* cni: none: nothing, even with the images. */
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(2, "  images:\n    - ref: " CP "\n    - ref: " FL "\n",
	                     "  install: {cni: none}\n", &set, work, sizeof work, &e),
	          KF_OK);
	CHECK_INT(set.n, 0);
	snprintf(path, sizeof path, "%s/addons", work);
	CHECK(access(path, F_OK) != 0);
	kf_build_set_clear(&set);

	/* Images missing (the plugin; or a repository that only looks like
	 * flannel's): no addon, no error. */
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(3, "  images:\n    - ref: " FL "\n", "", &set, work,
	                     sizeof work, &e), KF_OK);
	CHECK_INT(set.n, 0);
	kf_build_set_clear(&set);
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(4, "  images:\n    - ref: " CP "\n"
	                     "    - ref: docker.io/notflannel/flannel:v0.27.3\n", "",
	                     &set, work, sizeof work, &e), KF_OK);
	CHECK_INT(set.n, 0);
	kf_build_set_clear(&set);

	/* A mirror path in front of the repository still matches. */
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(5, "  images:\n    - ref: harbor.example/proxy/flannel/flannel-cni-plugin:v1\n"
	                     "    - ref: harbor.example/proxy/flannel/flannel:v2\n", "",
	                     &set, work, sizeof work, &e), KF_OK);
	CHECK_INT(set.n, 1);
	kf_build_set_clear(&set);

	/* Two flannel images: which one to run is not guessed. */
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(6, "  images:\n    - ref: " CP "\n    - ref: " FL "\n"
	                     "    - ref: docker.io/flannel/flannel:v0.26.0\n", "",
	                     &set, work, sizeof work, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "spec.yaml:");
	CHECK_CONTAINS(e.msg, "docker.io/flannel/flannel:v0.26.0");
	CHECK_INT(set.n, 0);
	kf_build_set_clear(&set);

	/* An unknown cni is still a spec error. */
	memset(&set, 0, sizeof set);
	CHECK_INT(build_case(7, "", "  install: {cni: calico}\n", &set, work,
	                     sizeof work, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "install.cni must be \"flannel\" or \"none\"");
	kf_build_set_clear(&set);
}

static void setup(void)
{
	CHECK(mkdtemp(dir) != NULL);
}

static void teardown(void)
{
	kf_err e = {0};
	CHECK_INT(kf_remove_tree(dir, &e), KF_OK);
}

KF_TEST_MAIN(setup, t_render, t_render_hostile, t_build_rule, teardown)
