/*
 * Host packages on the node: the set the bundle carries for this node's
 * release (rpms/<set>/<rpm arch>/, docs/packages.md), what rpm says is
 * missing, and the node's own dnf installing the missing ones from the
 * unpacked bundle only, with gpgcheck on and the bundle's copy of the
 * distribution key. The admin host's set (rpms/<set>-admin/<rpm arch>/,
 * `host packages --admin`) goes through the very same functions.
 *
 * Unlike other commands, dnf also runs under --root (as
 * `dnf --installroot=ROOT`): installing into another root is what
 * --installroot is for, and it is how the tests install a set for real.
 * A dry run only prints the command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

/* A fixed environment: root's ~/.rpmmacros could move the rpm database
 * (Debian's rpm defaults to ~/.rpmdb); this HOME holds one that names the
 * RHEL default, /var/lib/rpm. */
#define RPMMACROS "%_dbpath /var/lib/rpm\n"

/* Which package of a bundle provides each host tool preflight checks. */
static const char *const tool_pkgs[][3] = {
	{"conntrack", "conntrack-tools", NULL},
	{"socat", "socat", NULL},
	{"iptables", "iptables-nft", "iptables"},
	{"nft", "nftables", NULL},
	{"ipset", "ipset", NULL},
	{"ethtool", "ethtool", NULL},
	{"ip", "iproute", NULL},
	{"mount", "util-linux", NULL},
	{"nsenter", "util-linux", NULL},
	{"tar", "tar", NULL},
	{"modprobe", "kmod", NULL},
	{"restorecon", "policycoreutils", NULL},
};

void kfi_os_release(const char *root, char *id, size_t idn, char *ver, size_t vern)
{
	char path[4096], *buf = NULL;
	size_t len;
	kf_err ign;

	id[0] = ver[0] = '\0';
	if (kf_strf(path, sizeof path, "%s/etc/os-release", root) ||
	    kf_read_file(path, 1 << 20, &buf, &len, &ign) != KF_OK)
		return;
	for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *v = strchr(l, '=');
		size_t n;
		char *out = NULL;
		size_t cap = 0;
		if (!v || v - l > 16)
			continue;
		if (v - l == 2 && !strncmp(l, "ID", 2))
			out = id, cap = idn;
		else if (v - l == 10 && !strncmp(l, "VERSION_ID", 10))
			out = ver, cap = vern;
		if (!out)
			continue;
		v++;
		n = strcspn(v, "\n");
		if (n >= 2 && (*v == '"' || *v == '\'')) {
			v++;
			n -= 2;
		}
		if (kf_strf(out, cap, "%.*s", (int)n, v))
			out[0] = '\0';
	}
	free(buf);
}

void kfi_pkgset_free(kfi_pkgset *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->names[i]);
	free(ps->names);
	free(ps->repo_dir);
	memset(ps, 0, sizeof *ps);
}

static int has_set(const kf_lock_package *list, size_t n, const char *set, const char *arch)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].set, set) && !strcmp(list[i].arch, arch))
			return 1;
	return 0;
}

/* The sets the bundle carries, for messages: "el9 el10". */
static void sets_list(const kf_lock_package *list, size_t np, const char *arch, char *out,
                      size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < np; i++) {
		const kf_lock_package *p = &list[i];
		size_t off = strlen(out);
		if (strcmp(p->arch, arch) || (i && !strcmp(p[-1].set, p->set) &&
		                              !strcmp(p[-1].arch, p->arch)))
			continue;
		if (off < n && kf_strf(out + off, n - off, "%s%s", off ? " " : "", p->set))
			out[off] = '\0';
	}
}

int kfi_pkgset_pick(const char *root, const kf_lock *l, const char *bundle_dir,
                    const char *arch, int admin, kfi_pkgset *ps, kf_err *e)
{
	char id[64], ver[64], sets[128], dir[128];
	const char *ra = kf_rpm_arch(arch);
	const kf_lock_package *list = admin ? l->admin_pkgs : l->packages;
	size_t np = admin ? l->nadmin : l->npkg;
	const char *who = admin ? "host" : "node";

	memset(ps, 0, sizeof *ps);
	ps->what = admin ? "admin packages" : "host packages";
	if (!np)
		return KF_OK;
	kfi_os_release(root, id, sizeof id, ver, sizeof ver);
	snprintf(ps->release, sizeof ps->release, "%s %s", id[0] ? id : "(no /etc/os-release)", ver);
	sets_list(list, np, arch, sets, sizeof sets);
	/* Debian and Ubuntu nodes are supported too; RPMs are not for them. */
	if (!strcmp(id, "debian") || !strcmp(id, "ubuntu")) {
		ps->foreign = 1;
		return KF_OK;
	}
	if (kf_rpm_set_for(id, ver, ps->set, sizeof ps->set, e) != KF_OK)
		return kf_err_set(e, KF_EUSAGE, "%s: this %s runs %s, the bundle carries "
		                  "sets for %s (%s); fix: run on Rocky, RHEL, AlmaLinux or CentOS "
		                  "Stream of those majors, or build a bundle whose spec.packages has a "
		                  "set for this release", ps->what, who, ps->release, sets[0] ? sets : "none",
		                  arch);
	if (!ra || !has_set(list, np, ps->set, arch))
		return kf_err_set(e, KF_EUSAGE, "%s: this %s runs %s (%s), but the "
		                  "bundle has no %s set for %s (it has: %s); fix: add a spec.packages "
		                  "entry with distro: rocky-%s%s and rebuild the bundle", ps->what, who,
		                  ps->release, ps->set, ps->set, arch, sets[0] ? sets : "none",
		                  ps->set + 2, admin ? " and admin: [ansible-core]" : "");
	ps->rpm_arch = ra;
	ps->names = calloc(np, sizeof *ps->names);
	if (kf_rpm_repo_dir(dir, sizeof dir, ps->set, ra, admin))
		return kf_err_set(e, KF_EUSAGE, "host packages: set %s too long", ps->set);
	if (!ps->names || asprintf(&ps->repo_dir, "%s/%s", bundle_dir, dir) < 0) {
		ps->repo_dir = NULL;
		return kf_err_set(e, KF_EIO, "out of memory");
	}
	for (size_t i = 0; i < np; i++) {
		const kf_lock_package *p = &list[i];
		if (strcmp(p->set, ps->set) || strcmp(p->arch, arch) ||
		    (ps->n && !strcmp(ps->names[ps->n - 1], p->name)))
			continue;
		if (!(ps->names[ps->n] = strdup(p->name)))
			return kf_err_set(e, KF_EIO, "out of memory");
		ps->n++;
	}
	return KF_OK;
}

const char *kfi_pkg_for_tool(const kf_lock *l, const char *set, const char *arch,
                             const char *tool)
{
	for (size_t t = 0; t < sizeof tool_pkgs / sizeof tool_pkgs[0]; t++) {
		if (strcmp(tool_pkgs[t][0], tool))
			continue;
		for (size_t k = 1; k < 3 && tool_pkgs[t][k]; k++)
			for (size_t i = 0; i < l->npkg; i++)
				if (!strcmp(l->packages[i].set, set) && !strcmp(l->packages[i].arch, arch) &&
				    !strcmp(l->packages[i].name, tool_pkgs[t][k]))
					return l->packages[i].name;
	}
	return NULL;
}

/* A throwaway HOME with the .rpmmacros above (also on a dry run, which
 * writes nothing to the node); removed by home_done. */
static int rpm_home(char **home, char **env_home, kf_err *e)
{
	const char *tmp = getenv("TMPDIR");
	char *mac = NULL;
	int rc = KF_OK;

	*env_home = NULL;
	if (asprintf(home, "%s/kf-rpm-home.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
		*home = NULL;
		return kf_err_set(e, KF_EIO, "out of memory");
	}
	if (!mkdtemp(*home)) {
		rc = kf_err_errno(e, "cannot create", *home);
		free(*home);
		*home = NULL;
		return rc;
	}
	if (asprintf(&mac, "%s/.rpmmacros", *home) < 0 || asprintf(env_home, "HOME=%s", *home) < 0) {
		free(mac);
		return kf_err_set(e, KF_EIO, "out of memory");
	}
	rc = kf_write_file_atomic(mac, RPMMACROS, strlen(RPMMACROS), 0644, 1, e);
	free(mac);
	return rc;
}

static void home_done(char *home, char *env_home)
{
	kf_err ign;
	if (home)
		kf_remove_tree(home, &ign);
	free(home);
	free(env_home);
}

int kfi_pkg_missing(const kfi_ctx *c, const kfi_pkgset *ps, char ***missing, size_t *nmiss,
                    kf_err *e)
{
	char **argv = calloc(ps->n + 10, sizeof *argv), *out = NULL, *home = NULL, *eh = NULL;
	int rc, status = 0;
	size_t k = 0;

	*missing = calloc(ps->n + 1, sizeof **missing);
	*nmiss = 0;
	if (!argv || !*missing) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if ((rc = rpm_home(&home, &eh, e)))
		goto out;
	argv[k++] = "rpm";
	argv[k++] = "-q";
	argv[k++] = "--root";
	argv[k++] = c->root[0] ? c->root : "/";
	argv[k++] = "--dbpath";
	argv[k++] = "/var/lib/rpm";
	argv[k++] = "--qf";
	argv[k++] = "%{NAME}\\n";
	for (size_t i = 0; i < ps->n; i++)
		argv[k++] = ps->names[i];
	{
		char *envp[] = {"PATH=/usr/bin:/bin:/usr/sbin:/sbin", eh, "LC_ALL=C", NULL};
		if ((rc = kf_run_capture(argv, envp, &out, &status, e)))
			goto out;
	}
	if (status < 0) {
		rc = kf_err_set(e, KF_EIO, "%s: rpm cannot run: %s", ps->what, out);
		goto out;
	}
	/* rpm -q prints "package NAME is not installed" for each missing one
	 * and exits with their count. */
	for (size_t i = 0; i < ps->n; i++) {
		char line[512];
		if (kf_strf(line, sizeof line, "package %s is not installed\n", ps->names[i]) == 0 &&
		    strstr(out, line) && !((*missing)[(*nmiss)++] = strdup(ps->names[i]))) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	if ((size_t)status != *nmiss && status < 255)
		rc = kf_err_set(e, KF_EIO, "%s: rpm -q reported %d missing, kubeferry "
		                "counted %zu: %s", ps->what, status, *nmiss, out);
out:
	free(argv);
	free(out);
	home_done(home, eh);
	return rc;
}

/* The private dnf.conf: the host's (skip_if_unavailable=True, plugins)
 * says the opposite of what an offline install must do. */
static const char dnf_conf[] =
	"[main]\n"
	"gpgcheck=1\n"
	"localpkg_gpgcheck=1\n"
	"best=True\n"
	"skip_if_unavailable=False\n"
	"plugins=0\n"
	"install_weak_deps=False\n"
	"keepcache=0\n";

int kfi_pkg_dnf_argv(const kfi_ctx *c, const kfi_pkgset *ps, const char *conf,
                     char *const *names, size_t n, char ***argv_out)
{
	char **argv = calloc(n + 16, sizeof *argv);
	size_t k = 0;
	int oom = 0;

	*argv_out = NULL;
	if (!argv)
		return -1;
#define ADD(fmt, ...) do { if (asprintf(&argv[k], fmt, __VA_ARGS__) < 0) { argv[k] = NULL; oom = 1; } k++; } while (0)
	ADD("%s", "dnf");
	ADD("%s", "-y");
	if (c->root[0])
		ADD("--installroot=%s", c->root);
	ADD("--config=%s", conf);
	ADD("--releasever=%s", ps->set + 2);
	ADD("%s", "--disablerepo=*");
	ADD("--repofrompath=kf,file://%s", ps->repo_dir);
	ADD("%s", "--setopt=kf.gpgcheck=1");
	ADD("--setopt=kf.gpgkey=file://%s/RPM-GPG-KEY", ps->repo_dir);
	ADD("%s", "install");
	for (size_t i = 0; i < n; i++)
		ADD("%s", names[i]);
#undef ADD
	if (oom) {
		for (size_t i = 0; i < k; i++)
			free(argv[i]);
		free(argv);
		return -1;
	}
	*argv_out = argv;
	return 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int kfi_pkg_install(kfi_ctx *c, const kfi_pkgset *ps, kf_err *e)
{
	char **missing = NULL, **argv = NULL, *conf = NULL, *out = NULL, *home = NULL, *eh = NULL;
	size_t nmiss = 0, na = 0;
	int rc, status = 0;

	if (!ps->n)
		return KF_OK;
	if ((rc = kfi_pkg_missing(c, ps, &missing, &nmiss, e)))
		goto out;
	if (!nmiss) {
		c->ok++;
		printf("%-8s %s %s %s: all %zu installed\n", "ok", ps->what, ps->set, ps->rpm_arch,
		       ps->n);
		goto out;
	}
	if (asprintf(&conf, "%s/dnf.conf", c->state_dir) < 0) {
		conf = NULL;
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	if (kfi_pkg_dnf_argv(c, ps, conf, missing, nmiss, &argv)) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	while (argv[na])
		na++;
	if (c->dry_run) {
		printf("%-8s run", "plan");
		for (size_t i = 0; i < na; i++)
			printf(" %s", argv[i]);
		printf("\n");
		goto out;
	}
	if ((rc = kf_mkdir_p(c->state_dir, 0700, e)) ||
	    (rc = kf_write_file_atomic(conf, dnf_conf, strlen(dnf_conf), 0644, 1, e)) ||
	    (rc = rpm_home(&home, &eh, e)))
		goto out;
	{
		char *envp[] = {"PATH=/usr/bin:/bin:/usr/sbin:/sbin", eh, "LC_ALL=C", NULL};
		if ((rc = kf_run_capture(argv, envp, &out, &status, e)))
			goto out;
	}
	if (status != 0) {
		rc = kf_err_set(e, KF_EVERIFY, "%s: dnf failed (exit %d) installing from %s: %s",
		                ps->what, status, ps->repo_dir, out);
		goto out;
	}
	c->changed++;
	printf("%-8s %s %s %s: installed", "changed", ps->what, ps->set, ps->rpm_arch);
	for (size_t i = 0; i < nmiss; i++)
		printf(" %s", missing[i]);
	printf("\n");
out:
	fflush(stdout);
	free_strv(missing, nmiss);
	free_strv(argv, na);
	free(conf);
	free(out);
	home_done(home, eh);
	return rc;
}

/* The set apply saw, for reset to name (it leaves the packages). */
#define PKG_RECORD "/host-packages"

int kfi_pkg_record(const kfi_ctx *c, const kfi_pkgset *ps, kf_err *e)
{
	kf_buf b;
	char *path = NULL;
	int rc;

	kf_buf_init(&b);
	for (size_t i = 0; i < ps->n; i++)
		kf_buf_addf(&b, "%s\n", ps->names[i]);
	if (asprintf(&path, "%s%s", c->state_dir, PKG_RECORD) < 0)
		path = NULL;
	if (!kf_buf_ok(&b) || !path)
		rc = kf_err_set(e, KF_EIO, "out of memory");
	else if (!(rc = kf_mkdir_p(c->state_dir, 0700, e)))
		rc = kf_write_file_atomic(path, b.p ? b.p : "", b.len, 0644, 1, e);
	kf_buf_free(&b);
	free(path);
	return rc;
}

void kfi_pkg_report_kept(const kfi_ctx *c)
{
	char *path = NULL, *buf = NULL;
	size_t len = 0;
	kf_err ign;

	if (asprintf(&path, "%s%s", c->state_dir, PKG_RECORD) < 0)
		return;
	if (kf_read_file(path, 1 << 20, &buf, &len, &ign) == KF_OK && len) {
		printf("%-8s host packages left installed (they may be shared with other software; "
		       "remove them with dnf if nothing needs them):", "kept");
		for (char *p = buf; *p; p++)
			putchar(*p == '\n' ? (p[1] ? ' ' : '\n') : *p);
		if (buf[len - 1] != '\n')
			putchar('\n');
		fflush(stdout);
	}
	free(buf);
	free(path);
}
