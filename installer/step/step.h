/*
 * Internal to the step engine (installer/step/): the journal's records and
 * the helpers its files share. Includes only the installer's own header.
 * Everything outside installer/step/ uses kf_installer.h.
 *
 * Journal lines (tab-separated, one record per line):
 *   file <abs path> <backup name | -> <mode octal>
 *   link <abs path> <old target | ->
 *   dir  <abs path>                 (created by apply)
 *   unit <unit name>                (enabled by apply)
 */
#ifndef KFI_STEP_H
#define KFI_STEP_H

#include "installer/kf_installer.h"

#define KFI_FILE_MAX ((size_t)1 << 30)

typedef struct kfi_rec {
	char *kind, *path, *arg, *mode;
} kfi_rec;

/* 1 when abs already has a journal record. */
int kfi_journaled(const kfi_ctx *c, const char *abs);
/* Note that abs is in the journal now. */
int kfi_remember(kfi_ctx *c, const char *abs, kf_err *e);
int kfi_journal_path(const kfi_ctx *c, char *out, size_t n);
/* Add the paths of c's journal (in c->journal_dir) to what is journaled. */
int kfi_journal_load(kfi_ctx *c, kf_err *e);
/* Split one journal line in place; 0 when a field its kind needs is
 * missing (such a record is never used). */
int kfi_record_parse(char *line, kfi_rec *r);
int kfi_journal_append(kfi_ctx *c, const char *line, kf_err *e);
/* c's journal as records, oldest first (undo.c): a torn last line and
 * malformed records are skipped with a warning, an unsafe path is an
 * error. The records point into *buf; free both. No journal: none. */
int kfi_journal_records(const kfi_ctx *c, char **buf, kfi_rec **recs, size_t *n, kf_err *e);
/* Create the missing directories above abs, each journaled first. */
int kfi_ensure_parents(kfi_ctx *c, const char *abs, kf_err *e);
/* Save what is at abs now (once) before it is replaced. */
int kfi_journal_before(kfi_ctx *c, const char *abs, const char *kind, kf_err *e);
/* "ok" or "changed" for what abs, counted in c. */
void kfi_report(kfi_ctx *c, int changed, const char *what, const char *abs);
/* Tests: SIGKILL before the Nth write (KUBEFERRY_TEST_CRASH_AFTER=N). */
void kfi_crash_point(void);

#endif
