/*
 * The host-package step of a build, for every spec.packages set and
 * bundle architecture: repository metadata -> resolution -> downloads
 * pinned by primary's sha256 -> signatures against the pinned
 * distribution key -> rpms/<set>/<rpm arch>/ (packages, repodata, key) in
 * the build set and each package in the lock. A set's admin: list (the
 * admin host's own packages, e.g. ansible-core) goes the same way, from
 * the same metadata and base, into rpms/<set>-admin/<rpm arch>/ and the
 * lock's adminPackages.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/rpm/rpm_int.h"

typedef struct job {
	const kf_spec *spec;
	const kf_spec_pkgset *ps;
	const char *arch, *rpm_arch;
	const kf_fetch_opts *fo;
	const char *work_dir;
	time_t when;
	kf_build_set *set;
	kf_lock *lock;
	int quiet;
} job;

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int base_names(const job *j, char ***names, size_t *n, kf_err *e)
{
	const char *b = j->ps->base;
	char *path = NULL, *text = NULL;
	size_t len;
	int rc;

	*names = NULL;
	*n = 0;
	if (!strcmp(b, "none"))
		return KF_OK;
	if (!strcmp(b, "minimal"))
		return kf_rpm_parse_names(kf_rpm_minimal_list(j->ps->set), "the minimal base",
		                          names, n, e);
	if (b[0] == '/' ? !(path = strdup(b)) : asprintf(&path, "%s/%s", j->spec->dir, b) < 0)
		return kf_err_set(e, KF_EIO, "out of memory");
	rc = kf_read_file(path, 16u << 20, &text, &len, e);
	if (!rc)
		rc = kf_rpm_parse_names(text, path, names, n, e);
	free(text);
	free(path);
	return rc;
}

/* Metadata of every repository, then the solver over all of them;
 * filelists only when some package needs a file primary does not list. */
static int load(const job *j, kf_rpm_repo *repos, kf_rpm_solver **out, kf_err *e)
{
	const kf_spec_pkgset *ps = j->ps;
	kf_rpm_solver *sv = NULL;
	int rc = KF_OK;

	*out = NULL;
	for (size_t r = 0; r < ps->nrepo; r++) {
		char *url = kf_spec_repo_url(&ps->repos[r], j->arch);
		if (!url)
			return kf_err_set(e, KF_EIO, "out of memory");
		rc = kf_rpm_repo_fetch(&repos[r], ps->repos[r].name, url, j->fo, e);
		free(url);
		if (rc)
			return kf_err_prefix(e, "packages %s (%s)", ps->distro, j->rpm_arch);
	}
	for (int pass = 0; pass < 2; pass++) {
		kf_rpm_solver_free(sv);
		if (!(sv = kf_rpm_solver_new(j->rpm_arch)))
			return kf_err_set(e, KF_EIO, "out of memory");
		for (size_t r = 0; r < ps->nrepo && !rc; r++)
			rc = kf_rpm_solver_add(sv, &repos[r], e);
		if (rc || pass == 1 || !kf_rpm_solver_needs_filelists(sv))
			break;
		for (size_t r = 0; r < ps->nrepo && !rc; r++)
			rc = kf_rpm_repo_fetch_filelists(&repos[r], j->fo, e);
	}
	if (rc)
		kf_rpm_solver_free(sv);
	else
		*out = sv;
	return rc;
}

static const kf_rpm_repo *repo_named(const kf_rpm_repo *repos, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(repos[i].name, name))
			return &repos[i];
	return NULL;
}

static int add_lock_pkg(const job *j, int admin, const kf_rpm_pkg *p, const char *entry,
                        kf_err *e)
{
	kf_lock *l = j->lock;
	kf_lock_package **list = admin ? &l->admin_pkgs : &l->packages;
	size_t *n = admin ? &l->nadmin : &l->npkg;
	kf_lock_package *np = realloc(*list, (*n + 1) * sizeof *np), *k;

	if (!np)
		return kf_err_set(e, KF_EIO, "out of memory");
	*list = np;
	k = &np[*n];
	memset(k, 0, sizeof *k);
	(*n)++;
	k->set = strdup(j->ps->set);
	k->arch = strdup(j->arch);
	k->name = strdup(p->name);
	k->epoch = strdup(p->epoch);
	k->version = strdup(p->version);
	k->release = strdup(p->release);
	k->rpm_arch = strdup(p->arch);
	k->sha256 = strdup(p->sha256);
	k->repo = strdup(p->repo);
	k->path = strdup(entry);
	if (!k->set || !k->arch || !k->name || !k->epoch || !k->version || !k->release ||
	    !k->rpm_arch || !k->sha256 || !k->repo || !k->path)
		return kf_err_set(e, KF_EIO, "out of memory");
	return KF_OK;
}

/* Add dir/<rel> for each file under dir/repodata to the build set. */
static int add_repodata(const job *j, const char *dir, const char *prefix, kf_err *e);

/* What one() has ready for both sets: the repositories' metadata, the
 * solver over them, the base's names and the verified key. */
typedef struct loaded {
	kf_rpm_repo *repos;
	kf_rpm_solver *sv;
	char **base;
	size_t nbase;
	const kf_fetch_item *key;
} loaded;

/* One set resolved and carried: the nodes' (install:, admin 0) or the
 * admin host's (admin:, admin 1), each into its own repository
 * (kf_rpm_repo_dir) with its own createrepo_c metadata and key copy. */
static int carry(const job *j, const loaded *ld, int admin, char *const *want, size_t nwant,
                 kf_err *e)
{
	const kf_spec_pkgset *ps = j->ps;
	const char *what = admin ? "admin packages" : "packages";
	kf_rpm_pkg *pkgs = NULL;
	kf_fetch_item *items = NULL;
	char **urls = NULL, **files = NULL, **paths = NULL, **names = NULL;
	char dir[PATH_MAX], prefix[64], entry[PATH_MAX];
	size_t np = 0;
	int rc;

	if ((rc = kf_rpm_solver_solve(ld->sv, want, nwant, ld->base, ld->nbase, &pkgs, &np, e))) {
		kf_err_prefix(e, "%s %s (%s)", what, ps->distro, j->rpm_arch);
		goto out;
	}
	items = calloc(np + 1, sizeof *items);
	urls = calloc(np + 1, sizeof *urls);
	files = calloc(np + 1, sizeof *files);
	paths = calloc(np + 1, sizeof *paths);
	names = calloc(np + 1, sizeof *names);
	if (!items || !urls || !files || !paths || !names) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < np; i++) {
		const kf_rpm_repo *r = repo_named(ld->repos, ps->nrepo, pkgs[i].repo);
		if (asprintf(&urls[i], "%s%s", r->base_url, pkgs[i].href) < 0 ||
		    asprintf(&files[i], "%s-%s-%s.%s.rpm", pkgs[i].name, pkgs[i].version,
		             pkgs[i].release, pkgs[i].arch) < 0 ||
		    asprintf(&names[i], "%s-%s:%s-%s.%s", pkgs[i].name, pkgs[i].epoch,
		             pkgs[i].version, pkgs[i].release, pkgs[i].arch) < 0) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		items[i].url = urls[i];
		items[i].sha256 = pkgs[i].sha256;
		/* A download larger than primary says fails at once. */
		items[i].max_size = pkgs[i].size;
	}
	if ((rc = kf_fetch_all(items, np, j->fo, e)))
		goto out;
	for (size_t i = 0; i < np; i++)
		paths[i] = items[i].path;
	if (kf_rpm_repo_dir(prefix, sizeof prefix, ps->set, j->rpm_arch, admin) ||
	    kf_strf(dir, sizeof dir, "%s/%s-keyring", j->work_dir, prefix)) {
		rc = kf_err_set(e, KF_EUSAGE, "work directory path too long");
		goto out;
	}
	if ((rc = kf_mkdir_p(dir, 0700, e)) ||
	    (rc = kf_rpm_check_signatures(ld->key->path, paths, names, np, dir, e))) {
		kf_err_prefix(e, "%s %s (%s), key %s", what, ps->distro, j->rpm_arch,
		              ps->gpgkey_url);
		goto out;
	}
	if (kf_strf(dir, sizeof dir, "%s/%s", j->work_dir, prefix)) {
		rc = kf_err_set(e, KF_EUSAGE, "work directory path too long");
		goto out;
	}
	if ((rc = kf_rpm_write_repo(dir, paths, files, np, j->when, e)) ||
	    (rc = add_repodata(j, dir, prefix, e)))
		goto out;
	snprintf(entry, sizeof entry, "%s/RPM-GPG-KEY", prefix);
	if ((rc = kf_build_set_add(j->set, entry, ld->key->path, ld->key->size, ld->key->sha256,
	                           0644, e)))
		goto out;
	for (size_t i = 0; i < np; i++) {
		snprintf(entry, sizeof entry, "%s/Packages/%s", prefix, files[i]);
		if ((rc = kf_build_set_add(j->set, entry, paths[i], items[i].size, pkgs[i].sha256,
		                           0644, e)) ||
		    (rc = add_lock_pkg(j, admin, &pkgs[i], entry, e)))
			goto out;
	}
	if (!j->quiet)
		fprintf(stderr, "build: %s %s %s: %zu packages\n", what, ps->distro, j->rpm_arch, np);
out:
	for (size_t i = 0; i < np && items; i++) {
		kf_fetch_item_clear(&items[i]);
		free(urls ? urls[i] : NULL);
		free(files ? files[i] : NULL);
		free(names ? names[i] : NULL);
	}
	free(items);
	free(urls);
	free(files);
	free(paths);
	free(names);
	kf_rpm_pkgs_free(pkgs, np);
	return rc;
}

static int one(const job *j, kf_err *e)
{
	const kf_spec_pkgset *ps = j->ps;
	kf_fetch_item key = {0};
	loaded ld = {.repos = calloc(ps->nrepo, sizeof *ld.repos), .key = &key};
	int rc;

	if (!ld.repos)
		return kf_err_set(e, KF_EIO, "out of memory");
	if ((rc = load(j, ld.repos, &ld.sv, e)) || (rc = base_names(j, &ld.base, &ld.nbase, e)))
		goto out;
	key.url = ps->gpgkey_url;
	key.sha256 = ps->gpgkey_sha256;
	key.max_size = 1u << 20;
	if ((rc = kf_fetch_all(&key, 1, j->fo, e)) ||
	    (rc = carry(j, &ld, 0, ps->install, ps->ninstall, e)))
		goto out;
	if (ps->nadmin)
		rc = carry(j, &ld, 1, ps->admin, ps->nadmin, e);
out:
	for (size_t r = 0; r < ps->nrepo; r++)
		kf_rpm_repo_clear(&ld.repos[r]);
	free(ld.repos);
	free_names(ld.base, ld.nbase);
	kf_rpm_solver_free(ld.sv);
	kf_fetch_item_clear(&key);
	return rc;
}

static int add_repodata(const job *j, const char *dir, const char *prefix, kf_err *e)
{
	char md[PATH_MAX], path[PATH_MAX], entry[PATH_MAX], hex[KF_SHA256_HEX];
	struct dirent **list = NULL;
	uint64_t size = 0;
	int n, rc = KF_OK;

	if (kf_strf(md, sizeof md, "%s/repodata", dir))
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", dir);
	n = scandir(md, &list, NULL, alphasort);
	if (n < 0)
		return kf_err_errno(e, "cannot list", md);
	for (int i = 0; i < n; i++) {
		const char *f = list[i]->d_name;
		if (rc || f[0] == '.')
			continue;
		if (kf_strf(path, sizeof path, "%s/%s", md, f) ||
		    kf_strf(entry, sizeof entry, "%s/repodata/%s", prefix, f)) {
			rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", md);
			continue;
		}
		if (!(rc = kf_sha256_file(path, hex, &size, e)))
			rc = kf_build_set_add(j->set, entry, path, size, hex, 0644, e);
	}
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

static int lockpkg_cmp(const void *a, const void *b)
{
	const kf_lock_package *x = a, *y = b;
	int c;
	if ((c = strcmp(x->set, y->set)) || (c = strcmp(x->arch, y->arch)) ||
	    (c = strcmp(x->name, y->name)))
		return c;
	return strcmp(x->rpm_arch, y->rpm_arch);
}

int kf_rpm_collect(const kf_spec *spec, const kf_build_opts *o, const char *work_dir,
                   time_t when, kf_build_set *set, kf_lock *lock, kf_err *e)
{
	kf_fetch_opts fo = o->fetch;
	int rc = KF_OK;

	if (!fo.base_dir)
		fo.base_dir = spec->dir;
	for (size_t p = 0; p < spec->npkgset && !rc; p++) {
		for (size_t a = 0; a < spec->narch && !rc; a++) {
			job j = {spec, &spec->pkgsets[p], spec->archs[a], kf_rpm_arch(spec->archs[a]),
			         &fo, work_dir, when, set, lock, o->fetch.quiet};
			rc = one(&j, e);
		}
	}
	if (!rc && lock->npkg)
		qsort(lock->packages, lock->npkg, sizeof *lock->packages, lockpkg_cmp);
	if (!rc && lock->nadmin)
		qsort(lock->admin_pkgs, lock->nadmin, sizeof *lock->admin_pkgs, lockpkg_cmp);
	return rc;
}
