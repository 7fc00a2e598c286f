/*
 * kubeferry-install cluster plan INVENTORY BUNDLE (-p PUB | -P KEY) -o DIR
 *
 * Runs on the admin host, offline. The inventory is read and checked and
 * the bundle verified before DIR is touched; then everything the nodes
 * share is generated once (DIR/shared/) and each host's complete share
 * written (DIR/hosts/<name>/), with a readable summary in DIR/plan.yaml.
 * A re-run keeps every secret and certificate already in DIR and adds only
 * what new hosts need.
 */
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/plan/plan.h"

#define PROG "kubeferry-install cluster plan"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install cluster plan INVENTORY BUNDLE (-p PUBFILE | -P PUBKEY) -o DIR\n"
	        "\n"
	        "Plan a cluster from a Kubespray inventory (YAML or INI, with group_vars/\n"
	        "and host_vars/ beside it), offline, on the admin host. The inventory is\n"
	        "checked and the bundle verified before anything is written. Then DIR\n"
	        "(0700; secrets 0600) receives:\n"
	        "  plan.yaml        a summary: hosts and roles, first control plane,\n"
	        "                   mirror endpoints, mirror CA fingerprint, discovery hash\n"
	        "  shared/          made once and kept: cluster, front-proxy, etcd and\n"
	        "                   mirror CAs, sa.key/sa.pub, the apiserver's etcd client\n"
	        "                   certificate, bootstrap-token, certificate-key,\n"
	        "                   discovery-hash, encryption-config.yaml, audit-policy.yaml\n"
	        "  hosts/NAME/      the complete share of one host (see its host.yaml)\n"
	        "Re-running on the same DIR keeps every secret and certificate and adds\n"
	        "only what new hosts need. Carry hosts/NAME/ to the host and run\n"
	        "'kubeferry-install apply BUNDLE -p KEY --plan DIR --host NAME' there.\n"
	        "\n"
	        "Groups: kube_control_plane (kube-master), kube_node (kube-node), etcd,\n"
	        "k8s_cluster, kubeferry_mirror (default: every control plane). Host vars:\n"
	        "ansible_host, ip, access_ip, etcd_member_name, kube_override_hostname,\n"
	        "kubeferry_mirror_port (default 5443). Cluster vars: kube_pods_subnet,\n"
	        "kube_service_addresses, kube_proxy_mode (nftables for EL10 nodes),\n"
	        "kubeferry_control_plane_endpoint (or Kubespray's loadbalancer_apiserver);\n"
	        "otherwise the bundle's defaults (iptables) and the first control plane's\n"
	        "address, port 6443.\n"
	        "\n"
	        "A re-run over an existing plan keeps its etcd members and its first\n"
	        "control plane: an inventory that changes either is refused (membership\n"
	        "changes need etcdctl member add/remove by hand).\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE         trusted minisign public key file\n"
	        "  -P, --public-key-string KEY   the key's base64 line (as minisign -P)\n"
	        "  -o, --out DIR                 the plan directory\n"
	        "  -h, --help                    show this help\n"
	        "\n"
	        "Exit codes: 0 success, 1 bundle verification failed, 2 usage error or a\n"
	        "refused inventory (FILE:LINE: reason) or plan change, 3 I/O error.\n");
}

static void plan_free(kfp_plan *p)
{
	kf_inventory_free(p->inv);
	kf_lock_free(p->lock);
	X509_free(p->ca);
	X509_free(p->fp_ca);
	X509_free(p->etcd_ca);
	X509_free(p->mirror_ca);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->fp_key);
	EVP_PKEY_free(p->etcd_key);
	EVP_PKEY_free(p->mirror_key);
	free(p->cluster_config);
}

/* What the bundle's lock and the inventory decide together. */
static int settle(kfp_plan *p, kf_err *e)
{
	const kf_install *in = &p->lock->install;
	const kf_inv_host *first = &p->inv->hosts[p->inv->cp[0]];

	if (!p->lock->kube_version)
		return kf_err_set(e, KF_EUSAGE, "the bundle's lock has no kubernetesVersion");
	p->external_etcd = !in->etcd || !strcmp(in->etcd, "host");
	p->pod_subnet = p->inv->pod_subnet ? p->inv->pod_subnet :
	                in->pod_subnet ? in->pod_subnet : "10.244.0.0/16";
	p->service_subnet = p->inv->service_subnet ? p->inv->service_subnet :
	                    in->service_subnet ? in->service_subnet : "10.96.0.0/12";
	/* One mode for the whole cluster (kube-proxy's configuration is the
	 * cluster's): EL10 nodes need nftables, set kube_proxy_mode for them. */
	p->proxy_mode = p->inv->kube_proxy_mode ? p->inv->kube_proxy_mode :
	                in->kube_proxy_mode ? in->kube_proxy_mode : "iptables";
	if (p->inv->control_plane_endpoint)
		snprintf(p->endpoint, sizeof p->endpoint, "%s", p->inv->control_plane_endpoint);
	else
		snprintf(p->endpoint, sizeof p->endpoint, strchr(first->access_ip, ':') ?
		         "[%s]:6443" : "%s:6443", first->access_ip);
	return KF_OK;
}

static int write_plan(kfp_plan *p, kf_err *e)
{
	char path[4096];
	char *text;
	int rc;

	if ((rc = kfp_mkdir(p->dir, e)) || (rc = kfp_shared(p, e)))
		return rc;
	if (!(p->cluster_config = kfp_render_cluster_config(p)))
		return kf_err_set(e, KF_EIO, "out of memory");
	if ((rc = kfp_path(p, path, sizeof path, e, "hosts")) || (rc = kfp_mkdir(path, e)))
		return rc;
	for (size_t i = 0; i < p->inv->nhosts; i++)
		if (kfp_host_share(p, &p->inv->hosts[i], e) != KF_OK)
			return kf_err_prefix(e, "host %s", p->inv->hosts[i].name);
	if ((rc = kfp_path(p, path, sizeof path, e, "plan.yaml")))
		return rc;
	if (!(text = kfp_render_plan_yaml(p)))
		return kf_err_set(e, KF_EIO, "out of memory");
	rc = kfp_put(p, path, text, strlen(text), 0644, e);
	free(text);
	return rc;
}

int kfi_cmd_cluster_plan(int argc, char **argv)
{
	static const struct option opts[] = {
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *pubfile = NULL, *pubstr = NULL;
	kfp_plan p = {0};
	kf_pubkey pk;
	kf_archive_read_opts ro = {.key = &pk};
	kf_err e = {0};
	char tc[1024];
	int rc = KF_OK, opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': pubfile = optarg; break;
		case 'P': pubstr = optarg; break;
		case 'o': p.dir = optarg; break;
		case 'h': usage(stdout); goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install cluster plan --help'");
			goto out;
		}
	}
	if (optind != argc - 2 || !pubfile == !pubstr || !p.dir || !p.dir[0]) {
		rc = kf_err_set(&e, KF_EUSAGE, "cluster plan needs INVENTORY BUNDLE, exactly one of "
		                "-p or -P, and -o DIR (see --help)");
		goto out;
	}
	/* Everything that can refuse the plan comes before the first write. */
	if ((rc = kf_inventory_load(argv[optind], &p.inv, &e)) ||
	    (rc = kf_keys_load_public(pubfile, pubstr, &pk, &e)))
		goto out;
	if ((rc = kf_archive_verify(argv[optind + 1], &ro, &p.lock, tc, sizeof tc, &e))) {
		kf_err_prefix(&e, "%s", argv[optind + 1]);
		goto out;
	}
	if ((rc = settle(&p, &e)) || (rc = kfp_guard_existing(&p, &e)) || (rc = write_plan(&p, &e)))
		goto out;
	printf("plan %s: %zu hosts (%zu control planes, %zu etcd members, %zu workers, "
	       "%zu mirrors) for %s-%s\n", p.dir, p.inv->nhosts, p.inv->ncp, p.inv->netcd,
	       p.inv->nworkers, p.inv->nmirrors, p.lock->name, p.lock->version);
	printf("first control plane %s, API endpoint %s\n",
	       p.inv->hosts[p.inv->cp[0]].name, p.endpoint);
	printf("discovery hash sha256:%s\n", p.hash);
	printf("mirror CA fingerprint (sha256): %s\n", p.mirror_fp);
	printf("files written %d, unchanged %d\n", p.written, p.kept);
out:
	if (rc != KF_OK)
		kf_err_print(PROG, &e);
	plan_free(&p);
	return rc;
}
