/* The kubeadm configurations of a cluster plan, parsed back with libyaml
 * and checked against the kubeadm v1beta4 API's field names: the Init,
 * Join (control plane and worker) and shared Cluster configurations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "installer/plan/plan.h"
#include "kf_test.h"

#define MAXDOC 6

static yaml_document_t docs[MAXDOC];
static int ndocs;

static void unload(void)
{
	for (int i = 0; i < ndocs; i++)
		yaml_document_delete(&docs[i]);
	ndocs = 0;
}

static void load(const char *text)
{
	yaml_parser_t p;

	unload();
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
	while (ndocs < MAXDOC && yaml_parser_load(&p, &docs[ndocs])) {
		if (!yaml_document_get_root_node(&docs[ndocs])) {
			yaml_document_delete(&docs[ndocs]);
			break;
		}
		ndocs++;
	}
	yaml_parser_delete(&p);
}

static yaml_node_t *at(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (!d || !map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(d, pr->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(d, pr->value);
	}
	return NULL;
}

static const char *val(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *item(yaml_document_t *d, yaml_node_t *seq, int i)
{
	if (!seq || seq->type != YAML_SEQUENCE_NODE || seq->data.sequence.items.start + i >= seq->data.sequence.items.top)
		return NULL;
	return yaml_document_get_node(d, seq->data.sequence.items.start[i]);
}

/* Every key of map is one the API defines (space-separated list). */
static int only(yaml_document_t *d, yaml_node_t *map, const char *allowed)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		const char *k = val(yaml_document_get_node(d, pr->key));
		char word[80];
		if (!k || snprintf(word, sizeof word, " %s ", k) >= (int)sizeof word)
			return 0;
		if (!strstr(allowed, word)) {
			fprintf(stderr, "field %s is not in the API\n", k);
			return 0;
		}
	}
	return 1;
}

static yaml_document_t *doc(const char *kind, yaml_node_t **root)
{
	for (int i = 0; i < ndocs; i++) {
		yaml_node_t *r = yaml_document_get_root_node(&docs[i]);
		if (val(at(&docs[i], r, "kind")) && !strcmp(val(at(&docs[i], r, "kind")), kind)) {
			*root = r;
			return &docs[i];
		}
	}
	*root = NULL;
	return NULL;
}

static const char NR[] = " name criSocket taints kubeletExtraArgs ignorePreflightErrors imagePullPolicy imagePullSerial ";
static const char CC[] = " apiVersion kind etcd networking kubernetesVersion controlPlaneEndpoint apiServer "
	"controllerManager scheduler dns proxy certificatesDir imageRepository featureGates clusterName "
	"encryptionAlgorithm certificateValidityPeriod caCertificateValidityPeriod ";

static kfp_plan plan;
static kf_lock lock;
static char dir[64];

static void setup(void)
{
	char path[128];
	FILE *f;
	kf_err e = {0};

	snprintf(dir, sizeof dir, "/tmp/kf-plan-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/inventory.ini", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("cp1 ip=10.0.0.11\ncp2 ip=10.0.0.12\ncp3 ip=10.0.0.13\nw1 ip=10.0.0.21\n"
		      "[kube_control_plane]\ncp1\ncp2\ncp3\n[etcd]\ncp1\ncp2\ncp3\n[kube_node]\nw1\n", f);
		fclose(f);
	}
	CHECK_INT(kf_inventory_load(path, &plan.inv, &e), KF_OK);
	unlink(path);
	rmdir(dir);
	lock.name = "k8s";
	lock.version = "1.33.3";
	lock.kube_version = "1.33.3";
	plan.lock = &lock;
	plan.external_etcd = 1;
	plan.pod_subnet = "10.244.0.0/16";
	plan.service_subnet = "10.96.0.0/12";
	plan.proxy_mode = "nftables";
	snprintf(plan.endpoint, sizeof plan.endpoint, "10.0.0.11:6443");
	snprintf(plan.token, sizeof plan.token, "abcdef.0123456789abcdef");
	memset(plan.certkey, 'a', 64);
	memset(plan.hash, 'b', 64);
	plan.cluster_config = kfp_render_cluster_config(&plan);
	CHECK(plan.cluster_config != NULL);
}

static const kf_inv_host *host(const char *name)
{
	for (size_t i = 0; plan.inv && i < plan.inv->nhosts; i++)
		if (!strcmp(plan.inv->hosts[i].name, name))
			return &plan.inv->hosts[i];
	return NULL;
}

static void t_init(void)
{
	char *s = plan.inv ? kfp_render_kubeadm(&plan, host("cp1")) : NULL;
	yaml_node_t *r, *n;
	yaml_document_t *d;

	CHECK(s != NULL);
	if (!s)
		return;
	load(s);
	CHECK_INT(ndocs, 4);
	d = doc("InitConfiguration", &r);
	CHECK(only(d, r, " apiVersion kind bootstrapTokens nodeRegistration localAPIEndpoint "
	           "certificateKey skipPhases patches timeouts dryRun "));
	CHECK_STR(val(at(d, item(d, at(d, r, "bootstrapTokens"), 0), "token")), "abcdef.0123456789abcdef");
	CHECK_STR(val(at(d, at(d, r, "localAPIEndpoint"), "advertiseAddress")), "10.0.0.11");
	n = at(d, r, "nodeRegistration");
	CHECK(only(d, n, NR));
	CHECK_STR(val(at(d, item(d, at(d, n, "kubeletExtraArgs"), 0), "value")), "10.0.0.11");
	d = doc("ClusterConfiguration", &r);
	CHECK(only(d, r, CC));
	n = at(d, at(d, r, "etcd"), "external");
	CHECK(only(d, n, " endpoints caFile certFile keyFile "));
	CHECK_STR(val(item(d, at(d, n, "endpoints"), 2)), "https://10.0.0.13:2379");
	n = at(d, r, "apiServer");
	CHECK(only(d, n, " certSANs extraArgs extraEnvs extraVolumes "));
	for (int i = 0; i < 6; i++)
		CHECK(only(d, item(d, at(d, n, "extraArgs"), i), " name value "));
	for (int i = 0; i < 2; i++)
		CHECK(only(d, item(d, at(d, n, "extraVolumes"), i), " name hostPath mountPath readOnly pathType "));
	CHECK_STR(val(at(d, item(d, at(d, n, "extraVolumes"), 0), "pathType")), "DirectoryOrCreate");
	CHECK(doc("KubeletConfiguration", &r) != NULL);
	d = doc("KubeProxyConfiguration", &r);
	CHECK_STR(val(at(d, r, "mode")), "nftables");
	free(s);
}

static void t_join(void)
{
	char *cp = plan.inv ? kfp_render_kubeadm(&plan, host("cp2")) : NULL;
	char *w = plan.inv ? kfp_render_kubeadm(&plan, host("w1")) : NULL;
	yaml_node_t *r, *n;
	yaml_document_t *d;

	CHECK(cp && w);
	if (!cp || !w)
		goto out;
	load(cp);
	CHECK_INT(ndocs, 2);
	d = doc("JoinConfiguration", &r);
	CHECK(only(d, r, " apiVersion kind nodeRegistration caCertPath discovery controlPlane "
	           "skipPhases patches timeouts dryRun "));
	n = at(d, r, "discovery");
	CHECK(only(d, n, " bootstrapToken file tlsBootstrapToken "));
	n = at(d, n, "bootstrapToken");
	CHECK(only(d, n, " token apiServerEndpoint caCertHashes unsafeSkipCAVerification "));
	CHECK(at(d, n, "unsafeSkipCAVerification") == NULL);
	CHECK(val(item(d, at(d, n, "caCertHashes"), 0)) && !strncmp(val(item(d, at(d, n, "caCertHashes"), 0)), "sha256:bbbb", 11));
	n = at(d, r, "controlPlane");
	CHECK(only(d, n, " localAPIEndpoint certificateKey "));
	CHECK_STR(val(at(d, at(d, n, "localAPIEndpoint"), "advertiseAddress")), "10.0.0.12");
	CHECK(strstr(cp, plan.cluster_config) != NULL);
	load(w);
	CHECK_INT(ndocs, 1);
	d = doc("JoinConfiguration", &r);
	CHECK(at(d, r, "controlPlane") == NULL);
	CHECK(only(d, at(d, r, "nodeRegistration"), NR));
	CHECK_STR(val(at(d, at(d, r, "nodeRegistration"), "name")), "w1");
out:
	free(cp);
	free(w);
	unload();
	free(plan.cluster_config);
	kf_inventory_free(plan.inv);
}

KF_TEST_MAIN(setup, t_init, t_join)
