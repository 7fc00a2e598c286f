/* kubeferry-install: the static installer. One command per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "installer/kf_installer.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"verify", kfi_cmd_verify, "check a bundle's signature and every entry"},
	{"unpack", kfi_cmd_unpack, "verify while unpacking into a directory"},
	{"mirror", kfi_cmd_mirror, "serve a bundle's images and files (registry mirror)"},
	{"preflight", kfi_cmd_preflight, "check this node against a bundle (pass/warn/fail)"},
	{"apply", kfi_cmd_apply, "verify, unpack and prepare this node (--role or --plan)"},
	{"reset", kfi_cmd_reset, "undo what apply changed (keeps the bundle)"},
	{"cluster", kfi_cmd_cluster, "plan a cluster (admin host); kubeadm init/join"},
	{"status", kfi_cmd_status, "what apply installed, units, certificate expiry"},
	{"host", kfi_cmd_host, "host packages: capture a base; the admin host's set (--admin)"},
	{"etcd", kfi_cmd_etcd, "etcd snapshot (backup) and restore"},
	{"upgrade", kfi_cmd_upgrade, "upgrade plan (skew checks), apply, node, drain"},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install COMMAND [OPTIONS]\n"
	        "\n"
	        "Verifies kubeferry bundles and installs them on disconnected nodes.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	        "\n"
	        "Run 'kubeferry-install COMMAND --help' for a command's options.\n"
	        "\n"
	        "Exit codes:\n"
	        "  0  success\n"
	        "  1  verification failed (signature, checksum, bundle rule)\n"
	        "  2  usage or spec error\n"
	        "  3  I/O error\n");
}

int main(int argc, char **argv)
{
	int rc = KF_EUSAGE;

	kf_crypto_init();
	if (argc < 2) {
		usage(stderr);
		goto out;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		rc = KF_OK;
		goto out;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("kubeferry-install %s\n", KF_VERSION);
		rc = KF_OK;
		goto out;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			rc = commands[i].fn(argc - 1, argv + 1);
			goto out;
		}
	}
	fprintf(stderr, "kubeferry-install: error: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
out:
	return rc;
}
