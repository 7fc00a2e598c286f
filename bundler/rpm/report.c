/*
 * The host packages of a lock, for `kubeferry inspect` and
 * `kubeferry build --json`: grouped by set and architecture.
 */
#include <stdio.h>
#include <string.h>

#include "bundler/rpm/rpm_int.h"

json_t *kf_rpm_packages_json(const kf_lock *l)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < l->npkg; i++) {
		const kf_lock_package *p = &l->packages[i];
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

void kf_rpm_packages_print(const kf_lock *l, FILE *f)
{
	fprintf(f, "packages:            %zu\n", l->npkg);
	for (size_t i = 0; i < l->npkg; i++) {
		const kf_lock_package *p = &l->packages[i];
		const kf_lock_entry *le = kf_lock_find(l, p->path);
		size_t n = 0;
		if (i == 0 || strcmp(p->set, p[-1].set) || strcmp(p->arch, p[-1].arch)) {
			for (size_t j = i; j < l->npkg && !strcmp(l->packages[j].set, p->set) &&
			                   !strcmp(l->packages[j].arch, p->arch); j++)
				n++;
			fprintf(f, "  %s %s: %zu\n", p->set, p->arch, n);
		}
		fprintf(f, "    %-40s %-12s %12llu\n", strrchr(p->path, '/') + 1, p->repo,
		        (unsigned long long)(le ? le->size : 0));
	}
}
