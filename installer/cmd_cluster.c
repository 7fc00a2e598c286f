/*
 * kubeferry-install cluster init | join | restart-control-plane. They
 * build on what apply recorded in
 * /var/lib/kubeferry/state/applied (bundle, role, host name, address).
 *
 * cluster init knows the join secrets before kubeadm runs: it creates the
 * cluster CA itself (kubeadm uses an existing /etc/kubernetes/pki/ca.*)
 * and chooses the bootstrap token and the certificate key, so the join
 * command can be printed even under --root, where kubeadm is only planned.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mirror/kf_mirror.h"
#include "installer/plan/plan.h"

#define KUBEADM_CONFIG "/etc/kubernetes/kubeadm-config.yaml"
#define ADMIN_CONF "/etc/kubernetes/admin.conf"
#define JOIN_CONFIG "/etc/kubernetes/kubeadm-join.yaml"
#define SELF KFI_SELF

static const char RENEW_SERVICE[] =
	"# Written by kubeferry-install cluster init.\n"
	"[Unit]\n"
	"Description=Renew the Kubernetes certificates near expiry\n"
	"After=kubelet.service\n"
	"\n"
	"[Service]\n"
	"Type=oneshot\n"
	"ExecStart=" SELF " cluster renew-certs\n";

static const char RENEW_TIMER[] =
	"# Written by kubeferry-install cluster init.\n"
	"[Unit]\n"
	"Description=Monthly renewal of the Kubernetes certificates\n"
	"\n"
	"[Timer]\n"
	"OnCalendar=monthly\n"
	"RandomizedDelaySec=1h\n"
	"Persistent=true\n"
	"\n"
	"[Install]\n"
	"WantedBy=timers.target\n";

/* 1 when abs exists under the root (kubeadm's files that say it ran). */
static int node_has(const kfi_ctx *c, const char *abs)
{
	char *p = kfi_path(c, abs);
	int r = p && access(p, F_OK) == 0;

	free(p);
	return r;
}

static int load_lock(const kfi_ctx *c, const kfi_applied *s, kf_lock **lk, kf_err *e)
{
	char *p = kfi_strf("%s%s.bundle.yaml", c->root, s->bundle_dir), *buf = NULL;
	size_t len;
	int rc = p ? kf_read_file(p, KF_LOCK_MAX, &buf, &len, e) : kfi_oom(e);

	if (rc == KF_OK)
		rc = kf_lock_parse(buf, len, p, lk, e);
	free(p);
	free(buf);
	return rc;
}

/* A token and certificate key already in the written config are reused:
 * a re-run must render the same file and print the same join command. */
static void reuse_secret(const kfi_ctx *c, const char *key, char *out, size_t n)
{
	char *p = kfi_path(c, KUBEADM_CONFIG), *buf = NULL, *v;
	size_t len;
	kf_err ign;

	if (p && kf_read_file(p, 1 << 20, &buf, &len, &ign) == KF_OK && (v = strstr(buf, key))) {
		v += strlen(key);
		if (*v == '"')
			v++;
		snprintf(out, n, "%.*s", (int)strcspn(v, "\"\n"), v);
	}
	free(p);
	free(buf);
}

/* flannel in nftables mode (EL10): the bundle's manifest stays as it is;
 * the node's copy under /etc/kubernetes/addons (kfi_flannel_nft) is what
 * is applied. *out is that copy's path, or NULL when the file is no
 * flannel manifest (it is then applied unchanged). */
static int flannel_nft(kfi_ctx *c, const char *src, const char *name, char **out, kf_err *e)
{
	char *text = NULL, *nft = NULL, *copy = NULL;
	size_t len;
	int rc, r;

	*out = NULL;
	if ((rc = kf_read_file(src, 16u << 20, &text, &len, e)) != KF_OK)
		goto out;
	if ((r = kfi_flannel_nft(text, &nft)) <= 0) {
		rc = r < 0 ? kfi_oom(e) : KF_OK;
		goto out;
	}
	if (!(copy = kfi_strf("/etc/kubernetes/addons/%s", name))) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_put_file(c, copy, nft, strlen(nft), 0644, NULL, e)) == KF_OK) {
		*out = copy;
		copy = NULL;
	}
out:
	free(text);
	free(nft);
	free(copy);
	return rc;
}

/* HOST:PORT with a host of name or address characters only: it is written
 * into the join configuration. */
static int api_ok(const char *api)
{
	char host[256];
	int port;

	return kfi_split_hostport(api, host, sizeof host, &port) == 0 &&
	       strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") ==
	           strlen(host);
}

/* After kubeadm init has run: a new bootstrap token (kubeadm token create
 * with a token drawn here, so it is known even where kubeadm is only
 * planned) into token[24], and the control-plane certificates uploaded
 * again under the configuration's certificate key, so that the key the
 * join command carries stays the same. */
static int fresh_join_material(kfi_ctx *c, char *token, kf_err *e)
{
	int rc;
	const char *upload[] = {"/usr/local/bin/kubeadm", "init", "phase", "upload-certs",
	                        "--upload-certs", "--config", KUBEADM_CONFIG, NULL};

	if (kfi_token_random(token) != 0)
		return kf_err_set(e, KF_EIO, "cannot draw a bootstrap token: the random generator failed");
	{
		const char *create[] = {"/usr/local/bin/kubeadm", "token", "create", token,
		                        "--ttl", "24h0m0s", "--description", "kubeferry join token",
		                        "--kubeconfig", ADMIN_CONF, NULL};
		if ((rc = kfi_run(c, create, e)) != KF_OK)
			return rc;
	}
	return kfi_run(c, upload, e);
}

static int apply_addons(kfi_ctx *c, const kfi_applied *s, kf_err *e)
{
	char *dir = kfi_strf("%s%s/addons", c->root, s->bundle_dir);
	struct dirent **ents = NULL;
	int n = dir ? scandir(dir, &ents, NULL, alphasort) : 0, rc = dir ? KF_OK : kfi_oom(e);
	int applied = 0;

	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		size_t l = strlen(nm);
		if (rc == KF_OK && nm[0] != '.' &&
		    ((l > 5 && !strcmp(nm + l - 5, ".yaml")) || (l > 4 && !strcmp(nm + l - 4, ".yml")))) {
			char *f = kfi_strf("%s/addons/%s", s->bundle_dir, nm), *nft = NULL;
			char *src = kfi_strf("%s%s/addons/%s", c->root, s->bundle_dir, nm);
			const char *argv[] = {"/usr/local/bin/kubectl", "--kubeconfig", ADMIN_CONF,
			                      "apply", "-f", f, NULL};
			if (!f || !src)
				rc = kfi_oom(e);
			else if (s->proxy_mode && !strcmp(s->proxy_mode, "nftables"))
				rc = flannel_nft(c, src, nm, &nft, e);
			if (nft)
				argv[5] = nft;
			if (rc == KF_OK)
				rc = kfi_run(c, argv, e);
			applied++;
			free(f);
			free(src);
			free(nft);
		}
		free(ents[i]);
	}
	free(ents);
	if (rc == KF_OK && !applied)
		printf("%-8s the bundle has no addons/*.yaml: install a CNI before nodes get Ready\n", "warn");
	free(dir);
	return rc;
}

/* The join secrets of a single node's cluster: the cluster CA made here
 * (kubeadm reuses it), the token and certificate key already in the
 * written configuration, else new ones. */
static int single_node_config(kfi_ctx *c, const kfi_applied *s, const kf_lock *lk,
                              const char *endpoint, kfi_plan_secrets *ps, kf_err *e)
{
	int rc = KF_OK;
	char token[64] = "", certkey[80] = "", etcd_ep[128], ecert[300], ekey[300];
	char *cfg = NULL, *ca = NULL;
	kfi_kubeadm_opts ko = {0};

	if ((endpoint ? kf_strf(ps->endpoint, sizeof ps->endpoint, "%s", endpoint)
	              : kf_strf(ps->endpoint, sizeof ps->endpoint, "%s:6443", s->ip)) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "--control-plane-endpoint %s: too long", endpoint);
		goto out;
	}

	printf("== cluster CA\n");
	if ((rc = kfi_ensure_ca(c, "/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.key",
	                        "kubernetes", e)) != KF_OK)
		goto out;
	if (!(ca = kfi_path(c, "/etc/kubernetes/pki/ca.crt"))) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_ca_cert_hash(ca, ps->hash, e)) != KF_OK)
		goto out;

	printf("== kubeadm configuration\n");
	reuse_secret(c, "- token: ", token, sizeof token);
	reuse_secret(c, "certificateKey: ", certkey, sizeof certkey);
	if (!kfi_token_valid(token) && kfi_token_random(token) != 0) {
		rc = kf_err_set(e, KF_EIO, "cannot draw a bootstrap token: the random generator failed");
		goto out;
	}
	if (strlen(certkey) != 64) {
		unsigned char k[32];
		if (RAND_bytes(k, sizeof k) != 1) {
			rc = kf_err_set(e, KF_EIO, "cannot draw a certificate key: the random generator failed");
			goto out;
		}
		kf_hex(k, sizeof k, certkey);
	}
	/* Both checked above: 23 and 64 characters. */
	memcpy(ps->token, token, sizeof ps->token);
	memcpy(ps->certkey, certkey, sizeof ps->certkey);
	ko.kube_version = lk->kube_version;
	ko.node_name = s->host;
	ko.advertise_ip = s->ip;
	ko.control_plane_endpoint = ps->endpoint;
	ko.pod_subnet = lk->install.pod_subnet ? lk->install.pod_subnet : "10.244.0.0/16";
	ko.service_subnet = lk->install.service_subnet ? lk->install.service_subnet : "10.96.0.0/12";
	ko.token = ps->token;
	ko.certificate_key = ps->certkey;
	ko.external_etcd = !lk->install.etcd || !strcmp(lk->install.etcd, "host");
	/* Chosen by apply for this node's OS (EL10: nftables). */
	ko.proxy_mode = s->proxy_mode;
	if (kf_strf(etcd_ep, sizeof etcd_ep, "https://%s:2379", s->ip) != 0 ||
	    kf_strf(ecert, sizeof ecert, "/etc/ssl/etcd/ssl/node-%s.pem", s->host) != 0 ||
	    kf_strf(ekey, sizeof ekey, "/etc/ssl/etcd/ssl/node-%s-key.pem", s->host) != 0) {
		rc = kf_err_set(e, KF_EIO, "%s: host name or address too long", s->path);
		goto out;
	}
	ko.etcd_endpoint = etcd_ep;
	ko.etcd_ca = "/etc/ssl/etcd/ssl/ca.pem";
	ko.etcd_cert = ecert;
	ko.etcd_key = ekey;
	if (!(cfg = kfi_render_kubeadm(&ko))) {
		rc = kfi_oom(e);
		goto out;
	}
	/* 0600: it holds the bootstrap token and the certificate key. */
	rc = kfi_put_file(c, KUBEADM_CONFIG, cfg, strlen(cfg), 0600, NULL, e);
out:
	free(cfg);
	free(ca);
	return rc;
}

/* --plan DIR --host NAME: the host's share holds the CAs, the
 * configuration and the secrets, all planned before any node was touched. */
static int plan_config(kfi_ctx *c, const kfi_applied *s, const char *plan, const char *host,
                       kf_share **sh, kfi_plan_secrets *ps, kf_err *e)
{
	int rc;

	if ((rc = kf_share_load(plan, host, sh, e)) != KF_OK)
		return rc;
	if (!(*sh)->first_cp)
		return kf_err_set(e, KF_EUSAGE, "%s is not the plan's first control plane: run "
		                  "'cluster join --plan %s --host %s' on it", host, plan, host);
	if (strcmp((*sh)->node_name, s->host))
		return kf_err_set(e, KF_EUSAGE, "this node was applied as %s, not as the plan's host %s "
		                  "(node name %s)", s->host, host, (*sh)->node_name);
	if ((rc = kfi_plan_join_secrets(*sh, ps, e)) != KF_OK)
		return rc;
	snprintf(ps->endpoint, sizeof ps->endpoint, "%s", (*sh)->endpoint);
	/* kube-proxy's mode is the cluster's (the plan's); apply chose one for
	 * this node's OS, which the CNI addon follows. */
	if (s->proxy_mode && ps->proxy_mode[0] && strcmp(s->proxy_mode, ps->proxy_mode))
		printf("%-8s the plan runs kube-proxy in %s mode, this node's OS wants %s: set "
		       "kube_proxy_mode in the inventory and run 'cluster plan' again\n", "warn",
		       ps->proxy_mode, s->proxy_mode);
	return kfi_plan_cluster_files(c, *sh, e);
}

static int cluster_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"control-plane-endpoint", required_argument, NULL, 'c'},
		{"plan", required_argument, NULL, 'P'},
		{"host", required_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *root = "", *endpoint = NULL, *plan = NULL, *host = NULL;
	kfi_ctx c;
	kfi_applied s = {0};
	kf_lock *lk = NULL;
	kf_share *share = NULL;
	kfi_plan_secrets ps = {0};
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0, ch = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': root = optarg; break;
		case 'c': endpoint = optarg; break;
		case 'P': plan = optarg; break;
		case 'H': host = optarg; break;
		case 'h':
			printf("Usage: kubeferry-install cluster init [--root DIR] "
			       "[--control-plane-endpoint HOST:PORT | --plan DIR --host NAME]\n"
			       "\n"
			       "With --plan, the first control plane of a cluster plan ('cluster plan'):\n"
			       "the planned CAs, service-account keys, encryption and audit files go to\n"
			       "/etc/kubernetes before kubeadm runs with the planned kubeadm.yaml. On a\n"
			       "re-run the planned bootstrap token is created again when it would have\n"
			       "expired (24 h) and the certificates uploaded again for control-plane\n"
			       "joins when they would have (2 h), with the planned certificate key.\n"
			       "\nExit codes: 0 success, 2 usage error (or this node is not applied,\n"
			       "or has the wrong role), 3 I/O error or kubeadm failed.\n");
			goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install cluster init --help'");
			goto out;
		}
	}
	if (!plan != !host || (plan && endpoint)) {
		rc = kf_err_set(&e, KF_EUSAGE, "--plan needs --host (and the plan names the endpoint)");
		goto out;
	}
	if ((rc = kfi_node_open(root, &c, &ctx_ok, &s, &e)) != KF_OK ||
	    (rc = load_lock(&c, &s, &lk, &e)) != KF_OK)
		goto out;
	if (strcmp(s.role, "control-plane") != 0) {
		rc = kf_err_set(&e, KF_EUSAGE, "this node was applied as %s; cluster init needs a control plane", s.role);
		goto out;
	}
	if (!lk->kube_version) {
		rc = kf_err_set(&e, KF_EUSAGE, "the bundle's lock has no kubernetesVersion");
		goto out;
	}
	if ((rc = plan ? plan_config(&c, &s, plan, host, &share, &ps, &e)
	               : single_node_config(&c, &s, lk, endpoint, &ps, &e)) != KF_OK)
		goto out;

	printf("== certificate renewal timer\n");
	if ((rc = kfi_install_self(&c, &e)) != KF_OK ||
	    (rc = kfi_unit_install(&c, "kubeferry-certs-renew.service", RENEW_SERVICE, NULL, &ch, &e)) != KF_OK ||
	    (rc = kfi_unit_install(&c, "kubeferry-certs-renew.timer", RENEW_TIMER, "timers.target", &ch, &e)) != KF_OK ||
	    (rc = kfi_unit_start(&c, "kubeferry-certs-renew.timer", ch, ch, &e)) != KF_OK)
		goto out;

	printf("== kubeadm init\n");
	if (node_has(&c, ADMIN_CONF)) {
		printf("%-8s kubeadm init (%s exists)\n", "ok", ADMIN_CONF);
		c.ok++;
		/* The token lives 24 h and the uploaded certificates 2 h: join
		 * material printed now must be live. A plan keeps its own token
		 * and refreshes it only when it would have expired. */
		if ((rc = share ? kfi_plan_refresh(&c, share, &ps, 0, &e)
		                : fresh_join_material(&c, ps.token, &e)) != KF_OK)
			goto out;
	} else {
		const char *argv2[] = {"/usr/local/bin/kubeadm", "init", "--config", KUBEADM_CONFIG,
		                       "--upload-certs", NULL};
		if ((rc = kfi_run(&c, argv2, &e)) != KF_OK ||
		    (share && (rc = kfi_plan_refresh(&c, share, &ps, 1, &e)) != KF_OK))
			goto out;
	}
	printf("== addons (CNI: %s)\n", lk->install.cni ? lk->install.cni : "flannel");
	if ((rc = apply_addons(&c, &s, &e)) != KF_OK)
		goto out;

	if (share) {
		printf("\nJoin every other host of the plan, control planes one at a time:\n"
		       "  kubeferry-install cluster join --plan DIR --host NAME\n");
		goto done;
	}
	printf("\nJoin a worker:\n  kubeferry-install cluster join --api-server %s --token %s "
	       "--discovery-token-ca-cert-hash sha256:%s\n", ps.endpoint, ps.token, ps.hash);
	printf("Join a control plane (applied with --role control-plane):\n"
	       "  kubeferry-install cluster join --api-server %s --token %s "
	       "--discovery-token-ca-cert-hash sha256:%s --certificate-key %s\n", ps.endpoint,
	       ps.token, ps.hash, ps.certkey);
	/* The mirror other nodes use: the one this node serves (mirror
	 * install), else the one it was itself applied with. */
	{
		char *m = NULL, *mfp = NULL;
		if (kfi_mirror_state_load(&c, &m, &mfp) != KF_OK && s.mirror && s.mirror_fp) {
			m = strdup(s.mirror);
			mfp = strdup(s.mirror_fp);
		}
		if (m && mfp)
			printf("Prepare each node first with:\n  kubeferry-install apply BUNDLE -p KEY "
			       "--role ROLE --mirror %s --mirror-ca-fingerprint %s\n", m, mfp);
		free(m);
		free(mfp);
	}
done:
	fflush(stdout);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install cluster init", &e);
	if (ctx_ok)
		printf("ok=%d changed=%d failed=%d\n", c.ok, c.changed, rc != KF_OK);
	kf_share_free(share);
	kf_lock_free(lk);
	kfi_applied_free(&s);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}

static int cluster_join(int argc, char **argv)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"api-server", required_argument, NULL, 'a'},
		{"token", required_argument, NULL, 't'},
		{"discovery-token-ca-cert-hash", required_argument, NULL, 'H'},
		{"certificate-key", required_argument, NULL, 'k'},
		{"plan", required_argument, NULL, 'P'},
		{"host", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *root = "", *api = NULL, *token = NULL, *hash = NULL, *certkey = NULL;
	const char *plan = NULL, *host = NULL;
	kfi_ctx c;
	kfi_applied s = {0};
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0, cp;
	char hx[KF_SHA256_HEX];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': root = optarg; break;
		case 'a': api = optarg; break;
		case 't': token = optarg; break;
		case 'H': hash = optarg; break;
		case 'k': certkey = optarg; break;
		case 'P': plan = optarg; break;
		case 'n': host = optarg; break;
		case 'h':
			printf("Usage: kubeferry-install cluster join --api-server HOST:PORT --token TOKEN\n"
			       "           --discovery-token-ca-cert-hash sha256:HEX [--certificate-key KEY] [--root DIR]\n"
			       "       kubeferry-install cluster join --plan DIR --host NAME [--root DIR]\n"
			       "\n"
			       "With --plan, a host of a cluster plan other than its first control\n"
			       "plane: control planes get the planned CAs, keys, encryption and audit\n"
			       "files first; kubeadm joins with the planned JoinConfiguration (CA pinned\n"
			       "by its hash, node-ip, and for control planes the certificate key).\n"
			       "\nExit codes: 0 success, 2 usage error (or this node is not applied,\n"
			       "or has the wrong role), 3 I/O error or kubeadm failed.\n");
			goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install cluster join --help'");
			goto out;
		}
	}
	if (plan || host) {
		if (!plan || !host || api || token || hash || certkey)
			rc = kf_err_set(&e, KF_EUSAGE, "--plan needs --host, and the plan holds the endpoint, "
			                "token, CA hash and certificate key");
		else
			return kfi_cluster_join_plan(root, plan, host);
		goto out;
	}
	if (!api || !api_ok(api) || !token || !kfi_token_valid(token) || !hash ||
	    strncmp(hash, "sha256:", 7) || strlen(hash) != 71 || kfi_fingerprint_norm(hash, hx) != 0) {
		rc = kf_err_set(&e, KF_EUSAGE, "cluster join needs --api-server HOST:PORT, --token "
		                "[a-z0-9]{6}.[a-z0-9]{16} and --discovery-token-ca-cert-hash sha256:<64 hex>");
		goto out;
	}
	if ((rc = kfi_node_open(root, &c, &ctx_ok, &s, &e)) != KF_OK)
		goto out;
	cp = !strcmp(s.role, "control-plane");
	if (cp && (!certkey || strlen(certkey) != 64 ||
	           strspn(certkey, "0123456789abcdef") != 64)) {
		rc = kf_err_set(&e, KF_EUSAGE, "this node is a control plane: --certificate-key (64 hex) is needed");
		goto out;
	}
	if (node_has(&c, "/etc/kubernetes/kubelet.conf")) {
		printf("%-8s kubeadm join (/etc/kubernetes/kubelet.conf exists)\n", "ok");
		goto out;
	}
	{
		/* A configuration file, not flags: the flags cannot carry
		 * kubelet's node-ip, nor a control plane's advertise address,
		 * and kubelet would register whatever address it finds first. */
		kfi_join_opts jo = {.api_server = api, .token = token, .ca_cert_hash = hash,
		                    .node_name = s.host, .node_ip = s.ip,
		                    .certificate_key = cp ? certkey : NULL};
		const char *argv2[] = {"/usr/local/bin/kubeadm", "join", "--config", JOIN_CONFIG, NULL};
		char *cfg = kfi_render_kubeadm_join(&jo);
		if (!cfg)
			rc = kfi_oom(&e);
		else /* 0600: it holds the token and the certificate key. */
			rc = kfi_put_file(&c, JOIN_CONFIG, cfg, strlen(cfg), 0600, NULL, &e);
		free(cfg);
		if (rc == KF_OK)
			rc = kfi_run(&c, argv2, &e);
	}
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install cluster join", &e);
	kfi_applied_free(&s);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}

/* The control-plane containers restarted through crictl (certs_renew.c),
 * for an operator who renewed certificates by hand. */
static int restart_control_plane(void)
{
	kfi_ctx c;
	kf_err e = {0};
	int rc = kfi_ctx_init(&c, "", 0, &e);

	if (rc == KF_OK) {
		rc = kfi_restart_control_plane(&c, &e);
		kfi_ctx_free(&c);
	}
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install cluster restart-control-plane", &e);
	return rc;
}

int kfi_cmd_cluster(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		printf("Usage: kubeferry-install cluster plan|init|join|renew-certs|restart-control-plane [OPTIONS]\n"
		       "\n  plan   plan a whole cluster from a Kubespray inventory (admin host, offline)\n"
		       "  init   kubeadm init on the first control plane\n"
		       "  join   kubeadm join on the other nodes\n"
		       "\nRun 'kubeferry-install cluster plan --help' (or init, join, renew-certs)\n"
		       "for the options. restart-control-plane restarts this node's control-plane\n"
		       "containers through crictl.\n"
		       "\nExit codes: 0 success, 2 usage error, 3 I/O error or kubeadm failed.\n");
		return argc < 2 ? KF_EUSAGE : KF_OK;
	}
	if (!strcmp(argv[1], "plan"))
		return kfi_cmd_cluster_plan(argc - 1, argv + 1);
	if (!strcmp(argv[1], "init"))
		return cluster_init(argc - 1, argv + 1);
	if (!strcmp(argv[1], "join"))
		return cluster_join(argc - 1, argv + 1);
	if (!strcmp(argv[1], "renew-certs"))
		return kfi_cmd_renew_certs(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restart-control-plane"))
		return restart_control_plane();
	fprintf(stderr, "kubeferry-install cluster: error: unknown subcommand '%s'\n", argv[1]);
	return KF_EUSAGE;
}
