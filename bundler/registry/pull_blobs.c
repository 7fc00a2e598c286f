/* The image puller's blob downloads: one batch through the transfer engine
 * (parallel, cached, resumable), each blob checked against its descriptor's
 * size and digest; tokens that expire or are refused mid-pull are renewed
 * and only the refused blobs fetched again, a bounded number of times. */
#include <stdlib.h>
#include <string.h>

#include "mirror/kf_mirror.h"
#include "bundler/registry/pull_int.h"

/* Renew a token this close to its expiry before a batch starts. */
#define TOKEN_MARGIN_S 30
/* Batches in a row that may end in 401s without any blob arriving. */
#define AUTH_RETRIES 2

/* A verified blob goes into the layout. */
static int store_blob(struct pull *p, struct blob *b, const kf_fetch_item *it,
                      kf_err *e)
{
	int rc = KF_OK;

	if (it->size != b->size) {
		rc = kf_err_set(e, KF_EVERIFY,
		                "image %s: blob %s is %llu bytes, its manifest says %llu",
		                b->what, b->digest, (unsigned long long)it->size,
		                (unsigned long long)b->size);
		goto out;
	}
	rc = kf_layout_add_blob_file(p->layout, b->digest, it->path, e);
	if (!rc)
		rc = kf_pull_remember(p, b->digest, e);
	if (!rc)
		b->done = 1;
out:
	return rc;
}

/* Renew the token of every session that has blobs in pend[] and either
 * answered 401 (force) or holds a token about to expire. */
static int renew_tokens(struct pull *p, const size_t *pend, size_t npend,
                        int force, kf_err *e)
{
	int rc = KF_OK;

	for (size_t i = 0; i < npend; i++) {
		struct source *src = &p->srcs[p->blobs[pend[i]].src];
		int seen = 0;
		/* Once per session. */
		for (size_t k = 0; k < i && !seen; k++)
			seen = p->blobs[pend[k]].src == p->blobs[pend[i]].src;
		if (seen || !(force || kf_registry_auth_stale(&src->r, TOKEN_MARGIN_S)))
			continue;
		kf_pull_say(p, "%s: %s token for %s", src->r.host,
		    force ? "refused, fetching a new" : "expiring, renewing the",
		    src->repo);
		rc = kf_registry_reauth(&src->r, src->repo, e);
		if (rc)
			goto out;
	}
out:
	return rc;
}

int kf_pull_fetch_blobs(struct pull *p, kf_err *e)
{
	int rc = KF_OK, idle = 0;
	kf_fetch_item *items = calloc(p->nblob + 1, sizeof *items);
	size_t *pend = calloc(p->nblob + 1, sizeof *pend);
	size_t npend = 0;
	kf_fetch_opts fo = p->o->fetch;

	if (!items || !pend) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* A 401 is the token's fault, not the blob's: let the rest of the
	 * batch finish, then renew and retry only those. */
	fo.defer_401 = 1;
	for (size_t i = 0; i < p->nblob; i++)
		pend[npend++] = i;
	if (p->nblob)
		kf_pull_say(p, "fetching %zu blobs", p->nblob);
	for (int force = 0; npend; force = 1) {
		size_t n401 = 0, nok = 0, next = 0;

		rc = renew_tokens(p, pend, npend, force, e);
		if (rc)
			goto out;
		for (size_t i = 0; i < npend; i++) {
			struct blob *b = &p->blobs[pend[i]];
			struct source *src = &p->srcs[b->src];
			src->hdr[0] = src->r.auth;
			src->hdr[1] = NULL;
			memset(&items[i], 0, sizeof items[i]);
			items[i].url = b->url;
			items[i].sha256 = b->digest + 7;
			items[i].headers = src->r.auth ? src->hdr : NULL;
			/* The descriptor's size bounds the download itself. */
			items[i].max_size = b->size;
		}
		rc = kf_fetch_all(items, npend, &fo, e);
		for (size_t i = 0; i < npend; i++) {
			if (items[i].path)
				nok++;
			else if (items[i].http_status == 401 &&
			         p->srcs[p->blobs[pend[i]].src].r.challenge)
				n401++;
		}
		/* Anything but "verified or refused with a renewable token"
		 * (a bad digest, a dead link) ends the pull as it is. */
		if (rc && nok + n401 != npend)
			goto out;
		for (size_t i = 0; i < npend; i++) {
			if (items[i].path) {
				int src_rc = store_blob(p, &p->blobs[pend[i]], &items[i], e);
				if (src_rc) {
					rc = src_rc;
					goto out;
				}
			} else {
				pend[next++] = pend[i];
			}
			kf_fetch_item_clear(&items[i]);
		}
		npend = next;
		if (!rc)
			break;
		idle = nok ? 0 : idle + 1;
		if (idle > AUTH_RETRIES) {
			kf_err_prefix(e, "image %s: still refused after %d new tokens",
			              p->blobs[pend[0]].what, AUTH_RETRIES);
			goto out;
		}
		rc = KF_OK;
	}
out:
	for (size_t i = 0; items && i < p->nblob; i++)
		kf_fetch_item_clear(&items[i]);
	free(items);
	free(pend);
	return rc;
}
