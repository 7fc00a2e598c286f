/*
 * One host's share of a cluster plan, as `cluster plan` writes it
 * (DIR/hosts/<name>/host.yaml): who the host is, its roles, and the
 * mirrors every node tries in order, with the fingerprint of their CA.
 * The installer trusts the share's files as far as this file says: every
 * value is checked, since it ends up in configurations and file names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "manifests/manifests_internal.h"

enum {
	K_NAME, K_NODE, K_IP, K_ACCESS, K_BUNDLE, K_KUBE, K_EP, K_ROLES, K_FIRST, K_MEMBER,
	K_MPORT, K_FP, K_MIRRORS, K_FILES, K_N
};
static const char *const keys[K_N] = {
	"name", "node_name", "ip", "access_ip", "bundle", "kubernetes_version",
	"control_plane_endpoint", "roles", "first_control_plane", "etcd_member_name",
	"mirror_port", "mirror_ca_fingerprint", "mirror_endpoints", "files",
};

void kf_share_free(kf_share *s)
{
	if (!s)
		return;
	free(s->dir);
	free(s->name);
	free(s->node_name);
	free(s->ip);
	free(s->access_ip);
	free(s->bundle);
	free(s->kube_version);
	free(s->endpoint);
	free(s->etcd_member_name);
	free(s->mirror_fp);
	for (size_t i = 0; i < s->nmirrors; i++)
		free(s->mirrors[i]);
	free(s->mirrors);
	free(s);
}

/* "ADDR:PORT" or "[V6]:PORT" with a numeric address. */
static int endpoint_ok(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;
	char *end;
	long port;

	if (!colon || colon == s)
		return 0;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof host)
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	return kf_ip_valid(host) && end != colon + 1 && !*end && port > 0 && port < 65536;
}

/* 32 bytes as AB:CD:... (what kf_mirror_cert_fingerprint prints). */
static int fingerprint_ok(const char *s)
{
	if (strlen(s) != 95)
		return 0;
	for (int i = 0; i < 95; i++)
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789ABCDEF", s[i]))
			return 0;
	return 1;
}

static int roles_of(kf_yctx *c, const kf_ynode *n, unsigned *out)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{"etcd", KF_ROLE_ETCD}, {"control-plane", KF_ROLE_CONTROL_PLANE},
		{"worker", KF_ROLE_WORKER}, {"mirror", KF_ROLE_MIRROR},
	};
	int rc = kf_ytree_want(c, n, KF_Y_SEQ, "roles");

	*out = 0;
	for (size_t i = 0; !rc && i < n->n; i++) {
		unsigned bit = 0;
		if ((rc = kf_ytree_want(c, n->items[i], KF_Y_SCALAR, "a role")))
			break;
		for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
			if (!strcmp(n->items[i]->value, names[j].name))
				bit = names[j].bit;
		if (!bit)
			rc = kf_ytree_fail(c, n->items[i], "unknown role \"%s\"", n->items[i]->value);
		*out |= bit;
	}
	return rc;
}

static int fields(kf_yctx *c, const kf_ynode *const *v, kf_share *s)
{
	int rc;

	if ((rc = kf_ytree_str(c, v[K_NAME], "name", 1, &s->name)) ||
	    (rc = kf_ytree_str(c, v[K_NODE], "node_name", 1, &s->node_name)) ||
	    (rc = kf_ytree_str(c, v[K_IP], "ip", 1, &s->ip)) ||
	    (rc = kf_ytree_str(c, v[K_ACCESS], "access_ip", 1, &s->access_ip)) ||
	    (rc = kf_ytree_str(c, v[K_BUNDLE], "bundle", 1, &s->bundle)) ||
	    (rc = kf_ytree_str(c, v[K_KUBE], "kubernetes_version", 1, &s->kube_version)) ||
	    (rc = kf_ytree_str(c, v[K_EP], "control_plane_endpoint", 1, &s->endpoint)) ||
	    (rc = kf_ytree_str(c, v[K_FP], "mirror_ca_fingerprint", 1, &s->mirror_fp)) ||
	    (rc = roles_of(c, v[K_ROLES], &s->roles)))
		return rc;
	if (!kf_hostname_valid(s->node_name))
		return kf_ytree_fail(c, v[K_NODE], "node_name is not an RFC 1123 name");
	if (!kf_ip_valid(s->ip) || !kf_ip_valid(s->access_ip))
		return kf_ytree_fail(c, v[K_IP], "ip and access_ip must be IP addresses");
	if (!fingerprint_ok(s->mirror_fp))
		return kf_ytree_fail(c, v[K_FP], "mirror_ca_fingerprint is not a SHA-256 fingerprint");
	if (!kf_valid_token(s->kube_version) || !kf_valid_token(s->bundle))
		return kf_ytree_fail(c, v[K_KUBE], "bad version or bundle name");
	if (v[K_FIRST]->type != KF_Y_SCALAR ||
	    (strcmp(v[K_FIRST]->value, "true") && strcmp(v[K_FIRST]->value, "false")))
		return kf_ytree_fail(c, v[K_FIRST], "first_control_plane must be true or false");
	s->first_cp = !strcmp(v[K_FIRST]->value, "true");
	if (!kf_ytree_is_null(v[K_MEMBER])) {
		if ((rc = kf_ytree_str(c, v[K_MEMBER], "etcd_member_name", 1, &s->etcd_member_name)))
			return rc;
		if (!kf_hostname_valid(s->etcd_member_name))
			return kf_ytree_fail(c, v[K_MEMBER], "etcd_member_name is not an RFC 1123 name");
	}
	s->mirror_port = 0;
	if (v[K_MPORT]) {
		char *end;
		long p = v[K_MPORT]->type == KF_Y_SCALAR ? strtol(v[K_MPORT]->value, &end, 10) : 0;
		if (p < 1 || p > 65535 || *end)
			return kf_ytree_fail(c, v[K_MPORT], "mirror_port is not a port");
		s->mirror_port = (int)p;
	}
	if ((rc = kf_ytree_want(c, v[K_MIRRORS], KF_Y_SEQ, "mirror_endpoints")))
		return rc;
	if (v[K_MIRRORS]->n == 0)
		return kf_ytree_fail(c, v[K_MIRRORS], "mirror_endpoints is empty");
	if (!(s->mirrors = calloc(v[K_MIRRORS]->n, sizeof *s->mirrors)))
		return kf_err_set(c->e, KF_EIO, "out of memory");
	for (size_t i = 0; i < v[K_MIRRORS]->n; i++) {
		const kf_ynode *m = v[K_MIRRORS]->items[i];
		if ((rc = kf_ytree_str(c, m, "a mirror endpoint", 1, &s->mirrors[s->nmirrors])))
			return rc;
		s->nmirrors++;
		if (!endpoint_ok(s->mirrors[i]))
			return kf_ytree_fail(c, m, "mirror endpoint \"%s\" is not ADDRESS:PORT", s->mirrors[i]);
	}
	return kf_ytree_want(c, v[K_FILES], KF_Y_MAP, "files");
}

int kf_share_load(const char *plan_dir, const char *host, kf_share **out, kf_err *e)
{
	kf_share *s = calloc(1, sizeof *s);
	kf_ynode *root = NULL;
	const kf_ynode *v[K_N] = {0};
	char path[4096], *buf = NULL;
	size_t len;
	kf_yctx c = {.origin = path, .code = KF_EUSAGE, .e = e};
	int rc;

	*out = NULL;
	if (!s) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	/* The name becomes a path: only an RFC 1123 name can name a share. */
	if (!kf_hostname_valid(host)) {
		rc = kf_err_set(e, KF_EUSAGE, "--host %s is not an RFC 1123 host name", host);
		goto out;
	}
	if (kf_strf(path, sizeof path, "%s/hosts/%s", plan_dir, host) || !(s->dir = strdup(path)) ||
	    kf_strf(path, sizeof path, "%s/host.yaml", s->dir)) {
		rc = kf_err_set(e, KF_EUSAGE, "path too long: %s", plan_dir);
		goto out;
	}
	if (access(path, F_OK) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "no share for host %s in the plan %s (%s: %s)", host,
		                plan_dir, path, strerror(errno));
		goto out;
	}
	if ((rc = kf_read_file(path, 1 << 20, &buf, &len, e))) {
		kf_err_prefix(e, "no share for host %s in the plan %s", host, plan_dir);
		goto out;
	}
	if ((rc = kf_ytree_parse(buf, len, path, KF_EUSAGE, &root, e)) ||
	    (rc = kf_ytree_want(&c, root, KF_Y_MAP, "host.yaml")))
		goto out;
	for (size_t i = 0; i < root->n; i += 2) {
		size_t k = 0;
		while (k < K_N && !kf_ytree_key_is(root->items[i], keys[k]))
			k++;
		if (k == K_N) {
			rc = kf_ytree_fail(&c, root->items[i], "unknown key \"%s\"", root->items[i]->value);
			goto out;
		}
		v[k] = root->items[i + 1];
	}
	for (size_t k = 0; k < K_N; k++)
		if (!v[k] && k != K_MPORT) {
			rc = kf_ytree_fail(&c, root, "missing key \"%s\"", keys[k]);
			goto out;
		}
	if ((rc = fields(&c, v, s)))
		goto out;
	if (strcmp(s->name, host)) {
		rc = kf_ytree_fail(&c, v[K_NAME], "this share is host %s's, not %s's", s->name, host);
		goto out;
	}
	if ((s->roles & KF_ROLE_MIRROR) && !s->mirror_port) {
		rc = kf_ytree_fail(&c, root, "a mirror host needs mirror_port");
		goto out;
	}
	*out = s;
	s = NULL;
out:
	kf_ytree_free(root);
	free(buf);
	kf_share_free(s);
	return rc;
}
