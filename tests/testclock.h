/*
 * testclock.h: the monotonic clock of the test and benchmark programs
 * (the programs in tests/ and tests/bench/).  Thread-safe.
 */
#ifndef HK_TESTCLOCK_H
#define HK_TESTCLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t
hk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in seconds. */
static inline double
hk_now_s(void)
{
	return (double)hk_now_ns() / 1e9;
}

#endif /* HK_TESTCLOCK_H */
