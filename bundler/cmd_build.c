/* kubeferry build SPEC -s SECRET [-o OUT] [options] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry build SPEC -s SECRET [-o OUT] [options]\n"
	        "\n"
	        "Fetches every source the spec lists, checks each against its pinned\n"
	        "sha256, and writes a signed bundle plus OUT.minisig over the whole file.\n"
	        "Relative source paths are read relative to the spec's directory.\n"
	        "\n"
	        "Options:\n"
	        "  -s, --secret-key FILE   signing key (kubeferry PEM or unencrypted minisign\n"
	        "                          key); an encrypted key's passphrase comes from\n"
	        "                          $KUBEFERRY_PASSPHRASE_FILE or the terminal\n"
	        "  -o, --output FILE       bundle path (default NAME-VERSION-linux-ARCHS.tar.zst)\n"
	        "      --level N           zstd level 1..19 (default 3)\n"
	        "  -j, --jobs N            parallel downloads (default 8)\n"
	        "      --cache DIR         download cache (default $XDG_CACHE_HOME/kubeferry)\n"
	        "      --cacert FILE       CA bundle for TLS (default: the system store)\n"
	        "      --rewrite P=R       fetch URLs starting with P from R instead; the lock\n"
	        "                          still records the upstream URL (repeatable)\n"
	        "      --mirror URL        mirror endpoint written into certs.d hosts.toml\n"
	        "      --base OLD.tar.zst  build a delta: only the entries whose sha256 OLD's\n"
	        "                          lock lacks; the signed lock lists every entry and\n"
	        "                          names OLD by its lock's sha256 (OLD must be a full\n"
	        "                          bundle signed by the same key; default output\n"
	        "                          NAME-VERSION-linux-ARCHS.delta-from-OLDVERSION.tar.zst)\n"
	        "  -q, --quiet             no progress output\n"
	        "      --json              on success, a JSON report on stdout (bundle,\n"
	        "                          signature, entries, size, components, images,\n"
	        "                          host packages) instead of the two paths\n"
	        "  -h, --help              this help\n"
	        "\n"
	        "Environment: SOURCE_DATE_EPOCH sets the embedded time (default 0, so\n"
	        "the same spec and sources always give byte-identical bundles).\n"
	        "\n"
	        "Exit codes: 0 success, 1 a checksum or signature did not verify,\n"
	        "2 usage or spec error, 3 I/O or network error.\n");
}

static int parse_int(const char *s, int lo, int hi, const char *what, int *out,
                     kf_err *e)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return kf_err_set(e, KF_EUSAGE, "%s must be an integer %d..%d, not '%s'",
		                  what, lo, hi, s);
	*out = (int)v;
	return KF_OK;
}

int kf_cmd_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"secret-key", required_argument, NULL, 's'},
		{"output", required_argument, NULL, 'o'},
		{"level", required_argument, NULL, 'L'},
		{"jobs", required_argument, NULL, 'j'},
		{"cache", required_argument, NULL, 'C'},
		{"cacert", required_argument, NULL, 'A'},
		{"rewrite", required_argument, NULL, 'R'},
		{"mirror", required_argument, NULL, 'M'},
		{"base", required_argument, NULL, 'B'},
		{"quiet", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	kf_build_opts o;
	kf_err e = {0};
	kf_rewrite *rw = NULL;
	size_t nrw = 0;
	char *cache = NULL;
	int rc = KF_OK, c;

	memset(&o, 0, sizeof o);
	kf_fetch_opts_default(&o.fetch);
	optind = 0;
	while ((c = getopt_long(argc, argv, "s:o:j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o.secret_key = optarg; break;
		case 'o': o.out_path = optarg; break;
		case 'L':
			rc = parse_int(optarg, 1, 19, "--level", &o.level, &e);
			break;
		case 'j':
			rc = parse_int(optarg, 1, 64, "--jobs", &o.fetch.jobs, &e);
			break;
		case 'C': o.fetch.cache_dir = optarg; break;
		case 'A': o.fetch.cacert = optarg; break;
		case 'R': {
			kf_rewrite *n = realloc(rw, (nrw + 1) * sizeof *n);
			if (!n) {
				rc = kf_err_set(&e, KF_EIO, "out of memory");
				break;
			}
			rw = n;
			rc = kf_rewrite_parse(optarg, &rw[nrw], &e);
			if (!rc)
				nrw++;
			break;
		}
		case 'M': o.mirror = optarg; break;
		case 'B': o.base_path = optarg; break;
		case 'q': o.fetch.quiet = 1; break;
		case 'J': o.json = 1; break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			usage(stderr);
			rc = KF_EUSAGE;
			goto out;
		}
		if (rc)
			goto fail;
	}
	if (optind != argc - 1) {
		rc = kf_err_set(&e, KF_EUSAGE, "build takes exactly one SPEC (see --help)");
		goto fail;
	}
	if (!o.secret_key) {
		rc = kf_err_set(&e, KF_EUSAGE, "a signing key is required: -s SECRET");
		goto fail;
	}
	o.spec_path = argv[optind];
	o.fetch.rewrites = rw;
	o.fetch.nrewrite = nrw;
	if (!o.fetch.cache_dir) {
		cache = kf_fetch_default_cache();
		o.fetch.cache_dir = cache;
	}
	rc = kf_build(&o, &e);
fail:
	if (rc)
		kf_err_print("kubeferry build", &e);
out:
	for (size_t i = 0; i < nrw; i++)
		kf_rewrite_clear(&rw[i]);
	free(rw);
	free(cache);
	return rc;
}
