/*
 * Internals of the Kubespray inventory reader (inventory*.c): the groups,
 * hosts and variables as the two file formats and group_vars/ host_vars/
 * declare them, before roles are resolved. Not part of the public
 * contract: other modules use kf_manifests.h only.
 */
#ifndef KF_INVENTORY_INTERNAL_H
#define KF_INVENTORY_INTERNAL_H

#include <stddef.h>
#include "manifests/kf_manifests.h"

/* One variable as written: where it was set, for messages. origin points
 * into the builder's file list and lives as long as the builder. */
typedef struct inv_var {
	char *key, *value;
	const char *origin;
	int line;
} inv_var;

typedef struct inv_vars {
	inv_var *v;
	size_t n, cap;
} inv_vars;

typedef struct inv_group {
	char *name;
	size_t *hosts, nhosts, caph;        /* host indices, order of appearance */
	size_t *kids, nkids, capk;          /* child group indices */
	inv_vars vars;                      /* from the inventory file */
	inv_vars fvars;                     /* from group_vars/NAME */
	const char *origin;
	int line;                           /* first mention */
} inv_group;

typedef struct inv_host {
	char *name;
	inv_vars vars;                      /* from the inventory file */
	inv_vars fvars;                     /* from host_vars/NAME */
	const char *origin;
	int line;
} inv_host;

typedef struct inv_build {
	inv_group *groups;
	size_t ngroups, capg;
	inv_host *hosts;
	size_t nhosts, capho;
	char **files;                       /* every file read: origins */
	size_t nfiles, capf;
	kf_err *e;
} inv_build;

/* A copy of path kept for messages; NULL when out of memory (e set). */
const char *kf_inv_file(inv_build *b, const char *path);
/* Index of the group or host of that name, created when new; -1 when out
 * of memory or the name is invalid (e set, naming origin:line). */
long kf_inv_group_at(inv_build *b, const char *name, const char *origin, int line);
long kf_inv_host_at(inv_build *b, const char *name, const char *origin, int line);
int kf_inv_add_host(inv_build *b, size_t g, size_t h);
int kf_inv_add_child(inv_build *b, size_t g, size_t kid);
/* Set key=value in vs. With unique, a key already set in vs is refused
 * (a host or group defined twice with the same variable). Every value is
 * checked for Jinja first. */
int kf_inv_set(inv_build *b, inv_vars *vs, const char *key, const char *value,
               const char *origin, int line, int unique);
/* KF_EUSAGE naming origin:line when a value needs Jinja to evaluate. */
int kf_inv_no_jinja(inv_build *b, const char *value, const char *origin, int line);

/* The two inventory formats, and group_vars/ host_vars/ (YAML files). */
int kf_inv_parse_yaml(inv_build *b, const char *buf, size_t len, const char *origin);
int kf_inv_parse_ini(inv_build *b, const char *buf, size_t len, const char *origin);
/* Variables of one group_vars or host_vars file into vs. */
int kf_inv_parse_vars_file(inv_build *b, const char *path, inv_vars *vs);
/* group_vars/ and host_vars/ beside the inventory file (dir). */
int kf_inv_read_var_dirs(inv_build *b, const char *dir);

#endif
