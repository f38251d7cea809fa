/*
 * client_testlib.h: what the client's two unit-test programs share (a
 * secret, a temporary directory, running the CLI in process).  Tests only.
 */
#ifndef HK_CLIENT_TESTLIB_H
#define HK_CLIENT_TESTLIB_H

#include <stdint.h>

/* The test secret: 32 bytes 0x01..0x20, and its base64. */
#define SECRET_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
extern const uint8_t secret[32];

/* The test's temporary directory (setup() makes it, teardown() removes
 * it). */
extern char tmpdir[256];
void	    setup(void);
void	    teardown(void);

/* Writes content to tmpdir/name (mode 0600); returns its path, valid until
 * the next call. */
const char *tmpfile_with(const char *name, const char *content);

/* CLOCK_MONOTONIC in ms. */
long long mono_ms(void);

/* Runs the CLI in process, stdout and stderr silenced; its exit code. */
int run_cli(const char *a0, ...);
/* The same with its stdout in *outp (caller frees). */
int run_cli_out(char **outp, const char *a0, ...);

#endif /* HK_CLIENT_TESTLIB_H */
