/*
 * kubeferry-install cluster renew-certs: what kubeferry-certs-renew.timer
 * runs. Only certificates near expiry are renewed (kubeadm certs renew
 * NAME), and only then are the control-plane containers restarted, through
 * crictl: kubelet starts a stopped static-pod container again at once,
 * with the renewed files from its host mounts. Nothing is moved out of
 * /etc/kubernetes/manifests, so a run killed at any point leaves every
 * static pod defined and kubelet keeps the control plane running.
 */
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define ADMIN_CONF "/etc/kubernetes/admin.conf"

/* kubeadm's certificate names and where each lives (a PEM file, or a
 * kubeconfig's embedded client-certificate-data). */
static const struct cert {
	const char *name, *path;
} certs[] = {
	{"apiserver", "/etc/kubernetes/pki/apiserver.crt"},
	{"apiserver-kubelet-client", "/etc/kubernetes/pki/apiserver-kubelet-client.crt"},
	{"apiserver-etcd-client", "/etc/kubernetes/pki/apiserver-etcd-client.crt"},
	{"front-proxy-client", "/etc/kubernetes/pki/front-proxy-client.crt"},
	{"etcd-server", "/etc/kubernetes/pki/etcd/server.crt"},
	{"etcd-peer", "/etc/kubernetes/pki/etcd/peer.crt"},
	{"etcd-healthcheck-client", "/etc/kubernetes/pki/etcd/healthcheck-client.crt"},
	{"admin.conf", "/etc/kubernetes/admin.conf"},
	{"super-admin.conf", "/etc/kubernetes/super-admin.conf"},
	{"controller-manager.conf", "/etc/kubernetes/controller-manager.conf"},
	{"scheduler.conf", "/etc/kubernetes/scheduler.conf"},
	{NULL, NULL},
};

static const char *const pods[] = {"kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                   "etcd", NULL};

/* The certificate in a file: PEM, or a kubeconfig's base64 PEM. NULL
 * when the file is absent or holds none. */
static X509 *load_cert(const char *path)
{
	char *text = NULL, *d;
	unsigned char *pem = NULL;
	size_t len;
	long n;
	BIO *b = NULL;
	X509 *x = NULL;
	kf_err ign;

	if (kf_read_file(path, 1 << 20, &text, &len, &ign) != KF_OK)
		return NULL;
	if ((d = strstr(text, "client-certificate-data: "))) {
		d += 25;
		len = strcspn(d, " \r\n");
		if ((pem = malloc(len)) && (n = kf_b64_decode(d, len, pem, len)) > 0)
			b = BIO_new_mem_buf(pem, (int)n);
	} else {
		b = BIO_new_mem_buf(text, (int)len);
	}
	if (b)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	free(pem);
	free(text);
	return x;
}

/* Days until the certificate expires (negative once it has), or INT
 * 100000 when it cannot be read. */
static int days_left(const char *path)
{
	X509 *x = load_cert(path);
	int days = 100000, secs = 0;

	if (x && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
		days = 100000;
	X509_free(x);
	return days;
}

/* Stop the pod's running containers: kubelet starts them again. */
static int restart_pod(kfi_ctx *c, const char *pod, kf_err *e)
{
	char re[64], ids[4096];
	const char *ps[] = {"crictl", "ps", "--name", re, "--state", "running", "-q", NULL};
	int rc = KF_OK;

	snprintf(re, sizeof re, "^%s$", pod);
	if (!c->live) {
		printf("%-8s restart %s: crictl ps --name %s -q, then crictl stop each\n", "plan", pod, re);
		return KF_OK;
	}
	if (kfi_probe_out(ps, ids, sizeof ids) != 0)
		return kf_err_set(e, KF_EIO, "crictl ps --name %s failed", re);
	for (char *save = NULL, *id = strtok_r(ids, "\n", &save); id && rc == KF_OK;
	     id = strtok_r(NULL, "\n", &save)) {
		const char *stop[] = {"crictl", "stop", id, NULL};
		if (strspn(id, "0123456789abcdef") != strlen(id))
			continue; /* not a container ID */
		rc = kfi_run(c, stop, e);
	}
	return rc;
}

int kfi_restart_control_plane(kfi_ctx *c, kf_err *e)
{
	int rc = KF_OK;

	for (size_t i = 0; rc == KF_OK && pods[i]; i++) {
		char *m = kfi_strf("%s/etc/kubernetes/manifests/%s.yaml", c->root, pods[i]);
		/* Only the static pods this node has (etcd: stacked only). */
		if (!m)
			rc = kfi_oom(e);
		else if (access(m, F_OK) == 0 || (!c->live && strcmp(pods[i], "etcd")))
			rc = restart_pod(c, pods[i], e);
		free(m);
	}
	return rc;
}

int kfi_cmd_renew_certs(int argc, char **argv)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"days", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *root = "";
	long within = 30;
	kfi_ctx c;
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0, renewed = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		switch (opt) {
		case 'r': root = optarg; break;
		case 'd':
			within = strtol(optarg, &end, 10);
			if (!*optarg || *end || within < 1 || within > 3650) {
				rc = kf_err_set(&e, KF_EUSAGE, "--days %s: want 1 to 3650", optarg);
				goto out;
			}
			break;
		case 'h':
			printf("Usage: kubeferry-install cluster renew-certs [--days N] [--root DIR]\n"
			       "\nRenews (kubeadm certs renew NAME) each control-plane certificate and\n"
			       "kubeconfig that expires within N days (default 30), then restarts the\n"
			       "control-plane containers through crictl so they load them. Nothing is\n"
			       "moved out of /etc/kubernetes/manifests: a run killed at any point\n"
			       "leaves the control plane running. kubeferry-certs-renew.timer runs it.\n"
			       "\nExit codes: 0 success, 2 usage error, 3 kubeadm or crictl failed.\n");
			goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install cluster renew-certs --help'");
			goto out;
		}
	}
	if ((rc = kfi_ctx_init(&c, root, 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	for (size_t i = 0; rc == KF_OK && certs[i].name; i++) {
		char *p = kfi_path(&c, certs[i].path);
		int days = p ? days_left(p) : 100000;
		free(p);
		if (days == 100000)
			continue; /* not on this node */
		if (days > within) {
			printf("%-8s %s expires in %d days\n", "ok", certs[i].name, days);
			c.ok++;
			continue;
		}
		{
			const char *argv2[] = {"/usr/local/bin/kubeadm", "certs", "renew", certs[i].name, NULL};
			rc = kfi_run(&c, argv2, &e);
			renewed++;
		}
	}
	if (rc == KF_OK && renewed)
		rc = kfi_restart_control_plane(&c, &e);
	else if (rc == KF_OK)
		printf("%-8s nothing expires within %ld days; no restart\n", "ok", within);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install cluster renew-certs", &e);
	if (ctx_ok) {
		printf("ok=%d changed=%d failed=%d\n", c.ok, c.changed, rc != KF_OK);
		kfi_ctx_free(&c);
	}
	return rc;
}
