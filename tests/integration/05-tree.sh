#!/usr/bin/env bash
# The tree itself: no file keeps the markers of an unresolved merge
# ("<<<<<<< ", "=======", ">>>>>>> " at the start of a line), which a
# build would not notice in a Markdown or YAML file. Reads the sources as
# text: no build needed.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
found=$(grep -rnE --exclude-dir=.git --exclude-dir=build '^(<{7} |>{7} |={7}$)' . || true)
[ -z "$found" ] || fail "unresolved merge markers: $found"
echo "tree checks passed"
