/*
 * testhooks.c: the hooks of hsmkeyd-hooked (see testhooks.h).  Compiled
 * only with -Dtest_hooks=true, into the test binary alone.
 *
 *   HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark  no client lookup, MAC,
 *       clock, nonce or grant checks and no reply MAC (auth benchmark)
 *   HSMKEYD_TEST_PUBLIC_OBJECTS=yes  versions made as hsmkey 0.1 made them
 *       (a public key object each, no public key in the record)
 */
#ifndef HK_TEST_HOOKS
#error "testhooks.c is built only with -Dtest_hooks=true"
#endif

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "testhooks.h"

static int skip_auth;
static int public_objects;

static int
env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v != NULL && strcmp(v, value) == 0;
}

void
testhooks_init(void)
{
	skip_auth = env_is("HSMKEYD_BENCH_SKIP_AUTH", "yes-i-am-a-benchmark");
	public_objects = env_is("HSMKEYD_TEST_PUBLIC_OBJECTS", "yes");
	log_warnx("this is hsmkeyd-hooked, a test build: never run it in "
		  "production");
	if (skip_auth) {
		log_warnx("AUTHENTICATION IS OFF (benchmark switch)");
	}
}

int
testhooks_skip_auth(void)
{
	return skip_auth;
}

int
testhooks_public_objects(void)
{
	return public_objects;
}
