/*
 * The lock's packages: and adminPackages: sections: every host RPM a
 * bundle carries for the nodes (packages:, under rpms/<set>/) and for the
 * admin host that runs the cluster playbooks (adminPackages:, under
 * rpms/<set>-admin/), with the name, epoch, version, release and
 * architecture rpm reports, its sha256 and the repository it came from. Signed with the rest of the lock, so
 * the installer knows exactly what it may install; each package's entry
 * must exist with the same sha256 (the reader already checks every
 * entry's bytes against that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"

static const char *const pkg_keys[] = {"set", "arch", "name", "epoch", "version",
                                       "release", "rpmArch", "sha256", "repo",
                                       "path", NULL};

static void emit_list(const kf_lock_package *pk, size_t n, const char *key, kf_buf *b)
{
	if (!n)
		return;
	kf_buf_addf(b, "%s:\n", key);
	for (size_t i = 0; i < n; i++) {
		const kf_lock_package *p = &pk[i];
		const char *v[] = {p->set, p->arch, p->name, p->epoch, p->version, p->release,
		                   p->rpm_arch, p->sha256, p->repo, p->path};
		for (size_t k = 0; pkg_keys[k]; k++)
			kf_buf_addf(b, "%s%s: \"%s\"\n", k ? "    " : "  - ", pkg_keys[k],
			            v[k] ? v[k] : "");
	}
}

void kf_lock_packages_emit(const kf_lock *l, kf_buf *b)
{
	emit_list(l->packages, l->npkg, "packages", b);
	emit_list(l->admin_pkgs, l->nadmin, "adminPackages", b);
}

static int span_ok(const char *s, const char *chars, size_t max)
{
	size_t n = strlen(s);
	return n > 0 && n <= max && strspn(s, chars) == n;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static int valid_set(const char *s)
{
	return (!strcmp(s, "el9") || !strcmp(s, "el10"));
}

static int pkg_cmp(const kf_lock_package *a, const kf_lock_package *b)
{
	int c;
	if ((c = strcmp(a->set, b->set)) || (c = strcmp(a->arch, b->arch)) ||
	    (c = strcmp(a->name, b->name)))
		return c;
	return strcmp(a->rpm_arch, b->rpm_arch);
}

static int parse_pkg(kf_yctx *c, const kf_ynode *n, const kf_lock *l, int admin,
                     const kf_lock_package *first, kf_lock_package *p)
{
	const kf_ynode *v[10];
	char **dst[] = {&p->set, &p->arch, &p->name, &p->epoch, &p->version, &p->release,
	                &p->rpm_arch, &p->sha256, &p->repo, &p->path};
	char want[512], dir[128], label[64];
	const char *ra;
	size_t a;
	int rc;

	if ((rc = kf_lock_exact_keys(c, n, "a package", pkg_keys, v)))
		return rc;
	for (size_t k = 0; pkg_keys[k]; k++) {
		snprintf(label, sizeof label, "package %s", pkg_keys[k]);
		if ((rc = kf_ytree_str(c, v[k], label, 1, dst[k])))
			return rc;
	}
	if (!valid_set(p->set))
		return kf_ytree_fail(c, v[0], "bad package set \"%s\" (el9 or el10)", p->set);
	for (a = 0; a < l->narch; a++)
		if (!strcmp(l->archs[a], p->arch))
			break;
	if (a == l->narch || !(ra = kf_rpm_arch(p->arch)))
		return kf_ytree_fail(c, v[1], "package %s: arch \"%s\" is not in architectures",
		                     p->name, p->arch);
	if (!span_ok(p->name, ALNUM "._+-", 200))
		return kf_ytree_fail(c, v[2], "bad package name \"%s\"", p->name);
	if (!span_ok(p->epoch, "0123456789", 10))
		return kf_ytree_fail(c, v[3], "package %s: bad epoch \"%s\"", p->name, p->epoch);
	if (!span_ok(p->version, ALNUM "._+~^", 200))
		return kf_ytree_fail(c, v[4], "package %s: bad version \"%s\"", p->name, p->version);
	if (!span_ok(p->release, ALNUM "._+~^", 200))
		return kf_ytree_fail(c, v[5], "package %s: bad release \"%s\"", p->name, p->release);
	if (!span_ok(p->rpm_arch, ALNUM "_", 32))
		return kf_ytree_fail(c, v[6], "package %s: bad rpmArch \"%s\"", p->name, p->rpm_arch);
	if (!kf_is_sha256_hex(p->sha256))
		return kf_ytree_fail(c, v[7], "package %s: sha256 is not 64 lowercase hex digits",
		                     p->name);
	if (!kf_valid_name(p->repo))
		return kf_ytree_fail(c, v[8], "package %s: bad repo \"%s\"", p->name, p->repo);
	/* The path is a function of the other fields: a lock cannot point a
	 * package at some other entry. */
	if (kf_rpm_repo_dir(dir, sizeof dir, p->set, ra, admin) ||
	    kf_strf(want, sizeof want, "%s/Packages/%s-%s-%s.%s.rpm", dir, p->name, p->version,
	            p->release, p->rpm_arch) || strcmp(want, p->path))
		return kf_ytree_fail(c, v[9], "package %s: path \"%s\" is not \"%s\"", p->name,
		                     p->path, want);
	if (p > first && pkg_cmp(p - 1, p) >= 0)
		return kf_ytree_fail(c, n, "packages are not sorted by set, arch, name, rpmArch "
		                     "(or repeated): %s", p->path);
	return KF_OK;
}

int kf_lock_packages_parse(kf_yctx *c, const kf_ynode *seq, kf_lock *l, int admin)
{
	kf_lock_package **list = admin ? &l->admin_pkgs : &l->packages;
	size_t *n = admin ? &l->nadmin : &l->npkg;
	int rc = kf_ytree_want(c, seq, KF_Y_SEQ, admin ? "adminPackages" : "packages");

	if (rc)
		return rc;
	*list = calloc(seq->n ? seq->n : 1, sizeof **list);
	if (!*list)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < seq->n; i++) {
		(*n)++;
		if ((rc = parse_pkg(c, seq->items[i], l, admin, *list, &(*list)[i])))
			return rc;
	}
	return KF_OK;
}

int kf_lock_packages_check_entries(kf_yctx *c, const kf_ynode *seq, const kf_lock *l,
                                   int admin)
{
	const kf_lock_package *list = admin ? l->admin_pkgs : l->packages;
	size_t n = admin ? l->nadmin : l->npkg;

	for (size_t i = 0; i < n; i++) {
		const kf_lock_package *p = &list[i];
		const kf_lock_entry *en = kf_lock_find(l, p->path);
		if (!en || strcmp(en->sha256, p->sha256))
			return kf_ytree_fail(c, seq->items[i], "package %s: entry %s %s", p->name,
			                     p->path, en ? "has another sha256" : "is missing");
	}
	return KF_OK;
}

static void free_list(kf_lock_package *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		kf_lock_package *p = &list[i];
		char *f[] = {p->set, p->arch, p->name, p->epoch, p->version, p->release,
		             p->rpm_arch, p->sha256, p->repo, p->path};
		for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
			free(f[k]);
	}
	free(list);
}

void kf_lock_packages_free(kf_lock *l)
{
	free_list(l->packages, l->npkg);
	free_list(l->admin_pkgs, l->nadmin);
}
