/* Sorted directory listings for the files the installer scans (certificate
 * directories, snapshot directories). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "installer/kf_installer.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kfi_dir_names(const char *dir, int (*keep)(const char *name), char ***out, size_t *nout,
                  kf_err *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = KF_OK;

	*out = NULL;
	*nout = 0;
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? KF_OK : kf_err_errno(e, "cannot list", dir);
	while (rc == KF_OK && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !keep(de->d_name))
			continue;
		if (n == cap) {
			char **g = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
			if (!g) {
				rc = kf_err_set(e, KF_EIO, "out of memory");
				break;
			}
			names = g;
		}
		if (!(names[n] = strdup(de->d_name)))
			rc = kf_err_set(e, KF_EIO, "out of memory");
		else
			n++;
	}
	closedir(d);
	if (rc != KF_OK) {
		kfi_names_free(names, n);
		return rc;
	}
	if (n)
		qsort(names, n, sizeof *names, by_name);
	*out = names;
	*nout = n;
	return KF_OK;
}

void kfi_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
