/* kubeferry-install verify / unpack: check a bundle, or check it while
 * unpacking it into a directory. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define PROG "kubeferry-install"

static const char exit_codes[] =
	"\n"
	"Exit codes:\n"
	"  0  success\n"
	"  1  verification failed (signature, checksum, bundle rule)\n"
	"  2  usage error or bad key (unpack: DIR exists without --force)\n"
	"  3  I/O error\n";

static void verify_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install verify BUNDLE (-p PUBFILE | -P PUBKEY)\n"
	        "                                [--base DIR|BUNDLE] [-q]\n"
	        "\n"
	        "Check a bundle completely without writing anything: the lock's\n"
	        "signature, then every entry against the lock (path, type, size,\n"
	        "sha256), and that nothing is missing or extra. When BUNDLE.minisig\n"
	        "exists, it is checked over the whole file too. BUNDLE may be '-'.\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE         trusted minisign public key file\n"
	        "  -P, --public-key-string KEY   the key's base64 line (as minisign -P)\n"
	        "      --base DIR|BUNDLE         a delta's base: every entry the delta leaves\n"
	        "                                out is checked there too\n"
	        "  -q, --quiet                   print nothing on success\n"
	        "  -h, --help                    show this help\n"
	        "%s", exit_codes);
}

static void unpack_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry-install unpack BUNDLE (-p PUBFILE | -P PUBKEY) -d DIR\n"
	        "                                [--base DIR|BUNDLE] [--force] [-q]\n"
	        "\n"
	        "Verify BUNDLE while unpacking it, in one pass, into a staging\n"
	        "directory next to DIR (DIR.kf-staging-XXXXXX). Only when the lock's\n"
	        "signature and every entry verified is the staging tree synced to disk\n"
	        "and renamed to DIR; on any failure it is removed and DIR is left as\n"
	        "it was. BUNDLE may be '-' for standard input.\n"
	        "\n"
	        "A delta bundle (kubeferry build --base) carries only what its base\n"
	        "lacks: --base names the base, an unpacked bundle directory or the\n"
	        "full bundle file (verified with the same key). Every entry the delta\n"
	        "leaves out is read from the base and checked against the delta's\n"
	        "signed lock; a missing or changed one fails verification (exit 1)\n"
	        "naming it, and nothing is committed. The full tree lands in DIR.\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE         trusted minisign public key file\n"
	        "  -P, --public-key-string KEY   the key's base64 line (as minisign -P)\n"
	        "  -d, --dir DIR                 destination (must not exist)\n"
	        "  -f, --force                   replace an existing DIR atomically\n"
	        "      --base DIR|BUNDLE         a delta's base (see above)\n"
	        "  -q, --quiet                   no progress, no summary\n"
	        "  -h, --help                    show this help\n"
	        "%s", exit_codes);
}

struct progress {
	int last;
};

/* Percentage on one terminal line; only redrawn when it changes. */
static void show_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	int pct = total ? (int)(done * 100 / total) : 100;
	if (pct != p->last) {
		p->last = pct;
		fprintf(stderr, "\r" PROG ": verifying and unpacking: %3d%% (%llu MiB)",
		        pct, (unsigned long long)(done >> 20));
	}
}

static int parse_common(int argc, char **argv, int unpack, const char **bundle,
                        const char **pubfile, const char **pubstr,
                        const char **dir, int *force, int *quiet, int *help,
                        const char **base)
{
	static const struct option longopts[] = {
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"dir", required_argument, NULL, 'd'},
		{"force", no_argument, NULL, 'f'},
		{"base", required_argument, NULL, 'B'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	void (*usage)(FILE *) = unpack ? unpack_usage : verify_usage;

	optind = 0;
	while ((c = getopt_long(argc, argv, unpack ? "p:P:d:fqh" : "p:P:qh",
	                        longopts, NULL)) != -1) {
		switch (c) {
		case 'p': *pubfile = optarg; break;
		case 'P': *pubstr = optarg; break;
		case 'd': *dir = optarg; break;
		case 'f': *force = 1; break;
		case 'B': *base = optarg; break;
		case 'q': *quiet = 1; break;
		case 'h': usage(stdout); *help = 1; return KF_OK;
		default: usage(stderr); return KF_EUSAGE;
		}
	}
	if (!unpack && (*dir || *force)) {
		usage(stderr);
		return KF_EUSAGE;
	}
	if (optind != argc - 1 || (!*pubfile == !*pubstr) || (unpack && !*dir)) {
		fprintf(stderr, PROG ": error: %s needs one BUNDLE, exactly one of -p or -P%s\n\n",
		        argv[0], unpack ? ", and -d DIR" : "");
		usage(stderr);
		return KF_EUSAGE;
	}
	*bundle = argv[optind];
	return KF_OK;
}

int kfi_cmd_verify(int argc, char **argv)
{
	int rc, quiet = 0, force = 0, help = 0;
	const char *bundle = NULL, *pubfile = NULL, *pubstr = NULL, *dir = NULL;
	kf_err e = {0};
	kf_pubkey key;
	kf_archive_read_opts ro = {0};
	kf_verify_report r = {0};
	const char *base_arg = NULL;
	kf_archive_base base = {0};

	rc = parse_common(argc, argv, 0, &bundle, &pubfile, &pubstr, &dir, &force,
	                  &quiet, &help, &base_arg);
	if (rc || help)
		goto out;
	rc = kf_keys_load_public(pubfile, pubstr, &key, &e);
	ro.key = &key;
	if (rc == KF_OK && base_arg && (rc = kf_archive_base_open(base_arg, &key, bundle, &base, &e)) == KF_OK) {
		ro.base_dir = base.dir;
		ro.base_lock = base.lock;
	}
	if (rc == KF_OK)
		rc = kf_archive_verify_all(bundle, &ro, &r, &e);
	if (rc) {
		kf_err_print(PROG, &e);
		goto out;
	}
	if (!quiet)
		kf_verify_report_print(stdout, bundle, &key, &r);
out:
	kf_archive_base_close(&base);
	kf_verify_report_clear(&r);
	return rc;
}

int kfi_cmd_unpack(int argc, char **argv)
{
	int rc, quiet = 0, force = 0, help = 0;
	const char *bundle = NULL, *pubfile = NULL, *pubstr = NULL, *dir = NULL;
	kf_err e = {0};
	kf_pubkey key;
	kf_archive_read_opts ro = {0};
	kf_lock *lock = NULL;
	struct progress pr = {.last = -1};
	const char *base_arg = NULL;
	kf_archive_base base = {0};

	rc = parse_common(argc, argv, 1, &bundle, &pubfile, &pubstr, &dir, &force,
	                  &quiet, &help, &base_arg);
	if (rc || help)
		goto out;
	/* One pass over the file: the signed lock and every entry are
	 * checked while streaming; the detached signature (a second read)
	 * is for 'verify' and minisign before the bundle is carried in. */
	rc = kf_keys_load_public(pubfile, pubstr, &key, &e);
	ro.key = &key;
	if (!quiet && isatty(STDERR_FILENO)) {
		ro.progress = show_progress;
		ro.progress_arg = &pr;
	}
	if (rc == KF_OK && base_arg && (rc = kf_archive_base_open(base_arg, &key, dir, &base, &e)) == KF_OK) {
		ro.base_dir = base.dir;
		ro.base_lock = base.lock;
	}
	if (rc == KF_OK)
		rc = kf_archive_unpack(bundle, dir, force, &ro, &lock, &e);
	if (ro.progress && pr.last >= 0)
		fputc('\n', stderr);
	if (rc) {
		kf_err_print(PROG, &e);
		goto out;
	}
	if (!quiet) {
		char id[17];
		kf_keys_keyid_str(key.keyid, id);
		printf("OK: %s %s (%zu entries, %llu bytes, signed by key %s) "
		       "verified and unpacked into %s\n", lock->name, lock->version,
		       lock->nentries, (unsigned long long)kf_lock_total_size(lock),
		       id, dir);
		if (lock->delta)
			printf("delta of %s %s (%s): the entries it leaves out came from %s\n",
			       lock->base.name, lock->base.version, lock->base.lock, base_arg);
	}
out:
	kf_archive_base_close(&base);
	kf_lock_free(lock);
	return rc;
}
