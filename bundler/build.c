/*
 * kubeferry build: spec -> fetched, verified sources -> signed lock ->
 * bundle -> detached signature over the whole file.
 *
 * Nothing is written at the output path until every source verified and
 * the bundle is complete; a failure at any step leaves no output behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundler/kf_bundler.h"

/* The embedded time. Defaults to the epoch, not "now": a bundle built from
 * the same spec on another day must be byte-identical. A malformed value
 * is an error rather than a silent 0. */
static int build_time(time_t *when, kf_err *e)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end = NULL;
	long long v;

	*when = 0;
	if (!s || !*s)
		return KF_OK;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return kf_err_set(e, KF_EUSAGE,
		                  "SOURCE_DATE_EPOCH must be a non-negative number of seconds, not '%s'", s);
	*when = (time_t)v;
	return KF_OK;
}

/* strdup that counts failures: fill_lock checks once at the end rather
 * than after each of its many copies. */
static char *xstrdup_n(const char *s, int *failed)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*failed = 1;
	return d;
}

static void say(const kf_build_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const kf_build_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->fetch.quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "build: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void write_progress(void *arg, const char *entry, uint64_t done,
                           uint64_t total)
{
	const kf_build_opts *o = arg;
	(void)entry;
	if (o->fetch.quiet || !isatty(2))
		return;
	fprintf(stderr, "\rbuild: writing %llu/%llu MiB",
	        (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
	if (done == total)
		fputc('\n', stderr);
}

static char *default_out_name(const kf_spec *s)
{
	char archs[256] = "";
	char *out = NULL;
	size_t len = 0;

	for (size_t i = 0; i < s->narch; i++)
		len += (size_t)snprintf(archs + len, sizeof archs - len, "%s%s",
		                        i ? "-" : "", s->archs[i]);
	if (asprintf(&out, "%s-%s-linux-%s.tar.zst", s->name, s->version, archs) < 0)
		out = NULL;
	return out;
}

/* Components of the spec -> fetch items (one per component and arch). */
static int plan_sources(const kf_spec *s, kf_fetch_item **items_out,
                        char ***urls_out, size_t *n_out, kf_err *e)
{
	int rc = KF_OK;
	size_t n = s->ncomp * s->narch, k = 0;
	kf_fetch_item *items = calloc(n ? n : 1, sizeof *items);
	char **urls = calloc(n ? n : 1, sizeof *urls);

	if (!items || !urls) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t c = 0; c < s->ncomp; c++) {
		for (size_t a = 0; a < s->narch; a++, k++) {
			urls[k] = kf_spec_source_url(&s->components[c], s->archs[a]);
			if (!urls[k]) {
				rc = kf_err_set(e, KF_EIO, "out of memory");
				goto out;
			}
			items[k].url = urls[k];
			items[k].sha256 = s->components[c].sha256[a];
		}
	}
out:
	*items_out = items;
	*urls_out = urls;
	*n_out = k;
	return rc;
}

static int fill_lock(kf_lock *l, const kf_spec *s, const kf_fetch_item *items,
                     const kf_build_set *set, time_t when, kf_err *e)
{
	int rc = KF_OK, oom = 0;
	char created[32];
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	l->format = KF_FORMAT_VERSION;
	l->name = xstrdup_n(s->name, &oom);
	l->version = xstrdup_n(s->version, &oom);
	l->kube_version = xstrdup_n(s->kube_version ? s->kube_version : s->version, &oom);
	l->created = xstrdup_n(created, &oom);
	l->builder = xstrdup_n("kubeferry " KF_VERSION, &oom);
	for (size_t a = 0; a < s->narch; a++)
		l->archs[a] = xstrdup_n(s->archs[a], &oom);
	l->narch = s->narch;
	kf_install_copy(&l->install, &s->install);

	l->components = calloc(s->ncomp * s->narch + 1, sizeof *l->components);
	l->entries = calloc(set->n + 1, sizeof *l->entries);
	if (!l->components || !l->entries) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t c = 0, k = 0; c < s->ncomp; c++) {
		for (size_t a = 0; a < s->narch; a++, k++) {
			kf_lock_component *lc = &l->components[k];
			lc->name = xstrdup_n(s->components[c].name, &oom);
			lc->version = xstrdup_n(s->components[c].version, &oom);
			lc->arch = xstrdup_n(s->archs[a], &oom);
			lc->url = xstrdup_n(items[k].url, &oom);
			lc->sha256 = xstrdup_n(items[k].sha256, &oom);
			lc->path = kf_entry_path_for_url(items[k].url, e);
			if (!lc->path) {
				rc = e->code;
				goto out;
			}
			l->ncomp = k + 1;
		}
	}
	for (size_t i = 0; i < set->n; i++) {
		l->entries[i] = set->entries[i];
		l->entries[i].path = xstrdup_n(set->entries[i].path, &oom);
		l->nentries = i + 1;
	}
	if (oom)
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	return rc;
}

/* The writer found bad a source that was not hashed before (verify_later):
 * a cache entry is removed so the next build downloads it again, and the
 * error (still KF_EVERIFY) says so. */
static void evict_bad(const kf_fetch_item *items, size_t n,
                      const kf_fetch_opts *fo, const kf_archive_source *bad,
                      kf_err *e)
{
	kf_err ev = {0};
	char old[sizeof e->msg];

	for (size_t i = 0; i < n; i++) {
		int r;
		if (!items[i].unverified || !items[i].path ||
		    strcmp(items[i].path, bad->src_path) != 0)
			continue;
		r = kf_fetch_evict(&items[i], fo, &ev);
		memcpy(old, e->msg, sizeof old);
		/* Truncation keeps the start, which names the entry. */
		if (r > 0)
			(void)kf_strf(e->msg, sizeof e->msg,
			              "%s; the corrupt cache entry of %s was removed, the next build downloads it again",
			              old, items[i].url);
		else if (r < 0)
			(void)kf_strf(e->msg, sizeof e->msg, "%s; %s", old, ev.msg);
		break;
	}
}

int kf_build(const kf_build_opts *o, kf_err *e)
{
	int rc = KF_OK;
	kf_spec *spec = NULL;
	kf_seckey *key = NULL;
	kf_fetch_item *items = NULL;
	char **urls = NULL;
	size_t nitems = 0;
	kf_build_set set = {0};
	kf_lock *lock = calloc(1, sizeof *lock);
	char *lock_yaml = NULL, *lock_sig = NULL, *file_sig = NULL;
	char *out = NULL, sig_path[PATH_MAX];
	char keyid[17], tc[512], uc[128];
	size_t lock_len = 0;
	unsigned char file_digest[KF_BLAKE2B_LEN];
	kf_pubkey pub;
	kf_fetch_opts fo = o->fetch;
	time_t when = 0;
	kf_commit commit;
	char work_dir[PATH_MAX];
	int have_work = 0;
	kf_lock *base = NULL;
	char base_sha[KF_SHA256_HEX];
	kf_archive_source *wsrc = NULL;
	const kf_archive_source *bad_src = NULL;
	size_t wn = 0;
	uint64_t wbytes = 0;

	kf_commit_init(&commit);
	if (!lock) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	rc = build_time(&when, e);
	if (rc)
		goto out;
	rc = kf_spec_load(o->spec_path, &spec, e);
	if (rc)
		goto out;
	/* Load the key before any download: a wrong passphrase should not
	 * cost a long fetch. */
	rc = kf_keys_load_secret(o->secret_key, &key, e);
	if (rc)
		goto out;
	kf_keys_public_of(key, &pub);
	kf_keys_keyid_str(pub.keyid, keyid);

	/* The base before any download too. */
	if (o->base_path && (rc = kf_delta_base_load(o->base_path, &pub, &base, base_sha, e)))
		goto out;
	out = o->out_path ? strdup(o->out_path) : default_out_name(spec);
	if (out && base && !o->out_path) {
		char *full = out;
		out = kf_delta_out_name(full, base->version);
		free(full);
	}
	if (!out) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (snprintf(sig_path, sizeof sig_path, "%s.minisig", out) >= (int)sizeof sig_path) {
		rc = kf_err_set(e, KF_EUSAGE, "output path too long: %s", out);
		goto out;
	}

	/* The output's directory also holds the images' work directory. */
	{
		char dir[PATH_MAX];
		kf_dirname(out, dir, sizeof dir);
		rc = kf_mkdir_p(dir, 0755, e);
		if (rc)
			goto out;
	}

	say(o, "%s: %s %s, %zu components, %zu architectures", o->spec_path,
	    spec->name, spec->version, spec->ncomp, spec->narch);
	rc = plan_sources(spec, &items, &urls, &nitems, e);
	if (rc)
		goto out;
	if (!fo.base_dir)
		fo.base_dir = spec->dir;
	/* Cache hits and local sources are hashed once, by the bundle
	 * writer, which checks every entry against the lock (these pins) as
	 * it streams and fails before anything is committed. */
	fo.verify_later = 1;
	rc = kf_fetch_all(items, nitems, &fo, e);
	if (rc)
		goto out;
	for (size_t i = 0; i < nitems; i++) {
		char *entry = kf_entry_path_for_url(items[i].url, e);
		if (!entry) {
			rc = e->code;
			goto out;
		}
		rc = kf_build_set_add(&set, entry, items[i].path, items[i].size,
		                      items[i].sha256, 0644, e);
		free(entry);
		if (rc)
			goto out;
	}

	/* The work directory sits next to the output and lives until the
	 * bundle is written: the images' layout and certs.d, the addons and
	 * the playbooks are written there. */
	if (snprintf(work_dir, sizeof work_dir, "%s.kf-work-XXXXXX", out) >=
	    (int)sizeof work_dir) {
		rc = kf_err_set(e, KF_EUSAGE, "output path too long: %s", out);
		goto out;
	}
	if (!mkdtemp(work_dir)) {
		rc = kf_err_errno(e, "cannot create work directory", work_dir);
		goto out;
	}
	have_work = 1;
	/* images: the registry client pulls into an OCI layout and writes
	 * certs.d; it adds its files to set and fills lock->images. */
	if (spec->nimg) {
		rc = kf_images_pull(spec, o, work_dir, &set, lock, e);
		if (rc)
			goto out;
	}
	/* rpms/: host packages, in the same work directory. */
	rc = kf_rpm_collect(spec, o, work_dir, when, &set, lock, e);
	if (rc)
		goto out;
	/* addons/: the CNI manifest, rendered with the images just pulled;
	 * ansible/: the playbooks this kubeferry was built with. */
	rc = kf_addons_render(spec, spec->nimg ? work_dir : NULL, &set, e);
	if (rc)
		goto out;
	rc = kf_ansible_add(work_dir, &set, e);
	if (rc)
		goto out;

	rc = fill_lock(lock, spec, items, &set, when, e);
	if (rc)
		goto out;
	if (base) {
		if ((rc = kf_delta_name_base(lock, base, base_sha, e)) ||
		    (rc = kf_delta_select(base, &set, &wsrc, &wn, &wbytes, e)))
			goto out;
		say(o, "delta of %s %s (%s): %zu of %zu entries, %llu of %llu bytes", base->name,
		    base->version, base_sha, wn, set.n, (unsigned long long)wbytes,
		    (unsigned long long)kf_lock_total_size(lock));
	}
	rc = kf_lock_emit(lock, &lock_yaml, &lock_len, e);
	if (rc)
		goto out;
	snprintf(uc, sizeof uc, "signature from kubeferry secret key %s", keyid);
	snprintf(tc, sizeof tc, "kubeferry lock: bundle %s version %s format %d",
	         spec->name, spec->version, KF_FORMAT_VERSION);
	rc = kf_sig_sign_buf(key, lock_yaml, lock_len, uc, tc, &lock_sig, e);
	if (rc)
		goto out;

	say(o, "writing %s: %zu entries, zstd level %d", out, set.n,
	    o->level ? o->level : 3);
	kf_archive_write_opts wo = {
		.level = o->level ? o->level : 3,
		.threads = 0,
		.mtime = when,
		.progress = write_progress,
		.progress_arg = (void *)o,
		.commit = &commit,
		.partial = base != NULL,
		.mismatch = &bad_src,
	};
	rc = kf_archive_write(out, lock_yaml, lock_len, lock_sig,
	                      strlen(lock_sig), lock, base ? wsrc : set.src,
	                      base ? wn : set.n, &wo, file_digest, e);
	if (rc == KF_EVERIFY && bad_src)
		evict_bad(items, nitems, &fo, bad_src, e);
	if (rc)
		goto out;

	{
		const char *fname = strrchr(out, '/');
		fname = fname ? fname + 1 : out;
		snprintf(tc, sizeof tc, "kubeferry bundle %s version %s file:%s",
		         spec->name, spec->version, fname);
	}
	rc = kf_sig_sign(key, file_digest, uc, tc, &file_sig, e);
	if (rc)
		goto out;
	/* Both files are complete under temporary names before either is
	 * renamed, so a failure leaves the previous bundle and its signature
	 * as they were; the window where they disagree is two renames. */
	rc = kf_commit_add_data(&commit, sig_path, 0644, file_sig,
	                       strlen(file_sig), e);
	if (rc)
		goto out;
	rc = kf_commit_finish(&commit, 1, e);
	if (rc)
		goto out;
	if (o->json)
		rc = kf_build_report_json(lock, out, sig_path, stdout);
	else if (!o->fetch.quiet)
		printf("%s\n%s\n", out, sig_path);
out:
	kf_commit_clear(&commit);
	if (have_work) {
		kf_err ignore;
		kf_remove_tree(work_dir, &ignore);
	}
	if (lock)
		kf_lock_free(lock);
	kf_lock_free(base);
	free(wsrc);
	for (size_t i = 0; i < nitems; i++) {
		kf_fetch_item_clear(&items[i]);
		free(urls[i]);
	}
	free(items);
	free(urls);
	kf_build_set_clear(&set);
	free(lock_yaml);
	free(lock_sig);
	free(file_sig);
	free(out);
	kf_keys_free_secret(key);
	kf_spec_free(spec);
	return rc;
}
