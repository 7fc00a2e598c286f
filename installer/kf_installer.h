/*
 * installer: the static kubeferry-install program. This header is shared by
 * the installer's own files and its unit tests only.
 */
#ifndef KF_INSTALLER_H
#define KF_INSTALLER_H

#include "../keys/kf_keys.h"
#include "../manifests/kf_manifests.h"
#include "../archive/kf_archive.h"

/* ---- commands (argv[0] is the command name; return an exit code) ------- */

int kfi_cmd_verify(int argc, char **argv);  /* cmd_unpack.c */
int kfi_cmd_unpack(int argc, char **argv);  /* cmd_unpack.c */

#endif
