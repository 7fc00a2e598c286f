/*
 * `kubeferry-install cluster plan`: what the files of installer/plan/
 * share. Not part of the installer's header: only the plan's own files
 * (and, for the node paths, the commands that install a share) use it.
 *
 *   plan.c        the command: options, inventory, bundle, order of work
 *   plan_write.c  DIR's files: 0700 directories, write-if-different
 *   plan_pki.c    CAs and leaf certificates (kf_x509_issue), kept on re-runs
 *   plan_shared.c DIR/shared/: token, certificate key, encryption, audit
 *   plan_host.c   DIR/hosts/<name>/: one host's complete share
 *   plan_render.c kubeadm.yaml, etcd.env, host.yaml and plan.yaml texts
 *   share_install.c  on a node: a share's files into place (apply --plan,
 *                 cluster init/join --plan, mirror install --plan)
 *   node_cluster.c   cluster init --plan (files, token and certificate
 *                 refresh) and cluster join --plan
 *   node_mirror.c    mirror install --plan
 */
#ifndef KFI_PLAN_H
#define KFI_PLAN_H

#include <sys/types.h>

#include "installer/kf_installer.h"

/* Where a share's files go on the node. */
#define KFP_ETCD_SSL "/etc/ssl/etcd/ssl"
#define KFP_ETCD_ENV "/etc/etcd.env"
#define KFP_PKI "/etc/kubernetes/pki"
#define KFP_CONF_DIR "/etc/kubernetes/kubeferry"
#define KFP_ENCRYPTION KFP_CONF_DIR "/encryption-config.yaml"
#define KFP_AUDIT_POLICY KFP_CONF_DIR "/audit-policy.yaml"
#define KFP_AUDIT_LOG_DIR "/var/log/kubernetes/audit"
#define KFP_KUBEADM "/etc/kubernetes/kubeadm-config.yaml"
#define KFP_MIRROR_TLS "/var/lib/kubeferry/mirror-tls"
/* The etcd client certificate of every kube-apiserver: one file name on
 * every control plane, so kubeadm's copy of it on join (copycerts) lands
 * where the shared ClusterConfiguration looks. */
#define KFP_ETCD_CLIENT_CRT KFP_PKI "/apiserver-etcd-client.crt"
#define KFP_ETCD_CLIENT_KEY KFP_PKI "/apiserver-etcd-client.key"
#define KFP_ETCD_CA_CRT KFP_PKI "/etcd/ca.crt"

struct x509_st;
struct evp_pkey_st;

typedef struct kfp_plan {
	const char *dir;                 /* -o DIR */
	kf_inventory *inv;
	kf_lock *lock;
	int external_etcd;               /* install.etcd: host */
	const char *pod_subnet, *service_subnet;
	const char *proxy_mode;          /* kube-proxy: the inventory's, the bundle's, iptables */
	char endpoint[300];              /* controlPlaneEndpoint HOST:PORT */
	struct x509_st *ca, *fp_ca, *etcd_ca, *mirror_ca;
	struct evp_pkey_st *ca_key, *fp_key, *etcd_key, *mirror_key;
	char token[24];                  /* [a-z0-9]{6}.[a-z0-9]{16} */
	char certkey[65];                /* 64 hex */
	char hash[KF_SHA256_HEX];        /* discovery: sha256 of the CA's SPKI */
	char mirror_fp[96];              /* mirror CA, AB:CD:... */
	char *cluster_config;            /* the ClusterConfiguration document */
	int written, kept;               /* files written / found as planned */
} kfp_plan;

/* ---- plan_write.c ---- */
/* DIR-relative path into out; KF_EUSAGE when it does not fit. */
int kfp_path(const kfp_plan *p, char *out, size_t n, kf_err *e, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* A directory 0700 (made when missing; a symbolic link is refused). */
int kfp_mkdir(const char *path, kf_err *e);
/* 1 when path is a regular file (not a link). */
int kfp_exists(const char *path);
/* Write path unless it already holds exactly these bytes with this mode
 * (durable write: temporary name, fsync, rename, fsync the directory). */
int kfp_put(kfp_plan *p, const char *path, const void *data, size_t len, mode_t mode,
            kf_err *e);
/* Copy src into dst the same way. */
int kfp_copy(kfp_plan *p, const char *src, const char *dst, mode_t mode, kf_err *e);

/* ---- plan_pki.c ---- */
typedef enum { KFP_RSA, KFP_EC } kfp_keytype;
/* Load the CA crt/key under DIR, or create it when both are missing (one
 * without the other is an error: nothing is replaced behind the
 * operator's back). */
int kfp_ca(kfp_plan *p, const char *crt, const char *key, const char *cn, kfp_keytype t,
           int pathlen0, struct x509_st **x, struct evp_pkey_st **k, kf_err *e);
/* A leaf certificate and key, kept when both exist, the certificate was
 * signed by ca and names exactly the SANs wanted; issued (EC P-256)
 * otherwise. prof->san may be NULL (a client certificate). */
int kfp_leaf(kfp_plan *p, const char *crt, const char *key, const kf_x509_profile *prof,
             struct x509_st *ca, struct evp_pkey_st *cakey, kf_err *e);
/* The service-account key pair kubeadm would make (RSA 2048 sa.key and
 * its public half sa.pub). */
int kfp_sa(kfp_plan *p, const char *key, const char *pub, kf_err *e);
/* Leaf profiles besides etcd's (kfi_etcd_profile): the apiserver's etcd
 * client, the mirror's server certificate. */
kf_x509_profile kfp_client_profile(const char *cn);
kf_x509_profile kfp_mirror_profile(const char *cn, const char *san);

/* ---- plan_shared.c ---- */
int kfp_shared(kfp_plan *p, kf_err *e);

/* ---- plan_host.c ---- */
int kfp_host_share(kfp_plan *p, const kf_inv_host *h, kf_err *e);
/* A re-run over an existing plan keeps its etcd members and its first
 * control plane; KF_EUSAGE naming DIR/plan.yaml otherwise (plan_guard.c). */
int kfp_guard_existing(const kfp_plan *p, kf_err *e);

/* ---- plan_render.c (caller frees; NULL when out of memory) ---- */
char *kfp_render_cluster_config(const kfp_plan *p);
char *kfp_render_kubeadm(const kfp_plan *p, const kf_inv_host *h);
char *kfp_render_etcd_env(const kfp_plan *p, const kf_inv_host *h);
char *kfp_render_host_yaml(const kfp_plan *p, const kf_inv_host *h);
char *kfp_render_plan_yaml(const kfp_plan *p);
/* "ip:port" of the i-th mirror host. */
void kfp_mirror_endpoint(const kfp_plan *p, size_t i, char *out, size_t n);
/* 1 when h is the first control plane. */
int kfp_is_first_cp(const kfp_plan *p, const kf_inv_host *h);

/* ---- share_install.c: a share on its host ---- */
#define KFI_SHARE_ETCD 1u        /* etcd.env, etcd-ssl/ (etcd members) */
#define KFI_SHARE_PKI 2u         /* pki/, encryption and audit (control planes) */
#define KFI_SHARE_KUBEADM 4u     /* kubeadm.yaml (control planes, workers) */
#define KFI_SHARE_MIRROR_TLS 8u  /* mirror-tls/ (mirror hosts) */
/* Install the parts of the share s named by what (those its roles have)
 * at their node paths; *changed (may be NULL) is set when a file was or
 * would be written. */
int kfi_share_install(kfi_ctx *c, const kf_share *s, unsigned what, int *changed, kf_err *e);
/* The share's mirror CA, checked against the fingerprint its host.yaml
 * pins: the one certificate as PEM (caller frees *pem). */
int kfi_share_mirror_ca(const kf_share *s, char **pem, size_t *len, kf_err *e);

/* ---- node_cluster.c, node_mirror.c: the plan on its hosts ---- */
/* The join secrets of a share, from its kubeadm.yaml (token, certificate
 * key for control planes) and pki/ca.crt (discovery hash). */
typedef struct kfi_plan_secrets {
	char token[24];
	char certkey[65];
	char hash[KF_SHA256_HEX];
	char endpoint[300];          /* the API endpoint joins use */
	char proxy_mode[16];         /* the first control plane's kube-proxy mode */
} kfi_plan_secrets;
int kfi_plan_join_secrets(const kf_share *s, kfi_plan_secrets *ps, kf_err *e);
/* The planned PKI, encryption and audit files and kubeadm.yaml in place. */
int kfi_plan_cluster_files(kfi_ctx *c, const kf_share *s, kf_err *e);
/* First control plane: initialised (kubeadm init just ran) records the
 * time; otherwise re-create the planned token and re-upload the
 * certificates when they would have expired. */
int kfi_plan_refresh(kfi_ctx *c, const kf_share *s, const kfi_plan_secrets *ps, int initialised,
                     kf_err *e);
/* The whole of `cluster join --plan` and `mirror install --plan`. */
int kfi_cluster_join_plan(const char *root, const char *plan, const char *host);
/* bundle_dir (a node path) instead of the applied bundle when not NULL:
 * an upgrade serves the new bundle before kubeadm pulls its images. */
int kfi_mirror_install_plan(const char *root, const char *plan, const char *host,
                            const char *bundle_dir);

#endif
