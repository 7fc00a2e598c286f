/* The set of files that go into a bundle, each with its lock entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundler/kf_bundler.h"

int kf_build_set_add(kf_build_set *set, const char *entry_path,
                     const char *src_path, uint64_t size, const char *sha256,
                     unsigned mode, kf_err *e)
{
	int rc = KF_OK;

	/* The same entry twice is fine when it is the same content (one
	 * upstream file listed for two architectures); anything else would
	 * make the bundle ambiguous. */
	for (size_t i = 0; i < set->n; i++) {
		if (strcmp(set->entries[i].path, entry_path))
			continue;
		if (strcmp(set->entries[i].sha256, sha256))
			rc = kf_err_set(e, KF_EUSAGE,
			                "two sources map to bundle entry %s with different content (%s, %s)",
			                entry_path, set->src[i].src_path, src_path);
		goto out;
	}
	if (set->n == set->cap) {
		size_t ncap = set->cap ? set->cap * 2 : 32;
		kf_archive_source *ns = realloc(set->src, ncap * sizeof *ns);
		if (!ns) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		set->src = ns;
		kf_lock_entry *ne = realloc(set->entries, ncap * sizeof *ne);
		if (!ne) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		set->entries = ne;
		set->cap = ncap;
	}
	kf_lock_entry *le = &set->entries[set->n];
	kf_archive_source *s = &set->src[set->n];
	memset(le, 0, sizeof *le);
	le->path = strdup(entry_path);
	s->entry_path = le->path;
	s->src_path = strdup(src_path);
	if (!le->path || !s->src_path) {
		free(le->path);
		free((char *)s->src_path);
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	le->size = size;
	le->mode = mode;
	snprintf(le->sha256, sizeof le->sha256, "%s", sha256);
	set->n++;
out:
	return rc;
}

void kf_build_set_clear(kf_build_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->entries[i].path);
		free((char *)set->src[i].src_path);
	}
	free(set->src);
	free(set->entries);
	memset(set, 0, sizeof *set);
}
