/*
 * Dependency resolution with libsolv, the solver dnf itself uses: the
 * closure of the spec's install: list against the assumed base system,
 * newest versions unless pinned, weak dependencies (Recommends) off.
 *
 * The base is a list of names (the minimal install, or a node's captured
 * `rpm -qa`). Its closure is solved first from the same repositories and
 * subtracted: what the node already has is not carried again.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <solv/pool.h>
#include <solv/poolarch.h>
#include <solv/repo.h>
#include <solv/repo_rpmmd.h>
#include <solv/selection.h>
#include <solv/solver.h>
#include <solv/solv_xfopen.h>
#include <solv/transaction.h>

#include "bundler/rpm/rpm_int.h"

struct kf_rpm_solver {
	Pool *pool;
	int ready;             /* file provides and whatprovides made */
};

kf_rpm_solver *kf_rpm_solver_new(const char *rpm_arch)
{
	kf_rpm_solver *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	s->pool = pool_create();
	/* Debian's libsolv defaults to Debian semantics, where noarch is
	 * "all" and no noarch package would match. */
	pool_setdisttype(s->pool, DISTTYPE_RPM);
	pool_setarch(s->pool, rpm_arch);
	return s;
}

void kf_rpm_solver_free(kf_rpm_solver *s)
{
	if (!s)
		return;
	pool_free(s->pool);
	free(s);
}

/* Open a metadata file; href names the compression (.gz, .zst, .xz). */
static int add_md(Repo *repo, const char *path, const char *href, int flags,
                  kf_err *e)
{
	int rc = KF_OK, fd = open(path, O_RDONLY | O_CLOEXEC);
	FILE *fp = NULL;

	if (fd < 0)
		return kf_err_errno(e, "cannot open", path);
	fp = solv_xfopen_fd(href, fd, "r");
	if (!fp) {
		close(fd);
		return kf_err_set(e, KF_EIO, "%s: cannot open %s", repo->name, href);
	}
	if (repo_add_rpmmd(repo, fp, NULL, flags) != 0)
		rc = kf_err_set(e, KF_EVERIFY, "repository %s: %s: %s", repo->name, href,
		                pool_errstr(repo->pool));
	fclose(fp);
	return rc;
}

int kf_rpm_solver_add(kf_rpm_solver *s, const kf_rpm_repo *r, kf_err *e)
{
	Repo *repo = repo_create(s->pool, r->name);
	int rc = add_md(repo, r->primary, r->primary_href, 0, e);

	if (!rc && r->filelists)
		rc = add_md(repo, r->filelists, r->filelists_href, REPO_EXTEND_SOLVABLES, e);
	return rc;
}

/* Paths createrepo puts into primary: the rest are in filelists only. */
static int in_primary(const char *path)
{
	return strstr(path, "bin/") || !strncmp(path, "/etc/", 5) ||
	       !strcmp(path, "/usr/lib/sendmail");
}

int kf_rpm_solver_needs_filelists(kf_rpm_solver *s)
{
	Pool *pool = s->pool;
	Queue q;
	int need = 0;
	Id p;

	queue_init(&q);
	for (p = 2; p < pool->nsolvables && !need; p++) {
		Solvable *sv = pool->solvables + p;
		if (!sv->repo)
			continue;
		solvable_lookup_deparray(sv, SOLVABLE_REQUIRES, &q, -1);
		for (int i = 0; i < q.count && !need; i++) {
			const char *d = pool_dep2str(pool, q.elements[i]);
			if (d[0] == '/' && !in_primary(d))
				need = 1;
		}
	}
	queue_free(&q);
	return need;
}

void kf_rpm_pkgs_free(kf_rpm_pkg *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		free(p[i].name);
		free(p[i].epoch);
		free(p[i].version);
		free(p[i].release);
		free(p[i].arch);
		free(p[i].repo);
		free(p[i].href);
	}
	free(p);
}

/* Add install jobs for names; weak ones (the base) may be dropped. */
static int add_jobs(Pool *pool, Queue *job, char *const *names, size_t n,
                    int weak, kf_err *e)
{
	int flags = SELECTION_NAME | SELECTION_PROVIDES | SELECTION_REL | SELECTION_DOTARCH;
	Queue sel;
	int rc = KF_OK;

	queue_init(&sel);
	for (size_t i = 0; i < n && !rc; i++) {
		selection_make(pool, &sel, names[i], flags);
		if (!sel.count && !weak) {
			rc = kf_err_set(e, KF_EUSAGE, "no package provides \"%s\" in the repositories",
			                names[i]);
			break;
		}
		/* A selection is (how, what) pairs: the flags go on "how". */
		for (int j = 0; j < sel.count; j += 2)
			sel.elements[j] |= SOLVER_INSTALL | (weak ? SOLVER_WEAK : 0);
		queue_insertn(job, job->count, sel.count, sel.elements);
	}
	queue_free(&sel);
	return rc;
}

/* Solve jobs; on success *set holds the solvables to install (marked 1). */
static int solve(Pool *pool, Queue *job, unsigned char *set, kf_err *e)
{
	Solver *solv = solver_create(pool);
	Transaction *trans = NULL;
	int rc = KF_OK;

	solver_set_flag(solv, SOLVER_FLAG_IGNORE_RECOMMENDED, 1);
	if (solver_solve(solv, job) != 0) {
		kf_buf b;
		unsigned np = solver_problem_count(solv);
		kf_buf_init(&b);
		for (Id pr = 1; pr <= (Id)np; pr++)
			kf_buf_addf(&b, "%s%s", pr > 1 ? "; " : "", solver_problem2str(solv, pr));
		rc = kf_err_set(e, KF_EUSAGE, "cannot resolve: %s",
		                kf_buf_ok(&b) ? b.p : "out of memory");
		kf_buf_free(&b);
		goto out;
	}
	trans = solver_create_transaction(solv);
	for (int i = 0; i < trans->steps.count; i++)
		set[trans->steps.elements[i]] = 1;
out:
	if (trans)
		transaction_free(trans);
	solver_free(solv);
	return rc;
}

static char *dup_range(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* EVR "E:V-R" (E optional) into its parts. */
static int fill_pkg(Pool *pool, Id p, kf_rpm_pkg *k, kf_err *e)
{
	Solvable *sv = pool->solvables + p;
	const char *evr = pool_id2str(pool, sv->evr), *colon, *dash, *v;
	const char *sum, *href;
	Id type = 0;

	colon = strchr(evr, ':');
	v = colon ? colon + 1 : evr;
	dash = strrchr(v, '-');
	href = solvable_lookup_location(sv, NULL);
	sum = solvable_lookup_checksum(sv, SOLVABLE_CHECKSUM, &type);
	if (!dash || !href)
		return kf_err_set(e, KF_EVERIFY, "package %s: no release or location in primary",
		                  pool_solvid2str(pool, p));
	if (!sum || type != REPOKEY_TYPE_SHA256)
		return kf_err_set(e, KF_EVERIFY, "package %s: primary gives no sha256 checksum",
		                  pool_solvid2str(pool, p));
	k->name = strdup(pool_id2str(pool, sv->name));
	k->epoch = colon ? dup_range(evr, (size_t)(colon - evr)) : strdup("0");
	k->version = dup_range(v, (size_t)(dash - v));
	k->release = strdup(dash + 1);
	k->arch = strdup(pool_id2str(pool, sv->arch));
	k->repo = strdup(sv->repo->name);
	k->href = strdup(href);
	k->size = solvable_lookup_num(sv, SOLVABLE_DOWNLOADSIZE, 0);
	if (kf_strf(k->sha256, sizeof k->sha256, "%s", sum) || !kf_is_sha256_hex(k->sha256))
		return kf_err_set(e, KF_EVERIFY, "package %s: bad sha256 in primary",
		                  pool_solvid2str(pool, p));
	if (!k->name || !k->epoch || !k->version || !k->release || !k->arch || !k->repo ||
	    !k->href)
		return kf_err_set(e, KF_EIO, "out of memory");
	return KF_OK;
}

static int pkg_cmp(const void *a, const void *b)
{
	const kf_rpm_pkg *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->arch, y->arch);
}

int kf_rpm_solver_solve(kf_rpm_solver *s, char *const *install, size_t ninstall,
                        char *const *base, size_t nbase, kf_rpm_pkg **out,
                        size_t *nout, kf_err *e)
{
	Pool *pool = s->pool;
	Queue job;
	unsigned char *want = NULL, *have = NULL;
	kf_rpm_pkg *pk = NULL;
	size_t n = 0;
	int rc = KF_OK;

	*out = NULL;
	*nout = 0;
	queue_init(&job);
	/* Once per pool: a build solves the nodes' set and the admin set on
	 * the same metadata. */
	if (!s->ready) {
		pool_addfileprovides(pool);
		pool_createwhatprovides(pool);
		s->ready = 1;
	}
	want = calloc((size_t)pool->nsolvables, 1);
	have = calloc((size_t)pool->nsolvables, 1);
	if (!want || !have) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (nbase) {
		if ((rc = add_jobs(pool, &job, base, nbase, 1, e)) ||
		    (rc = solve(pool, &job, have, e)))
			goto out;
	}
	if ((rc = add_jobs(pool, &job, install, ninstall, 0, e)) ||
	    (rc = solve(pool, &job, want, e)))
		goto out;
	for (Id p = 2; p < pool->nsolvables; p++)
		if (want[p] && !have[p])
			n++;
	pk = calloc(n ? n : 1, sizeof *pk);
	if (!pk) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	n = 0;
	for (Id p = 2; p < pool->nsolvables; p++) {
		if (!want[p] || have[p])
			continue;
		if ((rc = fill_pkg(pool, p, &pk[n++], e)))
			goto out;
	}
	qsort(pk, n, sizeof *pk, pkg_cmp);
	*out = pk;
	*nout = n;
	pk = NULL;
out:
	kf_rpm_pkgs_free(pk, n);
	queue_free(&job);
	free(want);
	free(have);
	return rc;
}
