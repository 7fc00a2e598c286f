/* kubeferry-install mirror kubespray-vars: the offline.yml that points a
 * Kubespray v2.29 deployment at a kubeferry mirror, so a site that already
 * runs Kubespray takes its files and images from the bundle.
 *
 * Everything printed is derived from the verified lock: each download URL
 * is the bundle entry of that component with its version and architecture
 * turned back into Kubespray's variables, and checked to reproduce the
 * entry for every architecture the bundle holds. The checksum tables are
 * replaced by the bundle's own pins, so Kubespray verifies each download
 * against the same sha256 the bundle was built with. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

#define PROG "kubeferry-install"

/* Kubespray's names for a component (roles/kubespray_defaults, v2.29.1):
 * the *_download_url variable, the version variable its templates use and
 * the checksum table it verifies downloads against. */
typedef struct ks_component {
	const char *name;      /* component name in our specs */
	const char *url_var;
	const char *version_var;
	const char *checksums;
} ks_component;

static const ks_component ks_components[] = {
	{"kubeadm", "kubeadm_download_url", "kube_version", "kubeadm_checksums"},
	{"kubelet", "kubelet_download_url", "kube_version", "kubelet_checksums"},
	{"kubectl", "kubectl_download_url", "kube_version", "kubectl_checksums"},
	{"containerd", "containerd_download_url", "containerd_version",
	 "containerd_archive_checksums"},
	{"runc", "runc_download_url", "runc_version", "runc_checksums"},
	{"etcd", "etcd_download_url", "etcd_version", "etcd_binary_checksums"},
	{"cni-plugins", "cni_download_url", "cni_version", "cni_binary_checksums"},
	{"crictl", "crictl_download_url", "crictl_version", "crictl_checksums"},
	{"helm", "helm_download_url", "helm_version", "helm_archive_checksums"},
	{"nerdctl", "nerdctl_download_url", "nerdctl_version",
	 "nerdctl_archive_checksums"},
};

/* Kubespray's image registry variables and the registry each stands for. */
static const char *const ks_registries[][2] = {
	{"kube_image_repo", "registry.k8s.io"},
	{"gcr_image_repo", "gcr.io"},
	{"github_image_repo", "ghcr.io"},
	{"docker_image_repo", "docker.io"},
	{"quay_image_repo", "quay.io"},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install mirror kubespray-vars BUNDLE (-p PUBFILE | -P PUBKEY)\n"
	        "                                               --mirror HOST:PORT\n"
	        "\n"
	        "Verify BUNDLE, then print Kubespray v2.29 offline variables\n"
	        "(inventory group_vars/all/offline.yml) that take every file and\n"
	        "image from the kubeferry mirror at HOST:PORT (`mirror serve` of the\n"
	        "unpacked bundle): files_repo, registry_host, the *_image_repo\n"
	        "variables with the mirror's path-prefixed names, each\n"
	        "*_download_url the bundle can serve, the component versions, and\n"
	        "checksum tables holding the bundle's own pins. The nodes must trust\n"
	        "the mirror's CA (/etc/kubeferry/mirror-ca.crt on the mirror host).\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE         trusted minisign public key file\n"
	        "  -P, --public-key-string KEY   the key's base64 line (as minisign -P)\n"
	        "      --mirror HOST:PORT        the mirror as the nodes reach it\n"
	        "  -h, --help                    show this help\n"
	        "\n"
	        "Exit codes:\n"
	        "  0  success\n"
	        "  1  verification failed\n"
	        "  2  usage error\n"
	        "  3  I/O error\n");
}

/* HOST:PORT as it goes into YAML strings and URLs: an RFC 1123 host name
 * or an IP address (IPv6 in brackets) and a port 1-65535. A quote, space
 * or newline there would rewrite the printed variables. */
static int endpoint_ok(const char *ep)
{
	char host[256];
	int port;

	return kfi_split_hostport(ep, host, sizeof host, &port) == 0 &&
	       (kf_hostname_valid(host) || kf_ip_valid(host));
}

static const ks_component *ks_find(const char *name)
{
	for (size_t i = 0; i < sizeof ks_components / sizeof ks_components[0]; i++)
		if (!strcmp(ks_components[i].name, name))
			return &ks_components[i];
	return NULL;
}

/* path with every occurrence of from replaced by to, appended to b. */
static void add_replaced(kf_buf *b, const char *path, const char *from,
                         const char *to)
{
	size_t fl = strlen(from);
	const char *p = path, *hit;

	while (fl && (hit = strstr(p, from))) {
		kf_buf_add(b, p, (size_t)(hit - p));
		kf_buf_adds(b, to);
		p = hit + fl;
	}
	kf_buf_adds(b, p);
}

/* The Kubespray template of a component's bundle path: its version and
 * architecture become variables. NULL when out of memory. */
static char *path_template(const kf_lock_component *k, const ks_component *ks)
{
	kf_buf ver, out;
	char var[96];
	const char *path = k->path;

	if (!strncmp(path, "files/", 6))
		path += 6;
	kf_buf_init(&ver);
	kf_buf_init(&out);
	snprintf(var, sizeof var, "{{ %s }}", ks->version_var);
	add_replaced(&ver, path, k->version, var);
	if (kf_buf_ok(&ver))
		add_replaced(&out, ver.p, k->arch, "{{ image_arch }}");
	kf_buf_free(&ver);
	return kf_buf_take(&out);
}

/* 1 when the template gives back the bundle path of every architecture's
 * entry of this component (a component whose version or arch appears in
 * odd places cannot be templated and is left out). */
static int template_reproduces(const kf_lock *l, const char *name,
                               const char *tmpl, const char *version_var)
{
	char var[96];
	int ok = 1;

	snprintf(var, sizeof var, "{{ %s }}", version_var);
	for (size_t i = 0; ok && i < l->ncomp; i++) {
		const kf_lock_component *k = &l->components[i];
		kf_buf a, b;
		const char *path = k->path;

		if (strcmp(k->name, name))
			continue;
		if (!strncmp(path, "files/", 6))
			path += 6;
		kf_buf_init(&a);
		kf_buf_init(&b);
		add_replaced(&a, tmpl, var, k->version);
		if (kf_buf_ok(&a))
			add_replaced(&b, a.p, "{{ image_arch }}", k->arch);
		ok = kf_buf_ok(&b) && b.p && !strcmp(b.p, path);
		kf_buf_free(&a);
		kf_buf_free(&b);
	}
	return ok;
}

static int first_of(const kf_lock *l, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (!strcmp(l->components[j].name, l->components[i].name))
			return 0;
	return 1;
}

static void emit_versions(kf_buf *b, const kf_lock *l)
{
	const char *done[sizeof ks_components / sizeof ks_components[0]];
	size_t nd = 0;

	kf_buf_adds(b, "\n# The versions the bundle holds (Kubespray's templates use them).\n");
	for (size_t i = 0; i < l->ncomp; i++) {
		const ks_component *ks = ks_find(l->components[i].name);
		int seen = 0;

		if (!ks)
			continue;
		for (size_t j = 0; j < nd; j++)
			seen |= !strcmp(done[j], ks->version_var);
		if (seen)
			continue;
		done[nd++] = ks->version_var;
		kf_buf_addf(b, "%s: \"%s\"\n", ks->version_var, l->components[i].version);
	}
}

static void emit_checksums(kf_buf *b, const kf_lock *l, const ks_component *ks)
{
	kf_buf_addf(b, "%s:\n", ks->checksums);
	for (size_t a = 0; a < l->narch; a++) {
		kf_buf_addf(b, "  %s:\n", l->archs[a]);
		for (size_t i = 0; i < l->ncomp; i++) {
			const kf_lock_component *k = &l->components[i];
			if (!strcmp(k->name, ks->name) && !strcmp(k->arch, l->archs[a]))
				kf_buf_addf(b, "    \"%s\": sha256:%s\n", k->version, k->sha256);
		}
	}
}

static int emit(kf_buf *b, const kf_lock *l, const char *mirror)
{
	kf_buf_addf(b,
	            "# Kubespray v2.29 offline variables for the kubeferry bundle %s %s\n"
	            "# (Kubernetes %s), served by `kubeferry-install mirror serve` at %s.\n"
	            "# Generated by kubeferry-install mirror kubespray-vars from the\n"
	            "# bundle's signed lock; put it in group_vars/all/offline.yml.\n"
	            "registry_host: \"%s\"\n"
	            "files_repo: \"https://%s/files\"\n",
	            l->name, l->version, l->kube_version, mirror, mirror, mirror);
	kf_buf_adds(b, "\n# Images by the mirror's path-prefixed names.\n");
	for (size_t i = 0; i < sizeof ks_registries / sizeof ks_registries[0]; i++)
		kf_buf_addf(b, "%s: \"{{ registry_host }}/%s\"\n", ks_registries[i][0],
		            ks_registries[i][1]);
	emit_versions(b, l);
	kf_buf_adds(b, "\n# Files from the mirror's files/ tree.\n");
	for (size_t i = 0; i < l->ncomp; i++) {
		const kf_lock_component *k = &l->components[i];
		const ks_component *ks = ks_find(k->name);
		char *t;

		if (!first_of(l, i))
			continue;
		if (!ks) {
			kf_buf_addf(b, "# %s: no Kubespray variable; served at {{ files_repo }}/%s\n",
			            k->name, k->path + (strncmp(k->path, "files/", 6) ? 0 : 6));
			continue;
		}
		t = path_template(k, ks);
		if (!t)
			return KF_EIO;
		if (template_reproduces(l, k->name, t, ks->version_var))
			kf_buf_addf(b, "%s: \"{{ files_repo }}/%s\"\n", ks->url_var, t);
		else
			kf_buf_addf(b, "# %s: its bundle paths do not follow one template; not set\n",
			            k->name);
		free(t);
	}
	kf_buf_adds(b, "\n# Checksums: the bundle's own pins replace Kubespray's tables.\n");
	for (size_t i = 0; i < l->ncomp; i++) {
		const ks_component *ks = ks_find(l->components[i].name);
		if (ks && first_of(l, i))
			emit_checksums(b, l, ks);
	}
	return kf_buf_ok(b) ? KF_OK : KF_EIO;
}

int kfi_cmd_mirror_kubespray_vars(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"mirror", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *pubfile = NULL, *pubstr = NULL, *mirror = NULL;
	kf_err e = {0};
	kf_pubkey key;
	kf_archive_read_opts ro = {0};
	kf_lock *lock = NULL;
	kf_buf out;
	int c, rc = KF_OK;

	kf_buf_init(&out);
	optind = 0;
	while ((c = getopt_long(argc, argv, "p:P:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pubfile = optarg; break;
		case 'P': pubstr = optarg; break;
		case 'm': mirror = optarg; break;
		case 'h': usage(stdout); goto out;
		default: usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1 || !pubfile == !pubstr || !mirror) {
		fprintf(stderr, PROG ": error: kubespray-vars needs one BUNDLE, exactly one of -p or -P, and --mirror HOST:PORT\n\n");
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	if (!endpoint_ok(mirror)) {
		rc = kf_err_set(&e, KF_EUSAGE, "--mirror %s: not HOST:PORT (a numeric IP or a host name, port 1-65535)", mirror);
		goto fail;
	}
	rc = kf_keys_load_public(pubfile, pubstr, &key, &e);
	ro.key = &key;
	if (rc == KF_OK)
		rc = kf_archive_verify(argv[optind], &ro, &lock, NULL, 0, &e);
	if (rc == KF_OK && (rc = emit(&out, lock, mirror)) != KF_OK)
		kf_err_set(&e, rc, "out of memory");
	if (rc == KF_OK)
		fputs(out.p, stdout);
fail:
	if (rc)
		kf_err_print(PROG, &e);
out:
	kf_buf_free(&out);
	kf_lock_free(lock);
	return rc;
}
