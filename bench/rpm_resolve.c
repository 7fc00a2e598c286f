/*
 * bench/rpm.sh's driver: load primary metadata into kubeferry's resolver
 * (bundler/rpm/resolve.c) and solve an install request, timing both.
 *   rpm_resolve ARCH RUNS PRIMARY[,PRIMARY...] NAME...
 * Prints "load_ms solve_ms packages bytes" (medians over RUNS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundler/rpm/rpm_int.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double load[64], solve[64];
	size_t npk = 0;
	unsigned long long bytes = 0;
	char *list, *tok, *save = NULL;
	int runs;

	if (argc < 5)
		return 2;
	runs = (int)strtol(argv[2], NULL, 10);
	if (runs < 1 || runs > 64)
		return 2;
	for (int r = 0; r < runs; r++) {
		kf_rpm_solver *s = kf_rpm_solver_new(argv[1]);
		kf_rpm_pkg *p = NULL;
		kf_err e = {0};
		double t0 = now_ms(), t1;

		list = strdup(argv[3]);
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			kf_rpm_repo repo = {.name = "bench", .primary = tok, .primary_href = tok};
			if (kf_rpm_solver_add(s, &repo, &e)) {
				fprintf(stderr, "rpm_resolve: %s\n", e.msg);
				return 3;
			}
		}
		free(list);
		t1 = now_ms();
		if (kf_rpm_solver_solve(s, argv + 4, (size_t)(argc - 4), NULL, 0, &p, &npk, &e)) {
			fprintf(stderr, "rpm_resolve: %s\n", e.msg);
			return 3;
		}
		solve[r] = now_ms() - t1;
		load[r] = t1 - t0;
		bytes = 0;
		for (size_t i = 0; i < npk; i++)
			bytes += p[i].size;
		kf_rpm_pkgs_free(p, npk);
		kf_rpm_solver_free(s);
	}
	qsort(load, (size_t)runs, sizeof *load, dcmp);
	qsort(solve, (size_t)runs, sizeof *solve, dcmp);
	printf("%.1f %.1f %zu %llu\n", load[runs / 2], solve[runs / 2], npk, bytes);
	return 0;
}
