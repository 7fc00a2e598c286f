/*
 * Kubernetes release numbers as bundles and kubeadm write them: "1.33.3"
 * or "v1.33.3" (a "-rc.1" or "+build" suffix is ignored).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

int kfi_version_parse(const char *v, int out[3])
{
	const char *p = v;

	if (!p)
		return -1;
	if (*p == 'v')
		p++;
	for (int i = 0; i < 3; i++) {
		char *end = NULL;
		long n;
		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		n = strtol(p, &end, 10);
		if (errno || n < 0 || n > 100000)
			return -1;
		out[i] = (int)n;
		p = end;
		if (i < 2 && *p++ != '.')
			return -1;
	}
	return *p == '\0' || *p == '-' || *p == '+' ? 0 : -1;
}

int kfi_version_cmp(const char *a, const char *b, int *cmp)
{
	int x[3], y[3];

	if (kfi_version_parse(a, x) != 0 || kfi_version_parse(b, y) != 0)
		return -1;
	*cmp = 0;
	for (int i = 0; i < 3 && !*cmp; i++)
		*cmp = x[i] < y[i] ? -1 : x[i] > y[i];
	return 0;
}
