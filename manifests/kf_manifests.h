/*
 * manifests: the bundle spec (what the operator asks for) and the lock (what
 * a bundle holds, signed). Both are YAML parsed with libyaml; every error
 * names the file, line and column.
 */
#ifndef KF_MANIFESTS_H
#define KF_MANIFESTS_H

#include <stddef.h>
#include <stdint.h>
#include "keys/kf_keys.h"

#define KF_ARCH_MAX 8
#define KF_FORMAT_VERSION 1
#define KF_LOCK_PATH "kubeferry/bundle.yaml"
#define KF_LOCK_SIG_PATH "kubeferry/bundle.yaml.minisig"
/* Largest lock a reader accepts (it is held in memory). */
#define KF_LOCK_MAX (16u << 20)

/* Install defaults carried from spec to lock to installer. */
typedef struct kf_install {
	char *etcd;            /* "host" (default) or "kubeadm" */
	char *cni;             /* "flannel" (default) */
	char *pod_subnet;      /* default 10.244.0.0/16 */
	char *service_subnet;  /* default 10.96.0.0/12 */
	char *mirror;          /* mirror endpoint for hosts.toml, may be NULL */
	char *kube_proxy_mode; /* "iptables" or "nftables"; NULL: by the node's OS */
} kf_install;

/* ---- spec --------------------------------------------------------------- */

typedef struct kf_spec_component {
	char *name;
	char *version;
	char *url;                       /* template with {version} {arch} */
	char *sha256[KF_ARCH_MAX];       /* indexed like spec->archs */
	int line, col;                   /* where the component starts */
} kf_spec_component;

typedef struct kf_spec_image {
	char *ref;       /* as written: registry.k8s.io/pause:3.10 */
	char *digest;    /* "sha256:<hex>" or NULL */
	int line, col;
} kf_spec_image;

typedef struct kf_spec {
	char *path;            /* the spec file as given */
	char *dir;             /* its directory: base of relative sources */
	char *name, *version, *kube_version;
	char *archs[KF_ARCH_MAX];
	size_t narch;
	kf_spec_component *components;
	size_t ncomp;
	kf_spec_image *images;
	size_t nimg;
	kf_install install;
} kf_spec;

/* Parse and check a spec: unknown keys, wrong types, missing checksums for a
 * listed architecture, duplicate components, bad placeholders, bad hex,
 * not YAML at all. KF_EUSAGE with "FILE:LINE:COL: message". */
int kf_spec_load(const char *path, kf_spec **out, kf_err *e);
void kf_spec_free(kf_spec *s);

/* The component's source for one architecture, placeholders expanded.
 * Caller frees. */
char *kf_spec_source_url(const kf_spec_component *c, const char *arch);

/* Where an upstream URL lives in a bundle: "files/<host>/<path>" for
 * http(s); "files/local/<path>" for file:// and relative paths. NULL (and e
 * set, KF_EUSAGE) for anything that would escape files/ (.., empty
 * segments, query strings). Caller frees. */
char *kf_entry_path_for_url(const char *url, kf_err *e);

/* 1 when arch is one kubeferry knows (amd64, arm64, arm, ppc64le, s390x,
 * riscv64). */
int kf_arch_known(const char *arch);

/* ---- lock ---------------------------------------------------------------- */

typedef struct kf_lock_component {
	char *name, *version, *arch, *url, *sha256, *path;
} kf_lock_component;

typedef struct kf_lock_image {
	char *ref;          /* full reference, e.g. docker.io/library/nginx:1.28 */
	char *digest;       /* index (or manifest) digest "sha256:..." */
	char *platforms[KF_ARCH_MAX]; /* "linux/amd64" ... */
	size_t nplat;
} kf_lock_image;

typedef struct kf_lock_entry {
	char *path;
	uint64_t size;
	unsigned mode;                 /* permission bits, e.g. 0644 */
	char sha256[KF_SHA256_HEX];
} kf_lock_entry;

typedef struct kf_lock {
	int format;                    /* KF_FORMAT_VERSION */
	char *name, *version, *kube_version;
	char *archs[KF_ARCH_MAX];
	size_t narch;
	char *created;                 /* RFC 3339 UTC */
	char *builder;                 /* "kubeferry <version>" */
	kf_lock_component *components;
	size_t ncomp;
	kf_lock_image *images;
	size_t nimg;
	kf_install install;
	kf_lock_entry *entries;        /* sorted by path (strcmp), unique */
	size_t nentries;
} kf_lock;

/* Emit the lock as canonical YAML (fixed key order, entries sorted):
 * identical input gives identical bytes. Sorts l->entries in place. */
int kf_lock_emit(kf_lock *l, char **out, size_t *len, kf_err *e);
/* Parse a lock. Strict: unknown keys, bad hex, unsorted or duplicate
 * entries, unsafe paths (absolute, "..", empty segment, the lock's own
 * paths) are KF_EVERIFY naming origin:line:col. */
int kf_lock_parse(const char *buf, size_t len, const char *origin,
                  kf_lock **out, kf_err *e);
void kf_lock_free(kf_lock *l);
/* Binary search by path; NULL when absent. */
const kf_lock_entry *kf_lock_find(const kf_lock *l, const char *path);
/* Sum of entry sizes. */
uint64_t kf_lock_total_size(const kf_lock *l);

/* 1 when a bundle entry path is safe: relative, no "..", ".", empty
 * segments, backslashes or control characters, at most 1024 bytes. */
int kf_path_safe(const char *path);

/* Deep copy of install defaults, and their release. */
void kf_install_copy(kf_install *dst, const kf_install *src);
void kf_install_clear(kf_install *i);

/* ---- inventory (a Kubespray inventory, unchanged) -------------------------- */

/* What a host is in the cluster (kf_inv_host.roles). */
#define KF_ROLE_ETCD 1u
#define KF_ROLE_CONTROL_PLANE 2u
#define KF_ROLE_WORKER 4u
#define KF_ROLE_MIRROR 8u
#define KF_MIRROR_PORT_DEFAULT 5443

typedef struct kf_inv_host {
	char *name;              /* inventory_hostname: names its share */
	char *node_name;         /* kube_override_hostname, else name */
	char *ip;                /* bind address: ip, else access_ip, else ansible_host */
	char *access_ip;         /* how other hosts reach it: access_ip, else ip */
	char *etcd_member_name;  /* etcd members: etcd_member_name, else etcdN */
	int mirror_port;         /* kubeferry_mirror_port, default 5443 */
	unsigned roles;          /* KF_ROLE_* */
	char *origin;            /* "FILE:LINE" where the host is first named */
} kf_inv_host;

typedef struct kf_inventory {
	char *path;
	kf_inv_host *hosts;      /* hosts of the cluster, in inventory order */
	size_t nhosts;
	/* Indices into hosts, in group order. cp[0] is the first control
	 * plane (kube_control_plane[0]); workers are kube_node hosts that are
	 * not control planes; mirrors default to every control plane. */
	size_t *etcd, netcd, *cp, ncp, *workers, nworkers, *mirrors, nmirrors;
	/* Cluster variables (as the first control plane sees them); NULL
	 * when the inventory leaves them to the bundle's defaults. */
	char *pod_subnet;              /* kube_pods_subnet */
	char *service_subnet;          /* kube_service_addresses */
	char *control_plane_endpoint;  /* kubeferry_control_plane_endpoint or
	                                  loadbalancer_apiserver address:port */
	char *kube_proxy_mode;         /* kube_proxy_mode: iptables, nftables, ipvs */
} kf_inventory;

/* Read a Kubespray inventory: YAML (all.hosts, children, vars) or INI
 * ([group], [group:children], [group:vars], "host key=value"), with
 * group_vars/ and host_vars/ beside it. Groups kube_control_plane (legacy
 * kube-master), kube_node (kube-node), etcd, k8s_cluster and
 * kubeferry_mirror. Refused with KF_EUSAGE and "FILE:LINE: ...": no
 * control plane, an even number (or none) of etcd members, duplicate
 * host, node or member names, duplicate addresses, a host of the cluster
 * without an address, any value holding Jinja ("{{" or "{%"), host names
 * that are not RFC 1123. */
int kf_inventory_load(const char *path, kf_inventory **out, kf_err *e);
void kf_inventory_free(kf_inventory *inv);
/* RFC 1123 host name: labels of 1-63 lowercase letters, digits and inner
 * hyphens, at most 253 characters, not "localhost". */
int kf_hostname_valid(const char *s);
/* An IPv4 or IPv6 address literal. */
int kf_ip_valid(const char *s);

/* One host's share of a cluster plan: DIR/hosts/<name>/host.yaml, as
 * `kubeferry-install cluster plan` writes it. */
typedef struct kf_share {
	char *dir;               /* DIR/hosts/<name>: the share's files */
	char *name, *node_name, *ip, *access_ip;
	char *bundle;            /* "<name>-<version>" the plan was made from */
	char *kube_version;      /* "v1.33.3" */
	char *endpoint;          /* controlPlaneEndpoint HOST:PORT */
	char *etcd_member_name;  /* NULL unless a host etcd member */
	char *mirror_fp;         /* the mirror CA's SHA-256, AB:CD:... */
	char **mirrors;          /* "ADDR:PORT" of every mirror host, in order */
	size_t nmirrors;
	unsigned roles;          /* KF_ROLE_* */
	int first_cp;            /* runs kubeadm init */
	int mirror_port;         /* mirror hosts: the port they serve on */
} kf_share;

/* Read and check DIR/hosts/HOST/host.yaml (KF_EUSAGE naming FILE:LINE:COL
 * on any fault; host must be an RFC 1123 name and the share's own). */
int kf_share_load(const char *plan_dir, const char *host, kf_share **out, kf_err *e);
void kf_share_free(kf_share *s);

#endif
