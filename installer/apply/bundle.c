/*
 * The bundle step: verify the bundle's signed lock, unpack it once per
 * name-version under /var/lib/kubeferry/bundles, and look up its
 * components for the other steps.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "installer/apply/apply.h"

/* The component of this name (aliases allowed) for the node's arch. */
const kf_lock_component *kfi_apply_component(const apply *a, const char *const *names)
{
	for (size_t i = 0; i < a->lock->ncomp; i++) {
		const kf_lock_component *k = &a->lock->components[i];
		for (size_t j = 0; names[j]; j++)
			if (k->name && !strcmp(k->name, names[j]) &&
			    (!k->arch || !k->arch[0] || !strcmp(k->arch, a->arch)) && k->path)
				return k;
	}
	return NULL;
}

int kfi_apply_file(const apply *a, const kf_lock_component *k, char **path, kf_err *e)
{
	free(*path);
	*path = kfi_strf("%s/%s", a->bundle_dir, k->path);
	return *path ? KF_OK : kfi_oom(e);
}

int kfi_apply_need(const apply *a, const char *const *names, const kf_lock_component **out,
                   kf_err *e)
{
	*out = kfi_apply_component(a, names);
	if (!*out)
		return kf_err_set(e, KF_EUSAGE, "bundle %s-%s has no component '%s' for %s",
		                  a->lock->name, a->lock->version, names[0], a->arch);
	return KF_OK;
}

/* Without the named base on the node: the applied bundle of the same name
 * (another version may still hold every entry; each one is checked). */
static int applied_base(apply *a, const kf_lock *lk, char **full, kf_err *e)
{
	kfi_applied st = {0};
	kf_err ign;
	size_t n = strlen(lk->base.name);
	int rc = KF_OK;

	if (kfi_applied_load(&a->c, &st, &ign) != KF_OK || !st.bundle || !st.bundle_dir ||
	    strncmp(st.bundle, lk->base.name, n) || st.bundle[n] != '-') {
		rc = kf_err_set(e, KF_EUSAGE, "%s is a delta of %s %s, which is not unpacked on "
		                "this node (no %s) and no bundle of that name is applied: apply the "
		                "base first or give --base DIR|BUNDLE", a->bundle, lk->base.name,
		                lk->base.version, *full);
		goto out;
	}
	free(*full);
	if (!(*full = kfi_strf("%s%s", a->c.root, st.bundle_dir))) {
		rc = kfi_oom(e);
		goto out;
	}
	printf("%-8s the base %s %s is not unpacked here: using the applied bundle %s\n", "note",
	       lk->base.name, lk->base.version, st.bundle);
out:
	kfi_applied_free(&st);
	return rc;
}

/* A delta's base: --base, else the unpacked bundle the delta names
 * (BUNDLES/<base name>-<base version>, as apply left it, its lock beside
 * it), else the applied bundle of that name. Every entry taken from it is
 * checked against the delta's lock. */
static int open_base(apply *a, const kf_lock *lk, const kf_pubkey *pk, const char *dest,
                     kf_archive_base *b, kf_archive_read_opts *ro, kf_err *e)
{
	char *def = NULL, *full = NULL;
	int rc;

	if (!a->base) {
		if (!(def = kfi_strf("%s/%s-%s", KFI_BUNDLES_DIR, lk->base.name, lk->base.version)) ||
		    !(full = kfi_path(&a->c, def))) {
			rc = kfi_oom(e);
			goto out;
		}
		if (access(full, F_OK) != 0 && (rc = applied_base(a, lk, &full, e)) != KF_OK)
			goto out;
	}
	rc = kf_archive_base_open(a->base ? a->base : full, pk, dest, b, e);
	if (rc == KF_OK) {
		ro->base_dir = b->dir;
		ro->base_lock = b->lock;
	}
	if (rc == KF_OK)
		printf("%-8s delta of %s %s: entries it leaves out come from %s\n", "note",
		       lk->base.name, lk->base.version, b->scratch ? a->base : b->dir);
out:
	free(def);
	free(full);
	return rc;
}

/* The bundle is unpacked once per name-version; a re-run whose lock (which
 * lists every entry's sha256) is byte-identical to the installed one, and
 * whose signature verifies, skips the unpack. */
static int unpack(apply *a, kf_err *e)
{
	int rc = KF_OK;
	kf_pubkey pk;
	char *lock_yaml = NULL, *sig = NULL, *cur = NULL, *dest = NULL, *parent = NULL;
	char *created = NULL;
	size_t lock_len = 0, sig_len = 0, cur_len = 0;
	kf_lock *lk = NULL;
	kf_archive_read_opts ro = {0};
	kf_archive_base base = {0};

	if ((rc = kf_keys_load_public(a->pub_file, a->pub_str, &pk, e)) != KF_OK)
		goto out;
	if ((rc = kf_archive_read_lock(a->bundle, &lock_yaml, &lock_len, &sig, &sig_len, e)) != KF_OK)
		goto out;
	if ((rc = kf_sig_verify_buf(&pk, sig, sig_len, lock_yaml, lock_len, NULL, 0,
	                            KF_LOCK_SIG_PATH, e)) != KF_OK)
		goto out;
	if ((rc = kf_lock_parse(lock_yaml, lock_len, KF_LOCK_PATH, &lk, e)) != KF_OK)
		goto out;
	if (!lk->name || !lk->version || strchr(lk->name, '/') || strchr(lk->version, '/') ||
	    lk->name[0] == '.' || lk->version[0] == '.') {
		rc = kf_err_set(e, KF_EVERIFY, "%s: unusable bundle name or version", a->bundle);
		goto out;
	}
	/* Before the first change: an older bundle leaves the node as it is. */
	if ((rc = kfi_apply_rollback_check(a, lk, e)) != KF_OK)
		goto out;
	parent = kfi_path(&a->c, KFI_BUNDLES_DIR);
	dest = parent ? kfi_strf("%s/%s-%s", parent, lk->name, lk->version) : NULL;
	if (!dest) {
		rc = kfi_oom(e);
		goto out;
	}
	{
		char *lp = kfi_strf("%s.bundle.yaml", dest);
		kf_err ign;
		if (lp && kf_read_file(lp, KF_LOCK_MAX, &cur, &cur_len, &ign) == KF_OK &&
		    cur_len == lock_len && !memcmp(cur, lock_yaml, lock_len)) {
			free(lp);
			printf("%-8s bundle %s-%s already unpacked in %s\n", "ok",
			       lk->name, lk->version, dest);
			a->c.ok++;
			a->bundle_dir = dest;
			dest = NULL;
			goto out;
		}
		free(lp);
	}
	ro.key = &pk;
	if (a->dry_run) {
		/* Nothing may change under the root: unpack to scratch space so
		 * the plan can compare real bytes. */
		char tmpl[] = "/tmp/kubeferry-dry-run.XXXXXX";
		if (!mkdtemp(tmpl)) {
			rc = kf_err_errno(e, "cannot create", tmpl);
			goto out;
		}
		a->tmp_dir = strdup(tmpl);
		free(dest);
		dest = kfi_strf("%s/bundle", tmpl);
		if (!a->tmp_dir || !dest) {
			if (!a->tmp_dir)
				rmdir(tmpl);
			rc = kfi_oom(e);
			goto out;
		}
		if (lk->delta && (rc = open_base(a, lk, &pk, dest, &base, &ro, e)) != KF_OK)
			goto out;
		rc = kf_archive_unpack(a->bundle, dest, 0, &ro, NULL, e);
		if (rc == KF_OK) {
			printf("%-8s bundle %s-%s would be unpacked (dry run)\n", "changed",
			       lk->name, lk->version);
			a->c.changed++;
		}
	} else {
		/* Remember the first directory we create, so that a bundle that
		 * fails verification leaves the root exactly as it was. */
		char probe[PATH_MAX];
		if (kf_strf(probe, sizeof probe, "%s", parent) != 0) {
			rc = kf_err_set(e, KF_EIO, "path too long: %s", parent);
			goto out;
		}
		while (access(probe, F_OK) != 0) {
			free(created);
			if (!(created = strdup(probe))) {
				rc = kfi_oom(e);
				goto out;
			}
			char *s = strrchr(probe, '/');
			if (!s || s == probe)
				break;
			*s = '\0';
		}
		if ((rc = kf_mkdir_p(parent, 0755, e)) != KF_OK)
			goto out;
		if (lk->delta && (rc = open_base(a, lk, &pk, dest, &base, &ro, e)) != KF_OK) {
			if (created) {
				kf_err ign;
				kf_remove_tree(created, &ign);
			}
			goto out;
		}
		rc = kf_archive_unpack(a->bundle, dest, 1, &ro, NULL, e);
		if (rc != KF_OK) {
			if (created) {
				kf_err ign;
				kf_remove_tree(created, &ign);
			}
			goto out;
		}
		/* The verified lock and its signature go next to the tree (the
		 * tree itself holds exactly the bundle's entries): they mark the
		 * unpack as complete and let a re-run skip it. */
		{
			char *lp = kfi_strf("%s.bundle.yaml", dest);
			char *sp = kfi_strf("%s.bundle.yaml.minisig", dest);
			if (!lp || !sp)
				rc = kfi_oom(e);
			else
				rc = kf_write_file_atomic(sp, sig, sig_len, 0644, 1, e);
			if (rc == KF_OK)
				rc = kf_write_file_atomic(lp, lock_yaml, lock_len, 0644, 1, e);
			free(lp);
			free(sp);
			if (rc != KF_OK)
				goto out;
		}
		printf("%-8s bundle %s-%s unpacked into %s\n", "changed", lk->name,
		       lk->version, dest);
		a->c.changed++;
	}
	if (rc == KF_OK) {
		a->bundle_dir = dest;
		dest = NULL;
	}
out:
	if (rc == KF_OK) {
		a->lock = lk;
		lk = NULL;
	}
	kf_archive_base_close(&base);
	kf_lock_free(lk);
	free(lock_yaml);
	free(sig);
	free(cur);
	free(dest);
	free(parent);
	free(created);
	return rc;
}


void kfi_apply_done(apply *a, int rc, int ctx_ok, kf_err *e, const char *prog)
{
	if (rc != KF_OK && e->code) {
		if (ctx_ok)
			a->c.failed++;
		kf_err_print(prog, e);
	}
	if (ctx_ok)
		printf("ok=%d changed=%d failed=%d\n", a->c.ok, a->c.changed, a->c.failed);
	if (a->tmp_dir) {
		kf_err ign;
		kf_remove_tree(a->tmp_dir, &ign);
		free(a->tmp_dir);
		a->tmp_dir = NULL;
	}
	free(a->bundle_dir);
	free(a->mirror_ca);
	kf_share_free(a->share);
	kf_lock_free(a->lock);
	a->bundle_dir = a->mirror_ca = NULL;
	a->share = NULL;
	a->lock = NULL;
	if (ctx_ok)
		kfi_ctx_free(&a->c);
}

/* The bundle, unpacked, must carry this node's architecture. */
int kfi_step_bundle(apply *a, kf_err *e)
{
	int rc, has = 0;

	if ((rc = unpack(a, e)) != KF_OK)
		return rc;
	for (size_t i = 0; i < a->lock->narch; i++)
		if (a->lock->archs[i] && !strcmp(a->lock->archs[i], a->arch))
			has = 1;
	if (!has)
		return kf_err_set(e, KF_EUSAGE, "bundle %s-%s has no %s artifacts",
		                  a->lock->name, a->lock->version, a->arch);
	return KF_OK;
}
