/*
 * Host packages (docs/packages.md): before the container runtime, the
 * node's own dnf installs the bundle's set for this release from the
 * unpacked bundle only, gpgcheck on (installer/hostpkgs.c). With
 * --selinux enforcing, SELinux stays enforcing and what apply installed
 * is relabelled at the end (restorecon), which needs container-selinux's
 * policy: it must be in the bundle's set. The admin host's set (the
 * cluster playbooks' ansible-core) goes the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/apply/apply.h"

/* One set for this host: the nodes' (apply) or the admin host's
 * (`host packages --admin`, installer/cmd_host.c): picked by os-release,
 * installed by kfi_pkg_install. Only the node step checks SELinux and
 * records the set for reset. */
static int install_set(apply *a, int admin, kf_err *e)
{
	kfi_pkgset ps;
	int rc = kfi_pkgset_pick(a->c.root, a->lock, a->bundle_dir, a->arch, admin, &ps, e);

	if (rc)
		goto out;
	if (ps.foreign) {
		printf("%-8s %s: %s is not RPM-based; the bundle's sets are for Rocky, RHEL, "
		       "AlmaLinux and CentOS Stream\n", "skip", ps.what, ps.release);
		goto out;
	}
	if (!ps.n && admin) {
		rc = kf_err_set(e, KF_EUSAGE, "bundle %s-%s carries no admin packages; fix: add "
		                "admin: [ansible-core] to its spec.packages entries and rebuild it",
		                a->lock->name, a->lock->version);
		goto out;
	}
	if (!ps.n) {
		printf("%-8s host packages (the bundle carries none)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (!admin && a->selinux_enforcing) {
		int have = 0;
		for (size_t i = 0; i < ps.n; i++)
			have |= !strcmp(ps.names[i], "container-selinux");
		if (!have) {
			rc = kf_err_set(e, KF_EUSAGE, "--selinux enforcing needs container-selinux in the "
			                "bundle's %s set (add it to spec.packages install:)", ps.set);
			goto out;
		}
	}
	if (!(rc = kfi_pkg_install(&a->c, &ps, e)) && !admin)
		rc = a->dry_run ? KF_OK : kfi_pkg_record(&a->c, &ps, e);
out:
	kfi_pkgset_free(&ps);
	return rc;
}

int kfi_step_packages(apply *a, kf_err *e)
{
	return install_set(a, 0, e);
}

int kfi_step_admin_packages(apply *a, kf_err *e)
{
	return install_set(a, 1, e);
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
