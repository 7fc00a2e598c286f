/*
 * ansible/: the playbooks that deploy, scale and reset a cluster, carried in
 * every bundle as entries of the signed lock. They are compiled into the
 * bundler (bundler/embed-ansible.sh, run by the GNUmakefile), so a
 * kubeferry installed anywhere ships exactly the playbooks of its own
 * version, with no search path to get wrong.
 */
#include <limits.h>
#include <stdio.h>

#include "bundler/kf_bundler.h"

int kf_ansible_add(const char *work_dir, kf_build_set *set, kf_err *e)
{
	int rc = KF_OK;
	char path[PATH_MAX], dir[PATH_MAX], sha[KF_SHA256_HEX];

	for (const kf_embedded_file *f = kf_ansible_files; f->path; f++) {
		if (snprintf(path, sizeof path, "%s/%s", work_dir, f->path) >= (int)sizeof path) {
			rc = kf_err_set(e, KF_EUSAGE, "path too long: %s/%s", work_dir, f->path);
			goto out;
		}
		kf_dirname(path, dir, sizeof dir);
		if ((rc = kf_mkdir_p(dir, 0755, e)) ||
		    (rc = kf_write_file_atomic(path, f->data, f->len, 0644, 0, e)))
			goto out;
		kf_sha256_buf(f->data, f->len, sha);
		rc = kf_build_set_add(set, f->path, path, f->len, sha, 0644, e);
		if (rc)
			goto out;
	}
out:
	return rc;
}
