/* kubeferry-install mirror serve | hosts | tls | install: the node-side
 * registry mirror over an unpacked bundle, the certs.d files that point
 * containerd at it, and the service that runs it on an applied node. */
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "installer/plan/plan.h"
#include "mirror/kf_mirror.h"

#define PROG "kubeferry-install"
#define MAX_SANS 64

static const char exit_codes[] =
	"\n"
	"Exit codes:\n"
	"  0  success (serve: stopped by SIGTERM or SIGINT)\n"
	"  1  the bundle's image layout does not verify\n"
	"  2  usage error\n"
	"  3  I/O error (cannot listen, read, or write)\n";

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install mirror serve DIR --listen ADDR:PORT [OPTIONS]\n"
	        "       kubeferry-install mirror tls --state DIR [--san NAME]... [--ca-out FILE]\n"
	        "       kubeferry-install mirror hosts --mirror URL [--ca FILE] --out CERTS_D\n"
	        "                                      REGISTRY...\n"
	        "       kubeferry-install mirror install --listen ADDR:PORT [--san NAME]...\n"
	        "                                        [--root DIR]\n"
	        "       kubeferry-install mirror kubespray-vars BUNDLE (-p F | -P K)\n"
	        "                                        --mirror HOST:PORT\n"
	        "\n"
	        "serve: serve an unpacked bundle (DIR/images, an OCI image layout, and\n"
	        "DIR/files) read-only: the OCI distribution pull API under /v2/ (names\n"
	        "resolved through containerd's ?ns=REGISTRY or as REGISTRY/NAME) and\n"
	        "the files under /files/ (a Kubespray files_repo). TLS by default:\n"
	        "with no --tls-cert, a CA and a server certificate for the --san names\n"
	        "are created in the state directory (reused on restart) and served as\n"
	        "a chain (server certificate, then CA), the CA is\n"
	        "copied to ROOT" KF_MIRROR_CA_PATH " (where the bundle's hosts.toml\n"
	        "files expect it) and its fingerprint is printed. One log line per\n"
	        "request on stdout. Stops cleanly on SIGTERM or SIGINT.\n"
	        "\n"
	        "tls: create or renew the TLS material only, as serve does.\n"
	        "hosts: write CERTS_D/REGISTRY/hosts.toml for each REGISTRY, pointing\n"
	        "containerd at the mirror URL (pull and resolve only, no fallback).\n"
	        "install: run this node's applied bundle as kubeferry-mirror.service\n"
	        "(see 'mirror install --help'); prints the CA fingerprint that other\n"
	        "nodes pass to 'apply --mirror-ca-fingerprint'.\n"
	        "kubespray-vars: print a Kubespray offline.yml that takes every file\n"
	        "and image from this mirror (see 'mirror kubespray-vars --help').\n"
	        "\n"
	        "Options:\n"
	        "  -l, --listen ADDR:PORT   numeric address and port (\"[::]:5443\" for v6)\n"
	        "      --tls-cert FILE      serve this certificate chain: PEM, the server\n"
	        "                           certificate first, then intermediates and the\n"
	        "                           CA (nodes pin the CA they find in it) ...\n"
	        "      --tls-key FILE       ... with this key\n"
	        "      --state DIR          generated TLS material (default DIR/../mirror-tls)\n"
	        "      --san NAME           IP address or DNS name for the generated\n"
	        "                           certificate; repeatable (default: the listen\n"
	        "                           address, 127.0.0.1, ::1, localhost)\n"
	        "      --ca-out FILE        copy the CA here (default ROOT" KF_MIRROR_CA_PATH ")\n"
	        "      --root DIR           file system root for --ca-out (default /)\n"
	        "      --plain-http         no TLS at all (tests, or behind a TLS proxy)\n"
	        "  -q, --quiet              no request log\n"
	        "      --mirror URL         (hosts) the mirror, https://HOST:PORT\n"
	        "      --ca FILE            (hosts) CA path written into hosts.toml\n"
	        "      --out CERTS_D        (hosts) the certs.d directory to write\n"
	        "  -h, --help               show this help\n"
	        "%s", exit_codes);
}

struct opts {
	const char *listen, *cert, *key, *state, *ca_out, *root, *mirror, *ca, *out;
	const char *sans[MAX_SANS];
	size_t nsans;
	int plain, quiet, help;
};

static int parse(int argc, char **argv, struct opts *o)
{
	enum { O_CERT = 256, O_KEY, O_STATE, O_SAN, O_CAOUT, O_ROOT, O_PLAIN,
	       O_MIRROR, O_CA, O_OUT };
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"tls-cert", required_argument, NULL, O_CERT},
		{"tls-key", required_argument, NULL, O_KEY},
		{"state", required_argument, NULL, O_STATE},
		{"san", required_argument, NULL, O_SAN},
		{"ca-out", required_argument, NULL, O_CAOUT},
		{"root", required_argument, NULL, O_ROOT},
		{"plain-http", no_argument, NULL, O_PLAIN},
		{"mirror", required_argument, NULL, O_MIRROR},
		{"ca", required_argument, NULL, O_CA},
		{"out", required_argument, NULL, O_OUT},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "l:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case O_CERT: o->cert = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_STATE: o->state = optarg; break;
		case O_SAN:
			if (o->nsans == MAX_SANS) {
				fprintf(stderr, PROG ": error: at most %d --san\n", MAX_SANS);
				return KF_EUSAGE;
			}
			o->sans[o->nsans++] = optarg;
			break;
		case O_CAOUT: o->ca_out = optarg; break;
		case O_ROOT: o->root = optarg; break;
		case O_PLAIN: o->plain = 1; break;
		case O_MIRROR: o->mirror = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_OUT: o->out = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); o->help = 1; return KF_OK;
		default: usage(stderr); return KF_EUSAGE;
		}
	}
	return KF_OK;
}

/* The host part of a numeric listen address, when it names one address
 * (not a wildcard) that clients could use. */
static void listen_host(const char *listen, char *out, size_t n)
{
	const char *colon;
	size_t len;

	out[0] = '\0';
	if (!listen)
		return;
	if (listen[0] == '[') {
		colon = strchr(listen, ']');
		if (!colon)
			return;
		len = (size_t)(colon - listen - 1);
		listen++;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return;
		len = (size_t)(colon - listen);
	}
	if (len == 0 || len >= n)
		return;
	memcpy(out, listen, len);
	out[len] = '\0';
	if (!strcmp(out, "0.0.0.0") || !strcmp(out, "::"))
		out[0] = '\0';
}

/* Create or reuse the TLS material, copy the CA where nodes expect it, and
 * say which CA this is. */
static int prepare_tls(struct opts *o, const char *bundle_dir, char *cert, char *key,
                       size_t n, kf_err *e)
{
	int rc;
	char state[PATH_MAX], host[INET6_ADDRSTRLEN + 1], ca[PATH_MAX], caout[PATH_MAX];
	char fp[KF_MIRROR_FP_LEN], parent[PATH_MAX];
	char *pem = NULL, *have = NULL;
	size_t pemlen, havelen = 0;
	kf_err ignore = {0};

	if (o->state) {
		snprintf(state, sizeof state, "%s", o->state);
	} else {
		char d[PATH_MAX];
		size_t l;
		snprintf(d, sizeof d, "%s", bundle_dir);
		for (l = strlen(d); l > 1 && d[l - 1] == '/'; l--)
			d[l - 1] = '\0';
		kf_dirname(d, parent, sizeof parent);
		snprintf(state, sizeof state, "%.*s/mirror-tls", PATH_MAX - 16, parent);
	}
	if (o->nsans == 0) {
		listen_host(o->listen, host, sizeof host);
		if (host[0] && strcmp(host, "127.0.0.1") && strcmp(host, "::1"))
			o->sans[o->nsans++] = host;
		o->sans[o->nsans++] = "127.0.0.1";
		o->sans[o->nsans++] = "::1";
		o->sans[o->nsans++] = "localhost";
	}
	rc = kf_mirror_tls_ensure(state, o->sans, o->nsans, e);
	if (rc)
		goto out;
	snprintf(ca, sizeof ca, "%.*s/ca.crt", PATH_MAX - 16, state);
	/* The chain, not the bare server certificate: nodes pin the CA they
	 * find in the handshake. */
	snprintf(cert, n, "%.*s/" KF_MIRROR_CHAIN_FILE, PATH_MAX - 16, state);
	snprintf(key, n, "%.*s/server.key", PATH_MAX - 16, state);
	rc = kf_mirror_cert_fingerprint(ca, fp, e);
	if (rc)
		goto out;
	if (o->ca_out)
		snprintf(caout, sizeof caout, "%s", o->ca_out);
	else
		snprintf(caout, sizeof caout, "%s%s",
		         o->root && strcmp(o->root, "/") ? o->root : "", KF_MIRROR_CA_PATH);
	rc = kf_read_file(ca, 1 << 20, &pem, &pemlen, e);
	if (rc)
		goto out;
	/* An identical copy is left alone: the CA never changes once made, so
	 * a restart writes nothing outside the state directory (which lets
	 * kubeferry-mirror.service run with a read-only /etc). */
	if (kf_read_file(caout, 1 << 20, &have, &havelen, &ignore) != KF_OK ||
	    havelen != pemlen || memcmp(have, pem, pemlen) != 0) {
		kf_dirname(caout, parent, sizeof parent);
		rc = kf_mkdir_p(parent, 0755, e);
		if (!rc)
			rc = kf_write_file_atomic(caout, pem, pemlen, 0644, 1, e);
		if (rc)
			goto out;
	}
	printf("mirror CA: %s (copied to %s)\n", ca, caout);
	printf("mirror CA fingerprint (sha256): %s\n", fp);
	fflush(stdout);
out:
	free(pem);
	free(have);
	return rc;
}

static int cmd_serve(struct opts *o, int argc, char **argv)
{
	int rc = KF_OK;
	kf_err e = {0};
	char cert[PATH_MAX], key[PATH_MAX];
	kf_mirror_serve_opts so;

	memset(&so, 0, sizeof so);
	if (optind != argc - 1 || !o->listen || (!o->cert != !o->key) ||
	    (o->plain && (o->cert || o->nsans || o->state))) {
		fprintf(stderr, PROG ": error: mirror serve needs one DIR and --listen; --tls-cert and "
		                "--tls-key go together; --plain-http takes no TLS options\n\n");
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	so.dir = argv[optind];
	so.listen = o->listen;
	so.quiet = o->quiet;
	so.plain_http = o->plain;
	if (o->plain) {
		fprintf(stderr, "\n" PROG ": WARNING: --plain-http: serving WITHOUT TLS. Anyone on the\n"
		                PROG ": WARNING: network path can alter images in flight. Use it only\n"
		                PROG ": WARNING: for tests or behind a TLS-terminating proxy.\n\n");
	} else if (o->cert) {
		so.tls_cert = o->cert;
		so.tls_key = o->key;
	} else {
		rc = prepare_tls(o, so.dir, cert, key, sizeof cert, &e);
		if (rc)
			goto out;
		so.tls_cert = cert;
		so.tls_key = key;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = kf_mirror_serve(&so, &e);
out:
	if (rc)
		kf_err_print(PROG, &e);
	return rc;
}

static int cmd_tls(struct opts *o, int argc, char **argv)
{
	int rc = KF_OK;
	kf_err e = {0};
	char cert[PATH_MAX], key[PATH_MAX];

	(void)argv;
	if (optind != argc || !o->state) {
		fprintf(stderr, PROG ": error: mirror tls needs --state DIR\n\n");
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	rc = prepare_tls(o, o->state, cert, key, sizeof cert, &e);
	if (!rc)
		printf("server certificate chain: %s\nserver key: %s\n", cert, key);
out:
	if (rc && e.code)
		kf_err_print(PROG, &e);
	return rc;
}

static int cmd_hosts(struct opts *o, int argc, char **argv)
{
	int rc = KF_OK;
	kf_err e = {0};

	if (optind >= argc || !o->mirror || !o->out) {
		fprintf(stderr, PROG ": error: mirror hosts needs --mirror URL, --out CERTS_D and "
		                "at least one REGISTRY\n\n");
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		rc = kf_hosts_toml_write(o->out, argv[i], o->mirror, o->ca, &e);
		if (rc)
			goto out;
		printf("wrote %s/%s/hosts.toml\n", o->out, argv[i]);
	}
out:
	if (rc && e.code)
		kf_err_print(PROG, &e);
	return rc;
}

/* ---- mirror install --------------------------------------------------- */

/* Runs this node's applied bundle as kubeferry-mirror.service and records
 * what other nodes pass to apply --mirror. */
char *kfi_mirror_unit(const char *by, const char *bundle_dir, const char *serve_args,
                      const char *rw_path)
{
	kf_buf b;

	kf_buf_init(&b);
	kf_buf_addf(&b, "# Written by kubeferry-install %s.\n"
	            "[Unit]\n"
	            "Description=kubeferry registry mirror (bundle %s)\n"
	            "After=network-online.target\n"
	            "Wants=network-online.target\n"
	            "\n"
	            "[Service]\n"
	            "ExecStart=" KFI_SELF " mirror serve %s %s\n"
	            "Restart=always\n"
	            "RestartSec=2\n"
	            "DynamicUser=no\n"
	            "NoNewPrivileges=yes\n"
	            "ProtectSystem=strict\n"
	            "ProtectHome=yes\n"
	            "PrivateTmp=yes\n", by, bundle_dir, bundle_dir, serve_args);
	if (rw_path)
		kf_buf_addf(&b, "ReadWritePaths=%s\n", rw_path);
	kf_buf_adds(&b, "\n[Install]\nWantedBy=multi-user.target\n");
	return kf_buf_take(&b);
}

static int cmd_install(int argc, char **argv)
{
	enum { O_ROOT = 256, O_SAN, O_PLAN, O_HOST };
	static const struct option opts[] = {
		{"root", required_argument, NULL, O_ROOT},
		{"listen", required_argument, NULL, 'l'},
		{"san", required_argument, NULL, O_SAN},
		{"plan", required_argument, NULL, O_PLAN},
		{"host", required_argument, NULL, O_HOST},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *root = "", *listen = NULL, *sans[16], *plan = NULL, *plan_host = NULL;
	size_t nsans = 0;
	kfi_ctx c;
	kfi_applied s = {0};
	kf_err e = {0};
	int rc = KF_OK, opt, ctx_ok = 0, ch = 0;
	char *tls = NULL, *ca = NULL, *sanargs = NULL, *unit = NULL;
	char *advertise = NULL;
	char fp[KF_MIRROR_FP_LEN], host[128] = "";

	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_ROOT: root = optarg; break;
		case 'l': listen = optarg; break;
		case O_SAN:
			if (nsans < 12)
				sans[nsans++] = optarg;
			break;
		case O_PLAN: plan = optarg; break;
		case O_HOST: plan_host = optarg; break;
		case 'h':
			printf("Usage: kubeferry-install mirror install --listen ADDR:PORT [--san NAME]... [--root DIR]\n"
			       "       kubeferry-install mirror install --plan DIR --host NAME [--root DIR]\n"
			       "\n"
			       "Runs this node's applied bundle as kubeferry-mirror.service ('mirror\n"
			       "serve' on the unpacked bundle, TLS with a CA made here and kept under\n"
			       "/var/lib/kubeferry/mirror-tls), copies the CA to " KF_MIRROR_CA_PATH ",\n"
			       "and prints the CA fingerprint that other nodes pass to\n"
			       "'apply --mirror ADDR:PORT --mirror-ca-fingerprint SHA256'.\n"
			       "--san names the certificate's addresses (default: the listen\n"
			       "address, 127.0.0.1, localhost).\n"
			       "\n"
			       "With --plan, a mirror host of a cluster plan serves on its planned\n"
			       "address and port with the server certificate the plan issued from the\n"
			       "planned mirror CA (which every host of the plan already pins).\n"
			       "\n"
			       "Exit codes: 0 success, 2 usage error, 3 I/O error.\n");
			goto out;
		default:
			rc = kf_err_set(&e, KF_EUSAGE, "see 'kubeferry-install mirror install --help'");
			goto out;
		}
	}
	if (plan || plan_host) {
		if (!plan || !plan_host || listen || nsans)
			rc = kf_err_set(&e, KF_EUSAGE, "--plan needs --host; the plan gives the address, "
			                "port and certificate");
		else
			return kfi_mirror_install_plan(root, plan, plan_host, NULL);
		goto out;
	}
	if (!listen || !strrchr(listen, ':')) {
		rc = kf_err_set(&e, KF_EUSAGE, "mirror install needs --listen ADDR:PORT");
		goto out;
	}
	if ((rc = kfi_node_open(root, &c, &ctx_ok, &s, &e)) != KF_OK)
		goto out;
	if (kf_strf(host, sizeof host, "%.*s", (int)(strrchr(listen, ':') - listen), listen) != 0) {
		rc = kf_err_set(&e, KF_EUSAGE, "--listen %s: address too long", listen);
		goto out;
	}
	if (!nsans) {
		const char *h = host[0] && strcmp(host, "0.0.0.0") && strcmp(host, "[::]") ? host : s.ip;
		/* Each name once: they are repeated in the unit's command line. */
		if (strcmp(h, "127.0.0.1") && strcmp(h, "localhost"))
			sans[nsans++] = h;
		sans[nsans++] = "127.0.0.1";
		sans[nsans++] = "localhost";
	}
	/* The mirror's CA and server certificate live beside the bundles
	 * (kept by reset, like them); the CA is re-used on every run. */
	tls = kfi_strf("%s/var/lib/kubeferry/mirror-tls", c.root);
	ca = tls ? kfi_strf("%s/ca.crt", tls) : NULL;
	if (!ca) {
		rc = kfi_oom(&e);
		goto out;
	}
	if ((rc = kf_mirror_tls_ensure(tls, sans, nsans, &e)) != KF_OK)
		goto out;
	if ((rc = kf_mirror_cert_fingerprint(ca, fp, &e)) != KF_OK)
		goto out;
	/* The service runs plain `mirror serve` on this material with the
	 * same names, so it reuses the certificate made here, serves the
	 * chain kf_mirror_tls_ensure wrote (nodes pin the CA they find in
	 * the handshake) and renews the server certificate on a restart
	 * near expiry. */
	{
		kf_buf b;
		kf_buf_init(&b);
		for (size_t i = 0; i < nsans; i++)
			kf_buf_addf(&b, " --san %s", sans[i]);
		if (!(sanargs = kf_buf_take(&b))) {
			rc = kfi_oom(&e);
			goto out;
		}
	}
	if ((rc = kfi_put_file_from(&c, KF_MIRROR_CA_PATH, ca, 0644, NULL, &e)) != KF_OK ||
	    (rc = kfi_install_self(&c, &e)) != KF_OK)
		goto out;
	{
		char *args = kfi_strf("--listen %s --state /var/lib/kubeferry/mirror-tls%s", listen, sanargs);
		unit = args ? kfi_mirror_unit("mirror install", s.bundle_dir, args,
		                              "/var/lib/kubeferry/mirror-tls") : NULL;
		free(args);
	}
	if (!unit) {
		rc = kfi_oom(&e);
		goto out;
	}
	if ((rc = kfi_unit_install(&c, "kubeferry-mirror.service", unit, "multi-user.target", &ch, &e)) != KF_OK ||
	    (rc = kfi_unit_start(&c, "kubeferry-mirror.service", ch, ch, &e)) != KF_OK)
		goto out;
	/* What other nodes pass to apply, kept for cluster init's join
	 * instructions: a wildcard listen address is reached at the node IP. */
	{
		const char *port = strrchr(listen, ':') + 1;
		int wild = !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]") || !host[0];
		advertise = wild ? kfi_strf("%s:%s", s.ip, port) : kfi_strf("%s", listen);
		if (!advertise) {
			rc = kfi_oom(&e);
			goto out;
		}
		if ((rc = kfi_mirror_state_write(&c, advertise, fp, &e)) != KF_OK)
			goto out;
	}
	printf("mirror https://%s serving %s\n", listen, s.bundle_dir);
	printf("mirror CA fingerprint (sha256): %s\n", fp);
	printf("on other nodes: kubeferry-install apply BUNDLE -p KEY --role ROLE --mirror %s "
	       "--mirror-ca-fingerprint %s\n", advertise, fp);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install mirror install", &e);
	free(tls);
	free(ca);
	free(sanargs);
	free(unit);
	free(advertise);
	kfi_applied_free(&s);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}

int kfi_cmd_mirror(int argc, char **argv)
{
	int rc = KF_EUSAGE;
	struct opts o;
	const char *sub;

	memset(&o, 0, sizeof o);
	if (argc < 2) {
		usage(stderr);
		goto out;
	}
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		usage(stdout);
		rc = KF_OK;
		goto out;
	}
	/* `mirror install` sets up the service that runs `mirror serve` on
	 * the applied bundle; it parses its own options. */
	if (!strcmp(sub, "install")) {
		rc = cmd_install(argc - 1, argv + 1);
		goto out;
	}
	if (!strcmp(sub, "kubespray-vars")) {
		rc = kfi_cmd_mirror_kubespray_vars(argc - 1, argv + 1);
		goto out;
	}
	rc = parse(argc - 1, argv + 1, &o);
	if (rc || o.help)
		goto out;
	if (!strcmp(sub, "serve"))
		rc = cmd_serve(&o, argc - 1, argv + 1);
	else if (!strcmp(sub, "tls"))
		rc = cmd_tls(&o, argc - 1, argv + 1);
	else if (!strcmp(sub, "hosts"))
		rc = cmd_hosts(&o, argc - 1, argv + 1);
	else {
		fprintf(stderr, PROG ": error: unknown mirror command '%s'\n\n", sub);
		usage(stderr);
		rc = KF_EUSAGE;
	}
out:
	return rc;
}
