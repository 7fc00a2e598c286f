/* Placeholder until this command is written; replaced by its owner. */
#include <stdio.h>
#include "kf_bundler.h"
int kf_cmd_keygen(int argc, char **argv) { (void)argc; fprintf(stderr, "%s: not available in this build\n", argv[0]); return KF_EUSAGE; }
int kf_cmd_sign(int argc, char **argv) { (void)argc; fprintf(stderr, "%s: not available in this build\n", argv[0]); return KF_EUSAGE; }
