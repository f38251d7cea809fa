/*
 * keyring_fixture.h: a throw-away SoftHSM token for the unit tests of the
 * keyring and the clients (never linked into hsmkeyd).  The first call
 * makes the token "hkunit" with tests/testtoken.h (a temp dir with its own
 * softhsm2.conf, removed at exit) and opens it.  Not thread-safe: tests
 * run one at a time.
 */
#ifndef HK_KEYRING_FIXTURE_H
#define HK_KEYRING_FIXTURE_H

#include <stddef.h>

#include "token.h"

/* The open token and a session on it; the test fails if it cannot be
 * made.  Caller does not free (fixture_close() does). */
struct token	     *fixture_token(void);
struct token_session *fixture_session(void);
/* Every hsmkey object of the token.  Caller must free(*objsp). */
void fixture_objects(struct token_object **objsp, size_t *np);
/* A pid that is not running (a child that has exited). */
long fixture_dead_pid(void);
/* Closes the session and the token while the module is intact: the
 * last test calls it. */
void fixture_close(void);

#endif /* HK_KEYRING_FIXTURE_H */
