/*
 * The container runtime: containerd, runc, the CNI plugins and crictl from
 * the bundle, containerd's configuration, the registry mirror (its pinned
 * CA and certs.d), the containerd unit, and with --no-mirror the import of
 * the bundle's images.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mirror/kf_mirror.h"
#include "installer/apply/apply.h"
#include "installer/plan/plan.h"

/* --mirror-ca FILE: the CA carried over by hand; still checked against
 * the pin, so a wrong file is refused just like a wrong server. */
static int ca_from_file(apply *a, kf_err *e)
{
	/* Only the pinned certificate itself is installed (re-encoded), never
	 * the file as it is: further certificates in it would be trusted too. */
	return kfi_mirror_ca_file(a->mirror_ca_file, a->mirror_fp, &a->mirror_ca,
	                          &a->mirror_ca_len, e);
}

/* The mirror's CA is fetched and checked against the pin before anything
 * on the node changes: a wrong fingerprint must not leave a half-prepared
 * node behind. */
int kfi_step_mirror_ca(apply *a, kf_err *e)
{
	char host[256];
	int port;

	/* A plan's CA comes with the share, pinned by the fingerprint the
	 * plan recorded: no mirror needs to answer yet. */
	if (a->share)
		return kfi_share_mirror_ca(a->share, &a->mirror_ca, &a->mirror_ca_len, e);
	if (kfi_split_hostport(a->mirror, host, sizeof host, &port) != 0)
		return kf_err_set(e, KF_EUSAGE, "--mirror %s: want HOST:PORT", a->mirror);
	/* HOST goes into every hosts.toml as a URL: a quote or newline there
	 * would rewrite containerd's registry configuration. */
	{
		unsigned char sa[sizeof(struct in6_addr)];
		if (!kfi_dns_name_valid(host, 1) && inet_pton(AF_INET6, host, sa) != 1)
			return kf_err_set(e, KF_EUSAGE, "--mirror %s: '%s' is not a host name or address",
			                  a->mirror, host);
	}
	if (a->mirror_ca_file)
		return ca_from_file(a, e);
	return kfi_mirror_ca(host, port, a->mirror_fp, &a->mirror_ca, &a->mirror_ca_len, e);
}

static const char *sandbox_image(const apply *a)
{
	for (size_t i = 0; i < a->lock->nimg; i++) {
		const char *r = a->lock->images[i].ref, *slash = strrchr(r, '/');
		const char *base = slash ? slash + 1 : r;
		if (!strncmp(base, "pause:", 6) || !strncmp(base, "pause@", 6))
			return r;
	}
	return NULL;
}

/* containerd reads certs.d per pull: a change here needs no restart. */
int kfi_step_certs_d(apply *a, kf_err *e)
{
	int rc = KF_OK, ch = 0;
	char *dir = kfi_strf("%s/certs.d", a->bundle_dir), *mirror_url = NULL;
	char **urls = NULL;
	size_t nurls = 0;
	DIR *d = NULL;
	struct dirent *de;

	if (!dir) {
		rc = kfi_oom(e);
		goto out;
	}
	if (a->no_mirror) {
		printf("%-8s certs.d (--no-mirror: images come from the bundle)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (a->mirror) {
		if ((rc = kfi_put_file(&a->c, KF_MIRROR_CA_PATH, a->mirror_ca, a->mirror_ca_len,
		                       0644, &ch, e)) != KF_OK)
			goto out;
		if (!(mirror_url = kfi_strf("https://%s", a->mirror))) {
			rc = kfi_oom(e);
			goto out;
		}
		/* A plan's mirror hosts, every one, in the plan's order. */
		nurls = a->share ? a->share->nmirrors : 1;
		if (!(urls = calloc(nurls, sizeof *urls))) {
			rc = kfi_oom(e);
			goto out;
		}
		for (size_t i = 0; i < nurls; i++)
			if (!(urls[i] = a->share ? kfi_strf("https://%s", a->share->mirrors[i])
			                         : kfi_strf("%s", mirror_url))) {
				rc = kfi_oom(e);
				goto out;
			}
	}
	d = opendir(dir);
	if (!d) {
		printf("%-8s certs.d (the bundle has no registry mirror configuration)\n", "ok");
		a->c.ok++;
		goto out;
	}
	while ((de = readdir(d))) {
		char abs[PATH_MAX], *src, *text = NULL;
		if (de->d_name[0] == '.' || strchr(de->d_name, '/'))
			continue;
		if (kf_strf(abs, sizeof abs, "/etc/containerd/certs.d/%s/hosts.toml", de->d_name) != 0)
			continue; /* no registry name is that long */
		if (mirror_url) {
			/* The operator's mirror and its pinned CA replace the
			 * endpoint chosen at build time. */
			text = kf_hosts_toml_render_list(de->d_name, (const char *const *)urls, nurls,
			                                 KF_MIRROR_CA_PATH);
			if (!text) {
				rc = kf_err_set(e, KF_EIO, "cannot render hosts.toml for %s", de->d_name);
				goto out;
			}
			rc = kfi_put_file(&a->c, abs, text, strlen(text), 0644, &ch, e);
			free(text);
		} else {
			if (!(src = kfi_strf("%s/%s/hosts.toml", dir, de->d_name)))
				rc = kfi_oom(e);
			else if (access(src, F_OK) == 0)
				rc = kfi_put_file_from(&a->c, abs, src, 0644, &ch, e);
			free(src);
		}
		if (rc != KF_OK)
			goto out;
	}
out:
	if (d)
		closedir(d);
	for (size_t i = 0; urls && i < nurls; i++)
		free(urls[i]);
	free(urls);
	free(dir);
	free(mirror_url);
	return rc;
}

/* --no-mirror: the bundle's images go straight into containerd's k8s.io
 * namespace (what kubelet uses). The layout is tarred once next to the
 * unpacked bundle; a stamp per lock records a finished import. */
int kfi_step_import(apply *a, kf_err *e)
{
	int rc = KF_OK;
	char *layout = kfi_strf("%s/images/index.json", a->bundle_dir), *tar = NULL, *stamp = NULL;
	char *tar_abs = NULL;
	char key[KF_SHA256_HEX];

	if (!layout) {
		rc = kfi_oom(e);
		goto out;
	}
	if (access(layout, F_OK) != 0) {
		printf("%-8s images (the bundle holds none)\n", "ok");
		a->c.ok++;
		goto out;
	}
	free(layout);
	layout = kfi_strf("%s/images", a->bundle_dir);
	tar = kfi_strf("%s.images.tar", a->bundle_dir);
	/* The path containerd sees: without the --root prefix. */
	tar_abs = kfi_strf("%s/%s-%s.images.tar", KFI_BUNDLES_DIR, a->lock->name, a->lock->version);
	if (!layout || !tar || !tar_abs) {
		rc = kfi_oom(e);
		goto out;
	}
	kf_sha256_buf(a->lock->name, strlen(a->lock->name), key);
	{
		char *lk = kfi_strf("%s.bundle.yaml", a->bundle_dir), *buf = NULL;
		size_t len;
		kf_err ign;
		if (lk && kf_read_file(lk, KF_LOCK_MAX, &buf, &len, &ign) == KF_OK)
			kf_sha256_buf(buf, len, key);
		free(buf);
		free(lk);
	}
	if (!(stamp = kfi_strf("%s/imported-%s", a->c.state_dir, key))) {
		rc = kfi_oom(e);
		goto out;
	}
	if (access(stamp, F_OK) == 0) {
		printf("%-8s images imported into containerd (k8s.io)\n", "ok");
		a->c.ok++;
		goto out;
	}
	if (!a->dry_run && access(tar, F_OK) != 0) {
		if ((rc = kfi_oci_tar(layout, tar, e)) != KF_OK)
			goto out;
		printf("%-8s file %s\n", "changed", tar_abs);
		a->c.changed++;
	}
	{
		/* The bundle holds only its own architectures' manifests, so
		 * the import is for this node's platform (ctr's default), not
		 * --all-platforms. */
		const char *argv[] = {"/usr/local/bin/ctr", "-n", "k8s.io", "images", "import",
		                      tar_abs, NULL};
		if (a->c.live && !a->systemd) {
			printf("%-8s images not imported: containerd is not running under systemd\n", "warn");
			goto out;
		}
		if ((rc = kfi_run(&a->c, argv, e)) != KF_OK)
			goto out;
	}
	if (a->c.live) {
		kf_err ign;
		kf_mkdir_p(a->c.state_dir, 0700, &ign);
		kf_write_file_atomic(stamp, "", 0, 0600, 1, &ign);
	}
out:
	free(layout);
	free(tar);
	free(tar_abs);
	free(stamp);
	return rc;
}

int kfi_step_runtime(apply *a, kf_err *e)
{
	static const char *const n_containerd[] = {"containerd", NULL};
	static const char *const n_runc[] = {"runc", NULL};
	static const char *const n_cni[] = {"cni-plugins", "cni", NULL};
	static const char *const n_crictl[] = {"crictl", "cri-tools", NULL};
	static const char *const crictl_names[] = {"crictl", NULL};
	const kf_lock_component *k;
	int rc, ch = 0, any = 0, before = a->c.changed;
	char *f = NULL, *cfg = NULL;
	const char *pause;

	if ((rc = kfi_apply_need(a, n_containerd, &k, e)) != KF_OK)
		goto out;
	if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
		goto out;
	/* bin/containerd, bin/ctr, ... with the first component stripped,
	 * as Kubespray unpacks it. */
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 1, NULL, "/usr/local/bin", 0755, NULL, e)) != KF_OK)
		goto out;
	pause = sandbox_image(a);
	if (!pause) {
		pause = "registry.k8s.io/pause:3.10";
		printf("%-8s the bundle holds no pause image; sandbox image %s must be reachable\n",
		       "warn", pause);
	}
	if (!(cfg = kfi_render_containerd(k->version, pause))) {
		rc = kfi_oom(e);
		goto out;
	}
	if ((rc = kfi_put_file(&a->c, "/etc/containerd/config.toml", cfg, strlen(cfg), 0644,
	                       &ch, e)) != KF_OK)
		goto out;
	any |= ch;

	if ((rc = kfi_apply_need(a, n_runc, &k, e)) != KF_OK)
		goto out;
	if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
		goto out;
	if ((rc = kfi_put_file_from_sum(&a->c, "/usr/local/sbin/runc", f, k->sha256, 0755, &ch, e)) != KF_OK)
		goto out;
	/* containerd binaries, its config or runc changed: restart it. */
	any |= a->c.changed != before;

	if ((rc = kfi_apply_need(a, n_cni, &k, e)) != KF_OK)
		goto out;
	if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
		goto out;
	if ((rc = kfi_tar_install(&a->c, f, k->sha256, 0, NULL, "/opt/cni/bin", 0755, NULL, e)) != KF_OK)
		goto out;

	if ((k = kfi_apply_component(a, n_crictl))) {
		if ((rc = kfi_apply_file(a, k, &f, e)) != KF_OK)
			goto out;
		if ((rc = kfi_tar_install(&a->c, f, k->sha256, 0, crictl_names, "/usr/local/bin", 0755,
		                          NULL, e)) != KF_OK)
			goto out;
	} else {
		printf("%-8s the bundle has no crictl\n", "warn");
	}
	if ((rc = kfi_put_file(&a->c, "/etc/crictl.yaml", kfi_tpl_crictl_yaml, strlen(kfi_tpl_crictl_yaml),
	                       0644, NULL, e)) != KF_OK)
		goto out;

	a->runtime_changed = any;
out:
	free(f);
	free(cfg);
	return rc;
}

int kfi_step_containerd_service(apply *a, kf_err *e)
{
	int rc = kfi_apply_unit(a, "containerd.service", kfi_tpl_containerd_unit, e);

	if (rc == KF_OK)
		rc = kfi_apply_start(a, "containerd.service", a->runtime_changed, e);
	return rc;
}
