/*
 * testtoken.h: a throw-away SoftHSM token for the unit tests that need a
 * real one (p11-kit's test-softhsm2 shape): a temp dir with its own
 * softhsm2.conf (SOFTHSM2_CONF is set to it), tokens initialised with
 * softhsm2-util, a PIN file, all removed at exit.  Not thread-safe: call
 * from the test's main thread.
 */
#ifndef HK_TESTTOKEN_H
#define HK_TESTTOKEN_H

#include <stddef.h>
#include <sys/types.h>

#ifndef SOFTHSM_MODULE
#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define TESTTOKEN_SO_PIN "12345678" /* throw-away test tokens only */
#define TESTTOKEN_PIN	 "87654321"

/* Makes the dir and one token per label (NULL-terminated), once; later
 * calls do nothing.  Fails the test on any error. */
void testtoken_setup(const char *const *labels);

/* The dir, and the file holding the tokens' user PIN. */
const char *testtoken_dir(void);
const char *testtoken_pinfile(void);

/* buf gets DIR/name. */
void testtoken_path(char *buf, size_t len, const char *name);

/* Writes text to path with mode. */
void testtoken_write(const char *path, const char *text, mode_t mode);

/* Runs argv (searching PATH) with stdout to outfile (NULL: /dev/null);
 * its exit code, -1 if it could not run or was killed. */
int testtoken_run(char *const argv[], const char *outfile);

#endif /* HK_TESTTOKEN_H */
