/*
 * Commands through the step engine: run on the live system (fork + execvp
 * of an argument vector, never a shell), printed as "plan" elsewhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "installer/step/step.h"

static void print_argv(const char *tag, const char *const argv[])
{
	printf("%-8s run", tag);
	for (size_t i = 0; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("\n");
	fflush(stdout);
}

static const char *bin_path = KFI_BIN_PATH;

void kfi_set_bin_path(const char *dirs)
{
	bin_path = dirs ? dirs : KFI_BIN_PATH;
}

/* The PATH a command runs with: the installer's own directories first,
 * then the caller's (or the usual system ones). sudo's secure_path has no
 * /usr/local/bin, and kubeadm looks up kubelet (and crictl, ...) on PATH,
 * so what apply installed must be found whoever started the installer. */
static char *child_path(void)
{
	const char *cur = getenv("PATH");

	if (!cur || !*cur)
		cur = "/usr/sbin:/usr/bin:/sbin:/bin";
	return kfi_strf("%s:%s", bin_path, cur);
}

/* fork + execvp with an argument vector: nothing is ever parsed by a
 * shell. quiet sends the child's output to /dev/null; out (when not NULL)
 * receives up to n-1 bytes of its standard output (and of its standard
 * error too when both), NUL-terminated. */
static int spawn(const char *const argv[], int quiet, char *out, size_t n, int both)
{
	int status = 0, pfd[2] = {-1, -1};
	char *path = child_path();
	pid_t pid;

	if (!path || (out && pipe2(pfd, O_CLOEXEC) != 0)) {
		free(path);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		free(path);
		if (out) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_RDWR);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		if (out)
			dup2(pfd[1], 1);
		if (out && both)
			dup2(pfd[1], 2);
		setenv("PATH", path, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	free(path);
	if (out) {
		size_t got = 0;
		ssize_t r;
		close(pfd[1]);
		while ((r = read(pfd[0], out + got, n - 1 - got)) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				break;
			got += (size_t)r;
			if (got == n - 1) {
				char sink[256]; /* the rest is read and dropped */
				while (read(pfd[0], sink, sizeof sink) > 0)
					;
				break;
			}
		}
		out[got] = '\0';
		close(pfd[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
	return -1;
}

/* A command that changes the node: run (its output to out when n > 0,
 * else to ours) on the live system, planned elsewhere. */
static int run_cmd(kfi_ctx *c, const char *const argv[], char *out, size_t n, kf_err *e)
{
	int st, rc = KF_OK;

	if (n)
		out[0] = '\0';
	if (!c->live) {
		print_argv("plan", argv);
		goto out;
	}
	st = spawn(argv, 0, n ? out : NULL, n, n > 0);
	if (st != 0) {
		rc = kf_err_set(e, KF_EIO, "command %s failed (%s %d)", argv[0],
		                st < 0 ? "could not run," : "exit status", st);
		goto out;
	}
	c->changed++;
	print_argv("changed", argv);
out:
	return rc;
}

int kfi_run(kfi_ctx *c, const char *const argv[], kf_err *e)
{
	return run_cmd(c, argv, NULL, 0, e);
}

int kfi_run_soft(kfi_ctx *c, const char *const argv[], const char *hint)
{
	kf_err e = {0};

	if (kfi_run(c, argv, &e) != KF_OK) {
		printf("%-8s %s (%s)\n", "warn", e.msg, hint);
		fflush(stdout);
	}
	return KF_OK;
}

int kfi_probe(const char *const argv[])
{
	return spawn(argv, 1, NULL, 0, 0);
}

int kfi_probe_out(const char *const argv[], char *out, size_t n)
{
	if (n == 0)
		return -1;
	out[0] = '\0';
	return spawn(argv, 1, out, n, 0);
}

int kfi_run_out(kfi_ctx *c, const char *const argv[], char *out, size_t n, kf_err *e)
{
	return n ? run_cmd(c, argv, out, n, e) : kf_err_set(e, KF_EIO, "no room for %s's output", argv[0]);
}
