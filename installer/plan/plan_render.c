/*
 * The texts of a plan: kubeadm.yaml (kubeadm.k8s.io/v1beta4), etcd.env
 * (Kubespray v2.29.1's roles/etcd/templates/etcd.env.j2 settings),
 * host.yaml and plan.yaml. Pure functions of the plan: a re-run renders
 * the same bytes, and the ClusterConfiguration is one string shared by
 * every control plane's file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/plan/plan.h"


/* An address in a URL or HOST:PORT: IPv6 in brackets. */
static void url_host(const char *ip, char *out, size_t n)
{
	snprintf(out, n, strchr(ip, ':') ? "[%s]" : "%s", ip);
}

void kfp_mirror_endpoint(const kfp_plan *p, size_t i, char *out, size_t n)
{
	const kf_inv_host *h = &p->inv->hosts[p->inv->mirrors[i]];
	char a[64];

	url_host(h->access_ip, a, sizeof a);
	snprintf(out, n, "%s:%d", a, h->mirror_port);
}

int kfp_is_first_cp(const kfp_plan *p, const kf_inv_host *h)
{
	return h == &p->inv->hosts[p->inv->cp[0]];
}

static const char *kube_v(const kfp_plan *p)
{
	return p->lock->kube_version[0] == 'v' ? "" : "v";
}

char *kfp_render_cluster_config(const kfp_plan *p)
{
	kf_buf b;
	char a[64];

	kf_buf_init(&b);
	kf_buf_addf(&b,
	            "apiVersion: kubeadm.k8s.io/v1beta4\n"
	            "kind: ClusterConfiguration\n"
	            "clusterName: kubernetes\n"
	            "kubernetesVersion: %s%s\n"
	            "controlPlaneEndpoint: %s\n"
	            "imageRepository: registry.k8s.io\n"
	            "certificatesDir: " KFP_PKI "\n"
	            "networking:\n"
	            "  dnsDomain: cluster.local\n"
	            "  podSubnet: %s\n"
	            "  serviceSubnet: %s\n",
	            kube_v(p), p->lock->kube_version, p->endpoint, p->pod_subnet, p->service_subnet);
	if (p->external_etcd) {
		kf_buf_adds(&b, "etcd:\n  external:\n    endpoints:\n");
		for (size_t i = 0; i < p->inv->netcd; i++) {
			url_host(p->inv->hosts[p->inv->etcd[i]].access_ip, a, sizeof a);
			kf_buf_addf(&b, "    - https://%s:2379\n", a);
		}
		kf_buf_adds(&b, "    caFile: " KFP_ETCD_CA_CRT "\n"
		                "    certFile: " KFP_ETCD_CLIENT_CRT "\n"
		                "    keyFile: " KFP_ETCD_CLIENT_KEY "\n");
	} else {
		kf_buf_adds(&b, "etcd:\n  local:\n    dataDir: /var/lib/etcd\n");
	}
	/* The production checklist: secrets encrypted in etcd, an audit log
	 * that rotates instead of filling the disk. */
	kf_buf_adds(&b,
	            "apiServer:\n"
	            "  extraArgs:\n"
	            "  - name: encryption-provider-config\n"
	            "    value: " KFP_ENCRYPTION "\n"
	            "  - name: audit-policy-file\n"
	            "    value: " KFP_AUDIT_POLICY "\n"
	            "  - name: audit-log-path\n"
	            "    value: " KFP_AUDIT_LOG_DIR "/audit.log\n"
	            "  - name: audit-log-maxage\n"
	            "    value: \"30\"\n"
	            "  - name: audit-log-maxbackup\n"
	            "    value: \"10\"\n"
	            "  - name: audit-log-maxsize\n"
	            "    value: \"100\"\n"
	            "  extraVolumes:\n"
	            "  - name: kubeferry-config\n"
	            "    hostPath: " KFP_CONF_DIR "\n"
	            "    mountPath: " KFP_CONF_DIR "\n"
	            "    readOnly: true\n"
	            "    pathType: DirectoryOrCreate\n"
	            "  - name: audit-log\n"
	            "    hostPath: " KFP_AUDIT_LOG_DIR "\n"
	            "    mountPath: " KFP_AUDIT_LOG_DIR "\n"
	            "    readOnly: false\n"
	            "    pathType: DirectoryOrCreate\n");
	return kf_buf_take(&b);
}

char *kfp_render_kubeadm(const kfp_plan *p, const kf_inv_host *h)
{
	int cp = (h->roles & KF_ROLE_CONTROL_PLANE) != 0;
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_addf(&b, "# Written by kubeferry-install cluster plan for %s.\n"
	            "apiVersion: kubeadm.k8s.io/v1beta4\n", h->name);
	if (kfp_is_first_cp(p, h)) {
		kfi_kubeadm_init_head(&b, p->token, p->certkey, h->ip);
	} else {
		char hash[80];
		snprintf(hash, sizeof hash, "sha256:%s", p->hash);
		kfi_kubeadm_join_head(&b, p->endpoint, p->token, hash);
	}
	kfi_kubeadm_node_registration(&b, h->node_name, h->ip);
	if (cp && !kfp_is_first_cp(p, h))
		kfi_kubeadm_join_control_plane(&b, h->ip, p->certkey);
	if (cp)
		kf_buf_addf(&b, "---\n%s", p->cluster_config);
	if (kfp_is_first_cp(p, h))
		kfi_kubeadm_kubelet_proxy(&b, p->pod_subnet, p->proxy_mode);
	return kf_buf_take(&b);
}

char *kfp_render_etcd_env(const kfp_plan *p, const kf_inv_host *h)
{
	const char *d = KFP_ETCD_SSL, *n = h->name;
	char ip[64], acc[64], loop[64] = "";
	kf_buf b;

	url_host(h->ip, ip, sizeof ip);
	url_host(h->access_ip, acc, sizeof acc);
	/* Local clients (kube-apiserver, etcdctl) need no routable address. */
	if (strcmp(h->ip, "127.0.0.1"))
		snprintf(loop, sizeof loop, ",https://127.0.0.1:2379");
	kf_buf_init(&b);
	kf_buf_addf(&b,
	            "# Written by kubeferry-install cluster plan: etcd member %s of %zu.\n"
	            "ETCD_DATA_DIR=/var/lib/etcd\n"
	            "ETCD_ADVERTISE_CLIENT_URLS=https://%s:2379\n"
	            "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://%s:2380\n"
	            "ETCD_INITIAL_CLUSTER_STATE=new\n"
	            "ETCD_METRICS=basic\n"
	            "ETCD_LISTEN_CLIENT_URLS=https://%s:2379%s\n"
	            "ETCD_ELECTION_TIMEOUT=5000\n"
	            "ETCD_HEARTBEAT_INTERVAL=250\n"
	            "ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd\n"
	            "ETCD_LISTEN_PEER_URLS=https://%s:2380\n"
	            "ETCD_NAME=%s\n"
	            "ETCD_PROXY=off\n"
	            "ETCD_INITIAL_CLUSTER=",
	            h->etcd_member_name, p->inv->netcd, acc, acc, ip, loop, ip, h->etcd_member_name);
	for (size_t i = 0; i < p->inv->netcd; i++) {
		const kf_inv_host *m = &p->inv->hosts[p->inv->etcd[i]];
		url_host(m->access_ip, acc, sizeof acc);
		kf_buf_addf(&b, "%s%s=https://%s:2380", i ? "," : "", m->etcd_member_name, acc);
	}
	kf_buf_addf(&b,
	            "\n"
	            "ETCD_AUTO_COMPACTION_RETENTION=8\n"
	            "ETCD_SNAPSHOT_COUNT=100000\n"
	            "ETCD_TRUSTED_CA_FILE=%s/ca.pem\n"
	            "ETCD_CERT_FILE=%s/member-%s.pem\n"
	            "ETCD_KEY_FILE=%s/member-%s-key.pem\n"
	            "ETCD_CLIENT_CERT_AUTH=true\n"
	            "ETCD_PEER_TRUSTED_CA_FILE=%s/ca.pem\n"
	            "ETCD_PEER_CERT_FILE=%s/member-%s.pem\n"
	            "ETCD_PEER_KEY_FILE=%s/member-%s-key.pem\n"
	            "ETCD_PEER_CLIENT_CERT_AUTH=true\n"
	            "ETCDCTL_ENDPOINTS=https://127.0.0.1:2379\n"
	            "ETCDCTL_CACERT=%s/ca.pem\n"
	            "ETCDCTL_KEY=%s/admin-%s-key.pem\n"
	            "ETCDCTL_CERT=%s/admin-%s.pem\n"
	            "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true\n"
	            "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s\n",
	            d, d, n, d, n, d, d, n, d, n, d, d, n, d, n);
	return kf_buf_take(&b);
}

static void roles(kf_buf *b, unsigned r)
{
	int first = 1;
	static const struct { unsigned bit; const char *name; } names[] = {
		{KF_ROLE_ETCD, "etcd"}, {KF_ROLE_CONTROL_PLANE, "control-plane"},
		{KF_ROLE_WORKER, "worker"}, {KF_ROLE_MIRROR, "mirror"},
	};

	kf_buf_adds(b, "[");
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (r & names[i].bit) {
			kf_buf_addf(b, "%s%s", first ? "" : ", ", names[i].name);
			first = 0;
		}
	kf_buf_adds(b, "]\n");
}

static void mirror_list(kf_buf *b, const kfp_plan *p, const char *indent)
{
	char ep[96];

	for (size_t i = 0; i < p->inv->nmirrors; i++) {
		kfp_mirror_endpoint(p, i, ep, sizeof ep);
		kf_buf_addf(b, "%s- \"%s\"\n", indent, ep);
	}
}

char *kfp_render_host_yaml(const kfp_plan *p, const kf_inv_host *h)
{
	unsigned r = h->roles;
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_addf(&b,
	            "# Written by kubeferry-install cluster plan: the share of host %s.\n"
	            "# Everything this host needs is in this directory; 'files' says\n"
	            "# where each file goes on the node.\n"
	            "name: %s\n"
	            "node_name: %s\n"
	            "ip: %s\n"
	            "access_ip: %s\n"
	            "bundle: %s-%s\n"
	            "kubernetes_version: %s%s\n"
	            "control_plane_endpoint: \"%s\"\n"
	            "roles: ",
	            h->name, h->name, h->node_name, h->ip, h->access_ip, p->lock->name,
	            p->lock->version, kube_v(p), p->lock->kube_version, p->endpoint);
	roles(&b, r);
	kf_buf_addf(&b, "first_control_plane: %s\n", kfp_is_first_cp(p, h) ? "true" : "false");
	if (h->etcd_member_name && p->external_etcd)
		kf_buf_addf(&b, "etcd_member_name: %s\n", h->etcd_member_name);
	else
		kf_buf_adds(&b, "etcd_member_name: null\n");
	if (r & KF_ROLE_MIRROR)
		kf_buf_addf(&b, "mirror_port: %d\n", h->mirror_port);
	kf_buf_addf(&b, "mirror_ca_fingerprint: \"%s\"\nmirror_endpoints:\n", p->mirror_fp);
	mirror_list(&b, p, "  ");
	kf_buf_adds(&b, "files:\n  mirror-ca.crt: /etc/kubeferry/mirror-ca.crt\n");
	if ((r & KF_ROLE_ETCD) && p->external_etcd)
		kf_buf_adds(&b, "  etcd.env: " KFP_ETCD_ENV "\n  etcd-ssl/: " KFP_ETCD_SSL "/\n");
	if (r & KF_ROLE_CONTROL_PLANE)
		kf_buf_adds(&b, "  pki/: " KFP_PKI "/\n"
		                "  encryption-config.yaml: " KFP_ENCRYPTION "\n"
		                "  audit-policy.yaml: " KFP_AUDIT_POLICY "\n");
	if (r & (KF_ROLE_CONTROL_PLANE | KF_ROLE_WORKER))
		kf_buf_adds(&b, "  kubeadm.yaml: " KFP_KUBEADM "\n");
	if (r & KF_ROLE_MIRROR)
		kf_buf_adds(&b, "  mirror-tls/: " KFP_MIRROR_TLS "/\n");
	return kf_buf_take(&b);
}

char *kfp_render_plan_yaml(const kfp_plan *p)
{
	const kf_inventory *inv = p->inv;
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_addf(&b,
	            "# Written by kubeferry-install cluster plan: a summary. The nodes use\n"
	            "# shared/ (never copied to a node as a whole) and hosts/<name>/.\n"
	            "cluster:\n"
	            "  bundle: %s-%s\n"
	            "  kubernetes_version: %s%s\n"
	            "  etcd: %s\n"
	            "  control_plane_endpoint: \"%s\"\n"
	            "  pod_subnet: %s\n"
	            "  service_subnet: %s\n"
	            "  first_control_plane: %s\n"
	            "  discovery_hash: sha256:%s\n"
	            "mirror:\n"
	            "  ca_fingerprint_sha256: \"%s\"\n"
	            "  endpoints:\n",
	            p->lock->name, p->lock->version, kube_v(p), p->lock->kube_version,
	            p->external_etcd ? "host" : "kubeadm", p->endpoint, p->pod_subnet,
	            p->service_subnet, inv->hosts[inv->cp[0]].name, p->hash, p->mirror_fp);
	mirror_list(&b, p, "    ");
	kf_buf_adds(&b, "hosts:\n");
	for (size_t i = 0; i < inv->nhosts; i++) {
		const kf_inv_host *h = &inv->hosts[i];
		kf_buf_addf(&b, "  - name: %s\n    ip: %s\n    roles: ", h->name, h->ip);
		roles(&b, h->roles);
		kf_buf_addf(&b, "    share: hosts/%s\n", h->name);
	}
	return kf_buf_take(&b);
}
