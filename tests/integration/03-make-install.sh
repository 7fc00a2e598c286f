#!/usr/bin/env bash
# make install: both programs, their manual pages and the docs land under
# DESTDIR/PREFIX and nowhere else; the installed programs run.
source "$(dirname "$0")/../lib.sh"
need help2man make
dest=$LAB/dest
make -s -C "$ROOT" BUILD="$KF_BUILD" install DESTDIR="$dest" PREFIX=/opt/kf >"$LAB/make.log" 2>&1 ||
	{ cat "$LAB/make.log"; fail "make install failed"; }
for f in bin/kubeferry bin/kubeferry-install share/man/man1/kubeferry.1 \
	share/man/man1/kubeferry-install.1 share/doc/kubeferry/README.md \
	share/doc/kubeferry/bundle-format.md; do
	assert_file "$dest/opt/kf/$f"
done
[ -x "$dest/opt/kf/bin/kubeferry-install" ] || fail "installed installer is not executable"
# Nothing outside PREFIX inside DESTDIR.
extra=$(find "$dest" -mindepth 1 -maxdepth 1 ! -name opt)
[ -z "$extra" ] || fail "make install wrote outside PREFIX: $extra"
"$dest/opt/kf/bin/kubeferry" --version | has "$("$KF" --version)"
# The manual pages carry the commands from --help.
has -e 'verify' "$dest/opt/kf/share/man/man1/kubeferry-install.1"
has -e 'keygen' "$dest/opt/kf/share/man/man1/kubeferry.1"
echo "make install ok"
