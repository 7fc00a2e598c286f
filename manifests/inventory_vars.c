/*
 * group_vars/ and host_vars/ beside the inventory file, as Ansible reads
 * them: for a group or host NAME, the file NAME.yml, NAME.yaml or NAME,
 * or every *.yml / *.yaml file in the directory NAME/ (sorted by name,
 * later files overriding earlier ones). Names without a group or host in
 * the inventory are ignored, as Ansible ignores them.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifests/inventory_internal.h"

static int is_yaml_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && ((l > 4 && !strcmp(n + l - 4, ".yml")) ||
	                       (l > 5 && !strcmp(n + l - 5, ".yaml")));
}

static int read_dir(inv_build *b, const char *dir, inv_vars *vs)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), rc = KF_OK;
	char path[4096];

	if (n < 0)
		return kf_err_errno(b->e, "cannot read", dir);
	for (int i = 0; i < n; i++) {
		if (rc == KF_OK && is_yaml_name(ents[i]->d_name)) {
			if (kf_strf(path, sizeof path, "%s/%s", dir, ents[i]->d_name))
				rc = kf_err_set(b->e, KF_EUSAGE, "path too long: %s", dir);
			else
				rc = kf_inv_parse_vars_file(b, path, vs);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* The variables of NAME under base (DIR/group_vars or DIR/host_vars). */
static int read_name(inv_build *b, const char *base, const char *name, inv_vars *vs)
{
	static const char *const exts[] = {"", ".yml", ".yaml"};
	char path[4096];
	struct stat st;
	int rc = KF_OK;

	for (size_t i = 0; i < 3 && rc == KF_OK; i++) {
		if (kf_strf(path, sizeof path, "%s/%s%s", base, name, exts[i]))
			return kf_err_set(b->e, KF_EUSAGE, "path too long: %s", base);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && i == 0)
			rc = read_dir(b, path, vs);
		else if (S_ISREG(st.st_mode))
			rc = kf_inv_parse_vars_file(b, path, vs);
	}
	return rc;
}

int kf_inv_read_var_dirs(inv_build *b, const char *dir)
{
	char gv[4096], hv[4096];
	struct stat st;
	int rc = KF_OK, have_g, have_h;

	if (kf_strf(gv, sizeof gv, "%s/group_vars", dir) ||
	    kf_strf(hv, sizeof hv, "%s/host_vars", dir))
		return kf_err_set(b->e, KF_EUSAGE, "path too long: %s", dir);
	have_g = stat(gv, &st) == 0 && S_ISDIR(st.st_mode);
	have_h = stat(hv, &st) == 0 && S_ISDIR(st.st_mode);
	for (size_t i = 0; have_g && i < b->ngroups && rc == KF_OK; i++)
		rc = read_name(b, gv, b->groups[i].name, &b->groups[i].fvars);
	for (size_t i = 0; have_h && i < b->nhosts && rc == KF_OK; i++)
		rc = read_name(b, hv, b->hosts[i].name, &b->hosts[i].fvars);
	return rc;
}
