/*
 * Host packages (bundler/rpm/): internals shared by the files of this
 * folder. The rest of the bundler calls kf_rpm_collect (kf_bundler.h).
 *
 *   repomd.c     repomd.xml, primary and filelists of one repository,
 *                through the transfer engine
 *   resolve.c    the closure of the requested packages (libsolv)
 *   repo_write.c the bundle's repository (createrepo_c); kf_rpm_run
 *   sigcheck.c   OpenPGP signatures against the pinned key (rpmkeys)
 *   collect.c    the whole step for a spec: fetch, resolve, download,
 *                check, write rpms/<set>/<arch>/, fill the lock
 */
#ifndef KF_RPM_INT_H
#define KF_RPM_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "bundler/kf_bundler.h"

/* One repository's metadata, fetched and verified. */
typedef struct kf_rpm_repo {
	char *name;            /* spec repository name */
	char *base_url;        /* upstream base URL, ends in '/' */
	char *primary;         /* local verified file (cache) */
	char *primary_href;    /* its location: names the compression */
	char *filelists;       /* NULL until fetched */
	char *filelists_href;
	char filelists_sha256[KF_SHA256_HEX];
} kf_rpm_repo;

/* GET base_url/repodata/repomd.xml (with --rewrite), then primary through
 * kf_fetch_all pinned by repomd's sha256; filelists' location and sha256
 * are kept for kf_rpm_repo_fetch_filelists. */
int kf_rpm_repo_fetch(kf_rpm_repo *r, const char *name, const char *base_url,
                      const kf_fetch_opts *fo, kf_err *e);
int kf_rpm_repo_fetch_filelists(kf_rpm_repo *r, const kf_fetch_opts *fo,
                                kf_err *e);
void kf_rpm_repo_clear(kf_rpm_repo *r);

/* One package of a resolved set. */
typedef struct kf_rpm_pkg {
	char *name, *epoch, *version, *release, *arch;
	char *repo;            /* spec repository name */
	char *href;            /* location relative to the repository base */
	char sha256[KF_SHA256_HEX];
	uint64_t size;         /* download size from primary */
} kf_rpm_pkg;

void kf_rpm_pkgs_free(kf_rpm_pkg *p, size_t n);

typedef struct kf_rpm_solver kf_rpm_solver;

/* A pool for one RPM architecture ("x86_64"). */
kf_rpm_solver *kf_rpm_solver_new(const char *rpm_arch);
void kf_rpm_solver_free(kf_rpm_solver *s);
/* Load a repository's primary (and filelists when fetched). */
int kf_rpm_solver_add(kf_rpm_solver *s, const kf_rpm_repo *r, kf_err *e);
/* 1 when some package requires a file that primary does not list
 * (primary carries only paths with bin/ and under /etc): filelists needed. */
int kf_rpm_solver_needs_filelists(kf_rpm_solver *s);
/* Install `install` ("name" or "name = EVR") on a system that has the
 * closure of `base` (names; unknown ones are skipped), newest versions,
 * weak dependencies off. The packages to carry, sorted by name and arch.
 * An unsolvable request is KF_EUSAGE with libsolv's problem text. */
int kf_rpm_solver_solve(kf_rpm_solver *s, char *const *install, size_t ninstall,
                        char *const *base, size_t nbase, kf_rpm_pkg **out,
                        size_t *nout, kf_err *e);

/* Run argv (argv[0] an absolute path or found on a fixed PATH) with a
 * minimal environment (PATH, HOME=home, LC_ALL=C); stdout and stderr are
 * captured together into *output (may be NULL). *status is the exit
 * status, or -1 when the program could not run. */
int kf_rpm_run(char *const *argv, const char *home, char **output,
               int *status, kf_err *e);

/* Check every file's OpenPGP signature against key (an armored public
 * key) with rpmkeys and a throwaway keyring under tmpdir. names[i] names
 * files[i] in messages. KF_EVERIFY naming each package that is unsigned,
 * signed by another key or altered. */
int kf_rpm_check_signatures(const char *key, char *const *files,
                            char *const *names, size_t n,
                            const char *tmpdir, kf_err *e);

/* dir/Packages/files[i] from src[i] (hard link or copy), mtimes set to
 * when, then createrepo_c writes dir/repodata reproducibly. */
int kf_rpm_write_repo(const char *dir, char *const *src, char *const *files,
                      size_t n, time_t when, kf_err *e);

/* The text of manifests/rpm-base/rocky-<major>-minimal.txt for "el9" or
 * "el10" (built in; base_lists.c), NULL for another set. */
const char *kf_rpm_minimal_list(const char *set);
/* Package names from such a text: one per line, '#' comments and blank
 * lines skipped, surrounding blanks trimmed. */
int kf_rpm_parse_names(const char *text, const char *origin, char ***names,
                       size_t *n, kf_err *e);

#endif
