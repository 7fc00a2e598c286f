/* The full verification shared by `kubeferry verify` and
 * `kubeferry-install verify`, and its summary. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive/kf_archive.h"

int kf_archive_verify_all(const char *path, const kf_archive_read_opts *o,
                          kf_verify_report *r, kf_err *e)
{
	int rc = KF_OK;
	struct stat st;

	memset(r, 0, sizeof *r);
	/* The detached signature covers the file as carried; a bad one fails
	 * the check even when the content itself would verify. */
	if (strcmp(path, "-") != 0) {
		if (asprintf(&r->sigpath, "%s.minisig", path) < 0) {
			r->sigpath = NULL;
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		if (stat(r->sigpath, &st) == 0) {
			rc = kf_sig_verify_file(o->key, r->sigpath, path, NULL, 0, e);
			if (rc)
				goto out;
			r->detached = 1;
		}
	}
	rc = kf_archive_verify(path, o, &r->lock, r->tc, sizeof r->tc, e);
	r->base_checked = rc == KF_OK && r->lock->delta && o->base_dir;
out:
	return rc;
}

void kf_verify_report_print(FILE *f, const char *bundle,
                            const kf_pubkey *key, const kf_verify_report *r)
{
	const kf_lock *l = r->lock;
	char id[17];

	kf_keys_keyid_str(key->keyid, id);
	fprintf(f, "bundle:              %s\n", bundle);
	fprintf(f, "name:                %s\n", l->name);
	fprintf(f, "version:             %s\n", l->version);
	fprintf(f, "kubernetes version:  %s\n", l->kube_version ? l->kube_version : "-");
	fprintf(f, "entries:             %zu\n", l->nentries);
	fprintf(f, "bytes:               %llu\n", (unsigned long long)kf_lock_total_size(l));
	fprintf(f, "signer key id:       %s\n", id);
	fprintf(f, "trusted comment:     %s\n", r->tc);
	if (r->detached)
		fprintf(f, "detached signature:  %s verified\n", r->sigpath);
	else if (r->sigpath)
		fprintf(f, "detached signature:  %s not found, not checked\n", r->sigpath);
	else
		fprintf(f, "detached signature:  not checked (standard input)\n");
	if (!l->delta) {
		fprintf(f, "OK: lock signature and every entry verified\n");
	} else {
		fprintf(f, "delta of:            %s %s (lock sha256 %s)\n", l->base.name,
		        l->base.version, l->base.lock);
		fprintf(f, "%s\n", r->base_checked
		        ? "OK: lock signature, every entry it carries and every entry taken from the base verified"
		        : "OK: lock signature and every entry it carries verified; the entries it leaves "
		          "out are checked against its base (--base) when unpacked");
	}
}

void kf_verify_report_clear(kf_verify_report *r)
{
	kf_lock_free(r->lock);
	free(r->sigpath);
	memset(r, 0, sizeof *r);
}
