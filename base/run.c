/*
 * Running a helper program and keeping what it prints: an argv array
 * through posix_spawnp, never a shell, with the caller's environment
 * array (rpmkeys, createrepo_c, rpm -q and dnf run with a small fixed one,
 * so that an operator's ~/.rpmmacros and locale cannot change what they do
 * or print).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/kf_base.h"

/* What a tool prints is kept for messages; more is cut off. */
#define OUTPUT_MAX (1u << 20)

int kf_run_capture(char *const *argv, char *const *envp, char **output,
                   int *status, kf_err *e)
{
	posix_spawn_file_actions_t fa;
	int pfd[2] = {-1, -1}, rc = KF_OK, have_fa = 0, ws = 0;
	pid_t pid = -1;
	kf_buf out;

	kf_buf_init(&out);
	*status = -1;
	if (output)
		*output = NULL;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return kf_err_errno(e, "cannot create a pipe for", argv[0]);
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	have_fa = 1;
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
	    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1) ||
	    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2)) {
		rc = kf_err_set(e, KF_EIO, "out of memory");
		goto out;
	}
	errno = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	if (errno != 0) {
		pid = -1;
		rc = kf_err_errno(e, "cannot run", argv[0]);
		goto out;
	}
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		char buf[8192];
		ssize_t r = read(pfd[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out.len < OUTPUT_MAX)
			kf_buf_add(&out, buf, (size_t)r);
	}
out:
	if (pid > 0) {
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
	}
	if (have_fa)
		posix_spawn_file_actions_destroy(&fa);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (!rc && output) {
		kf_buf_adds(&out, "");
		*output = kf_buf_take(&out);
		if (!*output)
			rc = kf_err_set(e, KF_EIO, "out of memory");
	}
	kf_buf_free(&out);
	return rc;
}
