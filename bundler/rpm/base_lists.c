/*
 * The `base: minimal` fact files (manifests/rpm-base/rocky-*-minimal.txt),
 * built into the program so that a build does not depend on where the
 * source tree is. The GNUmakefile makes this object depend on them.
 */
#include <string.h>

#include "bundler/rpm/rpm_int.h"

/* The assembler's .incbin reads the files at build time (paths from the
 * tree's top, where make runs); a NUL ends each. */
__asm__(".section .rodata.kf_rpm_base,\"a\"\n"
        ".globl kf_rpm_base_el9\n"
        "kf_rpm_base_el9:\n"
        ".incbin \"manifests/rpm-base/rocky-9-minimal.txt\"\n"
        ".byte 0\n"
        ".globl kf_rpm_base_el10\n"
        "kf_rpm_base_el10:\n"
        ".incbin \"manifests/rpm-base/rocky-10-minimal.txt\"\n"
        ".byte 0\n"
        ".previous\n");

extern const char kf_rpm_base_el9[], kf_rpm_base_el10[];

const char *kf_rpm_minimal_list(const char *set)
{
	if (!strcmp(set, "el9"))
		return kf_rpm_base_el9;
	if (!strcmp(set, "el10"))
		return kf_rpm_base_el10;
	return NULL;
}
