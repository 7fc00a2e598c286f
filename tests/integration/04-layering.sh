#!/usr/bin/env bash
# The floors (HACKING.md): a module includes only its own headers and the
# public headers of the modules below it; an internal header (*_internal.h,
# *_int.h, or any header in a sub-folder) is included only from its own
# module. Reads the sources as text: no build needed.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
declare -A below=(
	[base]=""
	[keys]="base"
	[manifests]="base keys"
	[archive]="base keys manifests"
	[mirror]="base keys manifests"
	[bundler]="base keys manifests archive mirror"
	[installer]="base keys manifests archive mirror"
)
public() { # the one public header of a module
	echo "$1/kf_$1.h"
}
bad=0
for mod in "${!below[@]}"; do
	while IFS=: read -r file _ inc; do
		inc=${inc#*\"}; inc=${inc%%\"*}
		owner=${inc%%/*}
		[ "$owner" = "$mod" ] && continue
		ok=0
		for m in ${below[$mod]}; do
			[ "$owner" = "$m" ] && [ "$inc" = "$(public "$m")" ] && ok=1
		done
		if [ $ok = 0 ]; then
			echo "layering: $file includes $inc (module $mod may include only its own headers and: ${below[$mod]:-nothing})"
			bad=1
		fi
	done < <(grep -rnE '^#include "[a-z_]+/' "$mod" --include='*.c' --include='*.h' || true)
done
# Every module folder is in the table above, so a new one gets placed.
for d in */; do
	d=${d%/}
	[ -f "$d/kf_$d.h" ] || continue
	[ -n "${below[$d]+x}" ] || { echo "layering: module $d is not placed in tests/integration/04-layering.sh"; bad=1; }
done
[ $bad = 0 ] || fail "modules include headers above them or another module's internals"
echo "layering ok"
