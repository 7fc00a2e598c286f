/* Kubespray inventories in both formats, group_vars/ and host_vars/, and
 * every refusal with its file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifests/kf_manifests.h"
#include "kf_test.h"

static char dir[256];

static void put(const char *rel, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void mkd(const char *rel)
{
	char p[512];

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	CHECK(mkdir(p, 0755) == 0);
}

static void fresh(void)
{
	char cmd[300];

	if (dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0);
	}
	snprintf(dir, sizeof dir, "/tmp/kf-inv-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

static int load(const char *rel, kf_inventory **inv, kf_err *e)
{
	char p[512];

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	memset(e, 0, sizeof *e);
	return kf_inventory_load(p, inv, e);
}

static const kf_inv_host *host(const kf_inventory *inv, const char *name)
{
	for (size_t i = 0; inv && i < inv->nhosts; i++)
		if (!strcmp(inv->hosts[i].name, name))
			return &inv->hosts[i];
	return NULL;
}

static const char YAML_INV[] =
	"all:\n"
	"  hosts:\n"
	"    cp1: {ansible_host: 192.168.1.11, ip: 10.0.0.11, etcd_member_name: e1}\n"
	"    cp2: {ip: 10.0.0.12}\n"
	"    cp3:\n"
	"      ip: 10.0.0.13\n"
	"      access_ip: 192.0.2.13\n"
	"    w1: {ansible_host: 10.0.0.21, kube_override_hostname: worker-1}\n"
	"    bastion: {ansible_host: bastion.example}\n"
	"  children:\n"
	"    kube_control_plane:\n"
	"      hosts: {cp1: , cp2: , cp3: }\n"
	"    kube_node:\n"
	"      hosts: {w1: }\n"
	"    etcd:\n"
	"      hosts: {cp1: , cp2: , cp3: }\n"
	"    k8s_cluster:\n"
	"      children: {kube_control_plane: , kube_node: }\n"
	"    bastion:\n"
	"      hosts: {bastion: }\n"
	"  vars:\n"
	"    kube_pods_subnet: 10.233.64.0/18\n";

static const char INI_INV[] =
	"# Kubespray's inventory.ini\n"
	"[all]\n"
	"cp1 ansible_host=192.168.1.11 ip=10.0.0.11 etcd_member_name=e1\n"
	"cp2 ip=10.0.0.12\n"
	"cp3 ip='10.0.0.13' access_ip=\"192.0.2.13\"  # the public side\n"
	"w1 ansible_host=10.0.0.21 kube_override_hostname=worker-1\n"
	"bastion ansible_host=bastion.example\n"
	"\n"
	"[kube_control_plane]\n"
	"cp1\ncp2\ncp3\n"
	"[kube_node]\n"
	"w1\n"
	"[etcd]\n"
	"cp1\ncp2\ncp3\n"
	"[k8s_cluster:children]\n"
	"kube_control_plane\n"
	"kube_node\n"
	"[bastion]\n"
	"bastion\n"
	"[all:vars]\n"
	"kube_pods_subnet = 10.233.64.0/18\n";

/* The same cluster from either format. */
static void check_cluster(const kf_inventory *inv)
{
	const kf_inv_host *h;

	CHECK(inv != NULL);
	if (!inv)
		return;
	CHECK_INT(inv->nhosts, 4); /* the bastion is no part of the cluster */
	CHECK_INT(inv->ncp, 3);
	CHECK_INT(inv->netcd, 3);
	CHECK_INT(inv->nworkers, 1);
	CHECK_INT(inv->nmirrors, 3);
	CHECK_STR(inv->hosts[inv->cp[0]].name, "cp1");
	CHECK_STR(inv->hosts[inv->mirrors[2]].name, "cp3");
	CHECK_STR(inv->hosts[inv->workers[0]].name, "w1");
	CHECK_STR(inv->pod_subnet, "10.233.64.0/18");
	CHECK(inv->service_subnet == NULL);
	CHECK(inv->control_plane_endpoint == NULL);
	h = host(inv, "cp1");
	CHECK(h && h->roles == (KF_ROLE_ETCD | KF_ROLE_CONTROL_PLANE | KF_ROLE_MIRROR));
	CHECK(h && !strcmp(h->ip, "10.0.0.11") && !strcmp(h->access_ip, "10.0.0.11"));
	CHECK(h && !strcmp(h->etcd_member_name, "e1") && h->mirror_port == 5443);
	h = host(inv, "cp2");
	CHECK(h && h->etcd_member_name && !strcmp(h->etcd_member_name, "etcd2"));
	h = host(inv, "cp3");
	CHECK(h && !strcmp(h->ip, "10.0.0.13") && !strcmp(h->access_ip, "192.0.2.13"));
	h = host(inv, "w1");
	CHECK(h && h->roles == KF_ROLE_WORKER && !h->etcd_member_name);
	CHECK(h && !strcmp(h->node_name, "worker-1") && !strcmp(h->ip, "10.0.0.21"));
	CHECK(h && strstr(h->origin, ":") != NULL);
}

static void t_formats(void)
{
	kf_inventory *inv = NULL;
	kf_err e;

	fresh();
	put("hosts.yaml", YAML_INV);
	CHECK_INT(load("hosts.yaml", &inv, &e), KF_OK);
	if (e.code)
		fprintf(stderr, "%s\n", e.msg);
	check_cluster(inv);
	kf_inventory_free(inv);
	inv = NULL;
	/* INI whatever the file is called. */
	put("inventory", INI_INV);
	CHECK_INT(load("inventory", &inv, &e), KF_OK);
	if (e.code)
		fprintf(stderr, "%s\n", e.msg);
	check_cluster(inv);
	kf_inventory_free(inv);
}

/* Ansible's precedence: inventory group vars < group_vars/all <
 * group_vars/<group> < inventory host vars < host_vars/<host>. */
static void t_var_files(void)
{
	kf_inventory *inv = NULL;
	kf_err e;
	const kf_inv_host *h;

	fresh();
	put("inventory.ini", INI_INV);
	mkd("group_vars");
	mkd("group_vars/kube_control_plane");
	mkd("host_vars");
	put("group_vars/all.yml", "# comment\n---\nkube_service_addresses: 10.233.0.0/18\n"
	    "kubeferry_mirror_port: 6000\nkube_pods_subnet: 10.200.0.0/16\n"
	    "loadbalancer_apiserver:\n  address: 10.0.0.100\n  port: 8443\n");
	put("group_vars/kube_control_plane/10-a.yml", "kubeferry_mirror_port: 7000\n");
	put("group_vars/kube_control_plane/20-b.yaml", "kubeferry_mirror_port: 7001\n");
	put("group_vars/kube_control_plane/notes.txt", "kubeferry_mirror_port: {{ x }}\n");
	put("group_vars/unknown_group.yml", "ip: 1.1.1.1\n");
	put("host_vars/cp2.yml", "ip: 10.0.0.99\n");
	put("host_vars/w1", "");
	CHECK_INT(load("inventory.ini", &inv, &e), KF_OK);
	if (e.code)
		fprintf(stderr, "%s\n", e.msg);
	CHECK(inv != NULL);
	if (inv) {
		CHECK_STR(inv->service_subnet, "10.233.0.0/18");
		CHECK_STR(inv->pod_subnet, "10.200.0.0/16");
		CHECK_STR(inv->control_plane_endpoint, "10.0.0.100:8443");
		h = host(inv, "cp1");
		CHECK(h && h->mirror_port == 7001);
		h = host(inv, "w1");
		CHECK(h && h->mirror_port == 6000);
		h = host(inv, "cp2");
		CHECK(h && !strcmp(h->ip, "10.0.0.99"));
	}
	kf_inventory_free(inv);
}

/* Legacy group names, an explicit mirror group, nested children. */
static void t_groups(void)
{
	kf_inventory *inv = NULL;
	kf_err e;

	fresh();
	put("legacy.ini",
	    "m1 ip=10.1.0.1\nm2 ip=10.1.0.2\nn1 ip=10.1.0.3\nreg ip=10.1.0.9 kubeferry_mirror_port=8443\n"
	    "[kube-master]\nm1\n[masters2]\nm2\n[kube-master:children]\nmasters2\n"
	    "[kube-node]\nn1\nm1\n[etcd]\nm1\n"
	    "[kubeferry_mirror]\nreg\nm2\n"
	    "[all:vars]\nkubeferry_control_plane_endpoint=api.example:6443\nkube_proxy_mode=nftables\n");
	CHECK_INT(load("legacy.ini", &inv, &e), KF_OK);
	if (e.code)
		fprintf(stderr, "%s\n", e.msg);
	if (inv) {
		CHECK_INT(inv->ncp, 2);
		CHECK_STR(inv->hosts[inv->cp[0]].name, "m1");
		CHECK_STR(inv->hosts[inv->cp[1]].name, "m2");
		CHECK_INT(inv->nworkers, 1); /* m1 is a control plane that also runs pods */
		CHECK(host(inv, "m1")->roles & KF_ROLE_WORKER);
		CHECK_INT(inv->nmirrors, 2);
		CHECK_STR(inv->hosts[inv->mirrors[0]].name, "reg");
		CHECK_INT(inv->hosts[inv->mirrors[0]].mirror_port, 8443);
		CHECK(host(inv, "reg")->roles == KF_ROLE_MIRROR);
		CHECK(!(host(inv, "m1")->roles & KF_ROLE_MIRROR));
		CHECK_STR(inv->control_plane_endpoint, "api.example:6443");
		CHECK_STR(inv->kube_proxy_mode, "nftables");
	}
	kf_inventory_free(inv);
}

struct refusal {
	const char *file;       /* inventory file name: decides the format */
	const char *text;
	const char *var_file;   /* optional group_vars/all.yml */
	const char *where;      /* "FILE:LINE" suffix expected in the message */
	const char *why;
};

static const char CP3[] = "[kube_control_plane]\na\nb\nc\n[etcd]\na\nb\nc\n";

static const struct refusal refusals[] = {
	{"i.ini", "a ip=10.0.0.1\n[kube_node]\na\n[etcd]\na\n", NULL, "i.ini:1:", "no control plane"},
	{"i.yml", "all:\n  hosts:\n    a: {ip: 10.0.0.1}\n    b: {ip: 10.0.0.2}\n  children:\n"
	 "    kube_control_plane: {hosts: {a: }}\n    etcd:\n      hosts: {a: , b: }\n",
	 NULL, "i.yml:7:", "etcd group has 2 members"},
	{"i.ini", "a ip=10.0.0.1\n[kube_control_plane]\na\n", NULL, "i.ini:1:", "0 members"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.1\n" "[kube_control_plane]\na\nb\nc\n[etcd]\na\nb\nc\n",
	 NULL, "i.ini:3:", "same ip 10.0.0.1 as host a"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2 kube_override_hostname=a\nc ip=10.0.0.3\n"
	 "[kube_control_plane]\na\nb\nc\n[etcd]\na\nb\nc\n", NULL, "i.ini:2:", "same node name a"},
	{"i.ini", "a ip=10.0.0.1 etcd_member_name=x\nb ip=10.0.0.2 etcd_member_name=x\nc ip=10.0.0.3\n"
	 "[kube_control_plane]\na\nb\nc\n[etcd]\na\nb\nc\n", NULL, "i.ini:2:", "same etcd member name x"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ansible_host=c.example\n"
	 "[kube_control_plane]\na\n[etcd]\na\nb\nc\n", NULL, "i.ini:3:", "host c has no address"},
	{"i.ini", "a ip=10.0.0.1\nb ip=\"{{ lookup('env','IP') }}\"\nc ip=10.0.0.3\n", NULL, "i.ini:2:", "Jinja"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.3\n[all:vars]\nregistry={% if x %}a{% endif %}\n",
	 NULL, "i.ini:5:", "Jinja"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.3\n",
	 "# offline\nfiles_repo: http://10.0.0.9\nregistry_host: \"{{ files_repo }}\"\n", "all.yml:3:", "Jinja"},
	{"i.yml", "all:\n  hosts:\n    a: {ip: 10.0.0.1}\n    b: {ip: 10.0.0.2}\n    c:\n      ip: 10.0.0.3\n"
	 "      access_ip: \"{{ ip }}\"\n", NULL, "i.yml:7:", "Jinja"},
	{"i.ini", "a ip=10.0.0.1\nNode_B ip=10.0.0.2\nc ip=10.0.0.3\n[kube_control_plane]\na\nNode_B\nc\n"
	 "[etcd]\na\nNode_B\nc\n", NULL, "i.ini:2:", "RFC 1123"},
	{"i.ini", "a ip=10.0.0.1\nlocalhost ip=10.0.0.2\nc ip=10.0.0.3\n[kube_control_plane]\na\nlocalhost\nc\n"
	 "[etcd]\na\nlocalhost\nc\n", NULL, "i.ini:2:", "RFC 1123"},
	{"i.ini", "a ip=10.0.0.1 ip=10.0.0.5\n", NULL, "i.ini:1:", "ip is set again"},
	{"i.yml", "all:\n  hosts:\n    a: {ip: 10.0.0.1}\n  children:\n    kube_node:\n      hosts:\n"
	 "        a: {ip: 10.0.0.7}\n", NULL, "i.yml:7:", "ip is set again (first at"},
	{"i.yml", "all:\n  hosts:\n    a: {ip: 10.0.0.1}\n    a: {ip: 10.0.0.2}\n", NULL, "i.yml:4:", "duplicate key"},
	{"i.ini", "a ip=10.0.0.1 kubeferry_mirror_port=70000\nb ip=10.0.0.2\nc ip=10.0.0.3\n", NULL,
	 "i.ini:1:", "not a port"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.3\n[all:vars]\nkube_pods_subnet=10.0.0.0\n"
	 "[kube_control_plane]\na\n[etcd]\na\n", NULL, "i.ini:5:", "not a CIDR"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.300\n", NULL, "i.ini:3:", "not an IP address"},
	{"i.ini", "a ip=10.0.0.1\nb ip=10.0.0.2\nc ip=10.0.0.3\n", "kube_proxy_mode: userspace\n", "all.yml:1:",
	 "not iptables, nftables or ipvs"},
	{"i.ini", "node[1:3] ip=10.0.0.1\n", NULL, "i.ini:1:", "host ranges"},
	{"i.ini", "[kube_control_plane:hosts]\na\n", NULL, "i.ini:1:", "unknown section kind"},
	{"i.ini", "a ip=10.0.0.1 oops\n", NULL, "i.ini:1:", "not key=value"},
	{"i.ini", "a ip=10.0.0.1\n[g1:children]\ng2\n[g2:children]\ng1\n[kube_control_plane:children]\ng1\n",
	 NULL, "i.ini:", "cycle"},
	{"i.yml", "all:\n  hosts:\n    a: {ip: 10.0.0.1}\n  chilren: {}\n", NULL, "i.yml:4:", "unknown key"},
};

static void t_refusals(void)
{
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const struct refusal *r = &refusals[i];
		kf_inventory *inv = NULL;
		kf_err e;
		char text[1024];
		int rc;

		fresh();
		/* Cases that only define hosts get three control planes and etcd
		 * members a, b, c, so the fault under test is the only one. */
		snprintf(text, sizeof text, "%s%s", r->text,
		         strstr(r->text, "[") || strstr(r->text, "all:") ? "" : CP3);
		put(r->file, text);
		if (r->var_file) {
			mkd("group_vars");
			put("group_vars/all.yml", r->var_file);
		}
		rc = load(r->file, &inv, &e);
		if (rc != KF_EUSAGE || !strstr(e.msg, r->where) || !strstr(e.msg, r->why)) {
			fprintf(stderr, "refusal %zu (%s): rc %d, message \"%s\"\n", i, r->why, rc, e.msg);
			CHECK(!"refused with file:line and reason");
		}
		CHECK(inv == NULL);
		kf_inventory_free(inv);
	}
}

static void t_hostname(void)
{
	char long_label[80], long_name[300];

	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	memset(long_name, 'a', 254);
	for (int i = 63; i < 254; i += 64)
		long_name[i] = '.';
	long_name[254] = '\0';
	CHECK(kf_hostname_valid("node-1.example"));
	CHECK(kf_hostname_valid("1node"));
	CHECK(!kf_hostname_valid("-node"));
	CHECK(!kf_hostname_valid("node-"));
	CHECK(!kf_hostname_valid("Node"));
	CHECK(!kf_hostname_valid("a..b"));
	CHECK(!kf_hostname_valid("a_b"));
	CHECK(!kf_hostname_valid("localhost"));
	CHECK(!kf_hostname_valid(""));
	CHECK(!kf_hostname_valid(long_label));
	CHECK(!kf_hostname_valid(long_name));
	CHECK(kf_ip_valid("10.0.0.1") && kf_ip_valid("fd00::1") && !kf_ip_valid("10.0.0"));
}

static void t_cleanup(void)
{
	fresh();
	rmdir(dir);
}

KF_TEST_MAIN(t_formats, t_var_files, t_groups, t_refusals, t_hostname, t_cleanup)
