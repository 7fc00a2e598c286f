/*
 * Host packages (docs/packages.md): before the container runtime, the
 * node's own dnf installs the bundle's set for this release from the
 * unpacked bundle only, gpgcheck on (installer/hostpkgs.c). With
 * --selinux enforcing, SELinux stays enforcing and what apply installed
 * is relabelled at the end (restorecon), which needs container-selinux's
 * policy: it must be in the bundle's set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/apply/apply.h"

int kfi_step_packages(apply *a, kf_err *e)
{
	kfi_pkgset ps;
	int rc = kfi_pkgset_pick(a->c.root, a->lock, a->bundle_dir, a->arch, &ps, e);

	if (rc)
		goto out;
	if (ps.foreign) {
		printf("%-8s host packages: %s is not RPM-based; the bundle's sets are for Rocky, RHEL, "
		       "AlmaLinux and CentOS Stream\n", "skip", ps.release);
		goto out;
	}
	if (!ps.n) {
		printf("%-8s host packages (the bundle carries none)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (a->selinux_enforcing) {
		int have = 0;
		for (size_t i = 0; i < ps.n; i++)
			have |= !strcmp(ps.names[i], "container-selinux");
		if (!have) {
			rc = kf_err_set(e, KF_EUSAGE, "--selinux enforcing needs container-selinux in the "
			                "bundle's %s set (add it to spec.packages install:)", ps.set);
			goto out;
		}
	}
	if (!(rc = kfi_pkg_install(&a->c, &ps, e)))
		rc = a->dry_run ? KF_OK : kfi_pkg_record(&a->c, &ps, e);
out:
	kfi_pkgset_free(&ps);
	return rc;
}

/* restorecon over what apply installed: binaries and data directories. */
int kfi_step_relabel(apply *a, kf_err *e)
{
	static const char *const argv[] = {"restorecon", "-R", "-F", "/usr/local/bin",
	                                   "/usr/local/sbin", "/opt/cni/bin", "/etc/containerd",
	                                   "/etc/kubernetes", "/var/lib/containerd",
	                                   "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/kubeferry",
	                                   NULL};
	(void)e;
	/* A missing directory (no etcd on a worker) is only a warning. */
	return kfi_run_soft(&a->c, argv, "relabel by hand: restorecon -R on the paths named");
}
