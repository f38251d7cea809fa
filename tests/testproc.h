/*
 * testproc.h: small helpers of the test and benchmark programs (tests/,
 * tests/bench/ and the unit tests): numbers from the command line and
 * figures from /proc.  Thread-safe.
 */
#ifndef HK_TESTPROC_H
#define HK_TESTPROC_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0 with *vp set if s is a whole decimal number in lo..hi, else -1. */
static inline int
hk_test_parse_long(const char *s, long lo, long hi, long *vp)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		return -1;
	}
	*vp = v;
	return 0;
}

/* The figure of field (e.g. "VmRSS:") in /proc/self/status, in KiB; -1 if
 * unknown. */
static inline long
hk_test_status_kib(const char *field)
{
	char   line[256];
	size_t n = strlen(field);
	long   kib = -1;
	FILE  *f;

	if ((f = fopen("/proc/self/status", "r")) == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, n) == 0) {
			kib = strtol(line + n, NULL, 10);
		}
	}
	fclose(f);
	return kib;
}

/* 1 if the mapping of this process that holds p is left out of core
 * dumps ("dd" in its VmFlags in /proc/self/smaps), 0 if not, -1 if no
 * mapping holds it. */
static inline int
hk_test_dontdump(const void *p)
{
	char		   line[512], *end;
	unsigned long long lo, hi, a = (unsigned long long)(size_t)p;
	int		   in = 0, dd = -1;
	FILE		  *f;

	if ((f = fopen("/proc/self/smaps", "r")) == NULL) {
		return -1;
	}
	while (dd == -1 && fgets(line, sizeof(line), f) != NULL) {
		lo = strtoull(line, &end, 16);
		if (end != line && *end == '-') {
			hi = strtoull(end + 1, &end, 16);
			in = a >= lo && a < hi;
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			dd = strstr(line, " dd") != NULL;
		}
	}
	fclose(f);
	return dd;
}

#endif /* HK_TESTPROC_H */
