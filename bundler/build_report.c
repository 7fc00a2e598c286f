/*
 * kubeferry build --json: a machine-readable account of the bundle just
 * written, from its lock (the same data `inspect --json` reads back).
 */
#include <stdio.h>

#include "bundler/kf_bundler.h"

int kf_build_report_json(const kf_lock *l, const char *out, const char *sig, FILE *f)
{
	json_t *comps = json_array(), *imgs = json_array();
	json_t *root;
	int rc = KF_OK;

	for (size_t i = 0; comps && i < l->ncomp; i++)
		json_array_append_new(comps, json_pack("{s:s,s:s,s:s,s:s}",
			"name", l->components[i].name, "version", l->components[i].version,
			"arch", l->components[i].arch, "path", l->components[i].path));
	for (size_t i = 0; imgs && i < l->nimg; i++)
		json_array_append_new(imgs, json_pack("{s:s,s:s}", "ref", l->images[i].ref,
		                                      "digest", l->images[i].digest));
	root = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:o,s:o}", "bundle", out,
	                 "signature", sig, "name", l->name, "version", l->version,
	                 "entries", (json_int_t)l->nentries,
	                 "totalSize", (json_int_t)kf_lock_total_size(l),
	                 "components", comps, "images", imgs,
	                 "packages", kf_rpm_packages_json(l, 0),
	                 "adminPackages", kf_rpm_packages_json(l, 1));
	if (!root || json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
		rc = KF_EIO;
	fputc('\n', f);
	json_decref(root);
	return rc;
}
