/*
 * The inventory as its files declare it: groups with their hosts, child
 * groups and variables, hosts with theirs. Both formats (inventory_yaml.c,
 * inventory_ini.c) and group_vars/ host_vars/ (inventory_vars.c) fill one
 * builder; inventory.c resolves roles and variables from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/inventory_internal.h"

/* Grow *p (n used, *cap allocated) to hold one more element of size sz. */
static int grow(void **p, size_t n, size_t *cap, size_t sz)
{
	void *q;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 8;
	q = realloc(*p, c * sz);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

static int oom(inv_build *b)
{
	return kf_err_set(b->e, KF_EIO, "out of memory reading the inventory");
}

const char *kf_inv_file(inv_build *b, const char *path)
{
	char *s;

	if (grow((void **)&b->files, b->nfiles, &b->capf, sizeof *b->files) ||
	    !(s = strdup(path))) {
		oom(b);
		return NULL;
	}
	b->files[b->nfiles++] = s;
	return s;
}

/* Ansible group names: letters, digits, '_' and '-' (the legacy
 * kube-master); host names are checked as RFC 1123 names later, once we
 * know which hosts belong to the cluster. Either way no byte that could
 * forge a message or a path. */
static int name_ok(const char *s, int group)
{
	if (!*s || strlen(s) > 253)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' || (!group && c == '.')))
			return 0;
	}
	return 1;
}

long kf_inv_group_at(inv_build *b, const char *name, const char *origin, int line)
{
	inv_group *g;

	for (size_t i = 0; i < b->ngroups; i++)
		if (!strcmp(b->groups[i].name, name))
			return (long)i;
	if (!name_ok(name, 1)) {
		kf_err_set(b->e, KF_EUSAGE, "%s:%d: invalid group name \"%.64s\"", origin, line, name);
		return -1;
	}
	if (grow((void **)&b->groups, b->ngroups, &b->capg, sizeof *b->groups)) {
		oom(b);
		return -1;
	}
	g = &b->groups[b->ngroups];
	memset(g, 0, sizeof *g);
	if (!(g->name = strdup(name))) {
		oom(b);
		return -1;
	}
	g->origin = origin;
	g->line = line;
	return (long)b->ngroups++;
}

long kf_inv_host_at(inv_build *b, const char *name, const char *origin, int line)
{
	inv_host *h;

	for (size_t i = 0; i < b->nhosts; i++)
		if (!strcmp(b->hosts[i].name, name))
			return (long)i;
	if (strchr(name, '[')) {
		kf_err_set(b->e, KF_EUSAGE, "%s:%d: host ranges like \"%.64s\" are not supported: "
		           "list each host", origin, line, name);
		return -1;
	}
	if (!name_ok(name, 0)) {
		kf_err_set(b->e, KF_EUSAGE, "%s:%d: invalid host name \"%.64s\"", origin, line, name);
		return -1;
	}
	if (grow((void **)&b->hosts, b->nhosts, &b->capho, sizeof *b->hosts)) {
		oom(b);
		return -1;
	}
	h = &b->hosts[b->nhosts];
	memset(h, 0, sizeof *h);
	if (!(h->name = strdup(name))) {
		oom(b);
		return -1;
	}
	h->origin = origin;
	h->line = line;
	return (long)b->nhosts++;
}

static int add_index(size_t **v, size_t *n, size_t *cap, size_t x)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == x)
			return 0;
	if (grow((void **)v, *n, cap, sizeof **v))
		return -1;
	(*v)[(*n)++] = x;
	return 0;
}

int kf_inv_add_host(inv_build *b, size_t g, size_t h)
{
	inv_group *gr = &b->groups[g];
	return add_index(&gr->hosts, &gr->nhosts, &gr->caph, h) ? oom(b) : KF_OK;
}

int kf_inv_add_child(inv_build *b, size_t g, size_t kid)
{
	inv_group *gr = &b->groups[g];

	if (g == kid)
		return kf_err_set(b->e, KF_EUSAGE, "%s:%d: group %s is its own child",
		                  gr->origin, gr->line, gr->name);
	return add_index(&gr->kids, &gr->nkids, &gr->capk, kid) ? oom(b) : KF_OK;
}

int kf_inv_no_jinja(inv_build *b, const char *value, const char *origin, int line)
{
	if (strstr(value, "{{") || strstr(value, "{%"))
		return kf_err_set(b->e, KF_EUSAGE, "%s:%d: \"%.80s\" needs Jinja to evaluate; "
		                  "kubeferry reads inventories without Ansible: write the value itself",
		                  origin, line, value);
	return KF_OK;
}

int kf_inv_set(inv_build *b, inv_vars *vs, const char *key, const char *value,
               const char *origin, int line, int unique)
{
	inv_var *v = NULL;
	char *k, *val;
	int rc = kf_inv_no_jinja(b, value, origin, line);

	if (rc)
		return rc;
	for (size_t i = 0; i < vs->n; i++)
		if (!strcmp(vs->v[i].key, key)) {
			if (unique)
				return kf_err_set(b->e, KF_EUSAGE, "%s:%d: %s is set again (first at %s:%d)",
				                  origin, line, key, vs->v[i].origin, vs->v[i].line);
			v = &vs->v[i];
		}
	if (!(val = strdup(value)))
		return oom(b);
	if (v) {
		free(v->value);
		v->value = val;
		v->origin = origin;
		v->line = line;
		return KF_OK;
	}
	if (grow((void **)&vs->v, vs->n, &vs->cap, sizeof *vs->v) || !(k = strdup(key))) {
		free(val);
		return oom(b);
	}
	vs->v[vs->n++] = (inv_var){.key = k, .value = val, .origin = origin, .line = line};
	return KF_OK;
}
