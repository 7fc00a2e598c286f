/* Passphrases for encrypted secret keys: a file or the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keys/keys_internal.h"

/* Read one line from fd into buf without the line end; -1 on error or
 * when the line does not fit. */
static int read_line(int fd, char *buf, size_t n)
{
	size_t i = 0;

	for (;;) {
		char c;
		ssize_t got = read(fd, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -1;
		if (got == 0 || c == '\n')
			break;
		if (i + 1 >= n)
			return -1;
		buf[i++] = c;
	}
	if (i > 0 && buf[i - 1] == '\r')
		i--;
	buf[i] = '\0';
	return 0;
}

static int from_file(const char *path, char *buf, size_t n, kf_err *e)
{
	int rc = KF_OK;
	char *text = NULL;
	size_t len = 0, end;

	rc = kf_read_file(path, 64 * 1024, &text, &len, e);
	if (rc != KF_OK) {
		kf_err_prefix(e, "KUBEFERRY_PASSPHRASE_FILE");
		goto out;
	}
	end = strcspn(text, "\r\n");
	if (end >= n) {
		rc = kf_err_set(e, KF_EUSAGE, "%s: passphrase longer than %zu bytes", path, n - 1);
		goto out;
	}
	memcpy(buf, text, end);
	buf[end] = '\0';
out:
	if (text)
		OPENSSL_clear_free(text, len + 1);
	return rc;
}

/* Ask on the terminal with echo off; the terminal state is restored. */
static int ask(int fd, const char *prompt, char *buf, size_t n)
{
	struct termios old, quiet;
	int restore = 0, rc;

	if (write(fd, prompt, strlen(prompt)) < 0)
		return -1;
	if (tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		restore = tcsetattr(fd, TCSANOW, &quiet) == 0;
	}
	rc = read_line(fd, buf, n);
	if (restore)
		tcsetattr(fd, TCSANOW, &old);
	return rc;
}

int kf_keys_passphrase(const char *prompt, int confirm, char *buf, size_t n,
                       kf_err *e)
{
	int rc = KF_OK, fd = -1;
	const char *file = getenv("KUBEFERRY_PASSPHRASE_FILE");
	char *again = NULL;

	if (file && *file) {
		rc = from_file(file, buf, n, e);
		goto out;
	}
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = kf_err_set(e, KF_EUSAGE,
		                "no passphrase: set KUBEFERRY_PASSPHRASE_FILE or run on a terminal");
		goto out;
	}
	if (ask(fd, prompt ? prompt : "Passphrase: ", buf, n) != 0) {
		rc = kf_err_set(e, KF_EUSAGE, "cannot read the passphrase from /dev/tty");
		goto out;
	}
	if (confirm) {
		again = OPENSSL_malloc(n);
		if (!again) {
			rc = kf_err_set(e, KF_EIO, "out of memory");
			goto out;
		}
		if (ask(fd, "Passphrase (again): ", again, n) != 0) {
			rc = kf_err_set(e, KF_EUSAGE, "cannot read the passphrase from /dev/tty");
			goto out;
		}
		if (strcmp(buf, again) != 0) {
			rc = kf_err_set(e, KF_EUSAGE, "the two passphrases differ");
			goto out;
		}
	}
out:
	if (rc != KF_OK && n > 0)
		OPENSSL_cleanse(buf, n);
	if (again)
		OPENSSL_clear_free(again, n);
	if (fd >= 0)
		close(fd);
	return rc;
}
