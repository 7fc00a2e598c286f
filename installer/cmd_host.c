/*
 * kubeferry-install host packages: how to capture what a node has, for a
 * spec's `base: FILE` (docs/packages.md). Prints the command; runs nothing.
 */
#include <stdio.h>
#include <string.h>

#include "installer/kf_installer.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install host packages\n"
	        "\n"
	        "Prints the command that captures the names of the packages a node has\n"
	        "installed. Run it on a node like the targets (same release, same\n"
	        "install), carry the file to the internet host and name it in the spec:\n"
	        "packages[].base: FILE. The bundle then carries only what such a node\n"
	        "lacks. Runs nothing itself.\n"
	        "\n"
	        "Exit codes: 0 success, 2 usage, 3 I/O error (writing the output).\n");
}

int kfi_cmd_host(int argc, char **argv)
{
	int rc = KF_OK;

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
