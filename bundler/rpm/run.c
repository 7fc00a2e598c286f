/*
 * Running rpm's own tools (rpmkeys, createrepo_c): an argv array through
 * posix_spawn, never a shell, with a small fixed environment so that the
 * operator's ~/.rpmmacros (Debian's points the rpm database into $HOME)
 * and locale cannot change what the tools do or print.
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

#include "bundler/rpm/rpm_int.h"

/* What a tool prints is kept for messages; more is cut off. */
#define OUTPUT_MAX (1u << 20)

int kf_rpm_run(char *const *argv, const char *home, char **output,
               int *status, kf_err *e)
{
	char envhome[4096];
	char *envp[] = {"PATH=/usr/bin:/bin:/usr/sbin:/sbin", envhome, "LC_ALL=C", NULL};
	posix_spawn_file_actions_t fa;
	int pfd[2] = {-1, -1}, rc = KF_OK, have_fa = 0, ws = 0;
	pid_t pid = -1;
	kf_buf out;

	kf_buf_init(&out);
	*status = -1;
	if (output)
		*output = NULL;
	if (kf_strf(envhome, sizeof envhome, "HOME=%s", home))
		return kf_err_set(e, KF_EUSAGE, "home directory path too long: %s", home);
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
