# RPM lab for the host-package tests; source after tests/lib.sh.
#   rpm_lab_start   test RPMs (tests/rpm/make-repos.sh) in $LAB/fix, served by
#                   nginx over TLS (tests/nginx/lab.sh) as the distribution's
#                   mirror: https://mirror.test/pub/9/{BaseOS,AppStream}/x86_64/os/
#                   through --rewrite "$RPM_REWRITE"; the key at /pub/KEY-9
#                   (sha256 $KEYSUM)
#   rpm_packages BASE NAME...   a spec's "  packages:" block (rocky-9); with
#                   RPM_ADMIN="NAME..." also the admin host's set (admin:)
source "$ROOT/tests/nginx/lab.sh"

rpm_lab_start() {
	need rpmbuild rpmsign createrepo_c gpg rpmkeys rpm
	fetch_lab_start
	bash "$ROOT/tests/rpm/make-repos.sh" "$LAB/fix" >/dev/null
	mkdir -p "$LAB/www/pub/9/BaseOS/x86_64" "$LAB/www/pub/9/AppStream/x86_64"
	cp -r "$LAB/fix/www/repo1" "$LAB/www/pub/9/BaseOS/x86_64/os"
	cp -r "$LAB/fix/www/repo2" "$LAB/www/pub/9/AppStream/x86_64/os"
	cp "$LAB/fix/keys/dist.asc" "$LAB/www/pub/KEY-9"
	chmod -R a+rX "$LAB/www"
	KEYSUM=$(sha "$LAB/fix/keys/dist.asc")
	RPM_REWRITE="https://mirror.test=https://127.0.0.1:$TLS_PORT"
}

rpm_packages() {
	local base=$1 list
	shift
	list=$(printf '"%s", ' "$@")
	printf '  packages:\n'
	printf '    - distro: rocky-9\n'
	printf '      repos:\n'
	printf '        - {name: baseos, url: "https://mirror.test/pub/9/BaseOS/{arch}/os/"}\n'
	printf '        - {name: appstream, url: "https://mirror.test/pub/9/AppStream/{arch}/os"}\n'
	printf '      gpgkey: {url: "https://mirror.test/pub/KEY-9", sha256: %s}\n' "$KEYSUM"
	printf '      install: [%s]\n' "${list%, }"
	if [ -n "${RPM_ADMIN:-}" ]; then
		# shellcheck disable=SC2086
		list=$(printf '"%s", ' $RPM_ADMIN)
		printf '      admin: [%s]\n' "${list%, }"
	fi
	printf '      base: %s\n' "$base"
}
