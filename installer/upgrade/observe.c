/*
 * What runs, for `upgrade plan` and the checks before `upgrade apply|node`:
 * every node's kubelet and container runtime, and each control plane's API
 * server, as the API server reports them (kubectl with admin.conf, on a
 * control plane); this node's own binaries and static pod manifest fill in
 * what the API server does not say (its etcd) or cannot say (a node that
 * has not joined, or --root, where nothing runs).
 *
 * The kubectl queries use custom-columns, whose output is one line per
 * object with whitespace-separated fields (kubectl prints "<none>" for a
 * field that is missing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define ADMIN_CONF "/etc/kubernetes/admin.conf"
#define APISERVER_MANIFEST "/etc/kubernetes/manifests/kube-apiserver.yaml"
#define OUT_MAX ((size_t)1 << 20)

/* The columns kubectl prints; tests/node/mock-kubeadm answers exactly these. */
const char kfi_kubectl_nodes_columns[] =
	"NAME:.metadata.name,KUBELET:.status.nodeInfo.kubeletVersion,"
	"RUNTIME:.status.nodeInfo.containerRuntimeVersion";
const char kfi_kubectl_apiserver_columns[] =
	"NODE:.spec.nodeName,IMAGE:.spec.containers[0].image";

static void copy_field(char *dst, size_t n, const char *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	if (!strcmp(dst, "<none>"))
		dst[0] = '\0';
}

kfi_up_node *kfi_upgrade_node(kfi_up_state *s, const char *name, kf_err *e)
{
	kfi_up_node *more;

	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->nodes[i].name, name))
			return &s->nodes[i];
	if (!(more = realloc(s->nodes, (s->n + 1) * sizeof *more))) {
		kfi_oom(e);
		return NULL;
	}
	s->nodes = more;
	memset(&more[s->n], 0, sizeof *more);
	snprintf(more[s->n].name, sizeof more[s->n].name, "%s", name);
	return &more[s->n++];
}

/* The tag of an image reference: registry.k8s.io/kube-apiserver:v1.33.3 */
static void image_tag(char *dst, size_t n, const char *img, size_t len)
{
	const char *colon = NULL;

	for (size_t i = 0; i < len && img[i] != '@'; i++)
		if (img[i] == ':')
			colon = img + i;
		else if (img[i] == '/')
			colon = NULL;
	if (colon)
		copy_field(dst, n, colon + 1, strcspn(colon + 1, "@ \t\r\n"));
	else
		dst[0] = '\0';
}

/* Split out's lines into up to 3 whitespace-separated fields each, and
 * hand each line to fn. */
static int each_line(char *out, int (*fn)(kfi_up_state *, char *f[3], size_t l[3], kf_err *),
                     kfi_up_state *s, kf_err *e)
{
	int rc = KF_OK;

	for (char *line = out; rc == KF_OK && line && *line;) {
		char *nl = strchr(line, '\n'), *p = line, *f[3] = {0};
		size_t l[3] = {0};
		if (nl)
			*nl = '\0';
		for (int i = 0; i < 3; i++) {
			p += strspn(p, " \t\r");
			if (!*p)
				break;
			f[i] = p;
			l[i] = strcspn(p, " \t\r");
			p += l[i];
		}
		if (f[0] && f[1])
			rc = fn(s, f, l, e);
		line = nl ? nl + 1 : NULL;
	}
	return rc;
}

static int add_node(kfi_up_state *s, char *f[3], size_t l[3], kf_err *e)
{
	char name[256];
	kfi_up_node *nd;

	copy_field(name, sizeof name, f[0], l[0]);
	if (!(nd = kfi_upgrade_node(s, name, e)))
		return KF_EIO;
	copy_field(nd->kubelet, sizeof nd->kubelet, f[1], l[1]);
	if (f[2]) {
		const char *rt = f[2];
		size_t rl = l[2];
		if (rl > 13 && !strncmp(rt, "containerd://", 13)) {
			rt += 13;
			rl -= 13;
		}
		copy_field(nd->containerd, sizeof nd->containerd, rt, rl);
	}
	return KF_OK;
}

static int add_apiserver(kfi_up_state *s, char *f[3], size_t l[3], kf_err *e)
{
	char name[256];
	kfi_up_node *nd;

	copy_field(name, sizeof name, f[0], l[0]);
	if (!name[0] || !(nd = kfi_upgrade_node(s, name, e)))
		return name[0] ? KF_EIO : KF_OK;
	nd->control_plane = 1;
	image_tag(nd->apiserver, sizeof nd->apiserver, f[1], l[1]);
	return KF_OK;
}

/* kubectl ARGS... with admin.conf; KF_OK with its output, else KF_EIO
 * naming the command. */
static int kubectl(const char *const args[], char *out, size_t n, kf_err *e)
{
	const char *argv[16] = {"/usr/local/bin/kubectl", "--kubeconfig", ADMIN_CONF};
	size_t k = 3;
	int st;

	for (size_t i = 0; args[i] && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	st = kfi_probe_out(argv, out, n);
	if (st != 0)
		return kf_err_set(e, KF_EIO, "kubectl --kubeconfig %s %s %s failed (exit %d): is the API "
		                  "server up?", ADMIN_CONF, args[0], args[1], st);
	return KF_OK;
}

static int from_cluster(kfi_up_state *s, kf_err *e)
{
	char *out = malloc(OUT_MAX), *c1 = kfi_strf("custom-columns=%s", kfi_kubectl_nodes_columns),
	     *c2 = kfi_strf("custom-columns=%s", kfi_kubectl_apiserver_columns);
	const char *nodes[] = {"get", "nodes", "--no-headers", "-o", c1, NULL};
	const char *pods[] = {"get", "pods", "-n", "kube-system", "-l", "component=kube-apiserver",
	                      "--no-headers", "-o", c2, NULL};
	int rc = KF_OK;

	if (!out || !c1 || !c2) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kubectl(nodes, out, OUT_MAX, e)) != KF_OK ||
	    (rc = each_line(out, add_node, s, e)) != KF_OK ||
	    (rc = kubectl(pods, out, OUT_MAX, e)) != KF_OK ||
	    (rc = each_line(out, add_apiserver, s, e)) != KF_OK)
		goto out;
	snprintf(s->source, sizeof s->source, "the API server (kubectl)");
out:
	free(out);
	free(c1);
	free(c2);
	return rc;
}

/* "PROGRAM ARG" on the live node: the first word of its output that looks
 * like a version, after skip words. */
static void program_version(const char *prog, const char *arg, int skip, char *dst, size_t n)
{
	const char *argv[] = {prog, arg, NULL};
	char out[1024], *p = out;

	dst[0] = '\0';
	if (access(prog, X_OK) != 0 || kfi_probe_out(argv, out, sizeof out) != 0)
		return;
	for (int i = 0; *p; i++) {
		size_t w;
		p += strspn(p, " \t\r\n");
		w = strcspn(p, " \t\r\n");
		if (i >= skip && w && (p[0] == 'v' || (p[0] >= '0' && p[0] <= '9'))) {
			copy_field(dst, n, p, w);
			return;
		}
		p += w;
	}
}

/* This node's own versions: the live binaries, else (--root) what the
 * applied bundle installed. */
static int from_self(const kfi_ctx *c, const char *name, const kf_lock *applied,
                     kfi_up_state *s, kf_err *e)
{
	kfi_up_node *nd = kfi_upgrade_node(s, name, e);
	char *p, *text = NULL;
	size_t len;
	kf_err ign;

	if (!nd)
		return KF_EIO;
	if ((p = kfi_path(c, APISERVER_MANIFEST)) &&
	    kf_read_file(p, 1 << 20, &text, &len, &ign) == KF_OK) {
		const char *img = strstr(text, "/kube-apiserver:");
		nd->control_plane = 1;
		if (img && !nd->apiserver[0])
			image_tag(nd->apiserver, sizeof nd->apiserver, img, strcspn(img, " \t\r\n\"'"));
	}
	free(p);
	free(text);
	if (c->live) {
		if (!nd->kubelet[0])
			program_version("/usr/local/bin/kubelet", "--version", 1, nd->kubelet, sizeof nd->kubelet);
		if (!nd->containerd[0])
			program_version("/usr/local/bin/containerd", "--version", 2, nd->containerd,
			                sizeof nd->containerd);
		if (access("/etc/etcd.env", F_OK) == 0)
			program_version("/usr/local/bin/etcd", "--version", 2, nd->etcd, sizeof nd->etcd);
	} else if (applied) {
		for (size_t i = 0; i < applied->ncomp; i++) {
			const kf_lock_component *k = &applied->components[i];
			char *dst = !strcmp(k->name, "kubelet") ? nd->kubelet
			          : !strcmp(k->name, "containerd") ? nd->containerd : NULL;
			if (!dst && !strcmp(k->name, "etcd") && (p = kfi_path(c, "/etc/etcd.env"))) {
				if (access(p, F_OK) == 0)
					dst = nd->etcd;
				free(p);
			}
			if (dst && !dst[0] && k->version)
				snprintf(dst, sizeof nd->kubelet, "%s%s", /* every field is char[64] */ !strcmp(k->name, "kubelet") && k->version[0] != 'v' ? "v" : "",
				         k->version);
		}
	}
	return KF_OK;
}

int kfi_kubectl_server_version(const char *kubeconfig, char *out, size_t n)
{
	const char *argv[] = {"/usr/local/bin/kubectl", "--kubeconfig", kubeconfig, "version", "-o",
	                      "json", NULL};
	char buf[8192], *gv;

	out[0] = '\0';
	if (access(kubeconfig, F_OK) != 0 || kfi_probe_out(argv, buf, sizeof buf) != 0 ||
	    !(gv = strstr(buf, "\"serverVersion\"")) || !(gv = strstr(gv, "\"gitVersion\": \"")))
		return -1;
	gv += 15;
	copy_field(out, n, gv, strcspn(gv, "\""));
	return out[0] ? 0 : -1;
}

/* A worker has no admin.conf: the API server's version through the
 * kubelet's credentials. */
static void server_version(kfi_up_state *s)
{
	if (kfi_kubectl_server_version("/etc/kubernetes/kubelet.conf", s->server, sizeof s->server) == 0)
		snprintf(s->source, sizeof s->source, "this node and kubectl version");
}

int kfi_upgrade_observe(const kfi_ctx *c, const char *self, const kf_lock *applied,
                        kfi_up_state *s, kf_err *e)
{
	int rc = KF_OK;

	memset(s, 0, sizeof *s);
	snprintf(s->source, sizeof s->source, "this node only");
	if (c->live && access(ADMIN_CONF, F_OK) == 0 && (rc = from_cluster(s, e)) != KF_OK)
		return rc;
	if (c->live && access(ADMIN_CONF, F_OK) != 0)
		server_version(s);
	return from_self(c, self, applied, s, e);
}

void kfi_upgrade_state_free(kfi_up_state *s)
{
	free(s->nodes);
	memset(s, 0, sizeof *s);
}
