/*
 * Configuration files generated for a node. Pure functions of their inputs
 * (no time, no randomness), so a re-run renders identical bytes and the
 * step engine reports "ok". Each returns a new string, or NULL when out of
 * memory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"


/* containerd 1.x reads config version 2; 2.x renamed the CRI plugins and
 * reads version 3 (docs/hosts.md and the 2.0 migration notes). */
char *kfi_render_containerd(const char *containerd_version,
                            const char *sandbox_image)
{
	const char *v = containerd_version ? containerd_version : "1";
	char *end = NULL;
	long major, minor = 0;

	if (*v == 'v')
		v++;
	/* "2.1.4" is major 2, minor 1. */
	major = strtol(v, &end, 10);
	if (end && *end == '.')
		minor = strtol(end + 1, NULL, 10);
	if (major >= 2)
		return kfi_strf(
		    "# Written by kubeferry-install: containerd %s (config version 3).\n"
		    "version = 3\n"
		    "root = \"/var/lib/containerd\"\n"
		    "state = \"/run/containerd\"\n"
		    "\n"
		    "[grpc]\n"
		    "  address = \"/run/containerd/containerd.sock\"\n"
		    "\n"
		    "[plugins.\"io.containerd.cri.v1.images\"]\n"
		    "  [plugins.\"io.containerd.cri.v1.images\".pinned_images]\n"
		    "    sandbox = \"%s\"\n"
		    "  [plugins.\"io.containerd.cri.v1.images\".registry]\n"
		    "    config_path = \"/etc/containerd/certs.d\"\n"
		    "\n"
		    "[plugins.\"io.containerd.cri.v1.runtime\"]\n"
		    "  [plugins.\"io.containerd.cri.v1.runtime\".containerd]\n"
		    "    default_runtime_name = \"runc\"\n"
		    "    [plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc]\n"
		    "      runtime_type = \"io.containerd.runc.v2\"\n"
		    "      [plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\n"
		    "        BinaryName = \"/usr/local/sbin/runc\"\n"
		    "        SystemdCgroup = true\n"
		    "  [plugins.\"io.containerd.cri.v1.runtime\".cni]\n"
		    "    %s\n"
		    "    conf_dir = \"/etc/cni/net.d\"\n",
		    containerd_version ? containerd_version : "?", sandbox_image,
		    /* 2.1 deprecated bin_dir for a list (containerd#11311). */
		    major > 2 || minor >= 1 ? "bin_dirs = [\"/opt/cni/bin\"]"
		                            : "bin_dir = \"/opt/cni/bin\"");
	return kfi_strf(
	    "# Written by kubeferry-install: containerd %s (config version 2).\n"
	    "version = 2\n"
	    "root = \"/var/lib/containerd\"\n"
	    "state = \"/run/containerd\"\n"
	    "\n"
	    "[grpc]\n"
	    "  address = \"/run/containerd/containerd.sock\"\n"
	    "\n"
	    "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
	    "  sandbox_image = \"%s\"\n"
	    "  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
	    "    default_runtime_name = \"runc\"\n"
	    "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
	    "      runtime_type = \"io.containerd.runc.v2\"\n"
	    "      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
	    "        BinaryName = \"/usr/local/sbin/runc\"\n"
	    "        SystemdCgroup = true\n"
	    "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
	    "    bin_dir = \"/opt/cni/bin\"\n"
	    "    conf_dir = \"/etc/cni/net.d\"\n"
	    "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
	    "    config_path = \"/etc/containerd/certs.d\"\n",
	    containerd_version ? containerd_version : "?", sandbox_image);
}

/* Kubespray's etcd.env for a single host etcd member, TLS everywhere. */
char *kfi_render_etcd_env(const char *host, const char *ip)
{
	const char *d = "/etc/ssl/etcd/ssl";
	char loop[64] = "";

	/* Listen on loopback too, so local clients (kube-apiserver, the
	 * health check) need no routable address. */
	if (strcmp(ip, "127.0.0.1") != 0)
		snprintf(loop, sizeof loop, ",https://127.0.0.1:2379");
	return kfi_strf(
	    "# Written by kubeferry-install.\n"
	    "ETCD_DATA_DIR=/var/lib/etcd\n"
	    "ETCD_NAME=%s\n"
	    "ETCD_ADVERTISE_CLIENT_URLS=https://%s:2379\n"
	    "ETCD_LISTEN_CLIENT_URLS=https://%s:2379%s\n"
	    "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://%s:2380\n"
	    "ETCD_LISTEN_PEER_URLS=https://%s:2380\n"
	    "ETCD_INITIAL_CLUSTER=%s=https://%s:2380\n"
	    "ETCD_INITIAL_CLUSTER_STATE=new\n"
	    "ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd\n"
	    "ETCD_ELECTION_TIMEOUT=5000\n"
	    "ETCD_HEARTBEAT_INTERVAL=250\n"
	    "ETCD_AUTO_COMPACTION_RETENTION=8\n"
	    /* Kubespray v2.29.1's etcd.env: etcd's own snapshot default, a
	     * corruption check before serving, and watch progress notices
	     * that kube-apiserver's watch cache relies on. */
	    "ETCD_SNAPSHOT_COUNT=100000\n"
	    "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true\n"
	    "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL=5s\n"
	    "ETCD_METRICS=basic\n"
	    "ETCD_CLIENT_CERT_AUTH=true\n"
	    "ETCD_TRUSTED_CA_FILE=%s/ca.pem\n"
	    "ETCD_CERT_FILE=%s/member-%s.pem\n"
	    "ETCD_KEY_FILE=%s/member-%s-key.pem\n"
	    "ETCD_PEER_CLIENT_CERT_AUTH=true\n"
	    "ETCD_PEER_TRUSTED_CA_FILE=%s/ca.pem\n"
	    "ETCD_PEER_CERT_FILE=%s/member-%s.pem\n"
	    "ETCD_PEER_KEY_FILE=%s/member-%s-key.pem\n",
	    host, ip, ip, loop, ip, ip, host, ip, d, d, host, d, host, d, d,
	    host, d, host);
}

void kfi_kubeadm_init_head(kf_buf *b, const char *token, const char *certkey,
                           const char *advertise_ip)
{
	kf_buf_addf(b,
	            "kind: InitConfiguration\n"
	            "bootstrapTokens:\n"
	            "- token: \"%s\"\n"
	            "  description: kubeferry join token\n"
	            "  ttl: 24h0m0s\n"
	            "  usages:\n"
	            "  - signing\n"
	            "  - authentication\n"
	            "  groups:\n"
	            "  - system:bootstrappers:kubeadm:default-node-token\n"
	            "certificateKey: \"%s\"\n"
	            "localAPIEndpoint:\n"
	            "  advertiseAddress: %s\n"
	            "  bindPort: 6443\n", token, certkey, advertise_ip);
}

/* The CA is pinned by its hash: never unsafeSkipCAVerification. */
void kfi_kubeadm_join_head(kf_buf *b, const char *api_server, const char *token,
                           const char *ca_cert_hash)
{
	kf_buf_addf(b,
	            "kind: JoinConfiguration\n"
	            "discovery:\n"
	            "  bootstrapToken:\n"
	            "    apiServerEndpoint: %s\n"
	            "    token: \"%s\"\n"
	            "    caCertHashes:\n"
	            "    - %s\n", api_server, token, ca_cert_hash);
}

void kfi_kubeadm_join_control_plane(kf_buf *b, const char *advertise_ip, const char *certkey)
{
	kf_buf_addf(b,
	            "controlPlane:\n"
	            "  localAPIEndpoint:\n"
	            "    advertiseAddress: %s\n"
	            "    bindPort: 6443\n"
	            "  certificateKey: \"%s\"\n", advertise_ip, certkey);
}

/* init's and join's nodeRegistration (name, then kubelet's node-ip):
 * v1beta4 turned extra args into a list of {name, value}. */
void kfi_kubeadm_node_registration(kf_buf *b, const char *name, const char *node_ip)
{
	kf_buf_addf(b,
	            "nodeRegistration:\n"
	            "  name: %s\n"
	            "  criSocket: unix:///run/containerd/containerd.sock\n"
	            "  imagePullPolicy: IfNotPresent\n"
	            "  kubeletExtraArgs:\n"
	            "  - name: node-ip\n"
	            "    value: %s\n", name, node_ip);
}

void kfi_kubeadm_kubelet_proxy(kf_buf *b, const char *pod_subnet, const char *proxy_mode)
{
	kf_buf_addf(b,
	            "---\n"
	            "apiVersion: kubelet.config.k8s.io/v1beta1\n"
	            "kind: KubeletConfiguration\n"
	            "cgroupDriver: systemd\n"
	            "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n"
	            "failSwapOn: true\n"
	            "rotateCertificates: true\n"
	            "serverTLSBootstrap: false\n"
	            "---\n"
	            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
	            "kind: KubeProxyConfiguration\n"
	            "mode: %s\n"
	            "clusterCIDR: %s\n", proxy_mode ? proxy_mode : "iptables", pod_subnet);
}

/* One multi-document file: InitConfiguration, ClusterConfiguration
 * (kubeadm.k8s.io/v1beta4), KubeletConfiguration (kubelet.config.k8s.io/
 * v1beta1), KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1). */
char *kfi_render_kubeadm(const kfi_kubeadm_opts *o)
{
	const char *v = o->kube_version;
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_adds(&b, "# Written by kubeferry-install cluster init.\n"
	                "apiVersion: kubeadm.k8s.io/v1beta4\n");
	kfi_kubeadm_init_head(&b, o->token, o->certificate_key, o->advertise_ip);
	kfi_kubeadm_node_registration(&b, o->node_name, o->advertise_ip);
	kf_buf_addf(&b,
	            "---\n"
	            "apiVersion: kubeadm.k8s.io/v1beta4\n"
	            "kind: ClusterConfiguration\n"
	            "clusterName: kubernetes\n"
	            "kubernetesVersion: %s%s\n"
	            "controlPlaneEndpoint: %s\n"
	            "imageRepository: registry.k8s.io\n"
	            "certificatesDir: /etc/kubernetes/pki\n"
	            "networking:\n"
	            "  dnsDomain: cluster.local\n"
	            "  podSubnet: %s\n"
	            "  serviceSubnet: %s\n",
	            v[0] == 'v' ? "" : "v", v, o->control_plane_endpoint, o->pod_subnet,
	            o->service_subnet);
	if (o->external_etcd)
		kf_buf_addf(&b,
		            "etcd:\n"
		            "  external:\n"
		            "    endpoints:\n"
		            "    - %s\n"
		            "    caFile: %s\n"
		            "    certFile: %s\n"
		            "    keyFile: %s\n",
		            o->etcd_endpoint, o->etcd_ca, o->etcd_cert, o->etcd_key);
	else
		kf_buf_adds(&b, "etcd:\n  local:\n    dataDir: /var/lib/etcd\n");
	kfi_kubeadm_kubelet_proxy(&b, o->pod_subnet, o->proxy_mode);
	return kf_buf_take(&b);
}

int kfi_flannel_nft(const char *manifest, char **out)
{
	const char *at = strstr(manifest, "\"Network\": "), *ls, *nl;
	kf_buf b;

	*out = NULL;
	if (!strstr(manifest, "net-conf.json: |") || !at || strstr(manifest, "EnableNFTables") ||
	    !(nl = strchr(at, '\n')))
		return 0;
	for (ls = at; ls > manifest && ls[-1] != '\n'; ls--)
		;
	kf_buf_init(&b);
	kf_buf_add(&b, manifest, (size_t)(nl + 1 - manifest));
	/* Same indentation as the "Network" line, inside net-conf.json. */
	kf_buf_add(&b, ls, strspn(ls, " "));
	kf_buf_adds(&b, "\"EnableNFTables\": true,\n");
	kf_buf_adds(&b, nl + 1);
	*out = kf_buf_take(&b);
	return *out ? 1 : -1;
}

/* JoinConfiguration (kubeadm.k8s.io/v1beta4) for `cluster join`: what the
 * flags alone cannot say (kubelet's node-ip; a control plane's advertise
 * address). */
char *kfi_render_kubeadm_join(const kfi_join_opts *o)
{
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_adds(&b, "# Written by kubeferry-install cluster join.\n"
	                "apiVersion: kubeadm.k8s.io/v1beta4\n");
	kfi_kubeadm_join_head(&b, o->api_server, o->token, o->ca_cert_hash);
	kfi_kubeadm_node_registration(&b, o->node_name, o->node_ip);
	if (o->certificate_key)
		kfi_kubeadm_join_control_plane(&b, o->node_ip, o->certificate_key);
	return kf_buf_take(&b);
}
