/*
 * The daily etcd snapshot: kubeferry-etcd-snapshot.service runs
 * `kubeferry-install etcd snapshot --keep N --dir DIR`, and
 * kubeferry-etcd-snapshot.timer starts it once a day (at a random time in
 * the first hour, so that members do not all snapshot at once; a day
 * missed while the node was off is caught up at boot). apply installs both
 * on every host-etcd member; `etcd snapshot --install-timer` does it by
 * hand (other N or DIR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

#define SERVICE "kubeferry-etcd-snapshot.service"
#define TIMER "kubeferry-etcd-snapshot.timer"

static const char TIMER_UNIT[] =
	"# Written by kubeferry-install.\n"
	"[Unit]\n"
	"Description=Daily etcd snapshot (kubeferry-install etcd snapshot)\n"
	"\n"
	"[Timer]\n"
	"OnCalendar=daily\n"
	"RandomizedDelaySec=1h\n"
	"Persistent=true\n"
	"\n"
	"[Install]\n"
	"WantedBy=timers.target\n";

int kfi_etcd_snapshot_timer(kfi_ctx *c, long keep, const char *dir, kf_err *e)
{
	char *svc = NULL;
	int rc, ch = 0;

	/* The directory is a plain path on a unit's command line. */
	if (!dir)
		dir = KFI_SNAPSHOT_DIR;
	if (dir[0] != '/' || strpbrk(dir, " \t\n\"'\\%$;"))
		return kf_err_set(e, KF_EUSAGE, "--dir %s: want an absolute path without spaces, "
		                  "quotes, '%%' or '$'", dir);
	svc = kfi_strf("# Written by kubeferry-install.\n"
	               "[Unit]\n"
	               "Description=etcd snapshot (kubeferry-install etcd snapshot)\n"
	               "After=etcd.service\n"
	               "\n"
	               "[Service]\n"
	               "Type=oneshot\n"
	               "ExecStart=" KFI_SELF " etcd snapshot --keep %ld --dir %s\n",
	               keep, dir);
	if (!svc)
		return kf_err_set(e, KF_EIO, "out of memory");
	if ((rc = kfi_install_self(c, e)) != KF_OK ||
	    (rc = kfi_unit_install(c, SERVICE, svc, NULL, &ch, e)) != KF_OK ||
	    (rc = kfi_unit_install(c, TIMER, TIMER_UNIT, "timers.target", &ch, e)) != KF_OK)
		goto out;
	rc = kfi_unit_start(c, TIMER, ch, ch, e);
out:
	free(svc);
	return rc;
}
