/*
 * A strict YAML reader on top of libyaml's event API: one document, no
 * aliases, anchors or tags, scalar keys that are unique per mapping, and a
 * 1-based LINE:COL on every node so that errors can point at the fault.
 */
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <yaml.h>

#include "manifests/manifests_internal.h"

/* Deep enough for any spec or lock; a hostile document nested thousands of
 * levels deep is refused instead of exhausting memory or the stack. */
#define YTREE_MAX_DEPTH 64
/* Bounds for input that may be hostile (inspect reads unverified locks):
 * the tree's memory stays proportional to a sane document, and duplicate
 * key checks (linear per key) stay cheap because no schema has big maps. */
#define YTREE_MAX_NODES (1u << 21)
#define YTREE_MAX_MAP_PAIRS 1024

const char *kf_ytree_type_name(kf_ynode_type t)
{
	switch (t) {
	case KF_Y_SCALAR: return "a scalar";
	case KF_Y_SEQ: return "a sequence";
	case KF_Y_MAP: return "a mapping";
	}
	return "?";
}

int kf_ytree_is_null(const kf_ynode *n)
{
	if (!n || n->type != KF_Y_SCALAR || !n->plain)
		return 0;
	return !strcmp(n->value, "") || !strcmp(n->value, "~") ||
	       !strcmp(n->value, "null") || !strcmp(n->value, "Null") ||
	       !strcmp(n->value, "NULL");
}

void kf_ytree_free(kf_ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		kf_ytree_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
}

static kf_ynode *node_new(kf_ynode_type t, const yaml_mark_t *m)
{
	kf_ynode *n = calloc(1, sizeof *n);
	if (n) {
		n->type = t;
		n->line = (int)m->line + 1;
		n->col = (int)m->column + 1;
	}
	return n;
}

static int node_add(kf_ynode *parent, kf_ynode *child)
{
	if ((parent->n & (parent->n - 1)) == 0) {
		/* grow at powers of two */
		size_t cap = parent->n ? parent->n * 2 : 4;
		kf_ynode **p = realloc(parent->items, cap * sizeof *p);
		if (!p)
			return -1;
		parent->items = p;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* A mapping's keys are checked when its value arrives: the key just added
 * (items[n-1] while n is odd) must be a scalar not seen before. */
static int check_key(kf_ynode *map, const char *origin, int code, kf_err *e)
{
	kf_ynode *k = map->items[map->n - 1];
	if (k->type != KF_Y_SCALAR)
		return kf_err_set(e, code, "%s:%d:%d: mapping key must be a scalar, not %s",
		                  origin, k->line, k->col, kf_ytree_type_name(k->type));
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		kf_ynode *o = map->items[i];
		if (o->len == k->len && !memcmp(o->value, k->value, k->len))
			return kf_err_set(e, code, "%s:%d:%d: duplicate key \"%s\" (first at line %d)",
			                  origin, k->line, k->col, k->value, o->line);
	}
	return KF_OK;
}

int kf_ytree_parse(const char *buf, size_t len, const char *origin, int code,
                   kf_ynode **out, kf_err *e)
{
	yaml_parser_t p;
	yaml_event_t ev;
	kf_ynode *stack[YTREE_MAX_DEPTH];
	size_t depth = 0;
	kf_ynode *root = NULL;
	int rc = KF_OK, docs = 0, done = 0, have_ev = 0;
	size_t nodes = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&p))
		return kf_err_set(e, KF_EIO, "%s: out of memory", origin);
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		kf_ynode *n = NULL;
		const yaml_mark_t *m;

		if (!yaml_parser_parse(&p, &ev)) {
			/* libyaml marks are 0-based; problem_mark is where it stopped.
			 * Reader errors (bad encoding, control bytes) carry only a byte
			 * offset, so the line and column are counted here. */
			size_t line = p.problem_mark.line, col = p.problem_mark.column;
			if (p.error == YAML_READER_ERROR) {
				line = col = 0;
				for (size_t i = 0; i < p.problem_offset && i < len; i++) {
					if (buf[i] == '\n') {
						line++;
						col = 0;
					} else {
						col++;
					}
				}
			}
			rc = kf_err_set(e, code, "%s:%zu:%zu: not valid YAML: %s%s%s", origin,
			                line + 1, col + 1, p.problem ? p.problem : "syntax error",
			                p.context ? " " : "", p.context ? p.context : "");
			goto out;
		}
		have_ev = 1;
		m = &ev.start_mark;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				rc = kf_err_set(e, code, "%s:%zu:%zu: more than one YAML document",
				                origin, m->line + 1, m->column + 1);
				goto out;
			}
			break;
		case YAML_ALIAS_EVENT:
			rc = kf_err_set(e, code, "%s:%zu:%zu: YAML aliases are not allowed",
			                origin, m->line + 1, m->column + 1);
			goto out;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const unsigned char *anchor, *tag;
			if (ev.type == YAML_SCALAR_EVENT) {
				anchor = ev.data.scalar.anchor;
				tag = ev.data.scalar.tag;
			} else if (ev.type == YAML_SEQUENCE_START_EVENT) {
				anchor = ev.data.sequence_start.anchor;
				tag = ev.data.sequence_start.tag;
			} else {
				anchor = ev.data.mapping_start.anchor;
				tag = ev.data.mapping_start.tag;
			}
			if (anchor || tag) {
				rc = kf_err_set(e, code, "%s:%zu:%zu: YAML %s are not allowed", origin,
				                m->line + 1, m->column + 1, anchor ? "anchors" : "tags");
				goto out;
			}
			if (++nodes > YTREE_MAX_NODES) {
				rc = kf_err_set(e, code, "%s:%zu:%zu: more than %u YAML nodes",
				                origin, m->line + 1, m->column + 1, YTREE_MAX_NODES);
				goto out;
			}
			n = node_new(ev.type == YAML_SCALAR_EVENT ? KF_Y_SCALAR :
			             ev.type == YAML_SEQUENCE_START_EVENT ? KF_Y_SEQ : KF_Y_MAP, m);
			if (!n)
				goto oom;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->len = ev.data.scalar.length;
				n->value = malloc(n->len + 1);
				if (!n->value) {
					free(n);
					goto oom;
				}
				memcpy(n->value, ev.data.scalar.value, n->len);
				n->value[n->len] = '\0';
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			}
			if (depth == 0) {
				root = n;
			} else {
				/* stack[0..depth-1] holds the open collections:
				 * libyaml balances start and end events. */
				kf_ynode *parent = stack[depth - 1]; // NOLINT(clang-analyzer-core.uninitialized.Assign)
				if (parent->type == KF_Y_MAP &&
				    parent->n >= 2 * YTREE_MAX_MAP_PAIRS) {
					rc = kf_err_set(e, code, "%s:%d:%d: a mapping with more than %d keys",
					                origin, n->line, n->col, YTREE_MAX_MAP_PAIRS);
					kf_ytree_free(n);
					goto out;
				}
				if (node_add(parent, n) != 0) {
					kf_ytree_free(n);
					goto oom;
				}
				if (parent->type == KF_Y_MAP && parent->n % 2 == 0) {
					/* n is a value: its key is items[n-2] */
					parent->n--;
					rc = check_key(parent, origin, code, e);
					parent->n++;
					if (rc)
						goto out;
				}
			}
			/* n is linked into the tree (root or a parent's items),
			 * which out: frees on every path. */
			if (n->type != KF_Y_SCALAR) { // NOLINT(clang-analyzer-unix.Malloc)
				if (depth == YTREE_MAX_DEPTH) {
					rc = kf_err_set(e, code, "%s:%d:%d: nested too deeply",
					                origin, n->line, n->col);
					/* n is in the tree under root, freed at out. */
					goto out; // NOLINT(clang-analyzer-unix.Malloc)
				}
				stack[depth++] = n;
			}
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev); // NOLINT(clang-analyzer-unix.Malloc): as above
		have_ev = 0;
	}
	if (!root) {
		rc = kf_err_set(e, code, "%s:1:1: empty document", origin);
		goto out;
	}
	*out = root;
	root = NULL;
	goto out;
oom:
	rc = kf_err_set(e, KF_EIO, "%s: out of memory", origin);
out:
	if (have_ev)
		yaml_event_delete(&ev);
	yaml_parser_delete(&p);
	kf_ytree_free(root);
	return rc;
}

int kf_ytree_fail(kf_yctx *c, const kf_ynode *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return kf_err_set(c->e, c->code, "%s:%d:%d: %s", c->origin, n->line,
	                  n->col, msg);
}

int kf_ytree_want(kf_yctx *c, const kf_ynode *n, kf_ynode_type t,
                  const char *what)
{
	if (n->type != t)
		return kf_ytree_fail(c, n, "%s must be %s, not %s", what,
		                     kf_ytree_type_name(t), kf_ytree_type_name(n->type));
	return KF_OK;
}

int kf_ytree_key_is(const kf_ynode *k, const char *key)
{
	return strlen(k->value) == k->len && !strcmp(k->value, key);
}

int kf_ytree_str(kf_yctx *c, const kf_ynode *n, const char *what, int printable,
                 char **out)
{
	int rc = kf_ytree_want(c, n, KF_Y_SCALAR, what);
	if (rc)
		return rc;
	if (kf_ytree_is_null(n))
		return kf_ytree_fail(c, n, "%s must not be empty", what);
	if (strlen(n->value) != n->len)
		return kf_ytree_fail(c, n, "%s contains a NUL byte", what);
	for (const unsigned char *p = (const unsigned char *)n->value; printable && *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			return kf_ytree_fail(c, n, "%s contains a control or non-ASCII character", what);
	*out = strdup(n->value);
	if (!*out)
		return kf_err_set(c->e, KF_EIO, "out of memory");
	return KF_OK;
}
