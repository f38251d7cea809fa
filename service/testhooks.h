/*
 * testhooks.h: the only switches the tests and benchmarks have inside
 * hsmkeyd.  They exist only in a build configured with -Dtest_hooks=true,
 * and then only in the binary hsmkeyd-hooked (tests/, never installed):
 * there they read the environment once, in testhooks_init().
 *
 * In every other build each hook is a constant and the code behind it is
 * compiled out: a shipped hsmkeyd has no path that skips authentication
 * or makes keys differently, and names no such variable.  (Crashes come
 * from outside: tests/faultp11's kill rules.)
 *
 * Thread-safety: testhooks_init() runs once before any thread starts;
 * the other calls only read.
 */
#ifndef HK_TESTHOOKS_H
#define HK_TESTHOOKS_H

#ifdef HK_TEST_HOOKS

/* Reads the hooks' environment variables (see testhooks.c). */
void testhooks_init(void);
/* 1 if authentication is off (auth benchmark's comparison service). */
int testhooks_skip_auth(void);
/* 1 if new versions get a public key object, as older hsmkey made them. */
int testhooks_public_objects(void);

#else

#define testhooks_init()	   ((void)0)
#define testhooks_skip_auth()	   0
#define testhooks_public_objects() 0

#endif /* HK_TEST_HOOKS */

#endif /* HK_TESTHOOKS_H */
