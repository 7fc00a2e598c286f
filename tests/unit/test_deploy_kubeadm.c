/* The kubeadm configuration of `cluster init`, parsed back with libyaml and
 * checked field by field against the kubeadm v1beta4 API (and the kubelet
 * v1beta1 / kube-proxy v1alpha1 documents kubeadm accepts with it): every
 * key must be one the API defines, with the right type and value. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "installer/kf_installer.h"
#include "kf_test.h"

#define MAXDOC 8

static yaml_document_t docs[MAXDOC];
static int ndocs;

static void load(const char *text)
{
	yaml_parser_t p;

	for (int i = 0; i < ndocs; i++)
		yaml_document_delete(&docs[i]);
	ndocs = 0;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
	while (ndocs < MAXDOC) {
		if (!yaml_parser_load(&p, &docs[ndocs])) {
			CHECK(!"YAML parse error");
			break;
		}
		if (!yaml_document_get_root_node(&docs[ndocs])) {
			yaml_document_delete(&docs[ndocs]);
			break;
		}
		ndocs++;
	}
	yaml_parser_delete(&p);
}

static yaml_node_t *get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(d, pr->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(d, pr->value);
	}
	return NULL;
}

static const char *str(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Every key of map is in allowed (the API's field names). */
static int keys_allowed(yaml_document_t *d, yaml_node_t *map, const char *const *allowed)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		const char *k = str(yaml_document_get_node(d, pr->key));
		int ok = 0;
		for (size_t i = 0; k && allowed[i]; i++)
			ok |= !strcmp(k, allowed[i]);
		if (!ok) {
			fprintf(stderr, "field %s is not in the API\n", k ? k : "?");
			return 0;
		}
	}
	return 1;
}

static yaml_document_t *doc_of(const char *kind)
{
	for (int i = 0; i < ndocs; i++)
		if (str(get(&docs[i], yaml_document_get_root_node(&docs[i]), "kind")) &&
		    !strcmp(str(get(&docs[i], yaml_document_get_root_node(&docs[i]), "kind")), kind))
			return &docs[i];
	return NULL;
}

static kfi_kubeadm_opts base(void)
{
	kfi_kubeadm_opts o = {
		.kube_version = "1.33.3", .node_name = "cp1", .advertise_ip = "10.0.0.5",
		.control_plane_endpoint = "10.0.0.5:6443", .pod_subnet = "10.244.0.0/16",
		.service_subnet = "10.96.0.0/12", .token = "abcdef.0123456789abcdef",
		.certificate_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		.external_etcd = 1, .etcd_endpoint = "https://10.0.0.5:2379",
		.etcd_ca = "/etc/ssl/etcd/ssl/ca.pem", .etcd_cert = "/etc/ssl/etcd/ssl/node-cp1.pem",
		.etcd_key = "/etc/ssl/etcd/ssl/node-cp1-key.pem",
	};
	return o;
}

static void t_init_configuration(void)
{
	static const char *const init_keys[] = {"apiVersion", "kind", "bootstrapTokens", "nodeRegistration",
		"localAPIEndpoint", "certificateKey", "skipPhases", "patches", "timeouts", "dryRun", NULL};
	static const char *const token_keys[] = {"token", "description", "ttl", "expires", "usages", "groups", NULL};
	static const char *const nr_keys[] = {"name", "criSocket", "taints", "kubeletExtraArgs",
		"ignorePreflightErrors", "imagePullPolicy", "imagePullSerial", NULL};
	static const char *const ep_keys[] = {"advertiseAddress", "bindPort", NULL};
	static const char *const arg_keys[] = {"name", "value", NULL};
	kfi_kubeadm_opts o = base();
	char *s = kfi_render_kubeadm(&o);
	yaml_document_t *d;
	yaml_node_t *r, *n, *tok;

	load(s);
	CHECK_INT(ndocs, 4);
	d = doc_of("InitConfiguration");
	CHECK(d != NULL);
	if (!d)
		goto out;
	r = yaml_document_get_root_node(d);
	CHECK_STR(str(get(d, r, "apiVersion")), "kubeadm.k8s.io/v1beta4");
	CHECK(keys_allowed(d, r, init_keys));
	n = get(d, r, "bootstrapTokens");
	CHECK(n && n->type == YAML_SEQUENCE_NODE && n->data.sequence.items.top - n->data.sequence.items.start == 1);
	tok = n ? yaml_document_get_node(d, *n->data.sequence.items.start) : NULL;
	CHECK(keys_allowed(d, tok, token_keys));
	CHECK_STR(str(get(d, tok, "token")), "abcdef.0123456789abcdef");
	CHECK_STR(str(get(d, tok, "ttl")), "24h0m0s");
	CHECK(get(d, tok, "usages") && get(d, tok, "usages")->type == YAML_SEQUENCE_NODE);
	CHECK_STR(str(get(d, r, "certificateKey")), o.certificate_key);
	n = get(d, r, "localAPIEndpoint");
	CHECK(keys_allowed(d, n, ep_keys));
	CHECK_STR(str(get(d, n, "advertiseAddress")), "10.0.0.5");
	CHECK_STR(str(get(d, n, "bindPort")), "6443");
	CHECK(get(d, n, "bindPort") && get(d, n, "bindPort")->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
	n = get(d, r, "nodeRegistration");
	CHECK(keys_allowed(d, n, nr_keys));
	CHECK_STR(str(get(d, n, "name")), "cp1");
	CHECK_STR(str(get(d, n, "criSocket")), "unix:///run/containerd/containerd.sock");
	CHECK_STR(str(get(d, n, "imagePullPolicy")), "IfNotPresent");
	/* v1beta4 turned extra args into a list of {name, value}. */
	n = get(d, n, "kubeletExtraArgs");
	CHECK(n && n->type == YAML_SEQUENCE_NODE);
	if (n && n->type == YAML_SEQUENCE_NODE) {
		yaml_node_t *a = yaml_document_get_node(d, *n->data.sequence.items.start);
		CHECK(keys_allowed(d, a, arg_keys));
		CHECK_STR(str(get(d, a, "name")), "node-ip");
		CHECK_STR(str(get(d, a, "value")), "10.0.0.5");
	}
out:
	free(s);
}

static void t_cluster_configuration(void)
{
	static const char *const cc_keys[] = {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion",
		"controlPlaneEndpoint", "apiServer", "controllerManager", "scheduler", "dns", "proxy",
		"certificatesDir", "imageRepository", "featureGates", "clusterName", "encryptionAlgorithm",
		"certificateValidityPeriod", "caCertificateValidityPeriod", NULL};
	static const char *const net_keys[] = {"serviceSubnet", "podSubnet", "dnsDomain", NULL};
	static const char *const etcd_keys[] = {"local", "external", NULL};
	static const char *const ext_keys[] = {"endpoints", "caFile", "certFile", "keyFile", NULL};
	static const char *const local_keys[] = {"imageRepository", "imageTag", "dataDir", "extraArgs",
		"extraEnvs", "serverCertSANs", "peerCertSANs", NULL};
	kfi_kubeadm_opts o = base();
	char *s = kfi_render_kubeadm(&o);
	yaml_document_t *d;
	yaml_node_t *r, *n, *x;

	load(s);
	d = doc_of("ClusterConfiguration");
	CHECK(d != NULL);
	if (!d)
		goto out;
	r = yaml_document_get_root_node(d);
	CHECK_STR(str(get(d, r, "apiVersion")), "kubeadm.k8s.io/v1beta4");
	CHECK(keys_allowed(d, r, cc_keys));
	CHECK_STR(str(get(d, r, "kubernetesVersion")), "v1.33.3");
	CHECK_STR(str(get(d, r, "controlPlaneEndpoint")), "10.0.0.5:6443");
	CHECK_STR(str(get(d, r, "certificatesDir")), "/etc/kubernetes/pki");
	n = get(d, r, "networking");
	CHECK(keys_allowed(d, n, net_keys));
	CHECK_STR(str(get(d, n, "podSubnet")), "10.244.0.0/16");
	CHECK_STR(str(get(d, n, "serviceSubnet")), "10.96.0.0/12");
	n = get(d, r, "etcd");
	CHECK(keys_allowed(d, n, etcd_keys));
	CHECK(get(d, n, "local") == NULL);
	x = get(d, n, "external");
	CHECK(keys_allowed(d, x, ext_keys));
	CHECK(get(d, x, "endpoints") && get(d, x, "endpoints")->type == YAML_SEQUENCE_NODE);
	if (get(d, x, "endpoints"))
		CHECK_STR(str(yaml_document_get_node(d, *get(d, x, "endpoints")->data.sequence.items.start)),
		          "https://10.0.0.5:2379");
	CHECK_STR(str(get(d, x, "caFile")), "/etc/ssl/etcd/ssl/ca.pem");
	CHECK_STR(str(get(d, x, "certFile")), "/etc/ssl/etcd/ssl/node-cp1.pem");
	CHECK_STR(str(get(d, x, "keyFile")), "/etc/ssl/etcd/ssl/node-cp1-key.pem");
	free(s);

	/* etcd: kubeadm -> stacked etcd, no external block; a "v" prefix is
	 * not doubled. */
	o.external_etcd = 0;
	o.kube_version = "v1.32.7";
	s = kfi_render_kubeadm(&o);
	load(s);
	d = doc_of("ClusterConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	CHECK_STR(str(get(d, r, "kubernetesVersion")), "v1.32.7");
	n = get(d, r, "etcd");
	CHECK(get(d, n, "external") == NULL);
	CHECK(keys_allowed(d, get(d, n, "local"), local_keys));
	CHECK_STR(str(get(d, get(d, n, "local"), "dataDir")), "/var/lib/etcd");
out:
	free(s);
}

static void t_kubelet_proxy(void)
{
	kfi_kubeadm_opts o = base();
	char *s = kfi_render_kubeadm(&o);
	yaml_document_t *d;
	yaml_node_t *r;

	load(s);
	d = doc_of("KubeletConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	CHECK_STR(str(get(d, r, "apiVersion")), "kubelet.config.k8s.io/v1beta1");
	/* Must match containerd's SystemdCgroup = true. */
	CHECK_STR(str(get(d, r, "cgroupDriver")), "systemd");
	CHECK_STR(str(get(d, r, "containerRuntimeEndpoint")), "unix:///run/containerd/containerd.sock");
	d = doc_of("KubeProxyConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	CHECK_STR(str(get(d, r, "apiVersion")), "kubeproxy.config.k8s.io/v1alpha1");
	CHECK_STR(str(get(d, r, "clusterCIDR")), "10.244.0.0/16");
	CHECK_STR(str(get(d, r, "mode")), "iptables");
	free(s);
	/* EL10 (point 2): nftables mode, GA in 1.33. */
	o.proxy_mode = "nftables";
	s = kfi_render_kubeadm(&o);
	load(s);
	d = doc_of("KubeProxyConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	CHECK_STR(str(get(d, r, "mode")), "nftables");
	free(s);
	for (int i = 0; i < ndocs; i++)
		yaml_document_delete(&docs[i]);
	ndocs = 0;
}

/* cluster join (point 6): the v1beta4 JoinConfiguration, key by key. */
static void t_join_configuration(void)
{
	static const char *const join_keys[] = {"apiVersion", "kind", "dryRun", "nodeRegistration",
		"caCertPath", "discovery", "controlPlane", "skipPhases", "patches", "timeouts", NULL};
	static const char *const disc_keys[] = {"bootstrapToken", "file", "tlsBootstrapToken", NULL};
	static const char *const bt_keys[] = {"token", "apiServerEndpoint", "caCertHashes",
		"unsafeSkipCAVerification", NULL};
	static const char *const nr_keys[] = {"name", "criSocket", "taints", "kubeletExtraArgs",
		"ignorePreflightErrors", "imagePullPolicy", "imagePullSerial", NULL};
	static const char *const cp_keys[] = {"localAPIEndpoint", "certificateKey", NULL};
	static const char *const ep_keys[] = {"advertiseAddress", "bindPort", NULL};
	kfi_join_opts o = {.api_server = "10.0.0.5:6443", .token = "abcdef.0123456789abcdef",
		.ca_cert_hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.node_name = "w1", .node_ip = "10.0.0.6"};
	char *s = kfi_render_kubeadm_join(&o);
	yaml_document_t *d;
	yaml_node_t *r, *n, *a;

	load(s);
	CHECK_INT(ndocs, 1);
	d = doc_of("JoinConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	CHECK_STR(str(get(d, r, "apiVersion")), "kubeadm.k8s.io/v1beta4");
	CHECK(keys_allowed(d, r, join_keys));
	n = get(d, r, "discovery");
	CHECK(keys_allowed(d, n, disc_keys));
	n = get(d, n, "bootstrapToken");
	CHECK(keys_allowed(d, n, bt_keys));
	CHECK_STR(str(get(d, n, "apiServerEndpoint")), "10.0.0.5:6443");
	CHECK_STR(str(get(d, n, "token")), "abcdef.0123456789abcdef");
	n = get(d, n, "caCertHashes");
	CHECK(n && n->type == YAML_SEQUENCE_NODE);
	if (n && n->type == YAML_SEQUENCE_NODE)
		CHECK_STR(str(yaml_document_get_node(d, *n->data.sequence.items.start)), o.ca_cert_hash);
	n = get(d, r, "nodeRegistration");
	CHECK(keys_allowed(d, n, nr_keys));
	CHECK_STR(str(get(d, n, "name")), "w1");
	n = get(d, n, "kubeletExtraArgs");
	CHECK(n && n->type == YAML_SEQUENCE_NODE);
	a = n && n->type == YAML_SEQUENCE_NODE ? yaml_document_get_node(d, *n->data.sequence.items.start) : NULL;
	CHECK_STR(str(get(d, a, "name")), "node-ip");
	CHECK_STR(str(get(d, a, "value")), "10.0.0.6");
	CHECK(get(d, r, "controlPlane") == NULL);
	free(s);

	o.certificate_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	s = kfi_render_kubeadm_join(&o);
	load(s);
	d = doc_of("JoinConfiguration");
	r = d ? yaml_document_get_root_node(d) : NULL;
	n = get(d, r, "controlPlane");
	CHECK(keys_allowed(d, n, cp_keys));
	CHECK_STR(str(get(d, n, "certificateKey")), o.certificate_key);
	n = get(d, n, "localAPIEndpoint");
	CHECK(keys_allowed(d, n, ep_keys));
	CHECK_STR(str(get(d, n, "advertiseAddress")), "10.0.0.6");
	CHECK_STR(str(get(d, n, "bindPort")), "6443");
	free(s);
	for (int i = 0; i < ndocs; i++)
		yaml_document_delete(&docs[i]);
	ndocs = 0;
}

KF_TEST_MAIN(t_join_configuration, t_init_configuration, t_cluster_configuration, t_kubelet_proxy)
