/* Placeholder until this command is written; replaced by its owner. */
#include <stdio.h>
#include "kf_installer.h"
int kfi_cmd_verify(int argc, char **argv) { (void)argc; fprintf(stderr, "%s: not available in this build\n", argv[0]); return KF_EUSAGE; }
int kfi_cmd_unpack(int argc, char **argv) { (void)argc; fprintf(stderr, "%s: not available in this build\n", argv[0]); return KF_EUSAGE; }
