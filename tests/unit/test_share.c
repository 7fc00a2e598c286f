/* A host's share of a plan (host.yaml): read back, and every malformed
 * value refused with its file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifests/kf_manifests.h"
#include "kf_test.h"

static char dir[256];

#define FP "0C:8F:65:D1:26:10:A7:61:CA:CD:48:B4:3B:62:52:2C:F5:0A:F2:77:D9:4B:DD:47:2B:5E:80:F3:0D:70:32:BC"

static const char GOOD[] =
	"# a comment\n"
	"name: cp2\n"
	"node_name: cp2\n"
	"ip: 10.0.0.12\n"
	"access_ip: 10.0.0.12\n"
	"bundle: k8s-test-1.33.3\n"
	"kubernetes_version: v1.33.3\n"
	"control_plane_endpoint: \"10.0.0.11:6443\"\n"
	"roles: [etcd, control-plane, mirror]\n"
	"first_control_plane: false\n"
	"etcd_member_name: etcd2\n"
	"mirror_port: 5443\n"
	"mirror_ca_fingerprint: \"" FP "\"\n"
	"mirror_endpoints:\n"
	"  - \"10.0.0.11:5443\"\n"
	"  - \"10.0.0.12:5443\"\n"
	"  - \"[fd00::13]:5443\"\n"
	"files:\n"
	"  mirror-ca.crt: /etc/kubeferry/mirror-ca.crt\n";

static void write_share(const char *host, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof p, "%s/hosts", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/hosts/%s", dir, host);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/hosts/%s/host.yaml", dir, host);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void t_good(void)
{
	kf_share *s = NULL;
	kf_err e = {0};

	write_share("cp2", GOOD);
	CHECK_INT(kf_share_load(dir, "cp2", &s, &e), KF_OK);
	if (e.code)
		fprintf(stderr, "%s\n", e.msg);
	if (s) {
		CHECK_STR(s->ip, "10.0.0.12");
		CHECK_STR(s->endpoint, "10.0.0.11:6443");
		CHECK_STR(s->etcd_member_name, "etcd2");
		CHECK_INT(s->roles, KF_ROLE_ETCD | KF_ROLE_CONTROL_PLANE | KF_ROLE_MIRROR);
		CHECK_INT(s->first_cp, 0);
		CHECK_INT(s->mirror_port, 5443);
		CHECK_INT(s->nmirrors, 3);
		CHECK_STR(s->mirrors[2], "[fd00::13]:5443");
		CHECK_STR(s->mirror_fp, FP);
		CHECK(strstr(s->dir, "/hosts/cp2") != NULL);
	}
	kf_share_free(s);
}

struct bad {
	const char *from, *to;   /* replace in GOOD */
	const char *why;
};

static const struct bad bads[] = {
	{"ip: 10.0.0.12\n", "ip: 10.0.0.300\n", "host.yaml:4:"},
	{"name: cp2\n", "name: cp3\n", "not cp2's"},
	{"  - \"10.0.0.12:5443\"\n", "  - \"10.0.0.12\"\n", "host.yaml:16:"},
	{"  - \"10.0.0.12:5443\"\n", "  - \"evil.example:5443\"\n", "not ADDRESS:PORT"},
	{"first_control_plane: false\n", "first_control_plane: maybe\n", "true or false"},
	{"roles: [etcd, control-plane, mirror]\n", "roles: [etcd, boss]\n", "unknown role"},
	{"mirror_port: 5443\n", "", "needs mirror_port"},
	{"mirror_port: 5443\n", "mirror_port: 99999\n", "not a port"},
	{"bundle: k8s-test-1.33.3\n", "", "missing key \"bundle\""},
	{"bundle: k8s-test-1.33.3\n", "bundle: k8s-test-1.33.3\nextra: 1\n", "unknown key \"extra\""},
	{FP, "AB:CD", "fingerprint"},
	{"etcd_member_name: etcd2\n", "etcd_member_name: \"etcd 2\"\n", "RFC 1123"},
	{"node_name: cp2\n", "node_name: CP_2\n", "RFC 1123"},
};

static void t_bad(void)
{
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		char text[4096];
		const char *at = strstr(GOOD, bads[i].from);
		kf_share *s = NULL;
		kf_err e = {0};
		int rc;

		CHECK(at != NULL);
		if (!at)
			continue;
		snprintf(text, sizeof text, "%.*s%s%s", (int)(at - GOOD), GOOD, bads[i].to,
		         at + strlen(bads[i].from));
		write_share("cp2", text);
		rc = kf_share_load(dir, "cp2", &s, &e);
		if (rc != KF_EUSAGE || !strstr(e.msg, bads[i].why)) {
			fprintf(stderr, "case %zu: rc %d \"%s\" (want \"%s\")\n", i, rc, e.msg, bads[i].why);
			CHECK(!"refused");
		}
		CHECK(s == NULL);
		kf_share_free(s);
	}
}

static void t_names(void)
{
	kf_share *s = NULL;
	kf_err e = {0};

	CHECK_INT(kf_share_load(dir, "../cp2", &s, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "RFC 1123");
	CHECK_INT(kf_share_load(dir, "nosuch", &s, &e), KF_EUSAGE);
	CHECK_CONTAINS(e.msg, "no share for host nosuch");
	CHECK(s == NULL);
}

static void t_setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/kf-share-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

static void t_cleanup(void)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}

KF_TEST_MAIN(t_setup, t_good, t_bad, t_names, t_cleanup)
