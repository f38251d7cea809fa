/*
 * testutil.h: a tiny unit-test harness in the style of nng's NUTS.
 *
 *   static void test_x(void) { PASS(f()); FAIL(g(), HK_ERR_INVALID); }
 *   TEST_LIST = { { "x", test_x }, { NULL, NULL } };
 *   TEST_MAIN
 *
 * Each test runs in order; the first failed assertion prints file:line and
 * hk_strerror() of the result, and the binary exits 1.  `prog NAME` runs one
 * test.  Output ends with "N passed, N failed".
 */
#ifndef HK_TESTUTIL_H
#define HK_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_err.h"

struct hk_test {
	const char *name;
	void (*fn)(void);
};

#define TEST_LIST static const struct hk_test hk_tests[]

#define HK_TFAIL(...)                                           \
	do {                                                    \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fprintf(stderr, "\n");                          \
		exit(1);                                        \
	} while (0)

#define PASS(call)                                                           \
	do {                                                                 \
		int hk_r_ = (call);                                          \
		if (hk_r_ != 0)                                              \
			HK_TFAIL("%s: expected success, got %d (%s)", #call, \
			    hk_r_, hk_strerror(hk_r_));                      \
	} while (0)

#define FAIL(call, want)                                                   \
	do {                                                               \
		int hk_r_ = (call);                                        \
		if (hk_r_ != (want))                                       \
			HK_TFAIL("%s: expected %s, got %d (%s)", #call,    \
			    hk_strerror(want), hk_r_, hk_strerror(hk_r_)); \
	} while (0)

#define TRUE(cond)                                               \
	do {                                                     \
		if (!(cond))                                     \
			HK_TFAIL("assertion failed: %s", #cond); \
	} while (0)

#define EQ_INT(a, b)                                                         \
	do {                                                                 \
		long long hk_a_ = (long long)(a), hk_b_ = (long long)(b);    \
		if (hk_a_ != hk_b_)                                          \
			HK_TFAIL(                                            \
			    "%s == %s: %lld != %lld", #a, #b, hk_a_, hk_b_); \
	} while (0)

#define EQ_STR(a, b)                                                   \
	do {                                                           \
		const char *hk_a_ = (a), *hk_b_ = (b);                 \
		if (hk_a_ == NULL || hk_b_ == NULL ||                  \
		    strcmp(hk_a_, hk_b_) != 0)                         \
			HK_TFAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, \
			    hk_a_ ? hk_a_ : "(null)",                  \
			    hk_b_ ? hk_b_ : "(null)");                 \
	} while (0)

#define TEST_MAIN                                                     \
	int main(int argc, char **argv)                               \
	{                                                             \
		int i, n = 0;                                         \
		for (i = 0; hk_tests[i].name != NULL; i++) {          \
			if (argc > 1 &&                               \
			    strcmp(argv[1], hk_tests[i].name) != 0)   \
				continue;                             \
			fprintf(stderr, "-- %s\n", hk_tests[i].name); \
			hk_tests[i].fn();                             \
			n++;                                          \
		}                                                     \
		printf("%d passed, 0 failed\n", n);                   \
		return n > 0 ? 0 : 1;                                 \
	}

#endif /* HK_TESTUTIL_H */
