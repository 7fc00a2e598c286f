/*
 * systemd units for apply, cluster and mirror install. Enabling is the
 * symbolic link `systemctl enable` makes, written through the step engine,
 * so it works under --root and without a running systemd; starting runs
 * systemctl on the live node and is planned everywhere else.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "installer/kf_installer.h"

int kfi_systemd_running(const kfi_ctx *c)
{
	return c->live && access("/run/systemd/system", F_OK) == 0;
}

int kfi_unit_install(kfi_ctx *c, const char *name, const char *text, const char *target,
                     int *changed, kf_err *e)
{
	char unit[256], wants[320];
	int rc, c1 = 0, c2 = 0;

	if (kf_strf(unit, sizeof unit, "/etc/systemd/system/%s", name) != 0 ||
	    (target && kf_strf(wants, sizeof wants, "/etc/systemd/system/%s.wants/%s", target,
	                       name) != 0))
		return kf_err_set(e, KF_EUSAGE, "unit name too long: %s", name);
	if ((rc = kfi_put_file(c, unit, text, strlen(text), 0644, &c1, e)) != KF_OK)
		return rc;
	if (target) {
		if ((rc = kfi_put_link(c, wants, unit, &c2, e)) != KF_OK)
			return rc;
		/* Journaled, so that reset stops and disables it. */
		if ((rc = kfi_journal_unit(c, name, e)) != KF_OK)
			return rc;
	}
	if (changed)
		*changed |= c1 | c2;
	return KF_OK;
}

int kfi_unit_start(kfi_ctx *c, const char *name, int reload, int restart, kf_err *e)
{
	int rc = KF_OK;

	if (c->live && !kfi_systemd_running(c)) {
		printf("%-8s %s not started: systemd is not running\n", "warn", name);
		goto out;
	}
	if (reload || !c->live) {
		const char *argv[] = {"systemctl", "daemon-reload", NULL};
		if ((rc = kfi_run(c, argv, e)) != KF_OK)
			goto out;
	}
	if (!c->live || restart) {
		const char *argv[] = {"systemctl", "restart", name, NULL};
		rc = kfi_run(c, argv, e);
	} else {
		const char *probe[] = {"systemctl", "is-active", "--quiet", name, NULL};
		const char *argv[] = {"systemctl", "start", name, NULL};
		if (kfi_probe(probe) != 0) {
			rc = kfi_run(c, argv, e);
		} else {
			printf("%-8s service %s active\n", "ok", name);
			c->ok++;
		}
	}
out:
	return rc;
}

int kfi_install_self(kfi_ctx *c, kf_err *e)
{
	return kfi_put_file_from(c, KFI_SELF, "/proc/self/exe", 0755, NULL, e);
}
