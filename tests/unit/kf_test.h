/*
 * A minimal table-driven unit test harness. Each test file defines
 * KF_TESTS as a list of functions and includes this header last:
 *     static void t_hex(void) { CHECK(...); }
 *     KF_TEST_MAIN(t_hex, t_other)
 * A failed CHECK prints file:line and the expression; the program exits 1
 * when any check failed.
 */
#ifndef KF_TEST_H
#define KF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kf_test_failures;
static int kf_test_checks;

#define CHECK(cond) do { kf_test_checks++; if (!(cond)) { \
	kf_test_failures++; \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} } while (0)
#define CHECK_INT(a, b) do { long long kf_a_ = (a), kf_b_ = (b); \
	kf_test_checks++; if (kf_a_ != kf_b_) { kf_test_failures++; \
	fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, \
	        __LINE__, #a, kf_a_, kf_b_); } } while (0)
#define CHECK_STR(a, b) do { const char *kf_a_ = (a), *kf_b_ = (b); \
	kf_test_checks++; if (!kf_a_ || !kf_b_ || strcmp(kf_a_, kf_b_)) { \
	kf_test_failures++; fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
	__FILE__, __LINE__, #a, kf_a_ ? kf_a_ : "(null)", kf_b_ ? kf_b_ : "(null)"); \
	} } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *kf_h_ = (hay); \
	kf_test_checks++; if (!kf_h_ || !strstr(kf_h_, (needle))) { \
	kf_test_failures++; fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", \
	__FILE__, __LINE__, kf_h_ ? kf_h_ : "(null)", (needle)); } } while (0)

typedef void (*kf_test_fn)(void);

#define KF_TEST_MAIN(...) \
	int main(void) { \
		kf_test_fn tests_[] = { __VA_ARGS__ }; \
		for (size_t i_ = 0; i_ < sizeof tests_ / sizeof tests_[0]; i_++) \
			tests_[i_](); \
		printf("%d checks, %d failed\n", kf_test_checks, kf_test_failures); \
		return kf_test_failures ? 1 : 0; \
	}

#endif
