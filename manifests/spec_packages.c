/*
 * spec.packages: the host packages a bundle carries for one RHEL-family
 * release (docs/packages.md). Checked as strictly as the rest of the spec:
 * every error names FILE:LINE:COL.
 *
 * Rocky, RHEL, AlmaLinux and CentOS Stream of one major version share one
 * package set ("el9"): they are binary compatible, and a node picks the
 * set by its os-release major version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifests/manifests_internal.h"

/* os-release IDs (and the spelling the spec uses before "-MAJOR"). */
static const char *const distro_ids[] = {"rocky", "rhel", "almalinux",
                                         "centos-stream", "centos", NULL};

const char *kf_rpm_arch(const char *arch)
{
	static const char *const map[][2] = {
		{"amd64", "x86_64"}, {"arm64", "aarch64"},
		{"ppc64le", "ppc64le"}, {"s390x", "s390x"},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(arch, map[i][0]))
			return map[i][1];
	return NULL;
}

char *kf_spec_repo_url(const kf_spec_repo *r, const char *arch)
{
	const char *ra = kf_rpm_arch(arch), *p;
	kf_buf b;

	if (!ra)
		return NULL;
	kf_buf_init(&b);
	for (p = r->url; *p; p++) {
		if (!strncmp(p, "{arch}", 6)) {
			kf_buf_adds(&b, ra);
			p += 5;
		} else {
			kf_buf_add(&b, p, 1);
		}
	}
	return kf_buf_take(&b);
}

int kf_rpm_repo_dir(char *out, size_t n, const char *set, const char *rpm_arch, int admin)
{
	return kf_strf(out, n, "rpms/%s%s/%s", set, admin ? "-admin" : "", rpm_arch);
}

static int major_ok(long m)
{
	return m == 9 || m == 10;
}

int kf_rpm_set_for(const char *id, const char *version_id, char *out,
                   size_t n, kf_err *e)
{
	char *end = NULL;
	long major;
	size_t i;

	for (i = 0; distro_ids[i]; i++)
		if (!strcmp(id, distro_ids[i]))
			break;
	major = strtol(version_id, &end, 10);
	if (!distro_ids[i] || end == version_id || (*end && *end != '.') ||
	    !major_ok(major))
		return kf_err_set(e, KF_EUSAGE, "release %s %s is not Rocky, RHEL, "
		                  "AlmaLinux or CentOS Stream 9 or 10", id, version_id);
	if (kf_strf(out, n, "el%ld", major))
		return kf_err_set(e, KF_EUSAGE, "set name buffer too small");
	return KF_OK;
}

/* "rocky-9" -> "el9", major 9. */
static int parse_distro(kf_yctx *c, const kf_ynode *n, kf_spec_pkgset *ps)
{
	const char *dash = strrchr(ps->distro, '-');
	char id[32], *end = NULL;
	long major;

	if (!dash || (size_t)(dash - ps->distro) >= sizeof id)
		goto bad;
	memcpy(id, ps->distro, (size_t)(dash - ps->distro));
	id[dash - ps->distro] = '\0';
	major = strtol(dash + 1, &end, 10);
	if (end == dash + 1 || *end || !major_ok(major))
		goto bad;
	for (size_t i = 0; distro_ids[i]; i++) {
		if (strcmp(id, distro_ids[i]))
			continue;
		ps->major = (int)major;
		if (asprintf(&ps->set, "el%ld", major) < 0) {
			ps->set = NULL;
			return kf_err_set(c->e, KF_EIO, "out of memory");
		}
		return KF_OK;
	}
bad:
	return kf_ytree_fail(c, n, "packages.distro \"%s\" is not one of rocky-9, rocky-10 "
	                     "(or rhel-, almalinux-, centos-stream- of 9 or 10)", ps->distro);
}

/* RPM names: letters, digits and ._+- (what rpmbuild accepts, less '~'). */
static int valid_rpm_name(const char *s, size_t n)
{
	if (n == 0 || n > 200 || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", s[i]))
			return 0;
	return 1;
}

/* [EPOCH:]VERSION[-RELEASE]: digits before ':', then rpm's version
 * characters. */
static int valid_evr(const char *s)
{
	const char *colon = strchr(s, ':');
	if (colon) {
		if (colon == s || strspn(s, "0123456789") != (size_t)(colon - s))
			return 0;
		s = colon + 1;
	}
	return *s && strlen(s) <= 200 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~^-") ==
	               strlen(s);
}

/* "name" or "name = EVR" (spaces around '=' required: the form dnf and
 * libsolv's selections read). what: "packages.install" or "packages.admin". */
static int check_install_item(kf_yctx *c, const kf_ynode *n, const char *v, const char *what)
{
	const char *eq = strstr(v, " = ");
	size_t nl = eq ? (size_t)(eq - v) : strlen(v);

	if (!valid_rpm_name(v, nl))
		return kf_ytree_fail(c, n, "bad package \"%s\" in %s (a package name, "
		                     "or \"name = [EPOCH:]VERSION[-RELEASE]\")", v, what);
	if (eq && !valid_evr(eq + 3))
		return kf_ytree_fail(c, n, "bad version pin \"%s\" in %s "
		                     "(\"name = [EPOCH:]VERSION[-RELEASE]\")", v, what);
	return KF_OK;
}

static int check_repo_url(kf_yctx *c, const kf_ynode *n, const char *url)
{
	for (const char *p = url; *p; p++) {
		if (*p == '{' && strncmp(p, "{arch}", 6))
			return kf_ytree_fail(c, n, "bad placeholder in repository url \"%s\" (only {arch})", url);
		if (*p == '{')
			p += 5;
		else if (*p == '}')
			return kf_ytree_fail(c, n, "bad placeholder: unmatched '}' in repository url");
	}
	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7) && strncmp(url, "file:///", 8))
		return kf_ytree_fail(c, n, "repository url \"%s\" is not https://, http:// or file:///", url);
	if (strchr(url, '?') || strchr(url, '#'))
		return kf_ytree_fail(c, n, "repository url \"%s\" has a query or fragment", url);
	return KF_OK;
}

static int parse_repo(kf_yctx *c, const kf_ynode *m, kf_spec_pkgset *ps, kf_spec_repo *r)
{
	static const char *const keys[] = {"name", "url", NULL};
	const kf_ynode *v;
	int rc;

	r->line = m->line;
	r->col = m->col;
	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "a repository")) ||
	    (rc = kf_spec_check_keys(c, m, "a repository", keys)))
		return rc;
	if (!(v = kf_spec_find(m, "name")))
		return kf_ytree_fail(c, m, "missing required key \"name\" in a repository");
	if ((rc = kf_ytree_str(c, v, "repository name", 1, &r->name)))
		return rc;
	if (!kf_valid_name(r->name))
		return kf_ytree_fail(c, v, "bad repository name \"%s\" (lowercase letters, digits, "
		                     "'.', '_', '-')", r->name);
	for (kf_spec_repo *o = ps->repos; o < r; o++)
		if (!strcmp(o->name, r->name))
			return kf_ytree_fail(c, v, "duplicate repository \"%s\" (first at line %d)",
			                     r->name, o->line);
	if (!(v = kf_spec_find(m, "url")))
		return kf_ytree_fail(c, m, "missing required key \"url\" in repository %s", r->name);
	if ((rc = kf_ytree_str(c, v, "repository url", 1, &r->url)))
		return rc;
	return check_repo_url(c, v, r->url);
}

static int parse_gpgkey(kf_yctx *c, const kf_ynode *m, kf_spec_pkgset *ps)
{
	static const char *const keys[] = {"url", "sha256", NULL};
	const kf_ynode *v;
	int rc;

	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "packages.gpgkey")) ||
	    (rc = kf_spec_check_keys(c, m, "packages.gpgkey", keys)))
		return rc;
	if (!(v = kf_spec_find(m, "url")))
		return kf_ytree_fail(c, m, "missing required key \"url\" in packages.gpgkey");
	if ((rc = kf_ytree_str(c, v, "packages.gpgkey.url", 1, &ps->gpgkey_url)))
		return rc;
	if (!(v = kf_spec_find(m, "sha256")))
		return kf_ytree_fail(c, m, "missing required key \"sha256\" in packages.gpgkey");
	if ((rc = kf_ytree_str(c, v, "packages.gpgkey.sha256", 0, &ps->gpgkey_sha256)))
		return rc;
	return kf_spec_check_hex(c, v, ps->gpgkey_sha256, "packages.gpgkey.sha256");
}

static int parse_base(kf_yctx *c, const kf_ynode *v, const kf_spec *s, kf_spec_pkgset *ps)
{
	char *path = NULL;
	int rc = kf_ytree_str(c, v, "packages.base", 1, &ps->base);

	if (rc || !strcmp(ps->base, "none") || !strcmp(ps->base, "minimal"))
		return rc;
	/* A captured `rpm -qa` list: must exist now, so lint catches a typo. */
	if (ps->base[0] == '/')
		path = strdup(ps->base);
	else if (asprintf(&path, "%s/%s", s->dir, ps->base) < 0)
		path = NULL;
	if (!path)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	if (access(path, R_OK) != 0)
		rc = kf_ytree_fail(c, v, "packages.base \"%s\" is neither none, minimal nor a "
		                   "readable file (%s)", ps->base, path);
	free(path);
	return rc;
}

/* install: (the node set) or admin: (the admin host's set, for the
 * cluster playbooks' own Ansible): a non-empty list without repeats. */
static int parse_names(kf_yctx *c, const kf_ynode *seq, const char *what, char ***out,
                       size_t *nout)
{
	int rc = kf_ytree_want(c, seq, KF_Y_SEQ, what);
	char **v;

	if (rc)
		return rc;
	if (seq->n == 0)
		return kf_ytree_fail(c, seq, "%s is empty", what);
	if (!(v = *out = calloc(seq->n, sizeof **out)))
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < seq->n; i++) {
		const kf_ynode *n = seq->items[i];
		if ((rc = kf_ytree_str(c, n, "a package", 1, &v[i])))
			return rc;
		(*nout)++;
		if ((rc = check_install_item(c, n, v[i], what)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(v[j], v[i]))
				return kf_ytree_fail(c, n, "duplicate package \"%s\" in %s", v[i], what);
	}
	return KF_OK;
}

static int parse_pkgset(kf_yctx *c, const kf_ynode *m, kf_spec *s, kf_spec_pkgset *ps)
{
	static const char *const keys[] = {"distro", "repos", "gpgkey", "install", "admin",
	                                   "base", NULL};
	const kf_ynode *v;
	int rc;

	ps->line = m->line;
	ps->col = m->col;
	if ((rc = kf_ytree_want(c, m, KF_Y_MAP, "a package set")) ||
	    (rc = kf_spec_check_keys(c, m, "a package set", keys)))
		return rc;
	if (!(v = kf_spec_find(m, "distro")))
		return kf_ytree_fail(c, m, "missing required key \"distro\" in a package set");
	if ((rc = kf_ytree_str(c, v, "packages.distro", 1, &ps->distro)) ||
	    (rc = parse_distro(c, v, ps)))
		return rc;
	for (kf_spec_pkgset *o = s->pkgsets; o < ps; o++)
		if (o->set && ps->set && !strcmp(o->set, ps->set))
			return kf_ytree_fail(c, v, "package set %s: %s and %s are the same release "
			                     "family (first at line %d)", ps->set, o->distro,
			                     ps->distro, o->line);
	for (size_t a = 0; a < s->narch; a++)
		if (!kf_rpm_arch(s->archs[a]))
			return kf_ytree_fail(c, v, "packages for %s: architecture %s has no RPM "
			                     "architecture", ps->distro, s->archs[a]);
	if (!(v = kf_spec_find(m, "repos")))
		return kf_ytree_fail(c, m, "missing required key \"repos\" in packages %s", ps->distro);
	if ((rc = kf_ytree_want(c, v, KF_Y_SEQ, "packages.repos")))
		return rc;
	if (v->n == 0)
		return kf_ytree_fail(c, v, "packages.repos is empty");
	ps->repos = calloc(v->n, sizeof *ps->repos);
	if (!ps->repos)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		ps->nrepo++;
		if ((rc = parse_repo(c, v->items[i], ps, &ps->repos[i])))
			return rc;
	}
	if (!(v = kf_spec_find(m, "gpgkey")))
		return kf_ytree_fail(c, m, "missing required key \"gpgkey\" in packages %s "
		                     "(the distribution's signing key, pinned by sha256)", ps->distro);
	if ((rc = parse_gpgkey(c, v, ps)))
		return rc;
	if (!(v = kf_spec_find(m, "install")))
		return kf_ytree_fail(c, m, "missing required key \"install\" in packages %s", ps->distro);
	if ((rc = parse_names(c, v, "packages.install", &ps->install, &ps->ninstall)))
		return rc;
	if ((v = kf_spec_find(m, "admin")) &&
	    (rc = parse_names(c, v, "packages.admin", &ps->admin, &ps->nadmin)))
		return rc;
	if ((v = kf_spec_find(m, "base")))
		return parse_base(c, v, s, ps);
	if (!(ps->base = strdup("minimal")))
		return kf_err_set(c->e, KF_EIO, "out of memory");
	return KF_OK;
}

int kf_spec_parse_packages(kf_yctx *c, const kf_ynode *seq, kf_spec *s)
{
	int rc = kf_ytree_want(c, seq, KF_Y_SEQ, "spec.packages");
	if (rc)
		return rc;
	s->pkgsets = calloc(seq->n ? seq->n : 1, sizeof *s->pkgsets);
	if (!s->pkgsets)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < seq->n; i++) {
		s->npkgset++;
		if ((rc = parse_pkgset(c, seq->items[i], s, &s->pkgsets[i])))
			return rc;
	}
	return KF_OK;
}

void kf_spec_pkgsets_free(kf_spec *s)
{
	for (size_t i = 0; i < s->npkgset; i++) {
		kf_spec_pkgset *ps = &s->pkgsets[i];
		free(ps->distro);
		free(ps->set);
		for (size_t r = 0; r < ps->nrepo; r++) {
			free(ps->repos[r].name);
			free(ps->repos[r].url);
		}
		free(ps->repos);
		free(ps->gpgkey_url);
		free(ps->gpgkey_sha256);
		for (size_t k = 0; k < ps->ninstall; k++)
			free(ps->install[k]);
		free(ps->install);
		for (size_t k = 0; k < ps->nadmin; k++)
			free(ps->admin[k]);
		free(ps->admin);
		free(ps->base);
	}
	free(s->pkgsets);
}
