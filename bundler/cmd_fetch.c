/*
 * kubeferry fetch: the transfer engine on its own. Downloads pinned files
 * into the cache (to warm it before a build, or to check a mirror) and
 * prints "SHA256  PATH" lines, the format sha256sum -c reads.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: kubeferry fetch [options] SHA256 URL [SHA256 URL ...]\n"
	        "       kubeferry fetch [options] -i LIST\n"
	        "\n"
	        "Downloads each URL into the content-addressed cache (or hashes a local\n"
	        "file in place), checks it against its pinned sha256, and prints\n"
	        "\"SHA256  PATH\" for each (sha256sum format). LIST holds \"SHA256  URL\"\n"
	        "lines; '#' starts a comment.\n"
	        "\n"
	        "Options:\n"
	        "  -i, --input FILE        read SHA256 URL pairs from FILE ('-': stdin)\n"
	        "  -j, --jobs N            parallel downloads (default 8)\n"
	        "      --cache DIR         download cache (default $XDG_CACHE_HOME/kubeferry)\n"
	        "      --cacert FILE       CA bundle for TLS (default: the system store)\n"
	        "      --rewrite P=R       fetch URLs starting with P from R instead (repeatable)\n"
	        "  -H, --header 'N: V'     extra request header (repeatable); Authorization\n"
	        "                          is never sent to another host after a redirect\n"
	        "  -q, --quiet             no progress output\n"
	        "  -h, --help              this help\n"
	        "\n"
	        "Environment: KUBEFERRY_RETRIES, KUBEFERRY_BACKOFF_MS,\n"
	        "KUBEFERRY_CONNECT_TIMEOUT, KUBEFERRY_LOW_SPEED_LIMIT (B/s) and\n"
	        "KUBEFERRY_LOW_SPEED_TIME (s) tune retries and timeouts (also for build);\n"
	        "https_proxy, http_proxy and no_proxy select a proxy.\n"
	        "\n"
	        "Exit codes: 0 success, 1 a checksum did not match, 2 usage error,\n"
	        "3 I/O or network error.\n");
}

struct list {
	char **s;
	size_t n, cap;
};

static int push(struct list *l, const char *s)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		char **ns = realloc(l->s, nc * sizeof *ns);
		if (!ns)
			return -1;
		l->s = ns;
		l->cap = nc;
	}
	if (!(l->s[l->n] = strdup(s)))
		return -1;
	l->n++;
	return 0;
}

static int read_list(const char *path, struct list *pairs, kf_err *e)
{
	int rc = KF_OK;
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;

	if (!f) {
		rc = kf_err_errno(e, "cannot open", path);
		goto out;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *p = line, *hex, *url;
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		hex = strsep(&p, " \t");
		while (p && (*p == ' ' || *p == '\t' || *p == '*'))
			p++;
		url = p;
		if (!url || !*url) {
			rc = kf_err_set(e, KF_EUSAGE, "%s:%u: expected \"SHA256  URL\"", path, lineno);
			goto out;
		}
		if (push(pairs, hex) || push(pairs, url)) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = kf_err_errno(e, "cannot read", path);
out:
	free(line);
	if (f && f != stdin)
		fclose(f);
	return rc;
}

int kf_cmd_fetch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"input", required_argument, NULL, 'i'},
		{"jobs", required_argument, NULL, 'j'},
		{"cache", required_argument, NULL, 'C'},
		{"cacert", required_argument, NULL, 'A'},
		{"rewrite", required_argument, NULL, 'R'},
		{"header", required_argument, NULL, 'H'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int rc = KF_OK, c;
	kf_err e = {0};
	kf_fetch_opts o;
	kf_rewrite *rw = NULL;
	size_t nrw = 0, i, n = 0;
	struct list pairs = {0}, hdrs = {0};
	kf_fetch_item *items = NULL;
	char *cache = NULL, *end;
	const char *input = NULL;

	kf_fetch_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:j:H:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': input = optarg; break;
		case 'j':
			o.jobs = (int)strtol(optarg, &end, 10);
			if (!*optarg || *end || o.jobs < 1 || o.jobs > 64) {
				rc = kf_err_set(&e, KF_EUSAGE, "--jobs must be an integer 1..64, not '%s'", optarg);
				goto out;
			}
			break;
		case 'C': o.cache_dir = optarg; break;
		case 'A': o.cacert = optarg; break;
		case 'R': {
			kf_rewrite *nr = realloc(rw, (nrw + 1) * sizeof *nr);
			if (!nr) {
				rc = kf_err_set(&e, KF_EIO, "out of memory");
				goto out;
			}
			rw = nr;
			if ((rc = kf_rewrite_parse(optarg, &rw[nrw], &e)) != KF_OK)
				goto out;
			nrw++;
			break;
		}
		case 'H':
			if (!strchr(optarg, ':')) {
				rc = kf_err_set(&e, KF_EUSAGE, "--header '%s': expected 'Name: value'", optarg);
				goto out;
			}
			if (push(&hdrs, optarg)) {
				rc = kf_err_set(&e, KF_EIO, "out of memory");
				goto out;
			}
			break;
		case 'q': o.quiet = 1; break;
		case 'h': usage(stdout); goto out;
		default: usage(stderr); rc = KF_EUSAGE; goto out;
		}
	}
	if (input && (rc = read_list(input, &pairs, &e)) != KF_OK)
		goto out;
	if ((argc - optind) % 2) {
		rc = kf_err_set(&e, KF_EUSAGE, "expected SHA256 URL pairs, got an odd number of arguments");
		goto out;
	}
	for (int a = optind; a < argc; a++)
		if (push(&pairs, argv[a])) {
			rc = kf_err_set(&e, KF_EIO, "out of memory");
			goto out;
		}
	n = pairs.n / 2;
	if (!n) {
		usage(stderr);
		rc = KF_EUSAGE;
		goto out;
	}
	if (hdrs.n && push(&hdrs, "") == 0) {
		/* NULL-terminate the header array in place of the sentinel. */
		free(hdrs.s[hdrs.n - 1]);
		hdrs.s[--hdrs.n] = NULL;
	}
	items = calloc(n, sizeof *items);
	if (!items) {
		rc = kf_err_set(&e, KF_EIO, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		items[i].sha256 = pairs.s[2 * i];
		items[i].url = pairs.s[2 * i + 1];
		items[i].headers = hdrs.n ? (const char *const *)hdrs.s : NULL;
	}
	if (!o.cache_dir) {
		if (!(cache = kf_fetch_default_cache())) {
			rc = kf_err_set(&e, KF_EIO, "out of memory");
			goto out;
		}
		o.cache_dir = cache;
	}
	o.rewrites = rw;
	o.nrewrite = nrw;
	if ((rc = kf_fetch_all(items, n, &o, &e)) != KF_OK)
		goto out;
	for (i = 0; i < n; i++)
		printf("%s  %s\n", items[i].sha256, items[i].path);
	if (fflush(stdout) != 0)
		rc = kf_err_set(&e, KF_EIO, "cannot write to standard output");
out:
	if (rc != KF_OK && e.msg[0])
		kf_err_print("kubeferry fetch", &e);
	if (items)
		for (i = 0; i < n; i++)
			kf_fetch_item_clear(&items[i]);
	free(items);
	for (i = 0; i < pairs.n; i++)
		free(pairs.s[i]);
	free(pairs.s);
	for (i = 0; i < hdrs.n; i++)
		free(hdrs.s[i]);
	free(hdrs.s);
	for (i = 0; i < nrw; i++)
		kf_rewrite_clear(&rw[i]);
	free(rw);
	free(cache);
	return rc;
}
