/*
 * An upgrade's own journal. apply's journal holds the state from before
 * the first apply (what reset restores); an upgrade must be able to go
 * back to the state just before it instead: the previous bundle's kubeadm,
 * kubelet, containerd and units. So an upgrade journals into
 * ROOT/var/lib/kubeferry/upgrade (journal and backup/ as in state/), a
 * failure undoes that journal alone, and a success folds it into apply's:
 * a path apply's journal already has keeps apply's record (its state from
 * before kubeferry); any other record moves over with its backup, so that
 * reset still undoes everything. A crash while folding leaves the upgrade
 * journal in place; the re-run folds again and skips what already moved.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/step/step.h"

int kfi_ctx_init_upgrade(kfi_ctx *c, const char *root, int dry_run, kf_err *e)
{
	char **units = NULL;
	size_t nu = 0;
	int rc;

	if ((rc = kfi_ctx_init(c, root, dry_run, e)) != KF_OK)
		return rc;
	/* Keep only the units apply enabled: enabling one again during the
	 * upgrade is no new record, so undoing the upgrade never disables
	 * kubelet or containerd. */
	if (!(units = calloc(c->njpaths + 1, sizeof *units)))
		return kfi_oom(e);
	for (size_t i = 0; i < c->njpaths; i++) {
		if (!strncmp(c->jpaths[i], "unit:", 5))
			units[nu++] = c->jpaths[i];
		else
			free(c->jpaths[i]);
	}
	memcpy(c->jpaths, units, nu * sizeof *units);
	c->njpaths = nu;
	free(units);
	free(c->journal_dir);
	if (!(c->journal_dir = kfi_path(c, KFI_UPGRADE_JOURNAL_DIR)))
		return kfi_oom(e);
	if (c->root[0] && (rc = kfi_check_parents(c, KFI_UPGRADE_JOURNAL_DIR "/journal", e)) != KF_OK)
		return rc;
	return kfi_journal_load(c, e);
}

/* Move one record (and its backup) into apply's journal unless apply's
 * journal has the path already. */
static int fold_one(kfi_ctx *main_c, const kfi_ctx *up, const kfi_rec *r, kf_err *e)
{
	char line[PATH_MAX * 2 + 64];
	char *from = NULL, *to = NULL, *bdir = NULL;
	const char *key = r->path;
	int rc = KF_OK;

	if (kfi_journaled(main_c, key))
		goto out;
	if (!strcmp(r->kind, "file") && strcmp(r->arg, "-")) {
		if (!(from = kfi_strf("%s/backup/%s", up->journal_dir, r->arg)) ||
		    !(bdir = kfi_strf("%s/backup", main_c->journal_dir)) ||
		    !(to = kfi_strf("%s/%s", bdir, r->arg))) {
			rc = kfi_oom(e);
			goto out;
		}
		if ((rc = kf_mkdir_p(bdir, 0700, e)) != KF_OK)
			goto out;
		/* Moved by an earlier, interrupted fold: the backup is there. */
		if (rename(from, to) != 0 && !(errno == ENOENT && access(to, F_OK) == 0)) {
			rc = kf_err_errno(e, "cannot move backup", from);
			goto out;
		}
		if ((rc = kf_fsync_parent(to, e)) != KF_OK)
			goto out;
	}
	if (!strcmp(r->kind, "file"))
		rc = kf_strf(line, sizeof line, "file\t%s\t%s\t%s\n", r->path, r->arg, r->mode);
	else if (!strcmp(r->kind, "link"))
		rc = kf_strf(line, sizeof line, "link\t%s\t%s\n", r->path, r->arg);
	else
		rc = kf_strf(line, sizeof line, "%s\t%s\n", r->kind, r->path);
	if (rc != 0) {
		rc = kf_err_set(e, KF_EIO, "path too long for the journal: %s", r->path);
		goto out;
	}
	if ((rc = kfi_journal_append(main_c, line, e)) == KF_OK)
		rc = kfi_remember(main_c, key, e);
out:
	free(from);
	free(to);
	free(bdir);
	return rc;
}

int kfi_journal_commit(kfi_ctx *c, kf_err *e)
{
	kfi_ctx main_c;
	char *buf = NULL;
	kfi_rec *recs = NULL;
	size_t n = 0;
	int rc, main_ok = 0;

	if (c->dry_run)
		return KF_OK;
	if ((rc = kfi_journal_records(c, &buf, &recs, &n, e)) != KF_OK)
		goto out;
	if (n && (rc = kfi_ctx_init(&main_c, c->root, 0, e)) != KF_OK)
		goto out;
	main_ok = n > 0;
	for (size_t i = 0; rc == KF_OK && i < n; i++)
		rc = fold_one(&main_c, c, &recs[i], e);
	if (rc == KF_OK)
		rc = kf_remove_tree(c->journal_dir, e);
out:
	if (main_ok)
		kfi_ctx_free(&main_c);
	free(recs);
	free(buf);
	return rc;
}
