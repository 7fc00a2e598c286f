/* Lookups by content: which entries of a lock hold a given sha256 (delta
 * bundles leave out every entry whose content the base already has). */
#include <stdlib.h>
#include <string.h>

#include "manifests/kf_manifests.h"

static int by_sha(const void *a, const void *b)
{
	const kf_lock_entry *x = *(const kf_lock_entry *const *)a;
	const kf_lock_entry *y = *(const kf_lock_entry *const *)b;
	return strcmp(x->sha256, y->sha256);
}

const kf_lock_entry **kf_lock_sha_index(const kf_lock *l)
{
	const kf_lock_entry **idx = calloc(l->nentries ? l->nentries : 1, sizeof *idx);

	if (!idx)
		return NULL;
	for (size_t i = 0; i < l->nentries; i++)
		idx[i] = &l->entries[i];
	if (l->nentries)
		qsort(idx, l->nentries, sizeof *idx, by_sha);
	return idx;
}

const kf_lock_entry *kf_lock_find_sha(const kf_lock_entry *const *idx, size_t n,
                                      const char *sha256)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(sha256, idx[mid]->sha256);
		if (cmp == 0)
			return idx[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
