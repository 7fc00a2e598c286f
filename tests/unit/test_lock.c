/* Lock emitter and strict parser: canonical bytes, round trip, and one
 * rejected shape per rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/kf_manifests.h"
#include "kf_test.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const char golden[] =
	"format: 1\n"
	"name: \"k8s\"\n"
	"version: \"1.33.3\"\n"
	"kubernetesVersion: \"1.33.3\"\n"
	"architectures: [\"amd64\", \"arm64\"]\n"
	"created: \"2023-11-14T22:13:20Z\"\n"
	"builder: \"kubeferry 0.1.0 \\\"dev\\\" \\\\\"\n"
	"components:\n"
	"  - name: \"kubeadm\"\n"
	"    version: \"1.33.3\"\n"
	"    arch: \"amd64\"\n"
	"    url: \"https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm\"\n"
	"    sha256: \"" H "\"\n"
	"    path: \"files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm\"\n"
	"images:\n"
	"  - ref: \"registry.k8s.io/pause:3.10\"\n"
	"    digest: \"sha256:" H2 "\"\n"
	"    platforms: [\"linux/amd64\", \"linux/arm64\"]\n"
	"install:\n"
	"  etcd: \"host\"\n"
	"  cni: \"flannel\"\n"
	"  podSubnet: \"10.244.0.0/16\"\n"
	"  serviceSubnet: \"10.96.0.0/12\"\n"
	"  mirror: null\n"
	"entries:\n"
	"  - path: \"addons/flannel.yaml\"\n"
	"    size: 0\n"
	"    mode: \"0644\"\n"
	"    sha256: \"" H2 "\"\n"
	"  - path: \"files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm\"\n"
	"    size: 18446744073709551615\n"
	"    mode: \"0755\"\n"
	"    sha256: \"" H "\"\n";

static kf_lock *sample(void)
{
	kf_lock *l = calloc(1, sizeof *l);
	l->format = KF_FORMAT_VERSION;
	l->name = strdup("k8s");
	l->version = strdup("1.33.3");
	l->kube_version = strdup("1.33.3");
	l->archs[0] = strdup("amd64");
	l->archs[1] = strdup("arm64");
	l->narch = 2;
	l->created = strdup("2023-11-14T22:13:20Z");
	l->builder = strdup("kubeferry 0.1.0 \"dev\" \\");
	l->components = calloc(1, sizeof *l->components);
	l->ncomp = 1;
	l->components[0].name = strdup("kubeadm");
	l->components[0].version = strdup("1.33.3");
	l->components[0].arch = strdup("amd64");
	l->components[0].url = strdup("https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm");
	l->components[0].sha256 = strdup(H);
	l->components[0].path = strdup("files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm");
	l->images = calloc(1, sizeof *l->images);
	l->nimg = 1;
	l->images[0].ref = strdup("registry.k8s.io/pause:3.10");
	l->images[0].digest = strdup("sha256:" H2);
	l->images[0].platforms[0] = strdup("linux/amd64");
	l->images[0].platforms[1] = strdup("linux/arm64");
	l->images[0].nplat = 2;
	l->install.etcd = strdup("host");
	l->install.cni = strdup("flannel");
	l->install.pod_subnet = strdup("10.244.0.0/16");
	l->install.service_subnet = strdup("10.96.0.0/12");
	/* given unsorted: emit sorts in place */
	l->entries = calloc(2, sizeof *l->entries);
	l->nentries = 2;
	l->entries[0].path = strdup("files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm");
	l->entries[0].size = UINT64_MAX;
	l->entries[0].mode = 0755;
	memcpy(l->entries[0].sha256, H, KF_SHA256_HEX);
	l->entries[1].path = strdup("addons/flannel.yaml");
	l->entries[1].size = 0;
	l->entries[1].mode = 0644;
	memcpy(l->entries[1].sha256, H2, KF_SHA256_HEX);
	return l;
}

static void t_emit_golden_and_round_trip(void)
{
	kf_lock *l = sample(), *p = NULL;
	char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;
	kf_err e = {0};

	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
	CHECK_STR(out, golden);
	CHECK_INT(len, strlen(golden));
	CHECK_STR(l->entries[0].path, "addons/flannel.yaml");
	CHECK_INT(kf_lock_parse(out, len, "bundle.yaml", &p, &e), KF_OK);
	if (!p) {
		fprintf(stderr, "%s\n", e.msg);
		goto out;
	}
	CHECK_STR(p->builder, "kubeferry 0.1.0 \"dev\" \\");
	CHECK_INT(p->entries[1].size, UINT64_MAX);
	CHECK_INT(p->entries[1].mode, 0755);
	CHECK_STR(p->entries[0].sha256, H2);
	CHECK(p->install.mirror == NULL);
	CHECK(kf_lock_find(p, "addons/flannel.yaml") == &p->entries[0]);
	CHECK(kf_lock_find(p, "files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm") ==
	      &p->entries[1]);
	CHECK(kf_lock_find(p, "addons") == NULL);
	CHECK(kf_lock_find(p, "zzz") == NULL);
	CHECK(kf_lock_total_size(p) == UINT64_MAX);
	/* emit(parse(x)) == x, byte for byte */
	CHECK_INT(kf_lock_emit(p, &out2, &len2, &e), KF_OK);
	CHECK_INT(len2, len);
	CHECK(out2 && !memcmp(out, out2, len));
out:
	free(out);
	free(out2);
	kf_lock_free(l);
	kf_lock_free(p);
}

static void t_emit_with_mirror_and_empty_lists(void)
{
	kf_lock *l = sample(), *p = NULL;
	char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;
	kf_err e = {0};

	l->install.mirror = strdup("https://10.0.0.5:5443");
	for (size_t i = 0; i < l->nimg; i++) {
		free(l->images[i].ref);
		free(l->images[i].digest);
		for (size_t j = 0; j < l->images[i].nplat; j++)
			free(l->images[i].platforms[j]);
	}
	l->nimg = 0;
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
	CHECK_CONTAINS(out, "images: []\n");
	CHECK_CONTAINS(out, "  mirror: \"https://10.0.0.5:5443\"\n");
	CHECK_INT(kf_lock_parse(out, len, "x", &p, &e), KF_OK);
	if (p) {
		CHECK_STR(p->install.mirror, "https://10.0.0.5:5443");
		CHECK_INT(kf_lock_emit(p, &out2, &len2, &e), KF_OK);
		CHECK(out2 && len2 == len && !memcmp(out, out2, len));
	}
	free(out);
	free(out2);
	kf_lock_free(l);
	kf_lock_free(p);
}

/* emit sorts the entries in place: set both every time */
static void set_entries(kf_lock *l, const char *a, const char *b)
{
	free(l->entries[0].path);
	free(l->entries[1].path);
	l->entries[0].path = strdup(a);
	l->entries[1].path = strdup(b);
	l->entries[0].mode = l->entries[1].mode = 0644;
}

static void t_emit_refuses_invalid(void)
{
	kf_lock *l = sample();
	char *out = NULL;
	size_t len = 0;
	kf_err e = {0};

	set_entries(l, "files/a", "../etc/passwd");
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "unsafe entry path \"../etc/passwd\"");
	CHECK(out == NULL);
	set_entries(l, "files/x", "files/x");
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "duplicate entry \"files/x\"");
	set_entries(l, "files/a", "caf\xc3\xa9");
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "\"path\"");
	set_entries(l, "files/a", "files/b");
	l->entries[1].mode = 04755;
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "mode");
	set_entries(l, "files/a", "files/b");
	free(l->builder);
	l->builder = strdup("kubeferry\t1");
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "builder contains a control");
	free(l->builder);
	l->builder = strdup("kubeferry 1");
	free(l->created);
	l->created = NULL;
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "\"created\"");
	CHECK(out == NULL);
	kf_lock_free(l);
}

/* Each case replaces one substring of the golden lock. */
static const struct { const char *from, *to, *where, *msg; } bad[] = {
	{"format: 1\n", "format: 2\n", ":1:9: ", "unsupported lock format 2"},
	{"format: 1\n", "format: \"1\"\n", ":1:9: ", "decimal integer"},
	{"format: 1\n", "", ":1:1: ", "missing key \"format\""},
	{"name: \"k8s\"\n", "name: \"k8s\"\nextra: 1\n", ":3:1: ", "unknown key \"extra\""},
	{"name: \"k8s\"\n", "", ":1:1: ", "missing key \"name\""},
	{"name: \"k8s\"\n", "name: \"k8s\"\nname: \"k9s\"\n", ":3:1: ", "duplicate key \"name\""},
	{"name: \"k8s\"\n", "name: [\"k8s\"]\n", ":2:7: ", "name must be a scalar"},
	{"[\"amd64\", \"arm64\"]", "[\"amd64\", \"amd64\"]", ":5:26: ", "duplicate \"amd64\""},
	{"[\"amd64\", \"arm64\"]", "[\"amd64\", \"sparc\"]", ":5:26: ", "bad value \"sparc\""},
	{"[\"amd64\", \"arm64\"]", "[]", ":5:16: ", "1 to 8 items"},
	{"2023-11-14T22:13:20Z", "2023-11-14 22:13:20", ":6:10: ", "is not YYYY-MM-DDTHH:MM:SSZ"},
	{"    arch: \"amd64\"\n", "    arch: \"s390x\"\n", ":11:11: ", "not in architectures"},
	{"    sha256: \"" H "\"\n    path", "    sha256: \"" H "0\"\n    path", ":13:13: ",
	 "component sha256 is not 64 lowercase hex"},
	{"    path: \"files/dl.k8s.io/release", "    path: \"files/other/release", ":14:11: ",
	 "does not match its url"},
	{"digest: \"sha256:" H2, "digest: \"sha512:" H2, ":17:13: ", "bad digest"},
	{"ref: \"registry.k8s.io/pause:3.10\"", "ref: \"pause:3.10\"", ":16:10: ", "no registry host"},
	{"ref: \"registry.k8s.io/pause:3.10\"", "ref: \"../pause:3.10\"", ":16:10: ", "bad registry host"},
	{"ref: \"registry.k8s.io/pause:3.10\"", "ref: \".reg.io/pause:3.10\"", ":16:10: ", "bad registry host"},
	{"ref: \"registry.k8s.io/pause:3.10\"", "ref: \"reg.io.:5000/pause:3.10\"", ":16:10: ", "bad registry host"},
	{"[\"linux/amd64\", \"linux/arm64\"]", "[\"linux\"]", ":18:17: ", "bad value \"linux\""},
	{"  etcd: \"host\"\n", "  etcd: \"external\"\n", ":20:9: ", "install.etcd"},
	{"  mirror: null\n", "  mirror: \"http://x\"\n", ":24:11: ", "not an https:// URL"},
	{"  mirror: null\n", "", ":20:3: ", "missing key \"mirror\" in install"},
	{"path: \"addons/flannel.yaml\"", "path: \"../flannel.yaml\"", ":26:11: ", "unsafe entry path"},
	{"path: \"addons/flannel.yaml\"", "path: \"/addons/flannel.yaml\"", ":26:11: ", "unsafe entry path"},
	{"path: \"addons/flannel.yaml\"", "path: \"addons//flannel.yaml\"", ":26:11: ", "unsafe entry path"},
	{"path: \"addons/flannel.yaml\"", "path: \"addons/\\x01.yaml\"", ":26:11: ", "control"},
	{"path: \"addons/flannel.yaml\"", "path: \"kubeferry/bundle.yaml\"", ":26:11: ", "names the lock itself"},
	{"path: \"addons/flannel.yaml\"", "path: \"kubeferry/bundle.yaml.minisig\"", ":26:11: ", "names the lock itself"},
	{"path: \"addons/flannel.yaml\"", "path: \"zzz\"", ":30:11: ", "not sorted"},
	{"path: \"addons/flannel.yaml\"", "path: \"files/dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm\"",
	 ":30:11: ", "duplicate entry"},
	{"    size: 0\n", "    size: -1\n", ":27:11: ", "decimal integer"},
	{"    size: 0\n", "    size: 007\n", ":27:11: ", "decimal integer"},
	{"    size: 0\n", "    size: 0x10\n", ":27:11: ", "decimal integer"},
	{"    size: 18446744073709551615\n", "    size: 18446744073709551616\n", ":31:11: ", "too large"},
	{"    size: 0\n", "    size: 1\n", ":31:11: ", "overflow"},
	{"    mode: \"0644\"", "    mode: \"4755\"", ":28:11: ", "quoted octal"},
	{"    mode: \"0644\"", "    mode: \"0648\"", ":28:11: ", "quoted octal"},
	{"    mode: \"0644\"", "    mode: \"644\"", ":28:11: ", "quoted octal"},
	{"    sha256: \"" H2 "\"\n  - path", "    sha256: \"" "FEDCBA9876543210fedcba9876543210fedcba9876543210fedcba9876543210" "\"\n  - path",
	 ":29:13: ", "entry sha256 is not 64 lowercase hex"},
	{"[\"linux/amd64\", \"linux/arm64\"]", "{a: b}", ":18:16: ", "platforms must be a sequence, not a mapping"},
	{"entries:\n", "entries: &a\n", ":25:10: ", "anchors are not allowed"},
	{"components:\n", "components: !!seq\n", ":8:13: ", "tags are not allowed"},
	{"install:\n", "install: [\n", ":21:3: ", "not valid YAML"},
	{"format: 1\n", "format: 1\n---\n", ":", "more than one YAML document"},
};

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	size_t n;
	char *out;
	if (!at)
		return NULL;
	n = strlen(s) - strlen(from) + strlen(to) + 1;
	out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return out;
}

static void t_parse_rejects(void)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = replace(golden, bad[i].from, bad[i].to);
		char want[64];
		kf_lock *l = NULL;
		kf_err e = {0};
		int rc;
		if (!text) {
			fprintf(stderr, "case %zu: pattern not in golden\n", i);
			CHECK(0);
			continue;
		}
		rc = kf_lock_parse(text, strlen(text), "LOCK", &l, &e);
		snprintf(want, sizeof want, "LOCK%s", bad[i].where);
		if (rc != KF_EVERIFY || l || strncmp(e.msg, want, strlen(want)) ||
		    !strstr(e.msg, bad[i].msg)) {
			fprintf(stderr, "case %zu: rc %d, got \"%s\", want \"%s...%s\"\n", i, rc,
			        e.msg, want, bad[i].msg);
			CHECK(0);
		}
		kf_lock_free(l);
		free(text);
	}
}

static void t_parse_limits(void)
{
	kf_lock *l = NULL;
	kf_err e = {0};
	char deep[400];
	size_t n = 0;

	CHECK_INT(kf_lock_parse(golden, KF_LOCK_MAX + 1, "LOCK", &l, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "larger than");
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	CHECK_INT(kf_lock_parse(deep, n, "LOCK", &l, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "nested too deeply");
	CHECK_INT(kf_lock_parse("", 0, "LOCK", &l, &e), KF_EVERIFY);
	CHECK_INT(kf_lock_parse("\x00\x01", 2, "LOCK", &l, &e), KF_EVERIFY);
	CHECK(l == NULL);

	/* A hostile lock must not cost unbounded memory or quadratic time:
	 * a mapping with too many keys, and too many nodes, are refused. */
	{
		size_t cap = 1100 * 16 + 16, k = 0;
		char *big = malloc(cap);
		k += (size_t)snprintf(big + k, cap - k, "{");
		for (int i = 0; i < 1100; i++)
			k += (size_t)snprintf(big + k, cap - k, "k%d: 1,", i);
		big[k - 1] = '}';
		CHECK_INT(kf_lock_parse(big, k, "LOCK", &l, &e), KF_EVERIFY);
		CHECK_CONTAINS(e.msg, "more than 1024 keys");
		free(big);
	}
	{
		size_t items = (1u << 21) + 1, len = 2 * items + 1;
		char *flat = malloc(len + 1);
		flat[0] = '[';
		for (size_t i = 0; i < items; i++) {
			flat[1 + 2 * i] = '0';
			flat[2 + 2 * i] = ',';
		}
		flat[len - 1] = ']';
		flat[len] = '\0';
		CHECK_INT(kf_lock_parse(flat, len, "LOCK", &l, &e), KF_EVERIFY);
		CHECK_CONTAINS(e.msg, "YAML nodes");
		CHECK(l == NULL);
		free(flat);
	}
}

/* Deterministic mutations of the golden lock: the parser never crashes
 * (ASan/UBSan watch), and whatever it accepts emits and parses again. */
static void t_mutations(void)
{
	unsigned long long seed = 0x9e3779b97f4a7c15ull;
	size_t n = strlen(golden), accepted = 0;
	char *buf = malloc(n + 1);
	static const char alphabet[] = "\"\\:-[]{},#&*!|>'%@` \n\t0aZ./";

	for (int iter = 0; iter < 3000; iter++) {
		kf_lock *l = NULL, *l2 = NULL;
		kf_err e = {0};
		char *out = NULL;
		size_t len = n, olen = 0;
		memcpy(buf, golden, n + 1);
		for (int k = 0; k < 1 + iter % 3; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			size_t at = (size_t)(seed >> 33) % len;
			unsigned op = (unsigned)(seed >> 20) % 3;
			char c = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
			if (op == 0) {
				buf[at] = c;                                   /* replace */
			} else if (op == 1 && len > 1) {
				memmove(buf + at, buf + at + 1, len - at);     /* delete */
				len--;
			} else {
				buf[at] = (char)(seed >> 40);                  /* any byte */
			}
		}
		if (kf_lock_parse(buf, len, "M", &l, &e) == KF_OK) {
			accepted++;
			CHECK_INT(kf_lock_emit(l, &out, &olen, &e), KF_OK);
			if (out) {
				CHECK_INT(kf_lock_parse(out, olen, "M2", &l2, &e), KF_OK);
			}
		} else {
			CHECK(l == NULL);
			CHECK(e.code == KF_EVERIFY || e.code == KF_EIO);
			CHECK(e.msg[0] == 'M');
		}
		free(out);
		kf_lock_free(l);
		kf_lock_free(l2);
	}
	/* some mutations (inside a quoted builder string, say) stay valid */
	CHECK(accepted > 0);
	free(buf);
}

/* A delta's lock names its base; a full lock never carries the key, and
 * the sha256 index finds entries by content. */
static void t_delta_base(void)
{
	kf_lock *l = sample(), *p = NULL;
	char *out = NULL, *text = NULL;
	size_t len = 0;
	kf_err e = {0};
	const kf_lock_entry **idx = NULL;

	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
	CHECK(out && !strstr(out, "base:"));
	free(out);
	out = NULL;
	l->delta = 1;
	l->base.name = strdup("k8s");
	l->base.version = strdup("1.33.2");
	memcpy(l->base.lock, H2, KF_SHA256_HEX);
	CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
	CHECK(out && strstr(out, "builder: \"kubeferry 0.1.0 \\\"dev\\\" \\\\\"\nbase:\n"
	                         "  name: \"k8s\"\n  version: \"1.33.2\"\n  lock: \"" H2 "\"\n"
	                         "components:\n"));
	CHECK_INT(kf_lock_parse(out, len, "LOCK", &p, &e), KF_OK);
	if (p) {
		CHECK(p->delta);
		CHECK_STR(p->base.version, "1.33.2");
		CHECK_STR(p->base.lock, H2);
		idx = kf_lock_sha_index(p);
		CHECK(idx != NULL);
		if (idx) {
			CHECK(kf_lock_find_sha(idx, p->nentries, H) == &p->entries[1]);
			CHECK(kf_lock_find_sha(idx, p->nentries, H2) == &p->entries[0]);
			CHECK(kf_lock_find_sha(idx, p->nentries,
			                       "1111111111111111111111111111111111111111111111111111111111111111") == NULL);
		}
	}
	/* a base without its lock digest, or with a bad one, is refused */
	text = replace(out, "  lock: \"" H2 "\"\n", "");
	kf_lock_free(p);
	p = NULL;
	CHECK_INT(kf_lock_parse(text, strlen(text), "LOCK", &p, &e), KF_EVERIFY);
	CHECK(strstr(e.msg, "missing key \"lock\" in base") != NULL);
	free(text);
	text = replace(out, "  lock: \"" H2, "  lock: \"XX");
	CHECK_INT(kf_lock_parse(text, strlen(text), "LOCK", &p, &e), KF_EVERIFY);
	CHECK(strstr(e.msg, "base.lock is not 64 lowercase hex digits") != NULL);
	free(text);
	free(idx);
	free(out);
	kf_lock_free(l);
	kf_lock_free(p);
}

KF_TEST_MAIN(t_delta_base, t_mutations, t_emit_golden_and_round_trip, t_emit_with_mirror_and_empty_lists,
             t_emit_refuses_invalid, t_parse_rejects, t_parse_limits)
