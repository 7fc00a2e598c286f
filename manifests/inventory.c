/*
 * A Kubespray inventory resolved into the cluster kubeferry plans: which
 * hosts are etcd members, control planes, workers and mirrors, in group
 * order, with the few variables the plan needs, each read with Ansible's
 * precedence (inventory group vars by depth < group_vars/all <
 * group_vars/<group> by depth < inventory host vars < host_vars/<host>).
 * Everything an operator could get wrong is refused here, naming the file
 * and line, before the planner writes anything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifests_internal.h"
#include "manifests/inventory_internal.h"

#define GROUP_NEST_MAX 32

typedef struct resolve {
	inv_build *b;
	int *depth;          /* per group: all is 0, top-level groups 1 */
	size_t *order;       /* groups sorted by (depth, name) */
	unsigned char *in;   /* in[g * nhosts + h]: host h is in group g */
} resolve;

int kf_hostname_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0, label = 0;

	if (n == 0 || n > 253 || !strcmp(s, "localhost"))
		return 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') ||
		    (label == 0 && c == '-'))
			return 0;
		label++;
	}
	return 1;
}

int kf_ip_valid(const char *s)
{
	unsigned char buf[16];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

static int oom(kf_err *e)
{
	return kf_err_set(e, KF_EIO, "out of memory reading the inventory");
}

static long group_named(const inv_build *b, const char *name)
{
	for (size_t i = 0; i < b->ngroups; i++)
		if (!strcmp(b->groups[i].name, name))
			return (long)i;
	return -1;
}

/* Mark the hosts of g and of its descendants in row; nest bounds cycles. */
static int mark(resolve *r, size_t g, unsigned char *row, int nest)
{
	const inv_group *gr = &r->b->groups[g];
	int rc = KF_OK;

	if (nest > GROUP_NEST_MAX)
		return kf_err_set(r->b->e, KF_EUSAGE, "%s:%d: group %s: children form a cycle "
		                  "or nest too deeply", gr->origin, gr->line, gr->name);
	for (size_t i = 0; i < gr->nhosts; i++)
		row[gr->hosts[i]] = 1;
	for (size_t i = 0; i < gr->nkids && !rc; i++)
		rc = mark(r, gr->kids[i], row, nest + 1);
	return rc;
}

static resolve *res_sort_ctx;

static int by_depth(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int dx = res_sort_ctx->depth[x], dy = res_sort_ctx->depth[y];
	if (dx != dy)
		return dx < dy ? -1 : 1;
	return strcmp(res_sort_ctx->b->groups[x].name, res_sort_ctx->b->groups[y].name);
}

static int resolve_init(resolve *r, inv_build *b)
{
	size_t ng = b->ngroups, nh = b->nhosts;
	long all = group_named(b, "all");
	int rc = KF_OK, changed = 1;

	r->b = b;
	r->depth = calloc(ng + 1, sizeof *r->depth);
	r->order = calloc(ng + 1, sizeof *r->order);
	r->in = calloc(ng * nh + 1, 1);
	if (!r->depth || !r->order || !r->in)
		return oom(b->e);
	for (size_t g = 0; g < ng; g++)
		r->depth[g] = (long)g == all ? 0 : 1;
	/* Depth: the longest path from all. Relaxation ends within ng rounds
	 * unless the children form a cycle, which mark() reports. */
	for (size_t round = 0; changed && round <= ng; round++) {
		changed = 0;
		for (size_t g = 0; g < ng; g++)
			for (size_t k = 0; k < b->groups[g].nkids; k++) {
				size_t kid = b->groups[g].kids[k];
				if ((long)kid != all && r->depth[kid] < r->depth[g] + 1 &&
				    r->depth[g] + 1 <= GROUP_NEST_MAX + 1) {
					r->depth[kid] = r->depth[g] + 1;
					changed = 1;
				}
			}
	}
	for (size_t g = 0; g < ng && !rc; g++) {
		r->order[g] = g;
		rc = mark(r, g, r->in + g * nh, 0);
		if ((long)g == all)
			memset(r->in + g * nh, 1, nh);
	}
	res_sort_ctx = r;
	qsort(r->order, ng, sizeof *r->order, by_depth);
	res_sort_ctx = NULL;
	return rc;
}

static void resolve_free(resolve *r)
{
	free(r->depth);
	free(r->order);
	free(r->in);
}

static const inv_var *in_vars(const inv_vars *vs, const char *key)
{
	for (size_t i = 0; i < vs->n; i++)
		if (!strcmp(vs->v[i].key, key))
			return &vs->v[i];
	return NULL;
}

/* The variable as Ansible would see it on host h; NULL when unset. */
static const inv_var *lookup(const resolve *r, size_t h, const char *key)
{
	const inv_build *b = r->b;
	const inv_var *v;
	long all = group_named(b, "all");

	if ((v = in_vars(&b->hosts[h].fvars, key)) || (v = in_vars(&b->hosts[h].vars, key)))
		return v;
	for (size_t i = b->ngroups; i-- > 0;) {
		size_t g = r->order[i];
		if ((long)g != all && r->in[g * b->nhosts + h] && (v = in_vars(&b->groups[g].fvars, key)))
			return v;
	}
	if (all >= 0 && (v = in_vars(&b->groups[all].fvars, key)))
		return v;
	for (size_t i = b->ngroups; i-- > 0;) {
		size_t g = r->order[i];
		if (r->in[g * b->nhosts + h] && (v = in_vars(&b->groups[g].vars, key)))
			return v;
	}
	return NULL;
}

/* Append the members of the named group (in group order) to list. */
static int members(const resolve *r, const char *name, size_t *list, size_t *n)
{
	long g = group_named(r->b, name);
	const inv_group *gr;

	if (g < 0)
		return 0;
	gr = &r->b->groups[g];
	/* Own hosts first, then each child's, as Ansible lists them. */
	for (size_t i = 0; i < gr->nhosts; i++) {
		size_t j = 0;
		while (j < *n && list[j] != gr->hosts[i])
			j++;
		if (j == *n)
			list[(*n)++] = gr->hosts[i];
	}
	for (size_t k = 0; k < gr->nkids; k++)
		members(r, r->b->groups[gr->kids[k]].name, list, n);
	return 0;
}

/* "FILE:LINE" of a variable, or of the host when v is NULL. */
static const char *where(const inv_build *b, size_t h, const inv_var *v, char *buf, size_t n)
{
	if (v)
		snprintf(buf, n, "%s:%d", v->origin, v->line);
	else
		snprintf(buf, n, "%s:%d", b->hosts[h].origin, b->hosts[h].line);
	return buf;
}

static int set_str(char **dst, const char *s, kf_err *e)
{
	free(*dst);
	*dst = strdup(s);
	return *dst ? KF_OK : oom(e);
}

/* One host's names, addresses and etcd member name (etcd_index counts
 * from 1 among the etcd members; 0 for other hosts). */
static int resolve_host(const resolve *r, size_t h, size_t etcd_index, kf_inv_host *out)
{
	const inv_build *b = r->b;
	const char *name = b->hosts[h].name;
	const inv_var *ip = lookup(r, h, "ip"), *acc = lookup(r, h, "access_ip");
	const inv_var *ah = lookup(r, h, "ansible_host"), *ov = lookup(r, h, "kube_override_hostname");
	const inv_var *mn = lookup(r, h, "etcd_member_name"), *mp = lookup(r, h, "kubeferry_mirror_port");
	char w[600], dflt[32];
	int rc;

	where(b, h, NULL, w, sizeof w);
	if (!kf_hostname_valid(name))
		return kf_err_set(b->e, KF_EUSAGE, "%s: host name \"%s\" is not an RFC 1123 name "
		                  "(lowercase letters, digits, inner hyphens; labels up to 63)", w, name);
	if ((rc = set_str(&out->origin, w, b->e)) ||
	    (rc = set_str(&out->name, name, b->e)) ||
	    (rc = set_str(&out->node_name, ov ? ov->value : name, b->e)))
		return rc;
	if (ov && !kf_hostname_valid(ov->value))
		return kf_err_set(b->e, KF_EUSAGE, "%s: kube_override_hostname \"%s\" is not an "
		                  "RFC 1123 name", where(b, h, ov, w, sizeof w), ov->value);
	if (ip && !kf_ip_valid(ip->value))
		return kf_err_set(b->e, KF_EUSAGE, "%s: ip \"%s\" is not an IP address",
		                  where(b, h, ip, w, sizeof w), ip->value);
	if (acc && !kf_ip_valid(acc->value))
		return kf_err_set(b->e, KF_EUSAGE, "%s: access_ip \"%s\" is not an IP address",
		                  where(b, h, acc, w, sizeof w), acc->value);
	if (ip || acc || (ah && kf_ip_valid(ah->value))) {
		const char *bind = ip ? ip->value : acc ? acc->value : ah->value;
		if ((rc = set_str(&out->ip, bind, b->e)) ||
		    (rc = set_str(&out->access_ip, acc ? acc->value : bind, b->e)))
			return rc;
	} else {
		return kf_err_set(b->e, KF_EUSAGE, "%s: host %s has no address: set ip (or access_ip, "
		                  "or ansible_host to an IP address)", w, name);
	}
	out->mirror_port = KF_MIRROR_PORT_DEFAULT;
	if (mp) {
		char *end;
		long p;
		errno = 0;
		p = strtol(mp->value, &end, 10);
		if (errno || end == mp->value || *end || p < 1 || p > 65535)
			return kf_err_set(b->e, KF_EUSAGE, "%s: kubeferry_mirror_port \"%s\" is not a port",
			                  where(b, h, mp, w, sizeof w), mp->value);
		out->mirror_port = (int)p;
	}
	if (etcd_index) {
		snprintf(dflt, sizeof dflt, "etcd%zu", etcd_index);
		if (mn && !kf_hostname_valid(mn->value))
			return kf_err_set(b->e, KF_EUSAGE, "%s: etcd_member_name \"%s\" is not an RFC 1123 name",
			                  where(b, h, mn, w, sizeof w), mn->value);
		if ((rc = set_str(&out->etcd_member_name, mn ? mn->value : dflt, b->e)))
			return rc;
	}
	return KF_OK;
}

/* HOST:PORT with a host of name or address characters and a port. */
static int endpoint_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (!colon || colon == s || strlen(s) > 260)
		return 0;
	for (const char *c = s; c < colon; c++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *c))
			return 0;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	return !errno && end != colon + 1 && !*end && p >= 1 && p <= 65535;
}

/* Cluster variables, as the first control plane sees them (Kubespray
 * evaluates them per host; a cluster needs them equal everywhere). */
static int cluster_vars(const resolve *r, size_t h, kf_inventory *inv)
{
	const inv_build *b = r->b;
	const inv_var *pods = lookup(r, h, "kube_pods_subnet");
	const inv_var *svc = lookup(r, h, "kube_service_addresses");
	const inv_var *ep = lookup(r, h, "kubeferry_control_plane_endpoint");
	const inv_var *lba = lookup(r, h, "loadbalancer_apiserver.address");
	const inv_var *lbp = lookup(r, h, "loadbalancer_apiserver.port");
	const inv_var *lbn = lookup(r, h, "apiserver_loadbalancer_domain_name");
	const inv_var *pm = lookup(r, h, "kube_proxy_mode");
	char w[600], buf[300];
	int rc = KF_OK;

	if (pods && !kf_valid_cidr(pods->value))
		return kf_err_set(b->e, KF_EUSAGE, "%s: kube_pods_subnet \"%s\" is not a CIDR",
		                  where(b, h, pods, w, sizeof w), pods->value);
	if (svc && !kf_valid_cidr(svc->value))
		return kf_err_set(b->e, KF_EUSAGE, "%s: kube_service_addresses \"%s\" is not a CIDR",
		                  where(b, h, svc, w, sizeof w), svc->value);
	if (pm && strcmp(pm->value, "iptables") && strcmp(pm->value, "nftables") &&
	    strcmp(pm->value, "ipvs"))
		return kf_err_set(b->e, KF_EUSAGE, "%s: kube_proxy_mode \"%s\" is not iptables, "
		                  "nftables or ipvs", where(b, h, pm, w, sizeof w), pm->value);
	if ((pm && (rc = set_str(&inv->kube_proxy_mode, pm->value, b->e))) ||
	    (pods && (rc = set_str(&inv->pod_subnet, pods->value, b->e))) ||
	    (svc && (rc = set_str(&inv->service_subnet, svc->value, b->e))))
		return rc;
	if (!ep && lba) {
		/* Kubespray's external load balancer: its name (or address) and
		 * port front every API server. */
		if (kf_strf(buf, sizeof buf, "%s:%s", lbn ? lbn->value : lba->value,
		            lbp ? lbp->value : "6443"))
			return kf_err_set(b->e, KF_EUSAGE, "%s: loadbalancer_apiserver too long",
			                  where(b, h, lba, w, sizeof w));
		ep = lba;
	} else if (ep) {
		snprintf(buf, sizeof buf, "%.299s", ep->value);
	}
	if (ep && !endpoint_valid(buf))
		return kf_err_set(b->e, KF_EUSAGE, "%s: control plane endpoint \"%s\" is not HOST:PORT",
		                  where(b, h, ep, w, sizeof w), buf);
	if (ep)
		rc = set_str(&inv->control_plane_endpoint, buf, b->e);
	return rc;
}

/* Two hosts of the cluster with one name or address. */
static int duplicates(const resolve *r, const kf_inventory *inv, const size_t *bidx)
{
	static const char *const what[] = {"node name", "ip", "access_ip", "etcd member name"};
	static const char *const var[] = {"kube_override_hostname", "ip", "access_ip",
	                                  "etcd_member_name"};
	char w[600];

	for (size_t i = 0; i < inv->nhosts; i++)
		for (size_t j = 0; j < i; j++)
			for (int k = 0; k < 4; k++) {
				const kf_inv_host *a = &inv->hosts[j], *c = &inv->hosts[i];
				const char *x = k == 0 ? a->node_name : k == 1 ? a->ip : k == 2 ? a->access_ip : a->etcd_member_name;
				const char *y = k == 0 ? c->node_name : k == 1 ? c->ip : k == 2 ? c->access_ip : c->etcd_member_name;
				if (x && y && !strcmp(x, y))
					return kf_err_set(r->b->e, KF_EUSAGE, "%s: host %s has the same %s %s as "
					                  "host %s (%s)", where(r->b, bidx[i], lookup(r, bidx[i], var[k]),
					                  w, sizeof w), c->name, what[k], y, a->name, a->origin);
			}
	return KF_OK;
}

static int group_where(const inv_build *b, const char *name, const char *path, char *w, size_t n)
{
	long g = group_named(b, name);
	if (g >= 0)
		snprintf(w, n, "%s:%d", b->groups[g].origin, b->groups[g].line);
	else
		snprintf(w, n, "%s:1", path);
	return 0;
}

/* Roles from the groups, then each host, then the checks. */
static int build(inv_build *b, const char *path, kf_inventory *inv)
{
	resolve r = {0};
	size_t nh = b->nhosts, *cp = NULL, *nodes = NULL, *etcd = NULL, *mir = NULL;
	size_t ncp = 0, nnodes = 0, netcd = 0, nmir = 0, *slot = NULL, *bidx = NULL;
	unsigned *roles = NULL;
	char w[600];
	int rc;

	if ((rc = resolve_init(&r, b)))
		goto out;
	cp = calloc(nh + 1, sizeof *cp);
	nodes = calloc(nh + 1, sizeof *nodes);
	etcd = calloc(nh + 1, sizeof *etcd);
	mir = calloc(nh + 1, sizeof *mir);
	slot = calloc(nh + 1, sizeof *slot);
	bidx = calloc(nh + 1, sizeof *bidx);
	roles = calloc(nh + 1, sizeof *roles);
	inv->hosts = calloc(nh + 1, sizeof *inv->hosts);
	inv->cp = calloc(nh + 1, sizeof *inv->cp);
	inv->etcd = calloc(nh + 1, sizeof *inv->etcd);
	inv->workers = calloc(nh + 1, sizeof *inv->workers);
	inv->mirrors = calloc(nh + 1, sizeof *inv->mirrors);
	if (!cp || !nodes || !etcd || !mir || !slot || !bidx || !roles || !inv->hosts ||
	    !inv->cp || !inv->etcd || !inv->workers || !inv->mirrors) {
		rc = oom(b->e);
		goto out;
	}
	/* Kubespray maps the legacy names onto the new groups. */
	members(&r, "kube_control_plane", cp, &ncp);
	members(&r, "kube-master", cp, &ncp);
	members(&r, "kube_node", nodes, &nnodes);
	members(&r, "kube-node", nodes, &nnodes);
	members(&r, "etcd", etcd, &netcd);
	members(&r, "kubeferry_mirror", mir, &nmir);
	if (ncp == 0) {
		group_where(b, "kube_control_plane", path, w, sizeof w);
		rc = kf_err_set(b->e, KF_EUSAGE, "%s: no control plane: the group kube_control_plane "
		                "lists no host", w);
		goto out;
	}
	if (netcd % 2 == 0) {
		group_where(b, "etcd", path, w, sizeof w);
		rc = kf_err_set(b->e, KF_EUSAGE, "%s: the etcd group has %zu members: etcd needs an "
		                "odd number (1, 3, 5...) to keep a quorum", w, netcd);
		goto out;
	}
	if (nmir == 0) {
		memcpy(mir, cp, ncp * sizeof *cp);
		nmir = ncp;
	}
	for (size_t i = 0; i < ncp; i++)
		roles[cp[i]] |= KF_ROLE_CONTROL_PLANE;
	for (size_t i = 0; i < nnodes; i++)
		roles[nodes[i]] |= KF_ROLE_WORKER;
	for (size_t i = 0; i < netcd; i++)
		roles[etcd[i]] |= KF_ROLE_ETCD;
	for (size_t i = 0; i < nmir; i++)
		roles[mir[i]] |= KF_ROLE_MIRROR;
	/* The cluster's hosts, in the order the inventory first names them. */
	for (size_t h = 0; h < nh; h++) {
		size_t ei = 0;
		if (!roles[h])
			continue;
		for (size_t i = 0; i < netcd; i++)
			if (etcd[i] == h)
				ei = i + 1;
		slot[h] = inv->nhosts;
		bidx[inv->nhosts] = h;
		inv->hosts[inv->nhosts].roles = roles[h];
		if ((rc = resolve_host(&r, h, ei, &inv->hosts[inv->nhosts++])))
			goto out;
	}
	for (size_t i = 0; i < ncp; i++)
		inv->cp[inv->ncp++] = slot[cp[i]];
	for (size_t i = 0; i < netcd; i++)
		inv->etcd[inv->netcd++] = slot[etcd[i]];
	for (size_t i = 0; i < nnodes; i++)
		if (!(roles[nodes[i]] & KF_ROLE_CONTROL_PLANE))
			inv->workers[inv->nworkers++] = slot[nodes[i]];
	for (size_t i = 0; i < nmir; i++)
		inv->mirrors[inv->nmirrors++] = slot[mir[i]];
	if ((rc = duplicates(&r, inv, bidx)) == KF_OK)
		rc = cluster_vars(&r, cp[0], inv);
out:
	free(cp);
	free(nodes);
	free(etcd);
	free(mir);
	free(slot);
	free(bidx);
	free(roles);
	resolve_free(&r);
	return rc;
}

/* YAML by name (.yml, .yaml, .json), else INI when the first line that
 * says anything is a section header or a host line. */
static int looks_ini(const char *path, const char *buf)
{
	size_t l = strlen(path);
	const char *s = buf;

	if ((l > 4 && !strcmp(path + l - 4, ".yml")) || (l > 5 && !strcmp(path + l - 5, ".yaml")) ||
	    (l > 5 && !strcmp(path + l - 5, ".json")))
		return 0;
	if (l > 4 && !strcmp(path + l - 4, ".ini"))
		return 1;
	while (*s) {
		size_t n;
		s += strspn(s, " \t\r\n");
		if (*s == '#' || *s == ';') {
			s += strcspn(s, "\n");
			continue;
		}
		n = strcspn(s, "\n");
		/* "all:" or "key: value" is YAML; "[group]" or "host k=v" INI. */
		return *s == '[' || !memchr(s, ':', n) || memchr(s, '=', n);
	}
	return 1;
}

static void build_free(inv_build *b)
{
	for (size_t i = 0; i < b->ngroups; i++) {
		inv_group *g = &b->groups[i];
		inv_vars *vs[2] = {&g->vars, &g->fvars};
		for (int k = 0; k < 2; k++) {
			for (size_t j = 0; j < vs[k]->n; j++) {
				free(vs[k]->v[j].key);
				free(vs[k]->v[j].value);
			}
			free(vs[k]->v);
		}
		free(g->name);
		free(g->hosts);
		free(g->kids);
	}
	for (size_t i = 0; i < b->nhosts; i++) {
		inv_host *h = &b->hosts[i];
		inv_vars *vs[2] = {&h->vars, &h->fvars};
		for (int k = 0; k < 2; k++) {
			for (size_t j = 0; j < vs[k]->n; j++) {
				free(vs[k]->v[j].key);
				free(vs[k]->v[j].value);
			}
			free(vs[k]->v);
		}
		free(h->name);
	}
	for (size_t i = 0; i < b->nfiles; i++)
		free(b->files[i]);
	free(b->groups);
	free(b->hosts);
	free(b->files);
}

void kf_inventory_free(kf_inventory *inv)
{
	if (!inv)
		return;
	for (size_t i = 0; i < inv->nhosts; i++) {
		kf_inv_host *h = &inv->hosts[i];
		free(h->name);
		free(h->node_name);
		free(h->ip);
		free(h->access_ip);
		free(h->etcd_member_name);
		free(h->origin);
	}
	free(inv->hosts);
	free(inv->etcd);
	free(inv->cp);
	free(inv->workers);
	free(inv->mirrors);
	free(inv->pod_subnet);
	free(inv->service_subnet);
	free(inv->control_plane_endpoint);
	free(inv->kube_proxy_mode);
	free(inv->path);
	free(inv);
}

int kf_inventory_load(const char *path, kf_inventory **out, kf_err *e)
{
	inv_build b = {.e = e};
	kf_inventory *inv = calloc(1, sizeof *inv);
	char *buf = NULL, dir[4096];
	const char *origin;
	size_t len;
	int rc;

	*out = NULL;
	if (!inv || !(inv->path = strdup(path))) {
		rc = oom(e);
		goto out;
	}
	if ((rc = kf_read_file(path, 16u << 20, &buf, &len, e)))
		goto out;
	if (!(origin = kf_inv_file(&b, path))) {
		rc = e->code;
		goto out;
	}
	rc = looks_ini(path, buf) ? kf_inv_parse_ini(&b, buf, len, origin)
	                          : kf_inv_parse_yaml(&b, buf, len, origin);
	if (rc)
		goto out;
	kf_dirname(path, dir, sizeof dir);
	if ((rc = kf_inv_read_var_dirs(&b, dir)) || (rc = build(&b, path, inv)))
		goto out;
	*out = inv;
	inv = NULL;
out:
	free(buf);
	build_free(&b);
	kf_inventory_free(inv);
	return rc;
}
