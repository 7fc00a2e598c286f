/* kubeferry verify / kubeferry inspect: check a bundle, or show its lock. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bundler/kf_bundler.h"

#define PROG "kubeferry"

static const char exit_codes[] =
	"\n"
	"Exit codes:\n"
	"  0  success\n"
	"  1  verification failed (signature, checksum, bundle rule)\n"
	"  2  usage error (verify: or an unreadable key)\n"
	"  3  I/O error\n";

static void verify_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry verify BUNDLE (-p PUBFILE | -P PUBKEY) [-q]\n"
	        "\n"
	        "Check a bundle completely: the lock's signature, then every entry\n"
	        "against the lock (path, type, size, sha256), and that nothing is\n"
	        "missing or extra. When BUNDLE.minisig exists, it is checked over the\n"
	        "whole file too. BUNDLE may be '-' for standard input.\n"
	        "\n"
	        "Options:\n"
	        "  -p, --public-key FILE   trusted minisign public key file\n"
	        "  -P, --public-key-string KEY  the key's base64 line (as minisign -P)\n"
	        "  -q, --quiet             print nothing on success\n"
	        "  -h, --help              show this help\n"
	        "%s", exit_codes);
}

static void inspect_usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry inspect BUNDLE [--json]\n"
	        "\n"
	        "Print what a bundle's lock lists: name, version, Kubernetes version,\n"
	        "architectures, components, images, entry count and total size.\n"
	        "Reads only the lock: nothing is verified (use 'kubeferry verify').\n"
	        "For a delta bundle also \"delta of <base name> <version> (<base lock\n"
	        "sha256>)\" and the share of the full size its stream carries (the\n"
	        "stream is read for that; JSON gives the base only).\n"
	        "\n"
	        "Options:\n"
	        "  -j, --json   machine-readable output\n"
	        "  -h, --help   show this help\n"
	        "%s", exit_codes);
}

int kf_cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"public-key", required_argument, NULL, 'p'},
		{"public-key-string", required_argument, NULL, 'P'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c, quiet = 0;
	const char *pubfile = NULL, *pubstr = NULL, *bundle;
	kf_err e = {0};
	kf_pubkey key;
	kf_archive_read_opts ro = {0};
	kf_verify_report r = {0};

	optind = 0;
	while ((c = getopt_long(argc, argv, "p:P:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': pubfile = optarg; break;
		case 'P': pubstr = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': verify_usage(stdout); goto out;
		default: verify_usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1 || (!pubfile == !pubstr)) {
		fprintf(stderr, PROG ": error: verify needs one BUNDLE and exactly one of -p or -P\n\n");
		verify_usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	bundle = argv[optind];
	rc = kf_keys_load_public(pubfile, pubstr, &key, &e);
	if (rc)
		goto fail;

	ro.key = &key;
	rc = kf_archive_verify_all(bundle, &ro, &r, &e);
	if (rc)
		goto fail;
	if (!quiet)
		kf_verify_report_print(stdout, bundle, &key, &r);
	goto out;
fail:
	kf_err_print(PROG, &e);
out:
	kf_verify_report_clear(&r);
	return rc;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int print_json(const kf_lock *l)
{
	json_t *root = json_object(), *archs = json_array(),
	       *comps = json_array(), *imgs = json_array();
	int rc = KF_OK;

	for (size_t i = 0; i < l->narch; i++)
		json_array_append_new(archs, json_string(l->archs[i]));
	for (size_t i = 0; i < l->ncomp; i++) {
		const kf_lock_component *c = &l->components[i];
		const kf_lock_entry *le = c->path ? kf_lock_find(l, c->path) : NULL;
		json_array_append_new(comps, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:I}",
			"name", str_or_null(c->name), "version", str_or_null(c->version),
			"arch", str_or_null(c->arch), "url", str_or_null(c->url),
			"sha256", str_or_null(c->sha256), "path", str_or_null(c->path),
			"size", (json_int_t)(le ? le->size : 0)));
	}
	for (size_t i = 0; i < l->nimg; i++) {
		const kf_lock_image *im = &l->images[i];
		json_t *plats = json_array();
		for (size_t j = 0; j < im->nplat; j++)
			json_array_append_new(plats, json_string(im->platforms[j]));
		json_array_append_new(imgs, json_pack("{s:o,s:o,s:o}",
			"ref", str_or_null(im->ref), "digest", str_or_null(im->digest),
			"platforms", plats));
	}
	json_object_set_new(root, "verified", json_false());
	json_object_set_new(root, "format", json_integer(l->format));
	json_object_set_new(root, "name", str_or_null(l->name));
	json_object_set_new(root, "version", str_or_null(l->version));
	json_object_set_new(root, "kubernetesVersion", str_or_null(l->kube_version));
	json_object_set_new(root, "architectures", archs);
	json_object_set_new(root, "created", str_or_null(l->created));
	json_object_set_new(root, "builder", str_or_null(l->builder));
	json_object_set_new(root, "components", comps);
	json_object_set_new(root, "images", imgs);
	json_object_set_new(root, "packages", kf_rpm_packages_json(l, 0));
	json_object_set_new(root, "adminPackages", kf_rpm_packages_json(l, 1));
	json_object_set_new(root, "entries", json_integer((json_int_t)l->nentries));
	json_object_set_new(root, "totalSize",
	                    json_integer((json_int_t)kf_lock_total_size(l)));
	if (l->delta)
		json_object_set_new(root, "base", json_pack("{s:s,s:s,s:s}", "name", l->base.name,
		                                            "version", l->base.version,
		                                            "lock", l->base.lock));
	if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
		rc = KF_EIO;
	putchar('\n');
	json_decref(root);
	return rc;
}

/* A delta's base and the share of the full tree its stream carries. */
static void print_delta(const kf_lock *l, const char *bundle)
{
	uint64_t bytes = 0, total = kf_lock_total_size(l);
	size_t n = 0;
	kf_err e = {0};

	printf("delta of %s %s (%s)\n", l->base.name, l->base.version, l->base.lock);
	if (kf_archive_carried(bundle, &bytes, &n, &e) != KF_OK) {
		printf("carries:             unknown (%s)\n", e.msg);
		return;
	}
	printf("carries:             %zu of %zu entries, %llu of %llu bytes (%.1f%% of the full size)\n",
	       n, l->nentries, (unsigned long long)bytes, (unsigned long long)total,
	       total ? 100.0 * (double)bytes / (double)total : 100.0);
}

static void print_text(const kf_lock *l)
{
	printf("NOTE: read from the lock only, NOT verified (use 'kubeferry verify')\n");
	printf("name:                %s\n", l->name);
	printf("version:             %s\n", l->version);
	printf("kubernetes version:  %s\n", l->kube_version ? l->kube_version : "-");
	printf("architectures:      ");
	for (size_t i = 0; i < l->narch; i++)
		printf(" %s", l->archs[i]);
	printf("\n");
	if (l->created)
		printf("created:             %s\n", l->created);
	if (l->builder)
		printf("builder:             %s\n", l->builder);
	printf("components:          %zu\n", l->ncomp);
	for (size_t i = 0; i < l->ncomp; i++) {
		const kf_lock_component *c = &l->components[i];
		const kf_lock_entry *le = c->path ? kf_lock_find(l, c->path) : NULL;
		printf("  %-24s %-12s %-8s %12llu\n", c->name,
		       c->version ? c->version : "-", c->arch ? c->arch : "-",
		       (unsigned long long)(le ? le->size : 0));
	}
	printf("images:              %zu\n", l->nimg);
	for (size_t i = 0; i < l->nimg; i++) {
		const kf_lock_image *im = &l->images[i];
		printf("  %s@%s", im->ref, im->digest ? im->digest : "-");
		for (size_t j = 0; j < im->nplat; j++)
			printf("%s%s", j ? "," : " ", im->platforms[j]);
		printf("\n");
	}
	kf_rpm_packages_print(l, stdout);
	printf("entries:             %zu\n", l->nentries);
	printf("total size:          %llu bytes\n",
	       (unsigned long long)kf_lock_total_size(l));
}

int kf_cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c, json = 0;
	char *yaml = NULL, *sig = NULL;
	size_t ylen = 0, slen = 0;
	kf_lock *lock = NULL;
	kf_err e = {0};

	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': inspect_usage(stdout); goto out;
		default: inspect_usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, PROG ": error: inspect needs one BUNDLE\n\n");
		inspect_usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	rc = kf_archive_read_lock(argv[optind], &yaml, &ylen, &sig, &slen, &e);
	if (rc == KF_OK)
		rc = kf_lock_parse(yaml, ylen, KF_LOCK_PATH, &lock, &e);
	if (rc) {
		kf_err_print(PROG, &e);
		goto out;
	}
	if (json)
		rc = print_json(lock);
	else
		print_text(lock);
	if (!json && lock->delta)
		print_delta(lock, argv[optind]);
out:
	kf_lock_free(lock);
	free(yaml);
	free(sig);
	return rc;
}
