/*
 * HOST:PORT as the options take it (--mirror, --etcd-endpoint): the port
 * is decimal 1-65535 with nothing else, an IPv6 host is in brackets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

int kfi_parse_port(const char *s)
{
	char *end = NULL;
	long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 65535)
		return -1;
	return (int)v;
}

int kfi_split_hostport(const char *in, char *host, size_t n, int *port)
{
	const char *colon = strrchr(in, ':');
	size_t hl;

	if (!colon || colon == in || (*port = kfi_parse_port(colon + 1)) < 0)
		return -1;
	hl = (size_t)(colon - in);
	if (in[0] == '[' && hl >= 2 && in[hl - 1] == ']') { /* [::1]:5000 */
		in++;
		hl -= 2;
	}
	if (hl == 0 || hl >= n)
		return -1;
	memcpy(host, in, hl);
	host[hl] = '\0';
	return 0;
}
