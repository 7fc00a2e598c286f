/*
 * installer: the static kubeferry-install program, what runs on the nodes
 * inside the closed network: verify and unpack a bundle, preflight, apply
 * (host, runtime, mirror, Kubernetes, etcd; installer/apply/), the step
 * engine every change goes through (installer/step/), the node's install
 * state (applied.c), systemd units (units.c), PKI, kubeadm orchestration
 * (cmd_cluster.c), the registry mirror service (cmd_mirror.c), status and
 * reset. This header is shared by the installer's own files and its unit
 * tests only; installer/apply/apply.h and installer/step/step.h are private
 * to their folders.
 *
 * May include: base/, keys/, manifests/, archive/ and mirror/ (the
 * registry server is linked into the installer only). Never bundler/: the
 * installer links no HTTP client.
 */
#ifndef KF_INSTALLER_H
#define KF_INSTALLER_H

#include <stdio.h>

#include "keys/kf_keys.h"
#include "manifests/kf_manifests.h"
#include "archive/kf_archive.h"

/* ---- commands (argv[0] is the command name; return an exit code) ------- */

int kfi_cmd_verify(int argc, char **argv);  /* cmd_unpack.c */
int kfi_cmd_unpack(int argc, char **argv);  /* cmd_unpack.c */
int kfi_cmd_mirror(int argc, char **argv);  /* cmd_mirror.c */
int kfi_cmd_host(int argc, char **argv);    /* cmd_host.c: host packages */
/* `mirror kubespray-vars` (kubespray_vars.c). */
int kfi_cmd_mirror_kubespray_vars(int argc, char **argv);

/* ---- node deployment (engineer "deploy": apply, reset, status, ...) ---- */

int kfi_cmd_apply(int argc, char **argv);     /* cmd_apply.c */
int kfi_cmd_reset(int argc, char **argv);     /* cmd_reset.c */
int kfi_cmd_status(int argc, char **argv);    /* cmd_status.c */
int kfi_cmd_preflight(int argc, char **argv); /* cmd_preflight.c */
int kfi_cmd_cluster(int argc, char **argv);   /* cmd_cluster.c: init, join, restart-control-plane */
int kfi_cmd_cluster_plan(int argc, char **argv); /* plan/plan.c: cluster plan */
int kfi_cmd_renew_certs(int argc, char **argv); /* certs_renew.c: cluster renew-certs */

/* The step engine (installer/step/: journal.c, put.c, run.c, stamp.c,
 * undo.c). Every change to a node goes through it: files
 * are compared first (equal: "ok"), the previous state is recorded once in
 * a journal under ROOT/var/lib/kubeferry/state/ (with a backup copy), then
 * the file is written via a temporary name, fsync, rename, fsync of the
 * directory. Commands run via fork+execvp only on the live system
 * (root "" and not dry_run); otherwise they are printed as "plan". */
typedef struct kfi_ctx {
	char *root;            /* "" for the live system, else the --root DIR */
	int dry_run;
	int live;              /* commands really run */
	int ok, changed, failed;
	char *state_dir;       /* ROOT/var/lib/kubeferry/state */
	char *journal_dir;     /* where the journal and its backups are:
	                          state_dir, or an upgrade's own (step/nested.c) */
	char **jpaths;         /* paths already in the journal */
	size_t njpaths, capj;
} kfi_ctx;

#define KFI_STATE_DIR "/var/lib/kubeferry/state"
#define KFI_UPGRADE_JOURNAL_DIR "/var/lib/kubeferry/upgrade"
#define KFI_BUNDLES_DIR "/var/lib/kubeferry/bundles"

int kfi_ctx_init(kfi_ctx *c, const char *root, int dry_run, kf_err *e);
void kfi_ctx_free(kfi_ctx *c);
/* ROOT + abs (abs starts with '/'). Caller frees; NULL when out of memory. */
char *kfi_path(const kfi_ctx *c, const char *abs);
/* KF_OK when no existing directory between ROOT and abs is a symbolic
 * link (or a non-directory): nothing is read or written through one. */
int kfi_check_parents(const kfi_ctx *c, const char *abs, kf_err *e);
/* Install content at abs. *changed (may be NULL) is set to 1 when the file
 * was (or, in a dry run, would be) written. */
int kfi_put_file(kfi_ctx *c, const char *abs, const void *data, size_t len,
                 unsigned mode, int *changed, kf_err *e);
/* Same, content read from a local file (e.g. inside the unpacked bundle). */
int kfi_put_file_from(kfi_ctx *c, const char *abs, const char *src,
                      unsigned mode, int *changed, kf_err *e);
/* A symbolic link abs -> target (unit enablement, masking). */
int kfi_put_link(kfi_ctx *c, const char *abs, const char *target,
                 int *changed, kf_err *e);
/* Record that a systemd unit was enabled, so that reset stops it. */
int kfi_journal_unit(kfi_ctx *c, const char *unit, kf_err *e);
/* Run a command that changes the node (live), or print it as planned. */
int kfi_run(kfi_ctx *c, const char *const argv[], kf_err *e);
/* Same, but a failure is only a warning naming hint (what to do): for
 * kernel tunables that a container or an unusual kernel may refuse. */
int kfi_run_soft(kfi_ctx *c, const char *const argv[], const char *hint);
/* Run a probe on the live system; its exit status, or -1 when it could
 * not run. Output is discarded. */
int kfi_probe(const char *const argv[]);
/* Same, with its standard output (at most n-1 bytes) in out. */
int kfi_probe_out(const char *const argv[], char *out, size_t n);
/* Every command (kfi_run, kfi_probe) runs with KFI_BIN_PATH ahead of the
 * caller's PATH: sudo's secure_path lacks /usr/local/bin, where apply
 * installs kubeadm, kubelet, kubectl and crictl, and kubeadm finds kubelet
 * through PATH. kfi_set_bin_path replaces those directories (tests point
 * them at a stand-in's directory); NULL restores the default. */
#define KFI_BIN_PATH "/usr/local/sbin:/usr/local/bin"
void kfi_set_bin_path(const char *dirs);
/* Undo everything in the journal (newest first) and remove the journal
 * directory (for apply's journal: the whole state). */
int kfi_journal_undo(kfi_ctx *c, kf_err *e);
/* An upgrade's own journal (step/nested.c): like kfi_ctx_init, but every
 * change is journaled in ROOT/var/lib/kubeferry/upgrade, so that a failed
 * upgrade undoes exactly what it replaced (the previous bundle's files
 * come back) and nothing apply did. Units apply enabled stay recorded only
 * in apply's journal. kfi_journal_commit folds the upgrade's records into
 * apply's journal once the upgrade succeeded (reset still undoes both)
 * and removes the upgrade's directory. */
int kfi_ctx_init_upgrade(kfi_ctx *c, const char *root, int dry_run, kf_err *e);
int kfi_journal_commit(kfi_ctx *c, kf_err *e);
/* Like kfi_run, with the command's standard output and error in out (at
 * most n-1 bytes), also when it fails. */
int kfi_run_out(kfi_ctx *c, const char *const argv[], char *out, size_t n, kf_err *e);

/* Stop this node's control-plane containers through crictl; kubelet starts
 * them again with the files they mount (certs_renew.c). Planned under
 * --root. */
int kfi_restart_control_plane(kfi_ctx *c, kf_err *e);

/* systemd units (units.c). 1 on the live node with systemd as PID 1. */
int kfi_systemd_running(const kfi_ctx *c);
/* /etc/systemd/system/NAME with text; with target, enabled as
 * TARGET.wants/NAME (the link `systemctl enable` makes, so it works under
 * --root) and journaled so that reset disables it. *changed (may be NULL)
 * gets |= 1 when the unit or its link changed. */
int kfi_unit_install(kfi_ctx *c, const char *name, const char *text, const char *target,
                     int *changed, kf_err *e);
/* On the live node: daemon-reload when reload, restart when restart, else
 * start unless active; elsewhere all of it is planned. A warning, not an
 * error, when the live node has no systemd. */
int kfi_unit_start(kfi_ctx *c, const char *name, int reload, int restart, kf_err *e);
/* A copy of this very binary at KFI_SELF, where units can run it. */
#define KFI_SELF "/usr/local/bin/kubeferry-install"
int kfi_install_self(kfi_ctx *c, kf_err *e);

/* The node's install state (applied.c). apply writes "applied"; cluster,
 * mirror install and status read it. Fields are NULL when absent; mirror
 * and mirror_fp when the node was applied without --mirror. */
typedef struct kfi_applied {
	char *path;                  /* the state file (set by load) */
	char *bundle;                /* NAME-VERSION */
	char *kube_version, *role, *host, *ip, *arch;
	char *bundle_dir;            /* without the --root prefix */
	char *mirror, *mirror_fp;
	char *proxy_mode;            /* kube-proxy mode chosen for the node */
	char *selinux;               /* enforcing | permissive (NULL: older state) */
} kfi_applied;
int kfi_applied_write(const kfi_ctx *c, const kfi_applied *a, kf_err *e);
/* KF_OK; KF_EUSAGE ("run apply first") when there is no state; KF_EIO when
 * bundle_dir, role, host or ip is missing (a is filled as far as it goes).
 * Free with kfi_applied_free either way. */
int kfi_applied_load(const kfi_ctx *c, kfi_applied *a, kf_err *e);
void kfi_applied_free(kfi_applied *a);
/* The applied bundle's verified lock, kept beside its unpacked tree
 * (BUNDLE_DIR.bundle.yaml), or NULL. */
kf_lock *kfi_applied_lock(const kfi_ctx *c, const kfi_applied *st);
/* The context under root and this node's applied state: how cluster and
 * mirror install start. *ctx_ok is set once c must be freed. */
int kfi_node_open(const char *root, kfi_ctx *c, int *ctx_ok, kfi_applied *s, kf_err *e);
/* kubeferry-mirror.service running `mirror serve BUNDLE_DIR SERVE_ARGS`
 * (cmd_mirror.c), read-only but for rw_path (may be NULL); by names the
 * command that writes it. Caller frees; NULL when out of memory. */
char *kfi_mirror_unit(const char *by, const char *bundle_dir, const char *serve_args,
                      const char *rw_path);
/* mirror install's record of what it serves (ADDR:PORT, CA fingerprint). */
int kfi_mirror_state_write(kfi_ctx *c, const char *mirror, const char *fp, kf_err *e);
/* KF_OK with both (caller frees), -1 when there is no complete record. */
int kfi_mirror_state_load(const kfi_ctx *c, char **mirror, char **fp);

/* Kubernetes versions (versions.c): "1.33.3" or "v1.33.3" into
 * {major, minor, patch}; -1 when malformed. */
int kfi_version_parse(const char *v, int out[3]);
/* *cmp < 0, 0 or > 0 as a is older, the same or newer than b; -1 when
 * either is malformed. */
int kfi_version_cmp(const char *a, const char *b, int *cmp);

/* HOST:PORT (hostport.c). The port 1-65535, decimal only, else -1. */
int kfi_parse_port(const char *s);
/* HOST (without IPv6 brackets) into host[n] and the port; -1 when
 * malformed or the host does not fit. */
int kfi_split_hostport(const char *in, char *host, size_t n, int *port);

/* The node's system (hostos.c), read under the root: ROOT/etc/os-release
 * and the kernel release from ROOT/proc/sys/kernel/osrelease (uname(2)
 * when the root has no such file). */
typedef struct kfi_os {
	int found;                 /* an os-release was read */
	char id[64], like[128], version_id[64];
	int major;                 /* VERSION_ID's leading number */
	int el;                    /* 9 or 10 on the RHEL family, else 0 */
	char kernel[128];          /* e.g. 6.12.0-55.el10.x86_64 */
} kfi_os;
void kfi_os_probe(const char *root, kfi_os *os);
/* kube-proxy's mode for this node: the bundle's install.kubeProxyMode when
 * set, else nftables on EL10 and later, iptables elsewhere. */
const char *kfi_proxy_mode(const kfi_os *os, const kf_lock *lk);

/* Upstream .tar.gz archives (extract.c): every regular file whose path,
 * after dropping strip leading components (and a leading "./"), is a single
 * name (one of names[], or when names is NULL any with an execute bit:
 * programs, not LICENSE or README) is installed into
 * dest_dir with mode. Returns the number installed via *count. */
int kfi_tar_install(kfi_ctx *c, const char *tgz, const char *tgz_sha256, int strip,
                    const char *const *names, const char *dest_dir,
                    unsigned mode, int *count, kf_err *e);
/* Write an OCI image layout directory as one uncompressed tar (what
 * `ctr images import` reads), via a temporary name. */
int kfi_oci_tar(const char *layout, const char *out_path, kf_err *e);
/* Same as kfi_put_file_from for a source whose sha256 is known (from the
 * lock): a re-run finds the file as it left it (stamp) and skips reading. */
int kfi_put_file_from_sum(kfi_ctx *c, const char *abs, const char *src,
                          const char *sha256, unsigned mode, int *changed,
                          kf_err *e);
/* KF_OK when the SHA-256 of data (or, when data is NULL, of the file
 * what) is sha256 (hex, "sha256:" prefix allowed); else KF_EVERIFY naming
 * what. */
int kfi_check_sha256(const char *what, const void *data, size_t len,
                     const char *sha256, kf_err *e);
/* Stamps (step/stamp.c): what apply installed from a source with a known digest,
 * with each file's size, inode, mode and ctime. When every file still
 * matches, the re-run reports them "ok" without decompressing or reading
 * anything; any difference falls back to the full comparison. */
int kfi_stamp_match(kfi_ctx *c, const char *key);
void kfi_stamp_write(kfi_ctx *c, const char *key, char *const *abs, size_t n);

/* Generated configuration (render.c). Caller frees the strings. */
char *kfi_render_containerd(const char *containerd_version,
                            const char *sandbox_image);
char *kfi_render_etcd_env(const char *host, const char *ip);

/* kubeadm bootstrap tokens (token.c): a random [a-z0-9]{6}.[a-z0-9]{16}
 * into out (0; -1 when the random generator fails), and the check. */
int kfi_token_random(char out[24]);
int kfi_token_valid(const char *t);

/* kubeadm configuration (kubeadm.k8s.io/v1beta4) for `cluster init`. */
typedef struct kfi_kubeadm_opts {
	const char *kube_version;        /* "1.33.3" or "v1.33.3" */
	const char *node_name, *advertise_ip;
	const char *control_plane_endpoint; /* HOST:PORT */
	const char *pod_subnet, *service_subnet;
	const char *token;               /* [a-z0-9]{6}.[a-z0-9]{16} */
	const char *certificate_key;     /* 64 hex: --upload-certs key */
	int external_etcd;               /* etcd: host */
	const char *proxy_mode;          /* kube-proxy: iptables (NULL) or nftables */
	const char *etcd_endpoint;       /* https://IP:2379 */
	const char *etcd_ca, *etcd_cert, *etcd_key;
} kfi_kubeadm_opts;
char *kfi_render_kubeadm(const kfi_kubeadm_opts *o);
/* Pieces shared by cluster init, cluster join and `cluster plan`
 * (plan/plan_render.c): the InitConfiguration's kind, bootstrap token,
 * certificate key and localAPIEndpoint; the JoinConfiguration's kind and
 * discovery (CA pinned by ca_cert_hash "sha256:HEX") and a control
 * plane's part; a nodeRegistration with node-ip; and "---" plus the
 * KubeletConfiguration and KubeProxyConfiguration (mode: proxy_mode, NULL
 * for iptables) documents. */
void kfi_kubeadm_init_head(kf_buf *b, const char *token, const char *certkey,
                           const char *advertise_ip);
void kfi_kubeadm_join_head(kf_buf *b, const char *api_server, const char *token,
                           const char *ca_cert_hash);
void kfi_kubeadm_join_control_plane(kf_buf *b, const char *advertise_ip, const char *certkey);
void kfi_kubeadm_node_registration(kf_buf *b, const char *name, const char *node_ip);
void kfi_kubeadm_kubelet_proxy(kf_buf *b, const char *pod_subnet, const char *proxy_mode);
/* JoinConfiguration (v1beta4) for `cluster join`; certificate_key set for
 * a control plane (it then advertises node_ip). */
typedef struct kfi_join_opts {
	const char *api_server;          /* HOST:PORT */
	const char *token, *ca_cert_hash; /* sha256:HEX */
	const char *node_name, *node_ip;
	const char *certificate_key;     /* NULL for a worker */
} kfi_join_opts;
char *kfi_render_kubeadm_join(const kfi_join_opts *o);
/* flannel for kube-proxy's nftables mode: manifest with "EnableNFTables":
 * true added to its net-conf.json, in *out (caller frees). 1 when done, 0
 * when manifest is no flannel manifest (or already says it), -1 when out
 * of memory. */
int kfi_flannel_nft(const char *manifest, char **out);

/* What the CAs and the etcd certificates carry (pki.c; `cluster plan`
 * issues from the same profiles). */
kf_x509_profile kfi_ca_profile(const char *cn, int pathlen0);
kf_x509_profile kfi_etcd_profile(const char *cn, const char *san);
/* etcd PKI (pki.c), Kubespray layout under dir (ROOT/etc/ssl/etcd/ssl). */
int kfi_etcd_pki(kfi_ctx *c, const char *dir_abs, const char *host,
                 const char *const *ips, size_t nip, kf_err *e);
/* Re-issue each member-, admin- and node- certificate in dir (ROOT/dir)
 * that expires within `within` days from the same CA (dir/ca.pem,
 * ca-key.pem), with its key, subject and SANs, for 10 years; *renewed is
 * set when one was. KF_EUSAGE when one is due and the CA key is absent. */
int kfi_etcd_renew(kfi_ctx *c, const char *dir, int within, int *renewed, kf_err *e);
/* A CA (cert_abs/key_abs, RSA 2048, 10 years) unless both exist. */
int kfi_ensure_ca(kfi_ctx *c, const char *cert_abs, const char *key_abs,
                  const char *cn, kf_err *e);
/* kubeadm's discovery hash: SHA-256 of the CA's SubjectPublicKeyInfo. */
int kfi_ca_cert_hash(const char *cert_path, char out[KF_SHA256_HEX], kf_err *e);
/* GET /health over TLS with a client certificate (tlscheck.c). */
int kfi_etcd_health(const char *host, int port, const char *ca,
                    const char *cert, const char *key, kf_err *e);
/* Connect to a mirror over TLS and return (PEM) the certificate of its
 * chain whose SHA-256 fingerprint is fingerprint ("sha256:HEX", HEX, or
 * colon-separated HEX): trust on first use made safe by the pin. */
int kfi_mirror_ca(const char *host, int port, const char *fingerprint,
                  char **pem, size_t *len, kf_err *e);
/* Same for a CA file carried by hand: the first certificate in it must
 * have the pinned fingerprint and be a CA; *pem holds that one only. */
int kfi_mirror_ca_file(const char *path, const char *fingerprint, char **pem,
                       size_t *len, kf_err *e);
/* Normalise a fingerprint to 64 lowercase hex digits; -1 when malformed. */
int kfi_fingerprint_norm(const char *in, char out[KF_SHA256_HEX]);

/* Out of memory (step/put.c): nothing in the installer aborts. Functions
 * that return a new string return NULL when memory runs out; their
 * callers turn that into KF_EIO "out of memory" (kfi_oom) up the stack.
 * vasprintf into a new string, NULL when out of memory. */
char *kfi_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kf_err_set(e, KF_EIO, "out of memory"); returns KF_EIO. */
int kfi_oom(kf_err *e);

/* Host packages (hostpkgs.c, docs/packages.md): the bundle's set for this
 * node's release, what rpm says is missing, dnf installing it from the
 * unpacked bundle with gpgcheck on. The same for the admin host's set
 * (adminPackages:, `host packages --admin`). */
typedef struct kfi_pkgset {
	const char *what;       /* "host packages" or "admin packages": messages */
	char set[8];            /* "el9"; "" when the bundle carries no packages */
	char release[160];      /* "rocky 9.6": the node's os-release */
	const char *rpm_arch;   /* x86_64 ... */
	char **names;           /* the set's package names for this arch */
	size_t n;
	char *repo_dir;         /* BUNDLE/rpms/<set>[-admin]/<rpm arch> */
	int foreign;            /* a Debian or Ubuntu node: RPMs do not apply */
} kfi_pkgset;
/* ID and VERSION_ID of ROOT/etc/os-release ("" when absent). */
void kfi_os_release(const char *root, char *id, size_t idn, char *ver, size_t vern);
/* The set for the host under root: the nodes' (admin 0: the lock's
 * packages) or the admin host's (admin 1: adminPackages); KF_OK with an
 * empty set when the bundle carries none; KF_EUSAGE with the fix when it
 * has none for this release or architecture. */
int kfi_pkgset_pick(const char *root, const kf_lock *l, const char *bundle_dir,
                    const char *arch, int admin, kfi_pkgset *ps, kf_err *e);
void kfi_pkgset_free(kfi_pkgset *ps);
/* Names of the set that rpm -q (under c->root) does not find. */
int kfi_pkg_missing(const kfi_ctx *c, const kfi_pkgset *ps, char ***missing,
                    size_t *nmiss, kf_err *e);
/* dnf's argv for installing names from the set's repository only, with
 * gpgcheck on and the bundle's key; --installroot under --root. */
int kfi_pkg_dnf_argv(const kfi_ctx *c, const kfi_pkgset *ps, const char *conf,
                     char *const *names, size_t n, char ***argv_out);
/* The step: "ok" when nothing is missing, else dnf installs the missing
 * ones ("changed" with the list); a dry run prints the dnf command. */
int kfi_pkg_install(kfi_ctx *c, const kfi_pkgset *ps, kf_err *e);
/* Record the set in the state directory; reset names it (and leaves the
 * packages installed: kfi_pkg_report_kept). */
int kfi_pkg_record(const kfi_ctx *c, const kfi_pkgset *ps, kf_err *e);
void kfi_pkg_report_kept(const kfi_ctx *c);
/* The bundle package (in set and arch) that provides a host tool, or NULL. */
const char *kfi_pkg_for_tool(const kf_lock *l, const char *set, const char *arch,
                             const char *tool);
/* The names in dir that keep() accepts (never "." or dot files), sorted
 * by strcmp; a missing dir is an empty list (listdir.c). */
int kfi_dir_names(const char *dir, int (*keep)(const char *name), char ***out, size_t *n,
                  kf_err *e);
void kfi_names_free(char **names, size_t n);

/* ---- certificate expiry (certs.c) --------------------------------------- */

#define KFI_CERT_WARN_DAYS 30
typedef struct kfi_cert_summary {
	int ok, warn, expired, unreadable;
} kfi_cert_summary;
/* Print every kubeadm certificate (pki/, pki/etcd/, the kubeconfigs'
 * client certificates) and host etcd certificate under ROOT with its
 * expiry, as of now, and count them in s. */
int kfi_certs_report(const kfi_ctx *c, time_t now, kfi_cert_summary *s, kf_err *e);

/* ---- etcd lifecycle (installer/etcd/, cmd_etcd.c) ---------------------- */

int kfi_cmd_etcd(int argc, char **argv);      /* cmd_etcd.c: snapshot, restore */

/* What snapshot and restore read from a member's etcd.env (etcdctl.c).
 * Paths are the node's (absolute, without --root). */
typedef struct kfi_etcd_env {
	char *name, *data_dir, *client_urls, *peer_urls;
	char *initial_cluster, *cluster_token;  /* token defaults to etcd's own */
	char *ca_file, *cert_file, *key_file;
} kfi_etcd_env;
int kfi_etcd_env_load(const char *path, kfi_etcd_env *env, kf_err *e);
void kfi_etcd_env_free(kfi_etcd_env *env);
/* How to reach a member as a client: its first advertised client URL, the
 * CA, and admin-<name>.pem beside the CA (else the member certificate),
 * all under ROOT. */
typedef struct kfi_etcd_conn {
	char endpoint[256];    /* https://HOST:PORT */
	char host[256];
	int port;
	char ca[1024], cert[1024], key[1024];
} kfi_etcd_conn;
int kfi_etcd_client(const kfi_ctx *c, const kfi_etcd_env *env, kfi_etcd_conn *conn, kf_err *e);
/* The host's NAME (etcdctl, etcdutl) in /usr/local/bin, /usr/bin, /bin
 * into out; -1 (out "") when there is none. */
int kfi_etcd_tool(const char *name, char *out, size_t n);
/* Run an etcd tool (argv[0] a path) with ETCDCTL_API=3. With out, its
 * standard output is captured there (caller frees), else it goes to our
 * stderr. Non-zero exit is KF_EIO naming the tool and subcommand. */
int kfi_etcd_exec(const char *const argv[], char **out, kf_err *e);
/* Snapshots (etcd/snapshot.c). */
typedef struct kfi_snapshot_opts {
	const char *dir;      /* node path, default KFI_SNAPSHOT_DIR */
	long keep;            /* newest kept, default 7 */
	const char *env_path; /* node path of etcd.env, default /etc/etcd.env */
} kfi_snapshot_opts;
#define KFI_SNAPSHOT_DIR "/var/lib/kubeferry/etcd-snapshots"
int kfi_etcd_snapshot(kfi_ctx *c, const kfi_snapshot_opts *o, kf_err *e);
/* kubeferry-etcd-snapshot.service and .timer (daily, keep newest keep in
 * dir, NULL: the default), enabled and started (etcd/timer.c). */
int kfi_etcd_snapshot_timer(kfi_ctx *c, long keep, const char *dir, kf_err *e);
/* Restore (etcd/restore.c). */
typedef struct kfi_restore_opts {
	const char *snapshot;  /* a file with SNAPSHOT.sha256 beside it */
	const char *env_file;  /* a real path (a plan's hosts/NAME/etcd.env), or NULL:
	                        * ROOT/etc/etcd.env */
	int no_start;          /* leave etcd stopped (several members at once) */
} kfi_restore_opts;
int kfi_etcd_restore(kfi_ctx *c, const kfi_restore_opts *o, kf_err *e);

/* ---- upgrades (installer/upgrade/, apply/upgrade.c, cmd_upgrade.c) ------ */
int kfi_cmd_upgrade(int argc, char **argv);
/* A node name: an RFC 1123 name in lowercase, not localhost (apply/probe.c). */
int kfi_node_name_valid(const char *h);
/* apply's option parser and steps for upgrade apply (the first control
 * plane: kubeadm upgrade apply) and upgrade node (kubeadm upgrade node);
 * argv[0] is the subcommand (cmd_apply.c). */
#define KFI_UP_APPLY 1
#define KFI_UP_NODE 2
int kfi_apply_upgrade_main(int argc, char **argv, int mode);
void kfi_upgrade_usage(FILE *f, const char *sub);  /* cmd_upgrade.c */

/* What runs on one node ("" where unknown). */
typedef struct kfi_up_node {
	char name[256];
	int control_plane;
	char apiserver[64], kubelet[64], containerd[64], etcd[64];
} kfi_up_node;
typedef struct kfi_up_state {
	kfi_up_node *nodes;
	size_t n;
	char source[64];      /* where the versions were read */
	char server[64];      /* the API server's version as kubectl version
	                         reports it (a worker's kubelet.conf), or "" */
} kfi_up_state;
/* What the bundle carries: kube_version, kubeadm's version, containerd's
 * and (host etcd only, else NULL) etcd's. */
typedef struct kfi_up_target {
	const char *kube, *kubeadm, *containerd, *etcd;
} kfi_up_target;
typedef struct kfi_up_verdict {
	int allowed;          /* the move may go ahead */
	int nothing;          /* allowed, and every node runs the target already */
	char reason[768];     /* the first refusal and what to do first */
} kfi_up_verdict;
/* The skew policy (upgrade/skew.c): prints the node-by-node table to tab
 * (may be NULL) and decides. */
void kfi_upgrade_judge(const kfi_up_state *s, const kfi_up_target *t, FILE *tab,
                       kfi_up_verdict *v);
/* The target of a lock. */
void kfi_upgrade_target(const kf_lock *lk, const char *arch, kfi_up_target *t);
/* Upstream support facts (upgrade/support.c): 1 supported, 0 not (why
 * says so), -1 unknown (why says what is unknown). */
int kfi_support_containerd(int kube_minor, const char *version, char *why, size_t n);
int kfi_support_etcd(int kube_minor, const char *version, char *why, size_t n);
/* What runs (upgrade/observe.c): every node as the API server reports it
 * (live, with admin.conf), and this node (self) from its own binaries and
 * static pod manifest, or under --root from the applied lock. */
int kfi_upgrade_observe(const kfi_ctx *c, const char *self, const kf_lock *applied,
                        kfi_up_state *s, kf_err *e);
void kfi_upgrade_state_free(kfi_up_state *s);
/* The node of that name in s, added (all fields "") when absent; NULL
 * with e set when out of memory. */
kfi_up_node *kfi_upgrade_node(kfi_up_state *s, const char *name, kf_err *e);
/* The API server's gitVersion as `kubectl --kubeconfig FILE version -o
 * json` reports it (live only); 0, or -1 when it cannot be read. */
int kfi_kubectl_server_version(const char *kubeconfig, char *out, size_t n);
extern const char kfi_kubectl_nodes_columns[], kfi_kubectl_apiserver_columns[];
/* kubectl drain (with a timeout; a PodDisruptionBudget that blocks it is
 * reported with the pod's name) and uncordon, with admin.conf
 * (upgrade/kubectl.c). */
int kfi_kubectl_drain(kfi_ctx *c, const char *node, int timeout_s, kf_err *e);
int kfi_kubectl_uncordon(kfi_ctx *c, const char *node, kf_err *e);

#endif
