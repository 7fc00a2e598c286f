/* kubeferry: the bundler. Dispatches to one command per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "bundler/kf_bundler.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"build", kf_cmd_build, "fetch, verify and pack a spec into a signed bundle"},
	{"fetch", kf_cmd_fetch, "download pinned files into the cache and check them"},
	{"lint", kf_cmd_lint, "check a spec without building"},
	{"verify", kf_cmd_verify, "check a bundle's signatures and every entry"},
	{"inspect", kf_cmd_inspect, "print what a bundle holds"},
	{"push", kf_cmd_push, "copy a bundle's images into a registry"},
	{"keygen", kf_cmd_keygen, "create an Ed25519 signing key pair"},
	{"sign", kf_cmd_sign, "sign any file with a kubeferry or minisign key"},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry COMMAND [OPTIONS]\n"
	        "\n"
	        "Builds signed, pinned Kubernetes bundles for air-gapped installs.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
	        "\n"
	        "Run 'kubeferry COMMAND --help' for a command's options.\n"
	        "\n"
	        "Exit codes:\n"
	        "  0  success\n"
	        "  1  verification failed (signature, checksum, bundle rule)\n"
	        "  2  usage or spec error\n"
	        "  3  I/O or network error\n");
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
		printf("kubeferry %s\n", KF_VERSION);
		rc = KF_OK;
		goto out;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			rc = commands[i].fn(argc - 1, argv + 1);
			goto out;
		}
	}
	fprintf(stderr, "kubeferry: error: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
out:
	return rc;
}
