/*
 * addons/: manifests that `kubeferry-install cluster init` applies after
 * kubeadm init. Today that is the CNI: flannel, rendered from kubeferry's
 * own template (as Kubespray renders it from its own) with the bundle's
 * image references and pod subnet, so that the nodes pull exactly the
 * images the bundle carries, through the mirror, and never the internet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

#define FLANNEL_ENTRY "addons/flannel.yaml"

/*
 * The flannel deployment: namespace, RBAC, configuration and the
 * DaemonSet that runs flanneld on every node. @FLANNEL@, @CNI_PLUGIN@ and
 * @NETWORK@ are replaced by the image references and the pod subnet.
 *
 * Why each part looks as it does:
 * - the namespace runs privileged pods (host network, NET_ADMIN), so Pod
 *   Security admission must allow them there;
 * - flanneld with --kube-subnet-mgr reads its own pod (get pods), follows
 *   nodes for their podCIDR and public IP (get/list/watch nodes), and
 *   writes its backend data as node annotations and clears the
 *   NetworkUnavailable condition (patch nodes and nodes/status);
 * - the tolerations and system-node-critical priority let it run on
 *   control planes and before anything else, since no pod gets a network
 *   until it runs;
 * - the init containers put the flannel CNI binary into /opt/cni/bin and
 *   the CNI configuration into /etc/cni/net.d on the host, where the
 *   container runtime looks for them;
 * - /run/xtables.lock is shared with kube-proxy so that both serialise
 *   their iptables updates.
 */
static const char flannel_template[] =
	"# flannel CNI, rendered by kubeferry for this bundle.\n"
	"# Images: @FLANNEL@ and @CNI_PLUGIN@; pod network: @NETWORK@.\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: Namespace\n"
	"metadata:\n"
	"  name: kube-flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"    pod-security.kubernetes.io/enforce: privileged\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: ServiceAccount\n"
	"metadata:\n"
	"  name: flannel\n"
	"  namespace: kube-flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"---\n"
	"apiVersion: rbac.authorization.k8s.io/v1\n"
	"kind: ClusterRole\n"
	"metadata:\n"
	"  name: flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"rules:\n"
	"  - apiGroups: [\"\"]\n"
	"    resources: [pods]\n"
	"    verbs: [get]\n"
	"  - apiGroups: [\"\"]\n"
	"    resources: [nodes]\n"
	"    verbs: [get, list, watch, patch]\n"
	"  - apiGroups: [\"\"]\n"
	"    resources: [nodes/status]\n"
	"    verbs: [patch]\n"
	"---\n"
	"apiVersion: rbac.authorization.k8s.io/v1\n"
	"kind: ClusterRoleBinding\n"
	"metadata:\n"
	"  name: flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"roleRef:\n"
	"  apiGroup: rbac.authorization.k8s.io\n"
	"  kind: ClusterRole\n"
	"  name: flannel\n"
	"subjects:\n"
	"  - kind: ServiceAccount\n"
	"    name: flannel\n"
	"    namespace: kube-flannel\n"
	"---\n"
	"apiVersion: v1\n"
	"kind: ConfigMap\n"
	"metadata:\n"
	"  name: kube-flannel-cfg\n"
	"  namespace: kube-flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"    app: flannel\n"
	"data:\n"
	"  cni-conf.json: |\n"
	"    {\n"
	"      \"name\": \"cbr0\",\n"
	"      \"cniVersion\": \"0.3.1\",\n"
	"      \"plugins\": [\n"
	"        {\n"
	"          \"type\": \"flannel\",\n"
	"          \"delegate\": {\n"
	"            \"hairpinMode\": true,\n"
	"            \"isDefaultGateway\": true\n"
	"          }\n"
	"        },\n"
	"        {\n"
	"          \"type\": \"portmap\",\n"
	"          \"capabilities\": {\n"
	"            \"portMappings\": true\n"
	"          }\n"
	"        }\n"
	"      ]\n"
	"    }\n"
	"  net-conf.json: |\n"
	"    {\n"
	"      \"Network\": \"@NETWORK@\",\n"
	"      \"Backend\": {\n"
	"        \"Type\": \"vxlan\"\n"
	"      }\n"
	"    }\n"
	"---\n"
	"apiVersion: apps/v1\n"
	"kind: DaemonSet\n"
	"metadata:\n"
	"  name: kube-flannel-ds\n"
	"  namespace: kube-flannel\n"
	"  labels:\n"
	"    k8s-app: flannel\n"
	"    app: flannel\n"
	"    tier: node\n"
	"spec:\n"
	"  selector:\n"
	"    matchLabels:\n"
	"      app: flannel\n"
	"  template:\n"
	"    metadata:\n"
	"      labels:\n"
	"        app: flannel\n"
	"        tier: node\n"
	"    spec:\n"
	"      affinity:\n"
	"        nodeAffinity:\n"
	"          requiredDuringSchedulingIgnoredDuringExecution:\n"
	"            nodeSelectorTerms:\n"
	"              - matchExpressions:\n"
	"                  - key: kubernetes.io/os\n"
	"                    operator: In\n"
	"                    values: [linux]\n"
	"      hostNetwork: true\n"
	"      priorityClassName: system-node-critical\n"
	"      serviceAccountName: flannel\n"
	"      tolerations:\n"
	"        - operator: Exists\n"
	"          effect: NoSchedule\n"
	"      initContainers:\n"
	"        - name: install-cni-plugin\n"
	"          image: \"@CNI_PLUGIN@\"\n"
	"          command: [cp]\n"
	"          args: [-f, /flannel, /opt/cni/bin/flannel]\n"
	"          volumeMounts:\n"
	"            - name: cni-plugin\n"
	"              mountPath: /opt/cni/bin\n"
	"        - name: install-cni\n"
	"          image: \"@FLANNEL@\"\n"
	"          command: [cp]\n"
	"          args: [-f, /etc/kube-flannel/cni-conf.json, /etc/cni/net.d/10-flannel.conflist]\n"
	"          volumeMounts:\n"
	"            - name: cni\n"
	"              mountPath: /etc/cni/net.d\n"
	"            - name: flannel-cfg\n"
	"              mountPath: /etc/kube-flannel/\n"
	"      containers:\n"
	"        - name: kube-flannel\n"
	"          image: \"@FLANNEL@\"\n"
	"          command: [/opt/bin/flanneld]\n"
	"          args: [--ip-masq, --kube-subnet-mgr]\n"
	"          resources:\n"
	"            requests:\n"
	"              cpu: 100m\n"
	"              memory: 50Mi\n"
	"          securityContext:\n"
	"            privileged: false\n"
	"            capabilities:\n"
	"              add: [NET_ADMIN, NET_RAW]\n"
	"          env:\n"
	"            - name: POD_NAME\n"
	"              valueFrom:\n"
	"                fieldRef:\n"
	"                  fieldPath: metadata.name\n"
	"            - name: POD_NAMESPACE\n"
	"              valueFrom:\n"
	"                fieldRef:\n"
	"                  fieldPath: metadata.namespace\n"
	"            - name: EVENT_QUEUE_DEPTH\n"
	"              value: \"5000\"\n"
	"          volumeMounts:\n"
	"            - name: run\n"
	"              mountPath: /run/flannel\n"
	"            - name: flannel-cfg\n"
	"              mountPath: /etc/kube-flannel/\n"
	"            - name: xtables-lock\n"
	"              mountPath: /run/xtables.lock\n"
	"      volumes:\n"
	"        - name: run\n"
	"          hostPath:\n"
	"            path: /run/flannel\n"
	"        - name: cni-plugin\n"
	"          hostPath:\n"
	"            path: /opt/cni/bin\n"
	"        - name: cni\n"
	"          hostPath:\n"
	"            path: /etc/cni/net.d\n"
	"        - name: flannel-cfg\n"
	"          configMap:\n"
	"            name: kube-flannel-cfg\n"
	"        - name: xtables-lock\n"
	"          hostPath:\n"
	"            path: /run/xtables.lock\n"
	"            type: FileOrCreate\n";

/* Values go into double-quoted YAML scalars and a JSON string: allow only
 * the characters of image references and CIDRs, so that no value can
 * close a quote or start a new key. */
static int value_ok(const char *v)
{
	if (!v || !*v || strlen(v) > 512)
		return 0;
	for (const char *p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		            "0123456789._-:/@+", *p))
			return 0;
	return 1;
}

int kf_addons_flannel_yaml(const char *flannel_image, const char *cni_image,
                           const char *pod_subnet, char **out, size_t *len,
                           kf_err *e)
{
	static const char *const keys[] = {"@FLANNEL@", "@CNI_PLUGIN@", "@NETWORK@"};
	const char *vals[] = {flannel_image, cni_image, pod_subnet};
	const char *names[] = {"flannel image", "flannel CNI plugin image",
	                       "pod subnet"};
	int rc = KF_OK;
	size_t cap = sizeof flannel_template, n = 0;
	char *buf = NULL;
	const char *p = flannel_template;

	*out = NULL;
	*len = 0;
	for (size_t i = 0; i < 3; i++) {
		if (!value_ok(vals[i])) {
			rc = kf_err_set(e, KF_EUSAGE, "flannel addon: %s \"%s\" has characters "
			                "that do not belong in it", names[i],
			                vals[i] ? vals[i] : "");
			goto out;
		}
		/* Each placeholder appears at most three times. */
		cap += 3 * strlen(vals[i]);
	}
	buf = malloc(cap);
	if (!buf) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	while (*p) {
		size_t k;
		for (k = 0; k < 3; k++)
			if (!strncmp(p, keys[k], strlen(keys[k])))
				break;
		if (k < 3) {
			size_t vl = strlen(vals[k]);
			memcpy(buf + n, vals[k], vl);
			n += vl;
			p += strlen(keys[k]);
		} else {
			buf[n++] = *p++;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	return rc;
}

/* 1 when the image's repository is suffix, whole or after a '/': so that
 * "flannel/flannel" matches docker.io/flannel/flannel and
 * mirror.example/proxy/flannel/flannel, but not x/notflannel/flannel. */
static int repo_ends_with(const kf_oci_ref *r, const char *suffix)
{
	size_t rl = strlen(r->repository), sl = strlen(suffix);

	if (rl < sl || strcmp(r->repository + rl - sl, suffix))
		return 0;
	return rl == sl || r->repository[rl - sl - 1] == '/';
}

/* The spec image whose repository ends in suffix, or NULL. Two candidates
 * are a spec error: which one the nodes should run is not ours to guess. */
static int find_image(const kf_spec *spec, const char *suffix,
                      const kf_spec_image **found, kf_err *e)
{
	int rc = KF_OK;

	*found = NULL;
	for (size_t i = 0; i < spec->nimg; i++) {
		kf_oci_ref r;
		int hit;

		rc = kf_oci_ref_parse(spec->images[i].ref, &r, e);
		if (rc)
			goto out;
		hit = repo_ends_with(&r, suffix);
		kf_oci_ref_clear(&r);
		if (!hit)
			continue;
		if (*found) {
			rc = kf_err_set(e, KF_EUSAGE, "%s:%d:%d: second %s image \"%s\" "
			                "(first: \"%s\" at line %d); the flannel addon "
			                "needs exactly one", spec->path,
			                spec->images[i].line, spec->images[i].col, suffix,
			                spec->images[i].ref, (*found)->ref, (*found)->line);
			goto out;
		}
		*found = &spec->images[i];
	}
out:
	return rc;
}

int kf_addons_render(const kf_spec *spec, const char *work_dir,
                     kf_build_set *set, kf_err *e)
{
	int rc = KF_OK;
	const kf_spec_image *fl = NULL, *plugin = NULL;
	const char *cni = spec->install.cni ? spec->install.cni : "flannel";
	const char *subnet = spec->install.pod_subnet ? spec->install.pod_subnet
	                                              : "10.244.0.0/16";
	char *yaml = NULL, *dir = NULL, *path = NULL;
	size_t len = 0;
	char sha[KF_SHA256_HEX];

	if (strcmp(cni, "flannel"))
		goto out;
	if ((rc = find_image(spec, "flannel/flannel", &fl, e)) ||
	    (rc = find_image(spec, "flannel/flannel-cni-plugin", &plugin, e)))
		goto out;
	if (!fl || !plugin || !work_dir) {
		/* Not an error: a spec may bring its CNI another way (a chart,
		 * a manifest applied by hand). cluster init warns again when a
		 * bundle has no addon. A spec without any image carries files
		 * only: nothing to warn about. */
		if (spec->nimg == 0)
			goto out;
		fprintf(stderr, "build: warning: %s: install.cni is flannel but the spec "
		        "lists no %s%s%s image; the bundle gets no CNI addon\n",
		        spec->path, !fl ? ".../flannel/flannel" : "",
		        !fl && !plugin ? " and no " : "",
		        !plugin ? ".../flannel/flannel-cni-plugin" : "");
		goto out;
	}
	rc = kf_addons_flannel_yaml(fl->ref, plugin->ref, subnet, &yaml, &len, e);
	if (rc)
		goto out;
	if (asprintf(&dir, "%s/addons", work_dir) < 0) {
		dir = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (asprintf(&path, "%s/flannel.yaml", dir) < 0) {
		path = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = kf_mkdir_p(dir, 0755, e)) ||
	    (rc = kf_write_file_atomic(path, yaml, len, 0644, 1, e)))
		goto out;
	kf_sha256_buf(yaml, len, sha);
	rc = kf_build_set_add(set, FLANNEL_ENTRY, path, len, sha, 0644, e);
out:
	free(yaml);
	free(dir);
	free(path);
	return rc;
}
