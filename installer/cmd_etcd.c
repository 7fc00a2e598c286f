/*
 * kubeferry-install etcd snapshot|restore|renew-certs: the upkeep of the
 * host etcd that apply installs (Kubespray's layout: /etc/etcd.env,
 * /etc/ssl/etcd/ssl/): backups and certificate renewal.
 * The work is in installer/etcd/; this file reads the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

static const char SNAPSHOT_HELP[] =
	"Usage: kubeferry-install etcd snapshot [--dir DIR] [--keep N] [--root DIR]\n"
	"                                       [--env FILE] [--dry-run] [--install-timer]\n"
	"\n"
	"Saves a snapshot of this etcd member (etcdctl snapshot save over TLS with\n"
	"the admin-<member>.pem certificate from /etc/ssl/etcd/ssl, endpoint and\n"
	"member name from /etc/etcd.env), checks it (etcdutl snapshot status, or\n"
	"etcdctl before 3.5), and stores it as DIR/etcd-<member>-<UTC time>.db\n"
	"(0600) with its sha256 in <file>.sha256 (sha256sum format). Then removes\n"
	"all but the newest N snapshots in DIR.\n"
	"\n"
	"apply installs kubeferry-etcd-snapshot.timer on every host-etcd member: a\n"
	"snapshot a day (random time in the first hour; a missed day runs at\n"
	"boot) with the defaults. --install-timer installs it with this DIR and N\n"
	"instead, and takes no snapshot now.\n"
	"\n"
	"  --dir DIR      where snapshots go (default " KFI_SNAPSHOT_DIR ")\n"
	"  --keep N       snapshots kept, newest first (default 7; 0 keeps all)\n"
	"  --env FILE     the member's etcd.env (default /etc/etcd.env)\n"
	"  --root DIR     the node's files are under DIR (etcd's tools are the host's)\n"
	"  --dry-run      print what would be done\n"
	"  --install-timer  write, enable and start the daily timer and its service\n"
	"\n"
	"Exit codes: 0 success, 1 the snapshot failed its status check,\n"
	"2 usage error, 3 I/O error or etcdctl failed.\n";

static const char RESTORE_HELP[] =
	"Usage: kubeferry-install etcd restore SNAPSHOT [--plan DIR --host NAME]\n"
	"                                      [--no-start] [--root DIR] [--dry-run]\n"
	"\n"
	"Restores this etcd member from SNAPSHOT, a file that etcd snapshot wrote\n"
	"(its SNAPSHOT.sha256 must exist and match: checked first). Stops\n"
	"etcd.service, restores (etcdutl snapshot restore, or etcdctl before 3.5)\n"
	"into a fresh data directory with this member's name, peer URLs, initial\n"
	"cluster and cluster token from /etc/etcd.env (or the plan's\n"
	"DIR/hosts/NAME/etcd.env), swaps it with ETCD_DATA_DIR in one rename and\n"
	"keeps the old data as ETCD_DATA_DIR.before-restore-<UTC time> (never\n"
	"deleted), then starts etcd and checks its health.\n"
	"\n"
	"Every member of a cluster is restored from the same snapshot, all of\n"
	"them stopped first: ansible/etcd-restore.yml does that with --no-start,\n"
	"then starts them together.\n"
	"\n"
	"  --plan DIR     read the member's etcd.env from a cluster plan\n"
	"  --host NAME    the member's host in the plan (with --plan)\n"
	"  --no-start     leave etcd stopped after the restore\n"
	"  --root DIR     the node's files are under DIR; systemctl is only planned\n"
	"  --dry-run      print what would be done\n"
	"\n"
	"Exit codes: 0 success, 1 the snapshot's checksum is missing or wrong,\n"
	"2 usage error, 3 I/O error, etcd still running, restore or health failed.\n";

static const char RENEW_HELP[] =
	"Usage: kubeferry-install etcd renew-certs [--within DAYS] [--root DIR] [--dry-run]\n"
	"\n"
	"Re-issues each host etcd certificate in /etc/ssl/etcd/ssl (member-, admin-\n"
	"and node-<name>.pem) that expires within DAYS (default 90) from the same\n"
	"CA (ca.pem, ca-key.pem), keeping its key, subject and SANs, valid for 10\n"
	"years; then restarts etcd.service when one was renewed. The monthly\n"
	"kubeferry-certs-renew.service runs it after kubeadm certs renew all.\n"
	"A node without the CA key (a cluster plan keeps it on the admin host)\n"
	"fails only when a certificate is due.\n"
	"\n"
	"Exit codes: 0 success, 2 usage error or a certificate is due and the CA\n"
	"key is not here, 3 I/O error.\n";

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* After the options: no stray argument, then fn in a context for root. */
static int run(int argc, char **argv, const char *root, int dry,
               int (*fn)(kfi_ctx *c, void *arg, kf_err *e), void *arg, kf_err *e)
{
	kfi_ctx c;
	int rc;

	if (optind != argc)
		return kf_err_set(e, KF_EUSAGE, "unexpected argument %s", argv[optind]);
	if ((rc = kfi_ctx_init(&c, root, dry, e)) != KF_OK)
		return rc;
	rc = fn(&c, arg, e);
	kfi_ctx_free(&c);
	return rc;
}

struct snap_arg {
	kfi_snapshot_opts o;
	int timer;
};

static int do_snapshot(kfi_ctx *c, void *arg, kf_err *e)
{
	struct snap_arg *a = arg;
	return a->timer ? kfi_etcd_snapshot_timer(c, a->o.keep, a->o.dir, e)
	                : kfi_etcd_snapshot(c, &a->o, e);
}

static int do_restore(kfi_ctx *c, void *arg, kf_err *e)
{
	return kfi_etcd_restore(c, arg, e);
}

static int do_renew(kfi_ctx *c, void *arg, kf_err *e)
{
	int renewed = 0, rc = kfi_etcd_renew(c, "/etc/ssl/etcd/ssl", *(int *)arg, &renewed, e);

	/* etcd reads its certificates when it starts. */
	if (rc == KF_OK && renewed)
		rc = kfi_unit_start(c, "etcd.service", 0, 1, e);
	return rc;
}

static int etcd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"keep", required_argument, NULL, 'k'},
		{"env", required_argument, NULL, 'E'},
		{"root", required_argument, NULL, 'r'},
		{"dry-run", no_argument, NULL, 'n'},
		{"install-timer", no_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct snap_arg a = {.o = {.keep = 7}};
	const char *root = "";
	int opt, dry = 0, rc = KF_OK;
	kf_err e = {0};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': a.o.dir = optarg; break;
		case 'E': a.o.env_path = optarg; break;
		case 'r': root = optarg; break;
		case 'n': dry = 1; break;
		case 'T': a.timer = 1; break;
		case 'k':
			if (parse_long(optarg, 0, 100000, &a.o.keep) != 0) {
				rc = kf_err_set(&e, KF_EUSAGE, "--keep %s: want a number 0..100000", optarg);
				goto out;
			}
			break;
		case 'h': fputs(SNAPSHOT_HELP, stdout); goto out;
		default: fputs(SNAPSHOT_HELP, stderr); rc = KF_EUSAGE; goto out;
		}
	}
	rc = run(argc, argv, root, dry, do_snapshot, &a, &e);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install etcd snapshot", &e);
	return rc;
}

static int etcd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{"plan", required_argument, NULL, 'p'},
		{"host", required_argument, NULL, 'H'},
		{"no-start", no_argument, NULL, 's'},
		{"root", required_argument, NULL, 'r'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kfi_restore_opts o = {0};
	const char *root = "", *plan = NULL, *host = NULL;
	char envf[1200];
	int opt, dry = 0, rc = KF_OK;
	kf_err e = {0};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': plan = optarg; break;
		case 'H': host = optarg; break;
		case 's': o.no_start = 1; break;
		case 'r': root = optarg; break;
		case 'n': dry = 1; break;
		case 'h': fputs(RESTORE_HELP, stdout); goto out;
		default: fputs(RESTORE_HELP, stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind >= argc) {
		rc = kf_err_set(&e, KF_EUSAGE, "want one SNAPSHOT file (see --help)");
		goto out;
	}
	o.snapshot = argv[optind++];
	if (!plan != !host) {
		rc = kf_err_set(&e, KF_EUSAGE, "--plan and --host go together");
		goto out;
	}
	if (host && (strchr(host, '/') || host[0] == '.' || !host[0])) {
		rc = kf_err_set(&e, KF_EUSAGE, "--host %s: not a host name", host);
		goto out;
	}
	if (plan) {
		if (kf_strf(envf, sizeof envf, "%s/hosts/%s/etcd.env", plan, host) != 0) {
			rc = kf_err_set(&e, KF_EUSAGE, "--plan %s: path too long", plan);
			goto out;
		}
		o.env_file = envf;
	}
	rc = run(argc, argv, root, dry, do_restore, &o, &e);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install etcd restore", &e);
	return rc;
}

static int etcd_renew(int argc, char **argv)
{
	static const struct option opts[] = {
		{"within", required_argument, NULL, 'w'},
		{"root", required_argument, NULL, 'r'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *root = "";
	long within = 90;
	int opt, dry = 0, rc = KF_OK, days;
	kf_err e = {0};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': root = optarg; break;
		case 'n': dry = 1; break;
		case 'w':
			if (parse_long(optarg, 0, 3650, &within) != 0) {
				rc = kf_err_set(&e, KF_EUSAGE, "--within %s: want days 0..3650", optarg);
				goto out;
			}
			break;
		case 'h': fputs(RENEW_HELP, stdout); goto out;
		default: fputs(RENEW_HELP, stderr); rc = KF_EUSAGE; goto out;
		}
	}
	days = (int)within;
	rc = run(argc, argv, root, dry, do_renew, &days, &e);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install etcd renew-certs", &e);
	return rc;
}

int kfi_cmd_etcd(int argc, char **argv)
{
	int rc = KF_EUSAGE;

	if (argc >= 2 && !strcmp(argv[1], "snapshot")) {
		rc = etcd_snapshot(argc - 1, argv + 1);
	} else if (argc >= 2 && !strcmp(argv[1], "restore")) {
		rc = etcd_restore(argc - 1, argv + 1);
	} else if (argc >= 2 && !strcmp(argv[1], "renew-certs")) {
		rc = etcd_renew(argc - 1, argv + 1);
	} else if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: kubeferry-install etcd snapshot|restore|renew-certs [OPTIONS]\n"
		       "\nThe host etcd's upkeep: snapshot saves and checks a backup (and keeps\n"
		       "the newest N), restore puts one back on this member, renew-certs\n"
		       "re-issues its certificates before they expire.\n"
		       "Run 'kubeferry-install etcd snapshot --help' (restore, renew-certs) for\n"
		       "the options.\n"
		       "\nExit codes: 0 success, 1 a snapshot failed its check, 2 usage error,\n"
		       "3 I/O error or an etcd tool failed.\n");
		rc = KF_OK;
	} else {
		fprintf(stderr, "Usage: kubeferry-install etcd snapshot|restore|renew-certs [OPTIONS]\n");
	}
	return rc;
}
