#!/usr/bin/env bash
# The whole tree builds warning-free (-Werror) with clang as well as gcc,
# and the installer comes out fully static either way.
source "$(dirname "$0")/../lib.sh"
need clang file
file "$KFI" | has 'statically linked' || fail "installer is not static: $(file "$KFI")"
make -s -C "$ROOT" BUILD="$LAB/clang" CC=clang -j2 all >"$LAB/make.log" 2>&1 ||
	{ cat "$LAB/make.log"; fail "clang build failed"; }
file "$LAB/clang/kubeferry-install" | has 'statically linked' ||
	fail "clang-built installer is not static: $(file "$LAB/clang/kubeferry-install")"
"$LAB/clang/kubeferry" --version
echo "clang build clean"
