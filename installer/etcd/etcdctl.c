/*
 * What etcd snapshot and restore need from a node: its /etc/etcd.env (the
 * file apply and `cluster plan` write, Kubespray's variables), the client
 * certificate to talk to it with, and etcd's own tools (etcdctl, and
 * etcdutl from 3.5 on, which took over the offline snapshot commands).
 *
 * The tools are the host's (/usr/local/bin first, where apply installs
 * the bundled ones, then /usr/bin): under --root only files are read from
 * and written to ROOT, nothing is executed from it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "installer/kf_installer.h"

#define ENV_MAX (1u << 16)
#define OUT_MAX (1u << 20)

static const char *const TOOL_DIRS[] = {"/usr/local/bin", "/usr/bin", "/bin", NULL};

int kfi_etcd_tool(const char *name, char *out, size_t n)
{
	for (size_t i = 0; TOOL_DIRS[i]; i++)
		if (kf_strf(out, n, "%s/%s", TOOL_DIRS[i], name) == 0 && access(out, X_OK) == 0)
			return 0;
	out[0] = '\0';
	return -1;
}

/* VALUE with one pair of surrounding double quotes removed. */
static char *env_value(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		return strndup(v + 1, n - 2);
	return strdup(v);
}

static int set_field(kfi_etcd_env *env, const char *key, const char *val)
{
	static const struct {
		const char *key;
		size_t off;
	} fields[] = {
		{"ETCD_NAME", offsetof(kfi_etcd_env, name)},
		{"ETCD_DATA_DIR", offsetof(kfi_etcd_env, data_dir)},
		{"ETCD_ADVERTISE_CLIENT_URLS", offsetof(kfi_etcd_env, client_urls)},
		{"ETCD_INITIAL_ADVERTISE_PEER_URLS", offsetof(kfi_etcd_env, peer_urls)},
		{"ETCD_INITIAL_CLUSTER", offsetof(kfi_etcd_env, initial_cluster)},
		{"ETCD_INITIAL_CLUSTER_TOKEN", offsetof(kfi_etcd_env, cluster_token)},
		{"ETCD_TRUSTED_CA_FILE", offsetof(kfi_etcd_env, ca_file)},
		{"ETCD_CERT_FILE", offsetof(kfi_etcd_env, cert_file)},
		{"ETCD_KEY_FILE", offsetof(kfi_etcd_env, key_file)},
	};

	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		char **slot = (char **)((char *)env + fields[i].off);
		if (strcmp(key, fields[i].key))
			continue;
		free(*slot);
		if (!(*slot = env_value(val)))
			return -1;
	}
	return 0;
}

void kfi_etcd_env_free(kfi_etcd_env *env)
{
	free(env->name);
	free(env->data_dir);
	free(env->client_urls);
	free(env->peer_urls);
	free(env->initial_cluster);
	free(env->cluster_token);
	free(env->ca_file);
	free(env->cert_file);
	free(env->key_file);
	memset(env, 0, sizeof *env);
}

/* A member name goes into file names (snapshots, certificates). */
static int name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 63 || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

int kfi_etcd_env_load(const char *path, kfi_etcd_env *env, kf_err *e)
{
	char *text = NULL, *save = NULL;
	size_t len = 0, lineno = 0;
	int rc;

	memset(env, 0, sizeof *env);
	if ((rc = kf_read_file(path, ENV_MAX, &text, &len, e)) != KF_OK)
		goto out;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *eq;
		lineno++;
		while (*l == ' ' || *l == '\t')
			l++;
		if (!*l || *l == '#')
			continue;
		if (!(eq = strchr(l, '='))) {
			rc = kf_err_set(e, KF_EUSAGE, "%s: a line without '=': %.60s", path, l);
			goto out;
		}
		*eq = '\0';
		if (set_field(env, l, eq + 1) != 0) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
	}
	if (!env->name || !env->data_dir || !env->client_urls || !env->ca_file) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: ETCD_NAME, ETCD_DATA_DIR, "
		                "ETCD_ADVERTISE_CLIENT_URLS and ETCD_TRUSTED_CA_FILE are required", path);
		goto out;
	}
	if (!name_ok(env->name)) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: ETCD_NAME '%s' is not a plain name", path, env->name);
		goto out;
	}
	if (env->data_dir[0] != '/' || strstr(env->data_dir, "..")) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: ETCD_DATA_DIR must be an absolute path without '..'",
		                path);
		goto out;
	}
	if (!env->cluster_token && !(env->cluster_token = strdup("etcd-cluster")))
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	if (rc != KF_OK)
		kfi_etcd_env_free(env);
	free(text);
	return rc;
}

/* host and port of conn->endpoint ("https://" already checked); an IPv6
 * host is [ADDR]. */
static int split_url(kfi_etcd_conn *conn)
{
	const char *h = conn->endpoint + 8, *colon = strrchr(h, ':');
	char *end;
	long port;
	size_t n;

	if (!colon || colon == h)
		return -1;
	n = (size_t)(colon - h);
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= sizeof conn->host)
		return -1;
	memcpy(conn->host, h, n);
	conn->host[n] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || (*end && strcmp(end, "/")) || port <= 0 || port > 65535)
		return -1;
	conn->port = (int)port;
	return 0;
}

int kfi_etcd_client(const kfi_ctx *c, const kfi_etcd_env *env, kfi_etcd_conn *conn, kf_err *e)
{
	char abs[600], dir[512];
	char *p;
	size_t n;

	memset(conn, 0, sizeof *conn);
	/* The first advertised client URL: the member's own. */
	n = strcspn(env->client_urls, ",");
	if (n >= sizeof conn->endpoint || strncmp(env->client_urls, "https://", 8))
		return kf_err_set(e, KF_EUSAGE, "ETCD_ADVERTISE_CLIENT_URLS %s: want https://HOST:PORT",
		                  env->client_urls);
	memcpy(conn->endpoint, env->client_urls, n);
	conn->endpoint[n] = '\0';
	if (split_url(conn) != 0)
		return kf_err_set(e, KF_EUSAGE, "ETCD_ADVERTISE_CLIENT_URLS %s: want https://HOST:PORT",
		                  conn->endpoint);
	p = kfi_path(c, env->ca_file);
	if (kf_strf(conn->ca, sizeof conn->ca, "%s", p) != 0) {
		free(p);
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", env->ca_file);
	}
	free(p);
	/* Kubespray's admin-<name> certificate beside the CA; the member's
	 * own (serverAuth and clientAuth) when there is none. */
	kf_dirname(env->ca_file, dir, sizeof dir);
	if (kf_strf(abs, sizeof abs, "%s/admin-%s.pem", dir, env->name) == 0) {
		p = kfi_path(c, abs);
		if (access(p, R_OK) == 0) {
			int bad = kf_strf(conn->cert, sizeof conn->cert, "%s", p);
			free(p);
			p = NULL;
			if (!bad && kf_strf(abs, sizeof abs, "%s/admin-%s-key.pem", dir, env->name) == 0) {
				p = kfi_path(c, abs);
				bad = kf_strf(conn->key, sizeof conn->key, "%s", p);
			}
			free(p);
			if (!bad)
				return KF_OK;
		} else {
			free(p);
		}
	}
	if (!env->cert_file || !env->key_file)
		return kf_err_set(e, KF_EUSAGE, "no admin-%s.pem beside %s and no ETCD_CERT_FILE/"
		                  "ETCD_KEY_FILE in etcd.env", env->name, env->ca_file);
	p = kfi_path(c, env->cert_file);
	n = (size_t)kf_strf(conn->cert, sizeof conn->cert, "%s", p);
	free(p);
	p = kfi_path(c, env->key_file);
	n |= (size_t)kf_strf(conn->key, sizeof conn->key, "%s", p);
	free(p);
	if (n)
		return kf_err_set(e, KF_EUSAGE, "path too long: %s", env->cert_file);
	return KF_OK;
}

/* Read all of fd into *out (at most OUT_MAX bytes kept). */
static int drain(int fd, kf_buf *out)
{
	char chunk[4096];
	ssize_t r;

	while ((r = read(fd, chunk, sizeof chunk)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (out->len + (size_t)r <= OUT_MAX)
			kf_buf_add(out, chunk, (size_t)r);
	}
	return 0;
}

int kfi_etcd_exec(const char *const argv[], char **out, kf_err *e)
{
	int rc = KF_OK, status = 0, fds[2] = {-1, -1};
	pid_t pid;
	kf_buf b;

	kf_buf_init(&b);
	if (out)
		*out = NULL;
	fflush(stdout);
	fflush(stderr);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		rc = kf_err_errno(e, "cannot create a pipe for", argv[0]);
		goto out;
	}
	if ((pid = fork()) < 0) {
		rc = kf_err_errno(e, "cannot fork for", argv[0]);
		goto out;
	}
	if (pid == 0) {
		/* Output goes to us when captured, else to the terminal's
		 * stderr (etcdctl's progress lines are not ours to print). */
		dup2(out ? fds[1] : 2, 1);
		setenv("ETCDCTL_API", "3", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	fds[1] = -1;
	if (drain(fds[0], &b) != 0)
		rc = kf_err_errno(e, "cannot read the output of", argv[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	if (rc == KF_OK && (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		rc = kf_err_set(e, KF_EIO, "%s %s %s failed (%s %d)", argv[0],
		                argv[1] ? argv[1] : "", argv[1] && argv[2] ? argv[2] : "",
		                WIFEXITED(status) && WEXITSTATUS(status) != 127 ? "exit status"
		                                                                 : "could not run,",
		                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto out;
	}
	if (rc == KF_OK && out && !(*out = kf_buf_take(&b)))
		rc = kf_err_set(e, KF_EIO, "out of memory");
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	kf_buf_free(&b);
	return rc;
}
