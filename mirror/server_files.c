/*
 * The /files/ tree: a bundle's files/ directory, read-only, so nodes (and
 * Kubespray's files_repo) fetch artifacts from the mirror.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirror/server_int.h"

/* files/<path>: walk component by component from the files/ directory
 * with O_NOFOLLOW, so no symlink, "..", or absolute path leads out. */
void kf_srv_handle_files(reqctx *c, const char *raw)
{
	server *s = c->srv;
	size_t len = 0;
	char *path = evhttp_uridecode(raw, 0, &len), *p, *save = NULL, *tok, *next;
	int dirfd = -1, fd = -1;
	struct stat st;

	if (s->files_fd < 0 || !path || len != strlen(path) || !*path) {
		kf_srv_error(c, path && len != strlen(path) ? 400 : 404,
		          path && len != strlen(path) ? "Bad Request" : "Not Found",
		          "NOT_FOUND", "no such file");
		goto out;
	}
	dirfd = fcntl(s->files_fd, F_DUPFD_CLOEXEC, 0);
	p = path;
	tok = strtok_r(p, "/", &save);
	while (tok) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(tok, "..") || !strcmp(tok, ".")) {
			kf_srv_error(c, 400, "Bad Request", "NAME_INVALID", "path not allowed");
			goto out;
		}
		fd = openat(dirfd, tok, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
		                        (next ? O_DIRECTORY : 0));
		if (fd < 0) {
			kf_srv_error(c, 404, "Not Found", "NOT_FOUND", "no such file");
			goto out;
		}
		close(dirfd);
		dirfd = fd;
		tok = next;
	}
	if (fstat(dirfd, &st) != 0 || !S_ISREG(st.st_mode)) {
		kf_srv_error(c, 404, "Not Found", "NOT_FOUND", "no such file");
		goto out;
	}
	kf_srv_send_fd(c, dirfd, "application/octet-stream", NULL);
	dirfd = -1;
out:
	if (dirfd >= 0)
		close(dirfd);
	free(path);
}
