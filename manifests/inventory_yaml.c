/*
 * The YAML form of an Ansible inventory, as Kubespray's samples write it:
 *
 *   all:
 *     hosts:   {node1: {ansible_host: ..., ip: ...}, ...}
 *     children:
 *       kube_control_plane: {hosts: {node1: }}
 *       k8s_cluster: {children: {kube_control_plane: , kube_node: }}
 *     vars:    {key: value}
 *
 * and the variable files of group_vars/ and host_vars/ (a mapping of
 * variables). Nested mappings in a variable are flattened one level
 * ("loadbalancer_apiserver.port"); every scalar anywhere is checked for
 * Jinja, whether kubeferry reads it or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"
#include "manifests/inventory_internal.h"

#define GROUP_DEPTH_MAX 32

static int fail(inv_build *b, const char *origin, const kf_ynode *n, const char *what)
{
	return kf_err_set(b->e, KF_EUSAGE, "%s:%d: %s", origin, n->line, what);
}

/* Every scalar below n, for the Jinja check. */
static int no_jinja_tree(inv_build *b, const kf_ynode *n, const char *origin)
{
	int rc = KF_OK;

	if (n->type == KF_Y_SCALAR)
		return kf_inv_no_jinja(b, n->value, origin, n->line);
	for (size_t i = 0; i < n->n && !rc; i++)
		rc = no_jinja_tree(b, n->items[i], origin);
	return rc;
}

static const char *scalar_text(const kf_ynode *n)
{
	return kf_ytree_is_null(n) ? "" : n->value;
}

/* A mapping of variables into vs. */
static int vars_map(inv_build *b, const kf_ynode *m, inv_vars *vs, const char *origin,
                    int unique)
{
	int rc = KF_OK;
	char key[512];

	if (kf_ytree_is_null(m))
		return KF_OK;
	if (m->type != KF_Y_MAP)
		return fail(b, origin, m, "variables must be a mapping");
	for (size_t i = 0; i + 1 < m->n && !rc; i += 2) {
		const kf_ynode *k = m->items[i], *v = m->items[i + 1];
		if ((rc = no_jinja_tree(b, v, origin)))
			break;
		if (v->type == KF_Y_SCALAR) {
			rc = kf_inv_set(b, vs, k->value, scalar_text(v), origin, v->line, unique);
			continue;
		}
		for (size_t j = 0; v->type == KF_Y_MAP && j + 1 < v->n && !rc; j += 2) {
			const kf_ynode *sk = v->items[j], *sv = v->items[j + 1];
			if (sv->type != KF_Y_SCALAR)
				continue;
			if (kf_strf(key, sizeof key, "%s.%s", k->value, sk->value))
				return fail(b, origin, sk, "variable name too long");
			rc = kf_inv_set(b, vs, key, scalar_text(sv), origin, sv->line, unique);
		}
	}
	return rc;
}

static int group_node(inv_build *b, size_t g, const kf_ynode *n, const char *origin,
                      int depth);

static int hosts_map(inv_build *b, size_t g, const kf_ynode *m, const char *origin)
{
	int rc = KF_OK;

	if (kf_ytree_is_null(m))
		return KF_OK;
	if (m->type != KF_Y_MAP)
		return fail(b, origin, m, "hosts must be a mapping of host names");
	for (size_t i = 0; i + 1 < m->n && !rc; i += 2) {
		const kf_ynode *k = m->items[i];
		long h = kf_inv_host_at(b, k->value, origin, k->line);
		if (h < 0)
			return b->e->code;
		if ((rc = kf_inv_add_host(b, g, (size_t)h)) == KF_OK)
			/* The same variable given to one host twice in the inventory
			 * is a conflicting definition, not an override. */
			rc = vars_map(b, m->items[i + 1], &b->hosts[h].vars, origin, 1);
	}
	return rc;
}

static int children_map(inv_build *b, size_t g, const kf_ynode *m, const char *origin,
                        int depth)
{
	int rc = KF_OK;

	if (kf_ytree_is_null(m))
		return KF_OK;
	if (m->type != KF_Y_MAP)
		return fail(b, origin, m, "children must be a mapping of group names");
	for (size_t i = 0; i + 1 < m->n && !rc; i += 2) {
		const kf_ynode *k = m->items[i];
		long kid = kf_inv_group_at(b, k->value, origin, k->line);
		if (kid < 0)
			return b->e->code;
		if ((rc = kf_inv_add_child(b, g, (size_t)kid)) == KF_OK)
			rc = group_node(b, (size_t)kid, m->items[i + 1], origin, depth + 1);
	}
	return rc;
}

static int group_node(inv_build *b, size_t g, const kf_ynode *n, const char *origin,
                      int depth)
{
	int rc = KF_OK;

	if (depth > GROUP_DEPTH_MAX)
		return fail(b, origin, n, "groups nested too deeply");
	if (kf_ytree_is_null(n))
		return KF_OK;
	if (n->type != KF_Y_MAP)
		return fail(b, origin, n, "a group must be a mapping (hosts, children, vars)");
	for (size_t i = 0; i + 1 < n->n && !rc; i += 2) {
		const kf_ynode *k = n->items[i], *v = n->items[i + 1];
		if (kf_ytree_key_is(k, "hosts"))
			rc = hosts_map(b, g, v, origin);
		else if (kf_ytree_key_is(k, "children"))
			rc = children_map(b, g, v, origin, depth);
		else if (kf_ytree_key_is(k, "vars"))
			rc = vars_map(b, v, &b->groups[g].vars, origin, 0);
		else
			rc = kf_err_set(b->e, KF_EUSAGE, "%s:%d: unknown key \"%.64s\" in group %s "
			                "(want hosts, children or vars)", origin, k->line, k->value,
			                b->groups[g].name);
	}
	return rc;
}

int kf_inv_parse_yaml(inv_build *b, const char *buf, size_t len, const char *origin)
{
	kf_ynode *root = NULL;
	int rc = kf_ytree_parse(buf, len, origin, KF_EUSAGE, &root, b->e);
	long all;

	if (rc)
		goto out;
	if (root->type != KF_Y_MAP) {
		rc = fail(b, origin, root, "an inventory is a mapping of groups (all: ...)");
		goto out;
	}
	if ((all = kf_inv_group_at(b, "all", origin, root->line)) < 0) {
		rc = b->e->code;
		goto out;
	}
	/* Top-level groups other than all are its children, as in Ansible. */
	for (size_t i = 0; i + 1 < root->n && !rc; i += 2) {
		const kf_ynode *k = root->items[i];
		long g = kf_inv_group_at(b, k->value, origin, k->line);
		if (g < 0) {
			rc = b->e->code;
			break;
		}
		if (g != all && (rc = kf_inv_add_child(b, (size_t)all, (size_t)g)))
			break;
		rc = group_node(b, (size_t)g, root->items[i + 1], origin, 0);
	}
out:
	kf_ytree_free(root);
	return rc;
}

/* Only blank lines, comments and document markers: Ansible reads such a
 * file as no variables, libyaml as no document at all. */
static int yaml_blank(const char *s)
{
	while (*s) {
		s += strspn(s, " \t\r");
		if (*s == '#' || !strncmp(s, "---", 3))
			s += strcspn(s, "\n");
		else if (*s && *s != '\n')
			return 0;
		if (*s)
			s++;
	}
	return 1;
}

int kf_inv_parse_vars_file(inv_build *b, const char *path, inv_vars *vs)
{
	char *buf = NULL;
	size_t len;
	kf_ynode *root = NULL;
	const char *origin = kf_inv_file(b, path);
	int rc;

	if (!origin)
		return b->e->code;
	if ((rc = kf_read_file(path, 16u << 20, &buf, &len, b->e)))
		goto out;
	if (yaml_blank(buf))
		goto out;
	if ((rc = kf_ytree_parse(buf, len, origin, KF_EUSAGE, &root, b->e)))
		goto out;
	rc = vars_map(b, root, vs, origin, 0);
out:
	kf_ytree_free(root);
	free(buf);
	return rc;
}
