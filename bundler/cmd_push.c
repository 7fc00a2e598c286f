/* kubeferry push: copy a bundle's images into a site registry. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundler/kf_bundler.h"

#define PROG "kubeferry"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry push BUNDLE (-p PUBFILE | -P PUBKEY) --to REGISTRY[/PREFIX]\n"
	        "                      [--cacert FILE] [--creds USER:PASSWORD] [--tmpdir DIR]\n"
	        "\n"
	        "Copy every image of a bundle into an existing registry (distribution,\n"
	        "Harbor). The bundle is verified completely (signature and every entry)\n"
	        "while it is unpacked into a temporary directory, which is removed\n"
	        "afterwards; nothing is pushed from a bundle that fails.\n"
	        "\n"
	        "Each image keeps its repository path under the target and loses its\n"
	        "source registry: registry.k8s.io/pause:3.10 with --to reg.example:5000/k8s\n"
	        "becomes reg.example:5000/k8s/pause:3.10, docker.io/library/nginx:1.28\n"
	        "becomes reg.example:5000/k8s/library/nginx:1.28. Blobs already present\n"
	        "are skipped (HEAD), manifests are pushed by digest, platform manifests\n"
	        "before their index, and the tag last, so running it again pushes nothing.\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE        trusted minisign public key file\n"
	        "  -P, --public-key-string KEY  the key's base64 line (as minisign -P)\n"
	        "      --to REGISTRY[/PREFIX]   target (https; prefix http:// for plain HTTP)\n"
	        "      --cacert FILE            CA bundle for the registry's TLS certificate\n"
	        "      --creds USER:PASSWORD    credentials; default: $REGISTRY_AUTH_FILE,\n"
	        "                               $XDG_RUNTIME_DIR/containers/auth.json,\n"
	        "                               ~/.docker/config.json\n"
	        "      --tmpdir DIR             where to unpack (default $TMPDIR or /var/tmp)\n"
	        "  -q, --quiet                  no progress while unpacking\n"
	        "  -h, --help                   show this help\n"
	        "\n"
	        "Exit codes:\n"
	        "  0  success\n"
	        "  1  verification failed (signature, checksum, bundle rule)\n"
	        "  2  usage error or bad key\n"
	        "  3  I/O, network or registry error\n");
}

int kf_cmd_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"to", required_argument, NULL, 't'},
		{"cacert", required_argument, NULL, 'c'},
		{"creds", required_argument, NULL, 'C'},
		{"tmpdir", required_argument, NULL, 'T'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c, made_tmp = 0;
	const char *pubfile = NULL, *pubstr = NULL, *creds_arg = NULL;
	const char *tmpdir = NULL, *bundle;
	char tmp[PATH_MAX], dest[PATH_MAX + 16], layout[PATH_MAX + 32];
	kf_err e = {0};
	kf_pubkey key;
	kf_archive_read_opts ro = {0};
	kf_lock *lock = NULL;
	kf_creds creds = {0};
	kf_push_opts po = {0};
	struct stat st;

	kf_fetch_opts_default(&po.fetch);
	optind = 0;
	while ((c = getopt_long(argc, argv, "p:P:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pubfile = optarg; break;
		case 'P': pubstr = optarg; break;
		case 't': po.to = optarg; break;
		case 'c': po.fetch.cacert = optarg; break;
		case 'C': creds_arg = optarg; break;
		case 'T': tmpdir = optarg; break;
		case 'q': po.fetch.quiet = 1; break;
		case 'h': usage(stdout); goto out;
		default: usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1 || (!pubfile == !pubstr) || !po.to) {
		fprintf(stderr, PROG ": error: push needs one BUNDLE, --to and exactly one of -p or -P\n\n");
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	bundle = argv[optind];
	if (creds_arg) {
		rc = kf_creds_parse(creds_arg, &creds, &e);
		if (rc) {
			kf_err_prefix(&e, "--creds");
			goto fail;
		}
		po.creds = &creds;
	}
	rc = kf_keys_load_public(pubfile, pubstr, &key, &e);
	if (rc)
		goto fail;
	if (!tmpdir) {
		const char *env = getenv("TMPDIR");
		tmpdir = env && *env ? env : "/var/tmp";
	}
	if (snprintf(tmp, sizeof tmp, "%s/kubeferry-push.XXXXXX", tmpdir) >= (int)sizeof tmp) {
		rc = kf_err_set(&e, KF_EUSAGE, "--tmpdir too long: %s", tmpdir);
		goto fail;
	}
	if (!mkdtemp(tmp)) {
		rc = kf_err_errno(&e, "cannot create a directory in", tmpdir);
		goto fail;
	}
	made_tmp = 1;
	snprintf(dest, sizeof dest, "%s/bundle", tmp);
	snprintf(layout, sizeof layout, "%s/images", dest);
	/* Unpacking is the verification: the signed lock first, every entry
	 * checked while it streams, and the tree appears only when all of it
	 * verified. Nothing is pushed from a bundle that fails. */
	ro.key = &key;
	rc = kf_archive_unpack(bundle, dest, 0, &ro, &lock, &e);
	if (rc)
		goto fail;
	if (stat(layout, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = kf_err_set(&e, KF_EUSAGE, "bundle %s holds no images", bundle);
		goto fail;
	}
	fprintf(stderr, "push: bundle %s %s verified; pushing %zu images to %s\n",
	        lock->name, lock->version, lock->nimg, po.to);
	rc = kf_push_layout(layout, &po, &e);
	if (rc)
		goto fail;
	goto out;
fail:
	kf_err_print(PROG, &e);
out:
	if (made_tmp) {
		kf_err ignore;
		kf_remove_tree(tmp, &ignore);
	}
	if (lock)
		kf_lock_free(lock);
	kf_creds_clear(&creds);
	return rc;
}
