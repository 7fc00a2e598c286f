/*
 * Delta bundles, build side (docs/bundle-format.md, "Delta bundles"): the
 * base bundle's lock (signature checked with the building key, so that a
 * delta is never made against a bundle this signer did not make), the
 * base's name (the SHA-256 of its lock file, which every node that
 * unpacked the base holds), and the choice of what a delta carries: every
 * entry whose content (sha256) the base lacks. The delta's lock still lists
 * every entry of the full bundle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

int kf_delta_base_load(const char *base_path, const kf_pubkey *pub, kf_lock **base,
                       char lock_sha[KF_SHA256_HEX], kf_err *e)
{
	char *yaml = NULL, *sig = NULL;
	size_t ylen = 0, slen = 0;
	int rc;

	*base = NULL;
	if ((rc = kf_archive_read_lock(base_path, &yaml, &ylen, &sig, &slen, e)) != KF_OK)
		goto out;
	if ((rc = kf_sig_verify_buf(pub, sig, slen, yaml, ylen, NULL, 0, KF_LOCK_SIG_PATH, e)) != KF_OK) {
		kf_err_prefix(e, "--base %s (a delta's base must be signed by the same key)", base_path);
		goto out;
	}
	if ((rc = kf_lock_parse(yaml, ylen, KF_LOCK_PATH, base, e)) != KF_OK) {
		kf_err_prefix(e, "--base %s", base_path);
		goto out;
	}
	if ((*base)->delta) {
		rc = kf_err_set(e, KF_EUSAGE, "--base %s is itself a delta (of %s %s): build against "
		                "a full bundle", base_path, (*base)->base.name, (*base)->base.version);
		kf_lock_free(*base);
		*base = NULL;
		goto out;
	}
	kf_sha256_buf(yaml, ylen, lock_sha);
out:
	free(yaml);
	free(sig);
	return rc;
}

int kf_delta_name_base(kf_lock *lock, const kf_lock *base, const char *lock_sha, kf_err *e)
{
	lock->base.name = strdup(base->name);
	lock->base.version = strdup(base->version);
	if (!lock->base.name || !lock->base.version)
		return kf_err_set(e, KF_EIO, "out of memory");
	memcpy(lock->base.lock, lock_sha, KF_SHA256_HEX);
	lock->delta = 1;
	return KF_OK;
}

int kf_delta_select(const kf_lock *base, const kf_build_set *set, kf_archive_source **out,
                    size_t *nout, uint64_t *bytes, kf_err *e)
{
	const kf_lock_entry **idx = kf_lock_sha_index(base);
	kf_archive_source *sel = calloc(set->n ? set->n : 1, sizeof *sel);
	int rc = KF_OK;

	*out = NULL;
	*nout = 0;
	*bytes = 0;
	if (!idx || !sel) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < set->n; i++) {
		if (kf_lock_find_sha(idx, base->nentries, set->entries[i].sha256))
			continue;
		sel[(*nout)++] = set->src[i];
		*bytes += set->entries[i].size;
	}
	*out = sel;
	sel = NULL;
out:
	free(sel);
	free(idx);
	return rc;
}

char *kf_delta_out_name(const char *full, const char *base_version)
{
	const char *suffix = ".tar.zst";
	size_t n = strlen(full), sl = strlen(suffix);
	char *out = NULL;

	if (n > sl && !strcmp(full + n - sl, suffix))
		n -= sl;
	if (asprintf(&out, "%.*s.delta-from-%s%s", (int)n, full, base_version, suffix) < 0)
		out = NULL;
	return out;
}
