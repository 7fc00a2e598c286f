/*
 * kubeferry-install reset.
 *
 * reset undoes apply from its journal (installer/step/): services stopped and
 * disabled, replaced files restored from their backups, created files,
 * links and directories removed. The unpacked bundle stays, so a later
 * apply needs no new copy of it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

/* KF_OK, -1 after --help, else KF_EUSAGE. */
static int parse_root(int argc, char **argv, const char **root)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': *root = optarg; break;
		case 'h':
			printf("Usage: kubeferry-install reset [--root DIR]\n\n"
			       "Undoes what apply changed, from its journal: services stopped\n"
			       "and disabled, replaced files restored from their backups,\n"
			       "created files, links and directories removed. The unpacked\n"
			       "bundle under /var/lib/kubeferry/bundles stays.\n"
			       "\nExit codes: 0 success, 2 usage error, 3 I/O error.\n");
			return -1;
		default:
			fprintf(stderr, "Usage: kubeferry-install reset [--root DIR]\n");
			return KF_EUSAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "kubeferry-install reset: error: unexpected argument '%s'\n", argv[optind]);
		return KF_EUSAGE;
	}
	return KF_OK;
}

int kfi_cmd_reset(int argc, char **argv)
{
	const char *root = "";
	kfi_ctx c;
	kf_err e = {0};
	int rc = parse_root(argc, argv, &root), ctx_ok = 0;

	if (rc != KF_OK) {
		rc = rc < 0 ? KF_OK : rc;
		goto out;
	}
	if ((rc = kfi_ctx_init(&c, root, 0, &e)) != KF_OK)
		goto out;
	ctx_ok = 1;
	rc = kfi_journal_undo(&c, &e);
	if (rc == KF_OK)
		printf("reset done; the unpacked bundles in %s%s stay\n", c.root, KFI_BUNDLES_DIR);
out:
	if (rc != KF_OK && e.code)
		kf_err_print("kubeferry-install reset", &e);
	if (ctx_ok)
		kfi_ctx_free(&c);
	return rc;
}

