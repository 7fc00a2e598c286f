/* Host packages: the lock's packages: and adminPackages: sections (round
 * trip, one rejected shape per rule), release and architecture mapping, name lists and the
 * built-in minimal bases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/rpm/rpm_int.h"
#include "kf_test.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define P1 "rpms/el9/x86_64/Packages/kf-a-1.0-1.noarch.rpm"
#define P2 "rpms/el9/x86_64/Packages/kf-b-2.0-3.el9.x86_64.rpm"

static const char head[] =
	"format: 1\n"
	"name: \"k8s\"\n"
	"version: \"1\"\n"
	"kubernetesVersion: \"1\"\n"
	"architectures: [\"amd64\"]\n"
	"created: \"2023-11-14T22:13:20Z\"\n"
	"builder: \"kubeferry\"\n"
	"components: []\n"
	"images: []\n";
static const char pkgs[] =
	"packages:\n"
	"  - set: \"el9\"\n"
	"    arch: \"amd64\"\n"
	"    name: \"kf-a\"\n"
	"    epoch: \"0\"\n"
	"    version: \"1.0\"\n"
	"    release: \"1\"\n"
	"    rpmArch: \"noarch\"\n"
	"    sha256: \"" H "\"\n"
	"    repo: \"baseos\"\n"
	"    path: \"" P1 "\"\n"
	"  - set: \"el9\"\n"
	"    arch: \"amd64\"\n"
	"    name: \"kf-b\"\n"
	"    epoch: \"2\"\n"
	"    version: \"2.0\"\n"
	"    release: \"3.el9\"\n"
	"    rpmArch: \"x86_64\"\n"
	"    sha256: \"" H2 "\"\n"
	"    repo: \"appstream\"\n"
	"    path: \"" P2 "\"\n";
static const char tail[] =
	"install:\n"
	"  etcd: \"host\"\n"
	"  cni: \"flannel\"\n"
	"  podSubnet: \"10.244.0.0/16\"\n"
	"  serviceSubnet: \"10.96.0.0/12\"\n"
	"  mirror: null\n"
	"entries:\n"
	"  - path: \"" P1 "\"\n"
	"    size: 10\n"
	"    mode: \"0644\"\n"
	"    sha256: \"" H "\"\n"
	"  - path: \"" P2 "\"\n"
	"    size: 20\n"
	"    mode: \"0644\"\n"
	"    sha256: \"" H2 "\"\n";

static char *doc(const char *p)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s%s", head, p, tail) < 0)
		s = NULL;
	return s;
}

static void t_round_trip(void)
{
	char *text = doc(pkgs), *out = NULL;
	size_t len = 0;
	kf_lock *l = NULL;
	kf_err e = {0};

	CHECK_INT(kf_lock_parse(text, strlen(text), "t", &l, &e), KF_OK);
	CHECK_INT(l ? (long long)l->npkg : -1, 2);
	if (l) {
		CHECK_STR(l->packages[1].epoch, "2");
		CHECK_STR(l->packages[1].repo, "appstream");
		CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
		CHECK_STR(out, text);
	}
	free(out);
	kf_lock_free(l);
	free(text);
}

/* replace the first occurrence of from in pkgs by to; the lock must fail
 * with a message containing msg. */
static void replace(char *buf, size_t cap, const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);
	CHECK(at != NULL);
	if (at)
		snprintf(buf, cap, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
	else
		snprintf(buf, cap, "%s", src);
}

static void rejects2(const char *from, const char *to, const char *from2, const char *to2,
                     const char *msg)
{
	char buf[4096], buf2[4096], *text;
	kf_lock *l = NULL;
	kf_err e = {0};

	replace(buf, sizeof buf, pkgs, from, to);
	if (from2) {
		replace(buf2, sizeof buf2, buf, from2, to2);
		memcpy(buf, buf2, sizeof buf);
	}
	text = doc(buf);
	CHECK_INT(kf_lock_parse(text, strlen(text), "t", &l, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, msg);
	kf_lock_free(l);
	free(text);
}

static void rejects(const char *from, const char *to, const char *msg)
{
	rejects2(from, to, NULL, NULL, msg);
}

static void t_rejects(void)
{
	rejects("set: \"el9\"", "set: \"el8\"", "bad package set \"el8\"");
	rejects("arch: \"amd64\"", "arch: \"arm64\"", "is not in architectures");
	rejects("epoch: \"0\"", "epoch: \"x\"", "bad epoch");
	rejects("release: \"1\"", "release: \"1\"\n    extra: \"x\"", "unknown key \"extra\"");
	rejects("    repo: \"baseos\"\n", "", "missing key \"repo\"");
	rejects("path: \"" P1 "\"", "path: \"rpms/el9/x86_64/Packages/other.rpm\"",
	        "is not \"" P1 "\"");
	rejects2("name: \"kf-a\"", "name: \"kf-c\"", "kf-a-1.0", "kf-c-1.0", "not sorted");
	rejects("sha256: \"" H "\"", "sha256: \"" H2 "\"", "entry " P1 " has another sha256");
	rejects("version: \"1.0\"\n    release: \"1\"\n    rpmArch: \"noarch\"",
	        "version: \"1.1\"\n    release: \"1\"\n    rpmArch: \"noarch\"", "is not");
}

/* adminPackages: the admin host's set, its own list and repository
 * (rpms/el9-admin/): round trip, and a path in the other set's
 * repository is refused either way. */
#define PA "rpms/el9-admin/x86_64/Packages/kf-a-1.0-1.noarch.rpm"
static const char admin_entry[] =
	"  - path: \"" PA "\"\n"
	"    size: 10\n"
	"    mode: \"0644\"\n"
	"    sha256: \"" H "\"\n";

static char *admin_doc(const char *node, const char *admin)
{
	const char *ent = strstr(tail, "entries:\n") + strlen("entries:\n");
	char *s = NULL;
	/* Entries sorted by path: rpms/el9-admin/ before rpms/el9/. */
	if (asprintf(&s, "%s%s%s%.*s%s%s", head, node, admin, (int)(ent - tail), tail, admin_entry,
	             ent) < 0)
		s = NULL;
	return s;
}

static void t_admin(void)
{
	char admin_pkgs[4096], one[4096], buf[4096], *text, *out = NULL;
	size_t len = 0;
	kf_lock *l = NULL;
	kf_err e = {0};

	/* pkgs' first package as the admin set, in its own repository. */
	snprintf(one, sizeof one, "admin%.*s", (int)(strstr(pkgs + 20, "  - set") - pkgs), pkgs);
	one[5] = 'P';
	replace(admin_pkgs, sizeof admin_pkgs, one, P1, PA);
	text = admin_doc(pkgs, admin_pkgs);

	CHECK_INT(kf_lock_parse(text, strlen(text), "t", &l, &e), KF_OK);
	CHECK_INT(l ? (long long)l->nadmin : -1, 1);
	CHECK_INT(l ? (long long)l->npkg : -1, 2);
	if (l && l->nadmin) {
		CHECK_STR(l->admin_pkgs[0].path, PA);
		CHECK_INT(kf_lock_emit(l, &out, &len, &e), KF_OK);
		CHECK_STR(out, text);
	}
	free(out);
	kf_lock_free(l);
	free(text);
	l = NULL;
	/* An admin package pointing into the nodes' repository. */
	replace(buf, sizeof buf, admin_pkgs, PA, P1);
	text = admin_doc(pkgs, buf);
	CHECK_INT(kf_lock_parse(text, strlen(text), "t", &l, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "is not \"" PA "\"");
	kf_lock_free(l);
	free(text);
	l = NULL;
	/* A node package pointing into the admin repository. */
	replace(buf, sizeof buf, pkgs, "path: \"" P1, "path: \"" PA);
	text = admin_doc(buf, "");
	CHECK_INT(kf_lock_parse(text, strlen(text), "t", &l, &e), KF_EVERIFY);
	CHECK_CONTAINS(e.msg, "is not \"" P1 "\"");
	kf_lock_free(l);
	free(text);
}

static void t_mapping(void)
{
	char set[8];
	kf_err e = {0};

	CHECK_STR(kf_rpm_arch("amd64"), "x86_64");
	CHECK_STR(kf_rpm_arch("arm64"), "aarch64");
	CHECK(kf_rpm_arch("riscv64") == NULL);
	CHECK_INT(kf_rpm_set_for("rocky", "9.6", set, sizeof set, &e), KF_OK);
	CHECK_STR(set, "el9");
	CHECK_INT(kf_rpm_set_for("almalinux", "10.0", set, sizeof set, &e), KF_OK);
	CHECK_STR(set, "el10");
	CHECK_INT(kf_rpm_set_for("rhel", "10", set, sizeof set, &e), KF_OK);
	CHECK_STR(set, "el10");
	CHECK_INT(kf_rpm_set_for("centos", "9", set, sizeof set, &e), KF_OK);
	CHECK_INT(kf_rpm_set_for("rocky", "8.10", set, sizeof set, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "rocky 8.10");
	CHECK_INT(kf_rpm_set_for("debian", "12", set, sizeof set, &e), KF_EUSAGE);
	CHECK_INT(kf_rpm_set_for("rocky", "9x", set, sizeof set, &e), KF_EUSAGE);
	CHECK_INT(kf_rpm_repo_dir(set, sizeof set, "el9", "x86_64", 0), -1);
	{
		char dir[64];
		CHECK_INT(kf_rpm_repo_dir(dir, sizeof dir, "el9", "x86_64", 0), 0);
		CHECK_STR(dir, "rpms/el9/x86_64");
		CHECK_INT(kf_rpm_repo_dir(dir, sizeof dir, "el10", "aarch64", 1), 0);
		CHECK_STR(dir, "rpms/el10-admin/aarch64");
	}
}

static void t_names(void)
{
	char **v = NULL;
	size_t n = 0;
	kf_err e = {0};
	int bash = 0;

	CHECK_INT(kf_rpm_parse_names("# c\n bash \n\ncoreutils\r\n", "x", &v, &n, &e), KF_OK);
	CHECK_INT((long long)n, 2);
	if (n == 2) {
		CHECK_STR(v[0], "bash");
		CHECK_STR(v[1], "coreutils");
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	CHECK_INT(kf_rpm_parse_names("bash\nrm -rf\n", "list.txt", &v, &n, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "list.txt:2:");
	CHECK(v == NULL && n == 0);
	/* The built-in minimal bases parse and hold the core of a system. */
	for (int s = 0; s < 2; s++) {
		const char *text = kf_rpm_minimal_list(s ? "el10" : "el9");
		CHECK(text != NULL);
		CHECK_INT(kf_rpm_parse_names(text ? text : "", "min", &v, &n, &e), KF_OK);
		CHECK(n > 20);
		for (size_t i = 0; i < n; i++) {
			bash += !strcmp(v[i], "bash") || !strcmp(v[i], "systemd");
			free(v[i]);
		}
		free(v);
	}
	CHECK_INT(bash, 4);
	CHECK(kf_rpm_minimal_list("el8") == NULL);
}

KF_TEST_MAIN(t_round_trip, t_rejects, t_admin, t_mapping, t_names)
