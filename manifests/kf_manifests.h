/*
 * manifests: the formats kubeferry reads and writes as data. The bundle spec
 * (what the operator asks for) and the lock (what a bundle holds, signed),
 * both YAML parsed with libyaml, every error naming the file, line and
 * column; and the OCI model (oci.c: image references, digests, the
 * descriptors of manifests and indexes; jansson). Stands on keys/ and
 * base/ only.
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

/* ---- OCI model (oci.c) ---------------------------------------------------- */

/* Media types, exactly as registries send them. */
#define KF_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KF_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define KF_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define KF_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* 1 when a well-formed digest: "sha256:" + 64 lowercase hex. */
int kf_oci_digest_valid(const char *digest);
/* 1 when a repository path ("library/nginx") follows the OCI distribution
 * grammar: [a-z0-9]+ runs joined by '.', '_', '__' or runs of '-', in
 * '/'-separated components, at most 255 bytes. */
int kf_oci_path_valid(const char *s, size_t n);
int kf_oci_name_valid(const char *name);
/* 1 when a tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
int kf_oci_tag_valid(const char *tag);
/* 1 when s[0..n) is a registry host: DNS labels ([A-Za-z0-9], inner '-')
 * or [IPv6], with an optional numeric :port. */
int kf_oci_domain_valid(const char *s, size_t n);
/* Length of the registry host that starts a name ("h:5000/x" -> 6), or 0
 * when the first component is no host (docker's rule: it has a '.', a ':',
 * an upper-case letter, or is "localhost", and a '/' follows). */
size_t kf_oci_domain_len(const char *name);

/* An image reference, normalised as docker and containerd do:
 * "nginx:1.28" is docker.io/library/nginx:1.28. */
typedef struct kf_oci_ref {
	char *registry;    /* as named: "docker.io", "registry.k8s.io", "h:5000" */
	char *repository;  /* "library/nginx", "pause" */
	char *tag;         /* "latest" when neither tag nor digest was given;
	                      NULL when only a digest was */
	char *digest;      /* "sha256:..." from NAME@DIGEST, or NULL */
	char *name;        /* full name: registry/repository[:tag][@digest] */
} kf_oci_ref;

/* Parse any reference (KF_EUSAGE naming it when malformed). */
int kf_oci_ref_parse(const char *s, kf_oci_ref *r, kf_err *e);
void kf_oci_ref_clear(kf_oci_ref *r);
/* 1 when ref is a reference as a spec or lock records it: an explicit
 * registry host, a repository and a tag, no digest (that is a field of its
 * own). Else 0 with *why saying what is wrong. */
int kf_oci_ref_valid(const char *ref, const char **why);

/* One descriptor of an index (manifests[]) or an image manifest (config,
 * layers[]). Strings point into the parsed document and live only during
 * the callback; digest is as written (check it with kf_oci_digest_valid). */
typedef enum {
	KF_OCI_CHILD_MANIFEST,  /* an entry of an index's manifests[] */
	KF_OCI_CHILD_CONFIG,
	KF_OCI_CHILD_LAYER
} kf_oci_role;

typedef struct kf_oci_desc {
	kf_oci_role role;
	size_t index;            /* position in manifests[] or layers[] */
	const char *media_type;  /* NULL when absent */
	const char *digest;      /* NULL when absent or not a string */
	int64_t size;            /* -1 when absent, negative or not an integer */
	const char *os, *arch, *variant;  /* platform, NULL when absent */
	const char *ref_name;    /* io.containerd.image.name, else
	                            org.opencontainers.image.ref.name */
} kf_oci_desc;

/* What the top of the document holds. */
typedef struct kf_oci_shape {
	int index;               /* manifests is an array */
	int config;              /* config is an object */
	int layers;              /* layers is an array */
	char media_type[128];    /* the document's own mediaType, or "" */
} kf_oci_shape;

typedef int (*kf_oci_child_fn)(const kf_oci_desc *d, void *arg, kf_err *e);

/* Walk the descriptors of an index or manifest body in document order
 * (manifests[], then config, then layers[]), calling fn for each (fn may be
 * NULL); a non-zero return from fn stops the walk and is returned. A body
 * that is not a JSON object is KF_EVERIFY. shape (may be NULL) says which
 * lists were there. */
int kf_oci_children(const char *body, size_t len, kf_oci_child_fn fn, void *arg,
                    kf_oci_shape *shape, kf_err *e);

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

/* spec.packages[]: host packages for one distribution release
 * (manifests/spec_packages.c, docs/packages.md). */
typedef struct kf_spec_repo {
	char *name;            /* [a-z0-9][a-z0-9._-]* */
	char *url;             /* repository base URL; {arch} is the RPM arch */
	int line, col;
} kf_spec_repo;

typedef struct kf_spec_pkgset {
	char *distro;          /* as written: rocky-9, rhel-10, almalinux-9 ... */
	char *set;             /* family and major, the bundle's
	                          rpms/<set>/: "el9", "el10" */
	int major;             /* 9 or 10 */
	kf_spec_repo *repos;
	size_t nrepo;
	char *gpgkey_url;      /* the distribution's key, pinned by sha256 */
	char *gpgkey_sha256;
	char **install;        /* "name" or "name = [EPOCH:]VERSION[-RELEASE]" */
	size_t ninstall;
	char **admin;          /* the admin host's set (same forms), resolved on
	                          the same base into its own repository; NULL
	                          when the spec has no admin: */
	size_t nadmin;
	char *base;            /* "none", "minimal", or a file (relative to
	                          the spec's directory) listing one installed
	                          package name per line */
	int line, col;
} kf_spec_pkgset;

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
	kf_spec_pkgset *pkgsets;   /* spec.packages, may be empty */
	size_t npkgset;
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

/* The RPM architecture for a bundle architecture (amd64 -> x86_64, arm64
 * -> aarch64, ppc64le, s390x), or NULL when RHEL-family distributions do
 * not build for it. */
const char *kf_rpm_arch(const char *arch);
/* A repository URL for one bundle architecture: {arch} replaced by the RPM
 * architecture. Caller frees; NULL on out of memory or an unknown arch. */
char *kf_spec_repo_url(const kf_spec_repo *r, const char *arch);
/* The bundle directory of a set's repository: "rpms/el9/x86_64" for the
 * nodes' set, "rpms/el9-admin/x86_64" for the admin host's (its own
 * repository: each dnf sees exactly the closure resolved for its host).
 * 0, or -1 when out does not hold it. */
int kf_rpm_repo_dir(char *out, size_t n, const char *set, const char *rpm_arch, int admin);
/* The set name ("el9") for an os-release ID and VERSION_ID ("rocky",
 * "9.6"): rocky, rhel, almalinux, centos of major 9 or 10. KF_EUSAGE
 * naming the release otherwise. out holds at least 8 bytes. */
int kf_rpm_set_for(const char *id, const char *version_id, char *out,
                   size_t n, kf_err *e);

/* 1 when arch is one kubeferry knows (amd64, arm64, arm, ppc64le, s390x,
 * riscv64). */
int kf_arch_known(const char *arch);

/* Stacked etcd (install.etcd: kubeadm): kubeadm runs KF_KUBEADM_ETCD_REPO:TAG
 * with TAG its SupportedEtcdVersion for the release; kf_kubeadm_etcd_tag
 * gives TAG ("3.5.21-0" for "1.33.3"), NULL for a release kubeferry does
 * not know. kf_spec_load refuses a kubeadm-etcd spec without that image. */
#define KF_KUBEADM_ETCD_REPO "registry.k8s.io/etcd"
const char *kf_kubeadm_etcd_tag(const char *kube_version);

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

/* A host package carried under rpms/<set>/<rpm arch>/ (docs/packages.md). */
typedef struct kf_lock_package {
	char *set;          /* "el9", "el10" */
	char *arch;         /* bundle architecture: amd64 */
	char *name, *epoch, *version, *release;
	char *rpm_arch;     /* x86_64, noarch ... */
	char *sha256;       /* of the .rpm, as the distribution's primary says */
	char *repo;         /* spec repository it came from */
	char *path;         /* its entry: rpms/el9/x86_64/Packages/<file>.rpm */
} kf_lock_package;

typedef struct kf_lock_entry {
	char *path;
	uint64_t size;
	unsigned mode;                 /* permission bits, e.g. 0644 */
	char sha256[KF_SHA256_HEX];
} kf_lock_entry;

/* A delta bundle's base (docs/bundle-format.md, "Delta bundles"): the
 * bundle whose entries a delta leaves out, named by the SHA-256 of that
 * bundle's lock file (kubeferry/bundle.yaml, as signed). */
typedef struct kf_lock_base {
	char *name, *version;
	char lock[KF_SHA256_HEX];
} kf_lock_base;

typedef struct kf_lock {
	int format;                    /* KF_FORMAT_VERSION */
	char *name, *version, *kube_version;
	char *archs[KF_ARCH_MAX];
	size_t narch;
	char *created;                 /* RFC 3339 UTC */
	char *builder;                 /* "kubeferry <version>" */
	int delta;                     /* a delta bundle: base is set */
	kf_lock_base base;
	kf_lock_component *components;
	size_t ncomp;
	kf_lock_image *images;
	size_t nimg;
	kf_install install;
	kf_lock_package *packages;     /* the nodes' set (apply installs it),
	                                  sorted by set, arch, name, rpm_arch */
	size_t npkg;
	kf_lock_package *admin_pkgs;   /* the admin host's set (adminPackages:,
	                                  `host packages --admin`), same order */
	size_t nadmin;
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
/* The entries sorted by sha256 (pointers into l; caller frees the array),
 * for kf_lock_find_sha. NULL when out of memory. */
const kf_lock_entry **kf_lock_sha_index(const kf_lock *l);
/* An entry of l with this sha256 (hex), via an index from
 * kf_lock_sha_index; NULL when none. */
const kf_lock_entry *kf_lock_find_sha(const kf_lock_entry *const *idx, size_t n,
                                      const char *sha256);

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
