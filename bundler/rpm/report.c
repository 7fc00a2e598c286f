/*
 * The host packages of a lock, for `kubeferry inspect` and
 * `kubeferry build --json`: the nodes' set and the admin host's set, each
 * grouped by set and architecture.
 */
#include <stdio.h>
#include <string.h>

#include "bundler/rpm/rpm_int.h"

json_t *kf_rpm_packages_json(const kf_lock *l, int admin)
{
	const kf_lock_package *list = admin ? l->admin_pkgs : l->packages;
	size_t n = admin ? l->nadmin : l->npkg;
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++) {
		const kf_lock_package *p = &list[i];
		const kf_lock_entry *le = kf_lock_find(l, p->path);
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}",
			"set", p->set, "arch", p->arch, "name", p->name, "epoch", p->epoch,
			"version", p->version, "release", p->release, "rpmArch", p->rpm_arch,
			"sha256", p->sha256, "repo", p->repo, "path", p->path,
			"size", (json_int_t)(le ? le->size : 0));
		if (!o || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static void print_list(const kf_lock *l, const kf_lock_package *list, size_t np,
                       const char *title, FILE *f)
{
	fprintf(f, "%-21s%zu\n", title, np);
	for (size_t i = 0; i < np; i++) {
		const kf_lock_package *p = &list[i];
		const kf_lock_entry *le = kf_lock_find(l, p->path);
		size_t n = 0;
		if (i == 0 || strcmp(p->set, p[-1].set) || strcmp(p->arch, p[-1].arch)) {
			for (size_t j = i; j < np && !strcmp(list[j].set, p->set) &&
			                   !strcmp(list[j].arch, p->arch); j++)
				n++;
			fprintf(f, "  %s %s: %zu\n", p->set, p->arch, n);
		}
		fprintf(f, "    %-40s %-12s %12llu\n", strrchr(p->path, '/') + 1, p->repo,
		        (unsigned long long)(le ? le->size : 0));
	}
}

void kf_rpm_packages_print(const kf_lock *l, FILE *f)
{
	if (l->npkg)
		print_list(l, l->packages, l->npkg, "packages:", f);
	if (l->nadmin)
		print_list(l, l->admin_pkgs, l->nadmin, "admin packages:", f);
}
