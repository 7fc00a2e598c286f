/*
 * The INI form of an Ansible inventory, as Kubespray's inventory.ini:
 *
 *   node1 ansible_host=95.54.0.12 ip=10.3.0.1 etcd_member_name=etcd1
 *   [kube_control_plane]
 *   node1
 *   [k8s_cluster:children]
 *   kube_control_plane
 *   [all:vars]
 *   key=value
 *
 * Host lines split like a shell line (quotes group, '#' after a blank
 * starts a comment); lines before any section belong to "ungrouped".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/inventory_internal.h"

#define INI_TOKENS 64
#define INI_LINE_MAX 8192

enum section { S_HOSTS, S_CHILDREN, S_VARS };

/* Split line (modified in place) into tokens with quotes removed; -1 on
 * an unterminated quote or too many tokens. */
static int tokens(char *line, char **tok, int max)
{
	int n = 0;
	char *r = line, *w;

	for (;;) {
		char q = 0;
		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r || *r == '#' || *r == ';')
			return n;
		if (n == max)
			return -1;
		tok[n++] = w = r;
		while (*r && (q || (*r != ' ' && *r != '\t'))) {
			if (!q && (*r == '"' || *r == '\'')) {
				q = *r++;
			} else if (q && *r == q) {
				q = 0;
				r++;
			} else {
				*w++ = *r++;
			}
		}
		if (q)
			return -1;
		if (*r)
			r++;
		*w = '\0';
	}
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* A value of a [group:vars] line: the rest of the line, one pair of
 * surrounding quotes removed. */
static char *unquote(char *v)
{
	size_t l = strlen(v);

	if (l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0]) {
		v[l - 1] = '\0';
		v++;
	}
	return v;
}

static int host_line(inv_build *b, size_t g, char *line, const char *origin, int ln)
{
	char *tok[INI_TOKENS], *colon;
	int n = tokens(line, tok, INI_TOKENS), rc = KF_OK;
	long h;

	if (n < 0)
		return kf_err_set(b->e, KF_EUSAGE, "%s:%d: unterminated quote or too many words",
		                  origin, ln);
	if (n == 0)
		return KF_OK;
	/* "host:port" names the SSH port; kubeferry only needs the name. */
	if ((colon = strchr(tok[0], ':')) && !strchr(colon + 1, ':') &&
	    strspn(colon + 1, "0123456789") == strlen(colon + 1) && colon[1])
		*colon = '\0';
	if ((h = kf_inv_host_at(b, tok[0], origin, ln)) < 0)
		return b->e->code;
	if ((rc = kf_inv_add_host(b, g, (size_t)h)))
		return rc;
	for (int i = 1; i < n && !rc; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq || eq == tok[i])
			return kf_err_set(b->e, KF_EUSAGE, "%s:%d: \"%.64s\" is not key=value",
			                  origin, ln, tok[i]);
		*eq = '\0';
		rc = kf_inv_set(b, &b->hosts[h].vars, tok[i], eq + 1, origin, ln, 1);
	}
	return rc;
}

/* "[name]", "[name:children]", "[name:vars]". */
static int section_line(inv_build *b, char *s, const char *origin, int ln, long *g,
                        enum section *sec)
{
	char *end = strchr(s, ']'), *colon;

	if (!end || trim(end + 1)[0])
		return kf_err_set(b->e, KF_EUSAGE, "%s:%d: malformed section header", origin, ln);
	*end = '\0';
	s = s + 1;
	*sec = S_HOSTS;
	if ((colon = strchr(s, ':'))) {
		*colon++ = '\0';
		if (!strcmp(colon, "children"))
			*sec = S_CHILDREN;
		else if (!strcmp(colon, "vars"))
			*sec = S_VARS;
		else
			return kf_err_set(b->e, KF_EUSAGE, "%s:%d: unknown section kind \":%.32s\" "
			                  "(want :children or :vars)", origin, ln, colon);
	}
	*g = kf_inv_group_at(b, s, origin, ln);
	return *g < 0 ? b->e->code : KF_OK;
}

int kf_inv_parse_ini(inv_build *b, const char *buf, size_t len, const char *origin)
{
	enum section sec = S_HOSTS;
	long g = kf_inv_group_at(b, "ungrouped", origin, 1);
	int rc = KF_OK, ln = 0;
	char line[INI_LINE_MAX];
	size_t off = 0;

	if (g < 0 || kf_inv_group_at(b, "all", origin, 1) < 0)
		return b->e->code;
	while (off < len && !rc) {
		size_t l = strcspn(buf + off, "\n");
		char *s;
		ln++;
		if (l >= sizeof line)
			return kf_err_set(b->e, KF_EUSAGE, "%s:%d: line too long", origin, ln);
		memcpy(line, buf + off, l);
		line[l] = '\0';
		off += l + 1;
		if (memchr(line, '\0', l))
			return kf_err_set(b->e, KF_EUSAGE, "%s:%d: NUL byte", origin, ln);
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			rc = section_line(b, s, origin, ln, &g, &sec);
		} else if (sec == S_HOSTS) {
			rc = host_line(b, (size_t)g, s, origin, ln);
		} else if (sec == S_CHILDREN) {
			long kid = kf_inv_group_at(b, s, origin, ln);
			rc = kid < 0 ? b->e->code : kf_inv_add_child(b, (size_t)g, (size_t)kid);
		} else {
			char *eq = strchr(s, '=');
			if (!eq || eq == s)
				return kf_err_set(b->e, KF_EUSAGE, "%s:%d: \"%.64s\" is not key=value",
				                  origin, ln, s);
			*eq = '\0';
			rc = kf_inv_set(b, &b->groups[g].vars, trim(s), unquote(trim(eq + 1)), origin,
			                ln, 0);
		}
	}
	return rc;
}
