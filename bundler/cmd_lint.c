/*
 * kubeferry lint SPEC...: check specs without fetching anything, so a typo
 * is caught on the operator's desk rather than halfway through a build.
 */
#include <stdio.h>
#include <string.h>

#include "bundler/kf_bundler.h"

static void lint_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry lint SPEC...\n"
	        "\n"
	        "Parses and checks each bundle spec (schema, architectures, checksums,\n"
	        "URL placeholders, image references) without downloading anything.\n"
	        "Prints \"SPEC: ok (N components, M images, ARCHS)\" per valid spec and\n"
	        "\"FILE:LINE:COL: message\" for the first error in an invalid one.\n"
	        "\n"
	        "Exit codes: 0 all specs valid, 2 a spec is invalid, 3 a spec cannot be read.\n");
}

int kf_cmd_lint(int argc, char **argv)
{
	int rc = KF_OK, i, nspec = 0, opts = 1;

	for (i = 1; i < argc; i++) {
		if (opts && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
			lint_usage(stdout);
			goto out;
		}
		if (opts && !strcmp(argv[i], "--")) {
			opts = 0;
			continue;
		}
		if (opts && argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "kubeferry lint: unknown option %s\n", argv[i]);
			lint_usage(stderr);
			rc = KF_EUSAGE;
			goto out;
		}
	}
	opts = 1;
	for (i = 1; i < argc; i++) {
		kf_spec *s = NULL;
		kf_err e = {0};
		int r;

		if (opts && !strcmp(argv[i], "--")) {
			opts = 0;
			continue;
		}
		nspec++;
		r = kf_spec_load(argv[i], &s, &e);
		if (r != KF_OK) {
			kf_err_print("kubeferry lint", &e);
			/* Report every spec; the exit code is the worst seen, with a
			 * spec error (2) taking precedence over an unreadable file. */
			if (rc == KF_OK || r == KF_EUSAGE)
				rc = r;
			continue;
		}
		printf("%s: ok (%zu component%s, %zu image%s,", argv[i], s->ncomp,
		       s->ncomp == 1 ? "" : "s", s->nimg, s->nimg == 1 ? "" : "s");
		for (size_t a = 0; a < s->narch; a++)
			printf(" %s", s->archs[a]);
		printf(")\n");
		kf_spec_free(s);
	}
	if (nspec == 0) {
		lint_usage(stderr);
		rc = KF_EUSAGE;
	}
out:
	return rc;
}
