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

/* fork + execvp with an argument vector: nothing is ever parsed by a
 * shell. quiet sends the child's output to /dev/null. */
static int spawn(const char *const argv[], int quiet)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_RDWR);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
	return -1;
}

int kfi_run(kfi_ctx *c, const char *const argv[], kf_err *e)
{
	int st, rc = KF_OK;

	if (!c->live) {
		print_argv("plan", argv);
		goto out;
	}
	st = spawn(argv, 0);
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
	return spawn(argv, 1);
}
