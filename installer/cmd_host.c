/*
 * kubeferry-install host packages: how to capture what a node has, for a
 * spec's `base: FILE` (prints the command; runs nothing), and with
 * --admin, the admin host's own packages (ansible-core for the cluster
 * playbooks) installed from the bundle (docs/packages.md). The admin case
 * is apply's bundle and host-packages steps (installer/apply/bundle.c,
 * packages.c) with the admin set: verified and unpacked once, picked by
 * this host's /etc/os-release, installed by its own dnf from the bundle
 * only with gpgcheck on.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "installer/apply/apply.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install host packages\n"
	        "       kubeferry-install host packages --admin BUNDLE (-p PUBFILE | -P PUBKEY)\n"
	        "                                       [--root DIR] [--dry-run]\n"
	        "\n"
	        "Without --admin: prints the command that captures the names of the\n"
	        "packages a node has installed. Run it on a node like the targets (same\n"
	        "release, same install), carry the file to the internet host and name it\n"
	        "in the spec: packages[].base: FILE. The bundle then carries only what\n"
	        "such a node lacks. Runs nothing itself.\n"
	        "\n"
	        "With --admin: installs the bundle's admin set (spec packages[].admin,\n"
	        "e.g. ansible-core for the cluster playbooks) on this host, the admin\n"
	        "host of a closed network. Verifies BUNDLE and unpacks it once under\n"
	        "/var/lib/kubeferry/bundles (as apply does; a re-run with the same\n"
	        "bundle skips that), picks the set for this host's /etc/os-release\n"
	        "(Rocky, RHEL, AlmaLinux, CentOS Stream 9 or 10) and has the host's own\n"
	        "dnf install the missing packages from the bundle's\n"
	        "rpms/<set>-admin/<arch>/ only, gpgcheck on with the bundle's copy of\n"
	        "the distribution key, no other repository. Reports ok (all installed)\n"
	        "or changed (with the list).\n"
	        "\n"
	        "Options:\n"
	        "      --admin BUNDLE                the bundle (.tar.zst) whose admin set to install\n"
	        "  -p, --public-key FILE             trusted minisign public key file\n"
	        "  -P, --public-key-string KEY       the key's base64 line (as minisign -P)\n"
	        "      --root DIR                    install into DIR (dnf --installroot=DIR);\n"
	        "                                    os-release and the rpm database are DIR's\n"
	        "      --dry-run                     print the dnf command, install nothing\n"
	        "  -h, --help                        show this help\n"
	        "\n"
	        "Exit codes: 0 success, 1 verification failed (the bundle) or dnf refused\n"
	        "the install (its signature check), 2 usage (or no admin set for this\n"
	        "host's release), 3 I/O error.\n");
}

static int parse_admin(apply *a, int argc, char **argv, kf_err *e)
{
	enum { O_ADMIN = 256, O_ROOT, O_DRY };
	static const struct option opts[] = {
		{"admin", required_argument, NULL, O_ADMIN},
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"root", required_argument, NULL, O_ROOT},
		{"dry-run", no_argument, NULL, O_DRY},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stat st;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:P:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_ADMIN: a->bundle = optarg; break;
		case 'p': a->pub_file = optarg; break;
		case 'P': a->pub_str = optarg; break;
		case O_ROOT: a->root = optarg; break;
		case O_DRY: a->dry_run = 1; break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return KF_EUSAGE;
		}
	}
	if (optind != argc || !a->bundle)
		return kf_err_set(e, KF_EUSAGE, "host packages --admin needs BUNDLE and no other "
		                  "argument (see --help)");
	if (!a->pub_file == !a->pub_str)
		return kf_err_set(e, KF_EUSAGE, "give the trusted public key with -p FILE or -P KEY");
	if (a->root && (stat(a->root, &st) != 0 || !S_ISDIR(st.st_mode)))
		return kf_err_set(e, KF_EUSAGE, "--root %s: not a directory", a->root);
	return KF_OK;
}

static int admin_packages(int argc, char **argv)
{
	apply a;
	kf_err e = {0};
	int rc, ctx_ok = 0;

	memset(&a, 0, sizeof a);
	rc = parse_admin(&a, argc, argv, &e);
	if (rc < 0) {
		rc = KF_OK;
		goto out;
	}
	if (rc != KF_OK ||
	    (rc = kfi_ctx_init(&a.c, a.root ? a.root : "", a.dry_run, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	kfi_host_arch(a.arch, sizeof a.arch);
	printf("host packages --admin %s: arch %s, root %s%s\n", a.bundle, a.arch,
	       a.c.root[0] ? a.c.root : "/", a.dry_run ? ", dry run" : "");
	if ((rc = kfi_step_bundle(&a, &e)) == KF_OK)
		rc = kfi_step_admin_packages(&a, &e);
out:
	kfi_apply_done(&a, rc, ctx_ok, &e, "kubeferry-install host packages");
	return rc;
}

int kfi_cmd_host(int argc, char **argv)
{
	int rc = KF_OK;

	if (argc >= 2 && !strcmp(argv[1], "packages") && argc > 2 &&
	    strcmp(argv[2], "--help") && strcmp(argv[2], "-h"))
		return admin_packages(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			goto out;
		}
	if (argc != 2 || strcmp(argv[1], "packages")) {
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	printf("rpm -qa --qf '%%{NAME}\\n' | sort -u > %s\n", "node-packages.txt");
	if (fflush(stdout) != 0)
		rc = KF_EIO;
out:
	return rc;
}
